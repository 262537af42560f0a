//! Request bodies of /oauth/token-style routes: `Content-Type` selection, then the form or
//! JSON parser behind `Fields::parse`.
#![no_main]

use auth0_filter_core::http::body::{body_format, BodyFormat, Fields};
use auth0_filter_core::http::error::sanitize;
use auth0_filter_fuzz::{fields, optional};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 6] = [
    "grant_type",
    "username",
    "password",
    "refresh_token",
    "connection",
    "",
];

fn check_error_text(message: &str) {
    assert!(!message.chars().any(char::is_control), "{message:?}");
}

// Input: `content type 0xFF body`; an empty content type is a missing header.
fuzz_target!(|data: &[u8]| {
    let [content_type, body] = fields(data);
    let Some(content_type) = optional(content_type) else {
        return;
    };
    if let Some(content_type) = content_type {
        let shown = sanitize(content_type);
        assert!(shown.chars().count() <= 64);
        assert!(shown.chars().all(|c| c.is_ascii_graphic() || c == ' '));
    }
    // An unsupported type is 415; parse the body anyway, as JSON when the type says so.
    let format = match body_format(content_type) {
        Ok(format) => format,
        Err(error) => {
            assert_eq!(error.status, 415);
            check_error_text(&error.message);
            if content_type.is_some_and(|t| t.contains("json")) {
                BodyFormat::Json
            } else {
                BodyFormat::Form
            }
        }
    };
    match Fields::parse(format, body) {
        Ok(fields) => {
            for name in NAMES {
                match fields.text(name) {
                    Ok(Some(value)) => {
                        assert!(!value.is_empty());
                        assert_eq!(fields.required(name).ok(), Some(value));
                    }
                    Ok(None) => assert_eq!(fields.required(name).map_err(|e| e.status), Err(400)),
                    Err(error) => assert_eq!(error.status, 400),
                }
            }
        }
        Err(error) => {
            assert_eq!(error.status, 400);
            check_error_text(&error.message);
        }
    }
});
