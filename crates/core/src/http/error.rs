//! The one error type for everything the filter answers itself, and its one JSON body shape:
//! `{"statusCode": 400, "error": "Bad Request", "message": "..."}`.
//!
//! Messages are written by this crate and never include secrets, passwords or tokens.

use crate::http::Reply;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub status: u16,
    pub message: String,
    /// Seconds for a `Retry-After` header (only set on 429).
    pub retry_after: Option<u64>,
}

impl FilterError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        FilterError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(413, format!("request body is larger than {limit} bytes"))
    }
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, message)
    }
    pub fn too_many_requests(retry_after: u64) -> Self {
        FilterError {
            status: 429,
            message: "Auth0 rate limit reached, retry later".into(),
            retry_after: Some(retry_after),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(502, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, message)
    }
    pub fn gateway_timeout(message: impl Into<String>) -> Self {
        Self::new(504, message)
    }

    pub fn to_reply(&self) -> Reply {
        let body = serde_json::json!({
            "statusCode": self.status,
            "error": reason_phrase(self.status),
            "message": self.message,
        });
        let mut reply = Reply::json(self.status, &body);
        if let Some(seconds) = self.retry_after {
            reply.push_header("retry-after", &seconds.to_string());
        }
        reply
    }
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// Makes user input safe to echo in an error message: printable ASCII only, bounded length.
pub fn sanitize(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests;
