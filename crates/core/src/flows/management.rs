//! The user-management routes: `/users` search, create, patch, delete, active users, and bulk
//! import jobs. Each validates its input, then makes one Management API call whose answer
//! passes through.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::management_call::{ManagementCall, Progress};
use super::{Action, Ctx, Flow, Step};
use crate::auth0::lucene::user_search;
use crate::auth0::ManagementRequest;
use crate::config::clients::check_management_access;
use crate::config::routes::{RouteKind, RouteMatch};
use crate::config::ManagementClient;
use crate::http::error::FilterError;
use crate::http::multipart::{self, Part};
use crate::http::{CalloutResult, Reply, RequestHead};
use crate::store::{StoreOp, StoreOutcome};

/// Auth0's limit for the users file of an import job.
pub const IMPORT_FILE_LIMIT: usize = 500 * 1024;
/// The whole import body: the file plus room for the other parts and the framing.
const IMPORT_BODY_LIMIT: usize = IMPORT_FILE_LIMIT + 16 * 1024;
const IMPORT_FIELDS: [&str; 5] = [
    "users",
    "connection",
    "upsert",
    "external_id",
    "send_completion_email",
];

/// Everything but RFC 3986 unreserved characters is %-encoded in a forwarded id.
const ID_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

enum Stage {
    AwaitBody,
    AwaitUsers,
    Calling(ManagementCall),
}

struct ManagementFlow {
    route: RouteKind,
    /// The user or job id, decoded and validated.
    id: Option<String>,
    content_type: Option<String>,
    stage: Stage,
}

/// A user or job id from the path: %-decoded once, then refused if it could address anything
/// but one resource.
fn path_id(raw: Option<&str>) -> Result<String, FilterError> {
    let raw = raw.unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| FilterError::bad_request("the id is not valid UTF-8"))?;
    let bad = decoded.is_empty()
        || decoded.len() > 256
        || decoded.contains('/')
        || decoded.contains('\\')
        || decoded.contains("..")
        || decoded.chars().any(char::is_control);
    if bad {
        return Err(FilterError::bad_request(
            "the id must not be empty or contain `/`, `\\`, `..` or control characters",
        ));
    }
    Ok(decoded.into_owned())
}

fn encoded(id: &str) -> String {
    utf8_percent_encode(id, ID_ENCODE).to_string()
}

fn get(path_and_query: String) -> ManagementRequest {
    ManagementRequest {
        method: "GET",
        path_and_query,
        content_type: None,
        body: None,
    }
}

pub(crate) fn start(
    ctx: &mut Ctx<'_>,
    head: &RequestHead,
    route: RouteMatch,
) -> Result<(Box<dyn Flow>, Action), FilterError> {
    check_management_access(ctx.config, head)?;
    let id = match route.kind {
        RouteKind::UserUpdate
        | RouteKind::UserDelete
        | RouteKind::ImportStatus
        | RouteKind::ImportErrors => Some(path_id(route.param.as_deref())?),
        _ => None,
    };
    let mut flow = ManagementFlow {
        route: route.kind,
        id,
        content_type: head.header("content-type").map(str::to_string),
        stage: Stage::AwaitBody,
    };
    let request = match route.kind {
        RouteKind::UsersSearch => {
            let connections = ctx.config.management.connections();
            let search = user_search(head.query(), head.single_header("acl_rows")?, &connections)?;
            get(search.auth0_path_and_query())
        }
        RouteKind::UserDelete => ManagementRequest {
            method: "DELETE",
            path_and_query: format!(
                "/api/v2/users/{}",
                encoded(flow.id.as_deref().unwrap_or_default())
            ),
            content_type: None,
            body: None,
        },
        RouteKind::ImportStatus => get(format!(
            "/api/v2/jobs/{}",
            encoded(flow.id.as_deref().unwrap_or_default())
        )),
        RouteKind::ImportErrors => get(format!(
            "/api/v2/jobs/{}/errors",
            encoded(flow.id.as_deref().unwrap_or_default())
        )),
        RouteKind::UsersActive => {
            flow.stage = Stage::AwaitUsers;
            return Ok((Box::new(flow), Action::Store(StoreOp::ActiveUsers)));
        }
        RouteKind::UsersImport => {
            if ctx.config.management.supported_connections_map.is_empty() {
                return Err(FilterError::bad_request(
                    "bulk import needs managementClient.supportedConnectionsMap (the deprecated supportedConnections does not allow it)",
                ));
            }
            multipart::boundary_of(flow.content_type.as_deref())?;
            return Ok((
                Box::new(flow),
                Action::ReadBody {
                    max_bytes: IMPORT_BODY_LIMIT,
                },
            ));
        }
        _ => {
            return Ok((
                Box::new(flow),
                Action::ReadBody {
                    max_bytes: ctx.config.max_body_bytes,
                },
            ))
        }
    };
    let (call, action) = ManagementCall::start(ctx, request);
    flow.stage = Stage::Calling(call);
    Ok((Box::new(flow), action))
}

