//! Test controls under `/__emulator/`: slow answers, injected failures, and call counts.
//! They are not part of Auth0's API; they let tests drive Auth0's failure modes.
//!
//! - `POST /__emulator/faults` `{"delayMs": 3000}` or
//!   `{"fail": {"path": "/oauth/token", "status": 429, "count": 1, "headers": {...}, "body": {...}}}`
//! - `DELETE /__emulator/faults` clears them.
//! - `GET /__emulator/calls` → `{"/oauth/token": 3, ...}` counts of handled API calls.
//! - `GET /__emulator/last-headers?path=/oauth/token` → the headers of the last call to a path.

use std::collections::BTreeMap;
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
}

#[derive(Default)]
pub struct Faults {
    delay_ms: Mutex<u64>,
    failures: Mutex<Vec<Failure>>,
    calls: Mutex<BTreeMap<String, u64>>,
    last_headers: Mutex<BTreeMap<String, Vec<(String, String)>>>,
}

impl Faults {
    /// Handles a control request, or `None` when the path is not a control path.
    pub fn control(&self, request: &Request) -> Option<Response> {
        match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/__emulator/faults") => Some(self.set(request)),
            ("DELETE", "/__emulator/faults") => {
                *self.delay_ms.lock().ok()? = 0;
                self.failures.lock().ok()?.clear();
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
            };
            if let Ok(mut failures) = self.failures.lock() {
                failures.push(failure);
            }
        }
        Response::json(200, serde_json::json!({"ok": true}))
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
        let mut response = Response::json(failure.status, failure.body.clone());
        for (name, value) in &failure.headers {
            response = response.with_header(name, value);
        }
        Some(response)
    }
}
