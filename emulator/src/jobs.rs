//! User-import jobs: `POST /api/v2/jobs/users-imports` (multipart/form-data),
//! `GET /api/v2/jobs/{id}` and `GET /api/v2/jobs/{id}/errors`.
//!
//! A job answers `pending` at first and completes about 300 ms later (in a background thread,
//! or on the first read after that): every user of the file is validated and the valid ones are
//! inserted (or, with `upsert`, updated), so GET users and logins see them afterwards.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::multipart;
use crate::server::{mgmt_error, Request, Response};
use crate::store::{find_email, new_alnum_id, new_user_id, now_iso, valid_email, Users};
use crate::tenant::{Tenant, User};

/// How long a job stays pending.
const PROCESSING: Duration = Duration::from_millis(300);
/// Auth0's limit on the users file.
const MAX_USERS_FILE: usize = 512_000;

struct Job {
    /// The creation answer: id, type, status, connection, options.
    view: Map<String, Value>,
    connection: String,
    upsert: bool,
    users: Vec<Value>,
    started: Instant,
    /// Per-user errors, once completed.
    errors: Option<Vec<Value>>,
    /// Inserted and updated users, once completed.
    summary: (usize, usize),
}

#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<BTreeMap<String, Job>>,
}

fn invalid_body(message: &str) -> Response {
    mgmt_error(400, message, "invalid_body")
}

fn bool_part(parts: &[multipart::Part], name: &str, default: bool) -> Result<bool, Response> {
    let Some(part) = parts.iter().find(|p| p.name == name) else {
        return Ok(default);
    };
    match String::from_utf8_lossy(&part.data).trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(invalid_body(&format!(
            "Payload validation error: 'Expected type boolean but found type string' on property {name} ({other})."
        ))),
    }
}

/// The Management API's job routes, over the tenant's users and its import jobs.
pub(crate) struct JobRoutes<'a> {
    pub(crate) jobs: &'a Arc<Jobs>,
    pub(crate) users: &'a Arc<Users>,
    pub(crate) tenant: &'a Tenant,
}

impl JobRoutes<'_> {
    pub(crate) fn create_import_job(&self, request: &Request) -> Result<Response, Response> {
        let content_type = request.header("content-type").unwrap_or("");
        let parts = multipart::parse(content_type, &request.body)
            .map_err(|e| invalid_body(&format!("Payload validation error: '{e}'.")))?;
        let text = |name: &str| {
            parts
                .iter()
                .find(|p| p.name == name)
                .map(|p| String::from_utf8_lossy(&p.data).trim().to_string())
        };
        let users_part = parts.iter().find(|p| p.name == "users").ok_or_else(|| {
            invalid_body("Payload validation error: 'Missing required property: users'.")
        })?;
        if users_part.data.len() > MAX_USERS_FILE {
            return Err(mgmt_error(
                413,
                &format!("Payload content length greater than maximum allowed: {MAX_USERS_FILE}"),
                "too_large",
            ));
        }
        let connection_id = text("connection_id")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                invalid_body(
                    "Payload validation error: 'Missing required property: connection_id'.",
                )
            })?;
        let connection = self
            .tenant
            .connection_by_id(&connection_id)
            .ok_or_else(|| {
                mgmt_error(
                    400,
                    "The connection does not exist.",
                    "inexistent_connection",
                )
            })?
            .name
            .clone();
        let upsert = bool_part(&parts, "upsert", false)?;
        let send_completion_email = bool_part(&parts, "send_completion_email", true)?;
        let users: Vec<Value> = match serde_json::from_slice(&users_part.data) {
            Ok(Value::Array(users)) => users,
            _ => {
                return Err(invalid_body(
                    "Users file must be an array of user objects in JSON format.",
                ))
            }
        };
        let id = new_alnum_id("job_", 16);
        let mut view = Map::new();
        view.insert("status".into(), "pending".into());
        view.insert("type".into(), "users_import".into());
        view.insert("created_at".into(), now_iso().into());
        view.insert("id".into(), id.clone().into());
        view.insert("connection_id".into(), connection_id.into());
        view.insert("connection".into(), connection.clone().into());
        if let Some(external_id) = text("external_id").filter(|e| !e.is_empty()) {
            view.insert("external_id".into(), external_id.into());
        }
        view.insert("upsert".into(), upsert.into());
        view.insert("send_completion_email".into(), send_completion_email.into());
        let answer = Value::Object(view.clone());
        let job = Job {
            view,
            connection,
            upsert,
            users,
            started: Instant::now(),
            errors: None,
            summary: (0, 0),
        };
        self.jobs
            .jobs
            .lock()
            .map_err(|_| mgmt_error(500, "Internal error", "internal"))?
            .insert(id.clone(), job);
        let (jobs, users) = (Arc::clone(self.jobs), Arc::clone(self.users));
        std::thread::spawn(move || {
            std::thread::sleep(PROCESSING);
            jobs.complete_due(&id, &users);
        });
        Ok(Response::json(201, answer))
    }

    pub(crate) fn get_job(&self, id: &str) -> Result<Response, Response> {
        self.jobs.complete_due(id, self.users);
        let jobs = self
            .jobs
            .jobs
            .lock()
            .map_err(|_| mgmt_error(500, "Internal error", "internal"))?;
        let job = jobs.get(id).ok_or_else(no_job)?;
        Ok(Response::json(200, job.status()))
    }

    /// The per-user errors of a completed job; 204 when there are none; the job itself while it
    /// is pending.
    pub(crate) fn get_job_errors(&self, id: &str) -> Result<Response, Response> {
        self.jobs.complete_due(id, self.users);
        let jobs = self
            .jobs
            .jobs
            .lock()
            .map_err(|_| mgmt_error(500, "Internal error", "internal"))?;
        let job = jobs.get(id).ok_or_else(no_job)?;
        Ok(match &job.errors {
            None => Response::json(200, job.status()),
            Some(errors) if errors.is_empty() => Response {
                status: 204,
                headers: Vec::new(),
                body: Vec::new(),
                truncate_to: None,
            },
            Some(errors) => Response::json(200, Value::Array(errors.clone())),
        })
    }
}

