//! The Management API v2 subset: routing, bearer-token and scope checks, Auth0's error
//! bodies, and connections. Users are in `users`, import jobs in `jobs`.
//!
//! Tokens come from `client_credentials` with audience `<issuer>api/v2/`; every call needs
//! `Authorization: Bearer <token>` with that audience and a scope the endpoint accepts.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::authn::Emulator;
use crate::jobs::JobRoutes;
use crate::server::{mgmt_error, Request, Response};

/// Percent-decodes a path segment (`auth0%7Cabc` → `auth0|abc`); `None` if not UTF-8.
pub fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(0));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn invalid_token(message: &str) -> Response {
    mgmt_error(401, message, "invalid_token")
}

impl Emulator {
    fn job_routes(&self) -> JobRoutes<'_> {
        JobRoutes {
            jobs: &self.jobs,
            users: &self.users,
            tenant: &self.tenant,
        }
    }

    /// Answers a request under `/api/v2/`.
    pub fn management(&self, request: &Request) -> Response {
        let rest = request.path.strip_prefix("/api/v2/").unwrap_or("");
        let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        let method = request.method.as_str();
        let scopes: &[&str] = match (method, segments.as_slice()) {
            ("GET", ["users"] | ["users", _]) => &["read:users"],
            ("POST", ["users"]) => &["create:users"],
            ("PATCH", ["users", _]) => &["update:users"],
            ("DELETE", ["users", _]) => &["delete:users"],
            ("GET", ["connections"]) => &["read:connections"],
            ("POST", ["jobs", "users-imports"]) => &["create:users"],
            ("GET", ["jobs", _] | ["jobs", _, "errors"]) => &["read:users", "create:users"],
            _ => {
                return Response::json(
                    404,
                    json!({"statusCode": 404, "error": "Not Found", "message": "Not Found"}),
                )
            }
        };
        if let Err(response) = self.authorize_management(request, scopes) {
            return response;
        }
        let id = match segments.get(1).map(|s| percent_decode(s)) {
            Some(None) => {
                return mgmt_error(400, "Invalid request URI.", "invalid_uri");
            }
            Some(Some(id)) => id,
            None => String::new(),
        };
        let answer = match (method, segments.as_slice()) {
            ("GET", ["users"]) => self.list_users(request),
            ("GET", ["users", _]) => self.get_user(&id),
            ("POST", ["users"]) => self.create_user(request),
            ("PATCH", ["users", _]) => self.patch_user(&id, request),
            ("DELETE", ["users", _]) => self.delete_user(&id),
            ("GET", ["connections"]) => Ok(self.list_connections(request)),
            ("POST", ["jobs", _]) => self.job_routes().create_import_job(request),
            ("GET", ["jobs", _]) => self.job_routes().get_job(&id),
            _ => self.job_routes().get_job_errors(&id),
        };
        answer.unwrap_or_else(|e| e)
    }

    /// Checks the bearer token: signature, expiry, audience, revocation, then scope.
    fn authorize_management(&self, request: &Request, any_of: &[&str]) -> Result<(), Response> {
        let header = request
            .header("authorization")
            .ok_or_else(|| invalid_token("Missing authentication"))?;
        let token = header
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("bearer "))
            .and_then(|_| header.get(7..))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid_token("Invalid token"))?;
        let claims = self
            .signer
            .verify_exact(token)
            .ok_or_else(|| invalid_token("Invalid token"))?;
        let audience = HashSet::from([self.management_audience()]);
        if !claims.audiences.is_some_and(|a| a.contains(&audience)) {
            return Err(invalid_token("Invalid token"));
        }
        if claims
            .jwt_id
            .as_deref()
            .is_none_or(|jti| self.faults.revoked(jti))
        {
            return Err(invalid_token("Invalid token"));
        }
        let granted = claims
            .custom
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !granted.split_whitespace().any(|s| any_of.contains(&s)) {
            return Err(mgmt_error(
                403,
                &format!("Insufficient scope, expected any of: {}", any_of.join(",")),
                "insufficient_scope",
            ));
        }
        Ok(())
    }

    /// `GET /api/v2/connections[?name=…&strategy=…]`.
    fn list_connections(&self, request: &Request) -> Response {
        let name = request.query.get("name");
        let strategy = request.query.get("strategy");
        let list: Vec<Value> = self
            .tenant
            .connections
            .iter()
            .filter(|c| name.is_none_or(|n| *n == c.name))
            .filter(|c| strategy.is_none_or(|s| *s == c.strategy))
            .map(|c| {
                let enabled: Vec<&str> = self
                    .tenant
                    .clients
                    .iter()
                    .filter(|client| client.connections.contains(&c.name))
                    .map(|client| client.client_id.as_str())
                    .collect();
                json!({
                    "id": c.id, "name": c.name, "strategy": c.strategy, "display_name": c.name,
                    "options": {}, "realms": [c.name], "is_domain_connection": false,
                    "enabled_clients": enabled,
                })
            })
            .collect();
        Response::json(200, Value::Array(list))
    }
}

#[cfg(test)]
mod tests;
