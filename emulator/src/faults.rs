//! Test controls under `/__emulator/`: slow answers, injected failures, and call counts.
//! They are not part of Auth0's API; they let tests drive Auth0's failure modes.
//!
//! - `POST /__emulator/faults` `{"delayMs": 3000}` or
//!   `{"fail": {"path": "/oauth/token", "status": 429, "count": 1, "headers": {...}, "body": {...}}}`
//!   (failures and delays apply to the Management API's `/api/v2/...` paths too). Instead of
//!   the JSON `body`, `"raw": "<html>…"` answers that text as is, with `"contentType"` (default
//!   `text/html; charset=utf-8`). `"truncate": N` announces the whole body's `Content-Length`
//!   but sends only its first N bytes, then closes the connection (a torn answer). A failure
//!   with `"count": 0` is never used; each matching call uses one of `count`;
//!   `{"clientCredentialsLifetimeSeconds": 2}`: later client_credentials tokens live 2 s
//!   (`expires_in: 2`); `{"revokeManagementTokens": true}`: every Management API token issued
//!   so far is answered 401 from now on (tokens issued later work). Keys combine.
//! - `DELETE /__emulator/faults` clears delays, failures and the lifetime override (revoked
//!   tokens stay revoked).
//! - `GET /__emulator/calls` → `{"/oauth/token": 3, "grant:client_credentials": 1, ...}`:
//!   counts of handled API calls by path, and of successful client_credentials grants.
//! - `GET /__emulator/last-headers?path=/oauth/token` → the headers of the last call to a path.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use crate::server::{Request, Response};

#[derive(Clone)]
struct Failure {
    path: String,
    status: u16,
    count: u64,
    headers: BTreeMap<String, String>,
    body: serde_json::Value,
    /// A non-JSON body and its content type, sent instead of `body`.
    raw: Option<(String, String)>,
    /// Bytes of the body actually sent (the rest is announced, never sent).
    truncate: Option<usize>,
}

#[derive(Default)]
pub struct Faults {
    delay_ms: Mutex<u64>,
    failures: Mutex<Vec<Failure>>,
    calls: Mutex<BTreeMap<String, u64>>,
    last_headers: Mutex<BTreeMap<String, Vec<(String, String)>>>,
    /// `clientCredentialsLifetimeSeconds`, when set.
    client_credentials_lifetime: Mutex<Option<u64>>,
    /// `userTokenLifetimeSeconds`, when set: lifetime of later user access tokens.
    user_token_lifetime: Mutex<Option<u64>>,
    /// `jti`s of Management API tokens issued and not yet revoked, and of revoked ones.
    management_tokens: Mutex<HashSet<String>>,
    revoked_tokens: Mutex<HashSet<String>>,
}

