//! Management API users: `GET /api/v2/users` (Lucene search, paging, totals),
//! `GET|PATCH|DELETE /api/v2/users/{id}` and `POST /api/v2/users`, on the shared user store.

use serde_json::{json, Map, Value};

use crate::authn::Emulator;
use crate::lucene;
use crate::server::{mgmt_error, no_content};
use crate::server::{Request, Response};
use crate::store::{find_email, new_user_id, now_iso, valid_email};
use crate::tenant::User;

type Answer = Result<Response, Response>;

const STRING_FIELDS: [&str; 6] = [
    "username",
    "name",
    "nickname",
    "given_name",
    "family_name",
    "picture",
];
/// Accepted and ignored (the emulator sends no mail and keeps no phone numbers).
const IGNORED_FIELDS: [&str; 6] = [
    "verify_email",
    "phone_number",
    "phone_verified",
    "client_id",
    "verify_phone_number",
    "verify_password",
];

fn query_error(property: &str, detail: &str, description: &str) -> Response {
    mgmt_error(
        400,
        &format!("Query validation error: '{detail}' on property {property} ({description})."),
        "invalid_query_string",
    )
}

fn invalid_body(detail: &str) -> Response {
    mgmt_error(
        400,
        &format!("Payload validation error: '{detail}'."),
        "invalid_body",
    )
}

fn no_user() -> Response {
    mgmt_error(404, "The user does not exist.", "inexistent_user")
}

fn conflict() -> Response {
    mgmt_error(409, "The user already exists.", "auth0_idp_error")
}

fn internal() -> Response {
    mgmt_error(500, "Internal error", "internal")
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn property_error(detail: &str, key: &str) -> Response {
    mgmt_error(
        400,
        &format!("Payload validation error: '{detail}' on property {key}."),
        "invalid_body",
    )
}

fn wrong_type(key: &str, expected: &str, found: &Value) -> Response {
    property_error(
        &format!(
            "Expected type {expected} but found type {}",
            type_name(found)
        ),
        key,
    )
}

fn integer_param(
    request: &Request,
    name: &str,
    default: u64,
    about: &str,
) -> Result<u64, Response> {
    match request.query.get(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| query_error(name, "Expected type integer but found type string", about)),
    }
}

fn json_object(request: &Request) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(invalid_body(&format!(
            "Expected type object but found type {}",
            type_name(&other)
        ))),
        Err(_) => Err(mgmt_error(
            400,
            "Invalid request payload JSON format",
            "invalid_body",
        )),
    }
}

/// Rejects properties the endpoint does not know, as Auth0's schema validation does.
fn known_properties(body: &Map<String, Value>, extra: &[&str]) -> Result<(), Response> {
    let known = |k: &str| {
        STRING_FIELDS.contains(&k)
            || IGNORED_FIELDS.contains(&k)
            || extra.contains(&k)
            || matches!(
                k,
                "email"
                    | "email_verified"
                    | "blocked"
                    | "password"
                    | "connection"
                    | "app_metadata"
                    | "user_metadata"
            )
    };
    match body.keys().find(|k| !known(k)) {
        Some(key) => Err(invalid_body(&format!(
            "Additional properties not allowed: {key}"
        ))),
        None => Ok(()),
    }
}

/// A string property: absent → `None`, `null` → `Some(None)`.
fn string_prop(body: &Map<String, Value>, key: &str) -> Result<Option<Option<String>>, Response> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(other) => Err(wrong_type(key, "string", other)),
    }
}

fn bool_prop(body: &Map<String, Value>, key: &str) -> Result<Option<bool>, Response> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(key, "boolean", other)),
    }
}

fn metadata_prop(
    body: &Map<String, Value>,
    key: &str,
) -> Result<Option<Map<String, Value>>, Response> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Map::new())),
        Some(Value::Object(map)) => Ok(Some(map.clone())),
        Some(other) => Err(wrong_type(key, "object", other)),
    }
}

fn checked_email(email: &str) -> Result<(), Response> {
    if valid_email(email) {
        Ok(())
    } else {
        Err(property_error(
            &format!("Object didn't pass validation for format email: {email}"),
            "email",
        ))
    }
}