fn json_object(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, FilterError> {
    if crate::http::body::body_format(content_type)? != crate::http::body::BodyFormat::Json {
        return Err(FilterError::unsupported_media_type(
            "Content-Type must be application/json",
        ));
    }
    match crate::http::strict_json::parse(body, "malformed JSON body")? {
        serde_json::Value::Object(object) => Ok(object),
        _ => Err(FilterError::bad_request("the body must be a JSON object")),
    }
}

/// `POST /users`: the connection defaults to the configured one and must be supported.
fn create_user(
    ctx: &Ctx<'_>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<ManagementRequest, FilterError> {
    let mut user = json_object(content_type, body)?;
    let management = &ctx.config.management;
    let connection = match user.get("connection") {
        Some(serde_json::Value::String(c)) => c.clone(),
        Some(_) => return Err(FilterError::bad_request("`connection` must be a string")),
        None => management
            .default_create_connection()
            .map(str::to_string)
            .ok_or_else(|| {
                FilterError::bad_request(
                    "`connection` is required: no default management connection is configured",
                )
            })?,
    };
    if !management.connections().contains(&connection) {
        return Err(FilterError::bad_request(format!(
            "connection `{}` is not supported by the management client",
            crate::http::error::sanitize(&connection)
        )));
    }
    user.insert("connection".into(), connection.into());
    Ok(ManagementRequest {
        method: "POST",
        path_and_query: "/api/v2/users".into(),
        content_type: Some("application/json".into()),
        body: Some(serde_json::Value::Object(user).to_string().into_bytes()),
    })
}

/// `POST /users/import`: the `users` file unchanged, `connection` turned into `connection_id`.
/// Public (with the config part it reads) for the fuzz target, through `crate::fuzz_entry`.
pub(crate) fn import_users(
    management: &ManagementClient,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<ManagementRequest, FilterError> {
    let boundary = multipart::boundary_of(content_type)?;
    let parts = multipart::parse(body, &boundary)?;
    let text = |name: &str| -> Result<Option<String>, FilterError> {
        match parts.iter().find(|p| p.name == name) {
            None => Ok(None),
            Some(part) => String::from_utf8(part.data.clone())
                .map(Some)
                .map_err(|_| FilterError::bad_request(format!("`{name}` is not UTF-8 text"))),
        }
    };
    for part in &parts {
        if part.name == "connection_id" {
            return Err(FilterError::bad_request(
                "`connection_id` is not accepted: name the connection in `connection`",
            ));
        }
        if !IMPORT_FIELDS.contains(&part.name.as_str()) {
            return Err(FilterError::bad_request(format!(
                "unexpected part `{}`",
                crate::http::error::sanitize(&part.name)
            )));
        }
        if parts.iter().filter(|p| p.name == part.name).count() > 1 {
            return Err(FilterError::bad_request(format!(
                "part `{}` is given more than once",
                crate::http::error::sanitize(&part.name)
            )));
        }
    }
    let users = parts
        .iter()
        .find(|p| p.name == "users")
        .ok_or_else(|| FilterError::bad_request("the `users` file part is required"))?;
    if users.data.len() > IMPORT_FILE_LIMIT {
        return Err(FilterError::payload_too_large(IMPORT_FILE_LIMIT));
    }
    let connection = match text("connection")? {
        Some(c) => c,
        None => management
            .default_management_connection_name
            .clone()
            .ok_or_else(|| {
                FilterError::bad_request(
                    "`connection` is required: no defaultManagementConnectionName is configured",
                )
            })?,
    };
    let connection_id = management
        .supported_connections_map
        .get(&connection)
        .ok_or_else(|| {
            FilterError::bad_request(format!(
                "connection `{}` is not in managementClient.supportedConnectionsMap",
                crate::http::error::sanitize(&connection)
            ))
        })?;
    let mut out = vec![
        Part {
            name: "users".into(),
            filename: Some(
                users
                    .filename
                    .clone()
                    .unwrap_or_else(|| "users.json".into()),
            ),
            content_type: Some(
                users
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/json".into()),
            ),
            data: users.data.clone(),
        },
        Part {
            name: "connection_id".into(),
            filename: None,
            content_type: None,
            data: connection_id.clone().into_bytes(),
        },
    ];
    for name in ["upsert", "external_id", "send_completion_email"] {
        if let Some(value) = text(name)? {
            let boolean = name != "external_id";
            if boolean && value != "true" && value != "false" {
                return Err(FilterError::bad_request(format!(
                    "`{name}` must be true or false"
                )));
            }
            out.push(Part {
                name: name.into(),
                filename: None,
                content_type: None,
                data: value.into_bytes(),
            });
        }
    }
    let (body, boundary) = multipart::build(&out, body);
    Ok(ManagementRequest {
        method: "POST",
        path_and_query: "/api/v2/jobs/users-imports".into(),
        content_type: Some(format!("multipart/form-data; boundary={boundary}")),
        body: Some(body),
    })
}

impl ManagementFlow {
    fn progress(&mut self, progress: Result<Progress, FilterError>) -> Step {
        match progress? {
            Progress::Next(action) => Ok(action),
            Progress::Done(reply) => Ok(Action::Respond(reply)),
        }
    }

    fn call(&mut self) -> Result<&mut ManagementCall, FilterError> {
        match &mut self.stage {
            Stage::Calling(call) => Ok(call),
            _ => Err(super::unexpected("event")),
        }
    }
}

impl Flow for ManagementFlow {
    fn on_body(&mut self, ctx: &mut Ctx<'_>, body: &[u8]) -> Step {
        let content_type = self.content_type.as_deref();
        let request = match self.route {
            RouteKind::UserCreate => create_user(ctx, content_type, body)?,
            RouteKind::UserUpdate => {
                json_object(content_type, body)?;
                ManagementRequest {
                    method: "PATCH",
                    path_and_query: format!(
                        "/api/v2/users/{}",
                        encoded(self.id.as_deref().unwrap_or_default())
                    ),
                    content_type: Some("application/json".into()),
                    body: Some(body.to_vec()),
                }
            }
            RouteKind::UsersImport => import_users(&ctx.config.management, content_type, body)?,
            _ => return Err(super::unexpected("body")),
        };
        let (call, action) = ManagementCall::start(ctx, request);
        self.stage = Stage::Calling(call);
        Ok(action)
    }

    fn on_store(&mut self, ctx: &mut Ctx<'_>, outcome: StoreOutcome) -> Step {
        if let Stage::AwaitUsers = self.stage {
            return match outcome {
                StoreOutcome::Users(users) => {
                    let list: Vec<serde_json::Value> = users
                        .into_iter()
                        .map(|u| serde_json::json!({"userId": u}))
                        .collect();
                    let mut reply = Reply::json(200, &serde_json::Value::Array(list));
                    reply.push_header("cache-control", "no-store");
                    Ok(Action::Respond(reply))
                }
                StoreOutcome::Unavailable(_) => {
                    Err(FilterError::unavailable("the session store is unavailable"))
                }
                _ => Err(super::unexpected("store outcome")),
            };
        }
        let progress = self.call()?.on_store(ctx, outcome);
        self.progress(progress)
    }

    fn on_callout(&mut self, ctx: &mut Ctx<'_>, result: CalloutResult) -> Step {
        let progress = self.call()?.on_callout(ctx, result);
        self.progress(progress)
    }

    fn on_wake(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let progress = self.call()?.on_wake(ctx);
        self.progress(progress)
    }
}