impl Faults {
    /// Handles a control request, or `None` when the path is not a control path.
    pub fn control(&self, request: &Request) -> Option<Response> {
        match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/__emulator/faults") => Some(self.set(request)),
            ("DELETE", "/__emulator/faults") => {
                *self.delay_ms.lock().ok()? = 0;
                self.failures.lock().ok()?.clear();
                *self.client_credentials_lifetime.lock().ok()? = None;
                *self.user_token_lifetime.lock().ok()? = None;
                Some(Response::json(200, serde_json::json!({"ok": true})))
            }
            ("GET", "/__emulator/last-headers") => {
                let path = request.query.get("path").cloned().unwrap_or_default();
                let headers = self
                    .last_headers
                    .lock()
                    .ok()?
                    .get(&path)
                    .cloned()
                    .unwrap_or_default();
                let object: serde_json::Map<String, serde_json::Value> =
                    headers.into_iter().map(|(n, v)| (n, v.into())).collect();
                Some(Response::json(200, serde_json::Value::Object(object)))
            }
            ("GET", "/__emulator/calls") => {
                let calls = self.calls.lock().ok()?.clone();
                Some(Response::json(200, serde_json::json!(calls)))
            }
            _ => None,
        }
    }

    fn set(&self, request: &Request) -> Response {
        let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return Response::json(400, serde_json::json!({"error": "malformed JSON"}));
        };
        if let Some(delay) = spec.get("delayMs").and_then(|d| d.as_u64()) {
            if let Ok(mut d) = self.delay_ms.lock() {
                *d = delay;
            }
        }
        if let Some(lifetime) = spec
            .get("clientCredentialsLifetimeSeconds")
            .and_then(|d| d.as_u64())
        {
            if let Ok(mut l) = self.client_credentials_lifetime.lock() {
                *l = Some(lifetime);
            }
        }
        if let Some(lifetime) = spec
            .get("userTokenLifetimeSeconds")
            .and_then(|v| v.as_u64())
        {
            if let Ok(mut l) = self.user_token_lifetime.lock() {
                *l = Some(lifetime);
            }
        }
        if spec.get("revokeManagementTokens") == Some(&serde_json::Value::Bool(true)) {
            if let (Ok(mut issued), Ok(mut revoked)) =
                (self.management_tokens.lock(), self.revoked_tokens.lock())
            {
                revoked.extend(issued.drain());
            }
        }
        if let Some(fail) = spec.get("fail") {
            let failure = Failure {
                path: fail
                    .get("path")
                    .and_then(|p| p.as_str())
                    .unwrap_or("/oauth/token")
                    .to_string(),
                status: fail.get("status").and_then(|s| s.as_u64()).unwrap_or(500) as u16,
                count: fail.get("count").and_then(|c| c.as_u64()).unwrap_or(1),
                headers: fail
                    .get("headers")
                    .and_then(|h| serde_json::from_value(h.clone()).ok())
                    .unwrap_or_default(),
                body: fail.get("body").cloned().unwrap_or(serde_json::json!({})),
                raw: fail.get("raw").and_then(|r| r.as_str()).map(|raw| {
                    let content_type = fail
                        .get("contentType")
                        .and_then(|c| c.as_str())
                        .unwrap_or("text/html; charset=utf-8");
                    (raw.to_string(), content_type.to_string())
                }),
                truncate: fail
                    .get("truncate")
                    .and_then(|t| t.as_u64())
                    .and_then(|t| usize::try_from(t).ok()),
            };
            if let Ok(mut failures) = self.failures.lock() {
                failures.push(failure);
            }
        }
        Response::json(200, serde_json::json!({"ok": true}))
    }

    /// The lifetime override for client_credentials tokens (`clientCredentialsLifetimeSeconds`).
    /// `{"userTokenLifetimeSeconds": N}`: later user access tokens live N seconds.
    pub fn user_token_lifetime(&self) -> Option<u64> {
        self.user_token_lifetime.lock().ok().and_then(|l| *l)
    }

    pub fn client_credentials_lifetime(&self) -> Option<u64> {
        self.client_credentials_lifetime
            .lock()
            .ok()
            .and_then(|l| *l)
    }

    /// Remembers a Management API token's `jti` so `revokeManagementTokens` can revoke it.
    pub fn management_token_issued(&self, jti: &str) {
        if let Ok(mut issued) = self.management_tokens.lock() {
            issued.insert(jti.to_string());
        }
    }

    /// Whether `revokeManagementTokens` revoked the token with this `jti`.
    pub fn revoked(&self, jti: &str) -> bool {
        self.revoked_tokens
            .lock()
            .map_or(true, |revoked| revoked.contains(jti))
    }

    /// Adds one to a named counter of `GET /__emulator/calls` (e.g. `grant:client_credentials`).
    pub fn count(&self, key: &str) {
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(key.to_string()).or_default() += 1;
        }
    }

    /// Counts the call, applies the configured delay, and returns an injected failure if one
    /// is armed for this path.
    pub fn before(&self, request: &Request) -> Option<Response> {
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(request.path.clone()).or_default() += 1;
        }
        if let Ok(mut last) = self.last_headers.lock() {
            last.insert(request.path.clone(), request.headers.clone());
        }
        let delay = self.delay_ms.lock().map(|d| *d).unwrap_or(0);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let mut failures = self.failures.lock().ok()?;
        let index = failures
            .iter()
            .position(|f| f.path == request.path && f.count > 0)?;
        let failure = failures.get_mut(index)?;
        failure.count -= 1;
        let mut response = match &failure.raw {
            Some((raw, content_type)) => Response::text(failure.status, content_type, raw),
            None => Response::json(failure.status, failure.body.clone()),
        };
        response.truncate_to = failure.truncate;
        for (name, value) in &failure.headers {
            response = response.with_header(name, value);
        }
        Some(response)
    }
}

#[cfg(test)]
mod tests;