impl Emulator {
    pub(crate) fn list_users(&self, request: &Request) -> Answer {
        let per_page = integer_param(
            request,
            "per_page",
            50,
            "Number of results per page. Defaults to 50.",
        )?;
        if per_page > 100 {
            return Err(query_error(
                "per_page",
                "Value must be less than or equal to 100",
                "Number of results per page. Defaults to 50.",
            ));
        }
        let page = integer_param(
            request,
            "page",
            0,
            "Page index of the results to return. First page is 0.",
        )?;
        let include_totals = match request.query.get("include_totals").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(query_error(
                    "include_totals",
                    "Expected type boolean but found type string",
                    "Return results inside an object that contains the total result count (true) or as a direct array of results (false, default).",
                ))
            }
        };
        if let Some(engine) = request.query.get("search_engine") {
            if !matches!(engine.as_str(), "v2" | "v3") {
                return Err(query_error(
                    "search_engine",
                    &format!("No enum match for: \"{engine}\""),
                    "The version of the search engine",
                ));
            }
        }
        let query = match request.query.get("q").filter(|q| !q.trim().is_empty()) {
            Some(text) => Some(lucene::parse(text).map_err(|e| {
                query_error(
                    "q",
                    &e,
                    "Query in Lucene query string syntax. Some query types cannot be used on metadata fields, for details see Searchable Fields.",
                )
            })?),
            None => None,
        };
        let connection = request.query.get("connection");
        let matching: Vec<Value> = self
            .users
            .all()
            .iter()
            .filter(|u| connection.is_none_or(|c| *c == u.connection))
            .map(User::management_json)
            .filter(|u| query.as_ref().is_none_or(|q| lucene::matches(q, u)))
            .collect();
        let total = matching.len();
        let start = page.saturating_mul(per_page);
        let users: Vec<Value> = matching
            .into_iter()
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
            .take(usize::try_from(per_page).unwrap_or(100))
            .collect();
        if include_totals {
            return Ok(Response::json(
                200,
                json!({"start": start, "limit": per_page, "length": users.len(), "users": users, "total": total}),
            ));
        }
        Ok(Response::json(200, Value::Array(users)))
    }

    pub(crate) fn get_user(&self, id: &str) -> Answer {
        let user = self.users.by_id(id).ok_or_else(no_user)?;
        Ok(Response::json(200, user.management_json()))
    }

    pub(crate) fn create_user(&self, request: &Request) -> Answer {
        let body = json_object(request)?;
        known_properties(&body, &["user_id"])?;
        let connection = match body.get("connection") {
            None => return Err(invalid_body("Missing required property: connection")),
            Some(Value::String(c)) => c.clone(),
            Some(other) => return Err(wrong_type("connection", "string", other)),
        };
        if !self.tenant.connections.iter().any(|c| c.name == connection) {
            return Err(mgmt_error(
                400,
                "The connection does not exist.",
                "inexistent_connection",
            ));
        }
        let email = string_prop(&body, "email")?
            .flatten()
            .ok_or_else(|| invalid_body("Missing required property: email"))?;
        checked_email(&email)?;
        let password = string_prop(&body, "password")?
            .flatten()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| invalid_body("Missing required property: password"))?;
        let user_id = match string_prop(&body, "user_id")?.flatten() {
            Some(id) if !id.is_empty() => format!("auth0|{id}"),
            _ => new_user_id(),
        };
        let mut strings = Vec::new();
        for key in STRING_FIELDS {
            strings.push(string_prop(&body, key)?.flatten());
        }
        let [username, name, nickname, given_name, family_name, picture]: [Option<String>; 6] =
            strings.try_into().map_err(|_| internal())?;
        let now = now_iso();
        let user = User {
            user_id: user_id.clone(),
            connection: connection.clone(),
            email: email.clone(),
            username: username.clone(),
            password,
            name,
            nickname,
            given_name,
            family_name,
            picture,
            email_verified: bool_prop(&body, "email_verified")?.unwrap_or(false),
            app_metadata: metadata_prop(&body, "app_metadata")?.unwrap_or_default(),
            user_metadata: metadata_prop(&body, "user_metadata")?.unwrap_or_default(),
            blocked: bool_prop(&body, "blocked")?.unwrap_or(false),
            logins_count: 0,
            created_at: Some(now.clone()),
            updated_at: Some(now),
        };
        let created = self
            .users
            .with(|store| {
                let username_taken = username.as_ref().is_some_and(|name| {
                    store
                        .values()
                        .any(|u| u.connection == connection && u.username.as_ref() == Some(name))
                });
                if find_email(store, &connection, &email).is_some()
                    || username_taken
                    || store.contains_key(&user_id)
                {
                    return Err(conflict());
                }
                let json = user.management_json();
                store.insert(user_id.clone(), user);
                Ok(json)
            })
            .ok_or_else(internal)??;
        Ok(Response::json(201, created))
    }

    pub(crate) fn patch_user(&self, id: &str, request: &Request) -> Answer {
        let body = json_object(request)?;
        known_properties(&body, &[])?;
        let mut strings = Vec::new();
        for key in STRING_FIELDS {
            strings.push((key, string_prop(&body, key)?));
        }
        let email = match string_prop(&body, "email")? {
            Some(None) => return Err(wrong_type("email", "string", &Value::Null)),
            Some(Some(email)) => {
                checked_email(&email)?;
                Some(email)
            }
            None => None,
        };
        let password = match string_prop(&body, "password")? {
            Some(Some(p)) if !p.is_empty() => Some(p),
            Some(_) => return Err(invalid_body("String is too short (0 chars), minimum 1")),
            None => None,
        };
        let email_verified = bool_prop(&body, "email_verified")?;
        let blocked = bool_prop(&body, "blocked")?;
        let merges = [
            ("app_metadata", body.get("app_metadata")),
            ("user_metadata", body.get("user_metadata")),
        ];
        for (key, value) in merges {
            if let Some(value) = value.filter(|v| !v.is_null() && !v.is_object()) {
                return Err(wrong_type(key, "object", value));
            }
        }
        let updated = self
            .users
            .with(|store| {
                let current = store.get(id).ok_or_else(no_user)?;
                let connection = current.connection.clone();
                if let Some(email) = &email {
                    if find_email(store, &connection, email).is_some_and(|u| u.user_id != id) {
                        return Err(conflict());
                    }
                }
                let user = store.get_mut(id).ok_or_else(no_user)?;
                for (key, change) in strings {
                    let Some(change) = change else { continue };
                    let slot = match key {
                        "username" => &mut user.username,
                        "name" => &mut user.name,
                        "nickname" => &mut user.nickname,
                        "given_name" => &mut user.given_name,
                        "family_name" => &mut user.family_name,
                        _ => &mut user.picture,
                    };
                    *slot = change;
                }
                if let Some(email) = email {
                    user.email = email;
                }
                if let Some(password) = password {
                    user.password = password;
                }
                if let Some(verified) = email_verified {
                    user.email_verified = verified;
                }
                if let Some(blocked) = blocked {
                    user.blocked = blocked;
                }
                // Metadata merges one level deep; a null value removes its key, a null object
                // clears it all.
                for (key, value) in merges {
                    let target = if key == "app_metadata" {
                        &mut user.app_metadata
                    } else {
                        &mut user.user_metadata
                    };
                    match value {
                        Some(Value::Object(changes)) => {
                            for (k, v) in changes {
                                if v.is_null() {
                                    target.remove(k);
                                } else {
                                    target.insert(k.clone(), v.clone());
                                }
                            }
                        }
                        Some(Value::Null) => target.clear(),
                        _ => {}
                    }
                }
                user.updated_at = Some(now_iso());
                Ok(user.management_json())
            })
            .ok_or_else(internal)??;
        Ok(Response::json(200, updated))
    }

    /// 204 whether or not the user existed, as Auth0 answers.
    pub(crate) fn delete_user(&self, id: &str) -> Answer {
        self.users
            .with(|store| store.remove(id))
            .ok_or_else(internal)?;
        Ok(no_content())
    }
}
