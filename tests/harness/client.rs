//! The tests' HTTP client: one request, its answer read whole.

#![allow(dead_code)]

use std::time::Duration;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts the filter's one error shape with this status.
    pub fn assert_error(&self, status: u16) {
        assert_eq!(self.status, status, "body: {}", self.body);
        let body = self.json();
        assert_eq!(body["statusCode"], status, "{body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{body}"
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
    }

    /// The `sid` value of a `Set-Cookie` answer.
    pub fn sid(&self) -> String {
        let cookie = self
            .header("set-cookie")
            .unwrap_or_else(|| panic!("no set-cookie: {}", self.status));
        cookie
            .strip_prefix("sid=")
            .and_then(|c| c.split(';').next())
            .unwrap_or_default()
            .to_string()
    }
}

/// One HTTP request without following redirects, with a 15 s time limit.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(15))
        .build();
    let mut req = agent.request(method, url);
    for (name, value) in headers {
        req = req.set(name, value);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let mut out = Vec::new();
    for name in response.headers_names() {
        for value in response.all(&name) {
            out.push((name.clone(), value.to_string()));
        }
    }
    let body = response.into_string().unwrap_or_default();
    Response {
        status,
        headers: out,
        body,
    }
}