fn no_job() -> Response {
    mgmt_error(404, "The job does not exist.", "inexistent_job")
}

impl Job {
    fn status(&self) -> Value {
        let mut view = self.view.clone();
        if let Some(errors) = &self.errors {
            let failed = errors.len();
            let (inserted, updated) = self.summary;
            view.insert("status".into(), "completed".into());
            view.insert("percentage_done".into(), 100.into());
            view.insert("time_left_seconds".into(), 0.into());
            view.insert(
                "summary".into(),
                json!({"failed": failed, "updated": updated, "inserted": inserted, "total": self.users.len()}),
            );
        } else {
            view.insert("percentage_done".into(), 0.into());
        }
        Value::Object(view)
    }
}

impl Jobs {
    /// Completes a job whose processing time is over; idempotent.
    fn complete_due(&self, id: &str, users: &Users) {
        let Ok(mut jobs) = self.jobs.lock() else {
            return;
        };
        let Some(job) = jobs.get_mut(id) else {
            return;
        };
        if job.errors.is_some() || job.started.elapsed() < PROCESSING {
            return;
        }
        let mut errors = Vec::new();
        let (mut inserted, mut updated) = (0, 0);
        users.with(|store| {
            for user in &job.users {
                match import_one(store, &job.connection, job.upsert, user) {
                    Ok(true) => inserted += 1,
                    Ok(false) => updated += 1,
                    Err(problems) => errors.push(json!({"user": user, "errors": problems})),
                }
            }
        });
        job.summary = (inserted, updated);
        job.errors = Some(errors);
    }
}

fn problem(code: &str, message: String, path: &str) -> Value {
    json!({"code": code, "message": message, "path": path})
}

/// Validates and stores one user of an import file: `Ok(true)` inserted, `Ok(false)` updated.
fn import_one(
    store: &mut BTreeMap<String, User>,
    connection: &str,
    upsert: bool,
    user: &Value,
) -> Result<bool, Vec<Value>> {
    let Some(object) = user.as_object() else {
        return Err(vec![problem(
            "INVALID_TYPE",
            "Expected type object".into(),
            "",
        )]);
    };
    let email = match object.get("email") {
        None | Some(Value::Null) => {
            return Err(vec![problem(
                "OBJECT_REQUIRED",
                "Missing required property: email".into(),
                "email",
            )])
        }
        Some(Value::String(email)) if valid_email(email) => email.clone(),
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            return Err(vec![problem(
                "INVALID_FORMAT",
                format!("Error in email property - Object didn't pass validation for format email: {shown}"),
                "email",
            )]);
        }
    };
    if let Some(hash) = object.get("password_hash") {
        let ok = hash
            .as_str()
            .is_some_and(|h| (h.starts_with("$2a$") || h.starts_with("$2b$")) && h.len() == 60);
        if !ok {
            return Err(vec![problem(
                "INVALID_FORMAT",
                "Error in password_hash property - Object didn't pass validation for format bcrypt hash".into(),
                "password_hash",
            )]);
        }
    }
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
    let metadata = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let now = now_iso();
    if let Some(existing) = find_email(store, connection, &email).map(|u| u.user_id.clone()) {
        if !upsert {
            return Err(vec![problem(
                "DUPLICATED_USER",
                "The user already exist and upsert parameter is false".into(),
                "",
            )]);
        }
        if let Some(stored) = store.get_mut(&existing) {
            for (key, slot) in [
                ("username", &mut stored.username),
                ("name", &mut stored.name),
                ("nickname", &mut stored.nickname),
                ("given_name", &mut stored.given_name),
                ("family_name", &mut stored.family_name),
                ("picture", &mut stored.picture),
            ] {
                if let Some(value) = text(key) {
                    *slot = Some(value);
                }
            }
            if object.contains_key("app_metadata") {
                stored.app_metadata = metadata("app_metadata");
            }
            if object.contains_key("user_metadata") {
                stored.user_metadata = metadata("user_metadata");
            }
            stored.email_verified = object.get("email_verified") == Some(&Value::Bool(true));
            if let Some(blocked) = object.get("blocked").and_then(Value::as_bool) {
                stored.blocked = blocked;
            }
            stored.updated_at = Some(now);
        }
        return Ok(false);
    }
    let user_id = match text("user_id") {
        Some(id) if !id.is_empty() => format!("auth0|{id}"),
        _ => new_user_id(),
    };
    if store.contains_key(&user_id) {
        return Err(vec![problem(
            "DUPLICATED_USER",
            "The user already exist and upsert parameter is false".into(),
            "user_id",
        )]);
    }
    let new_user = User {
        user_id: user_id.clone(),
        connection: connection.to_string(),
        email,
        username: text("username"),
        password: String::new(),
        name: text("name"),
        nickname: text("nickname"),
        given_name: text("given_name"),
        family_name: text("family_name"),
        picture: text("picture"),
        email_verified: object.get("email_verified") == Some(&Value::Bool(true)),
        app_metadata: metadata("app_metadata"),
        user_metadata: metadata("user_metadata"),
        blocked: object.get("blocked") == Some(&Value::Bool(true)),
        logins_count: 0,
        created_at: Some(now.clone()),
        updated_at: Some(now),
    };
    store.insert(user_id, new_user);
    Ok(true)
}
