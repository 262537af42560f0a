//! The OpenAPI description of the routes the filter answers, served at
//! `GET <prefix>/documentation/json` (as the original service does since 3.2.2).
//!
//! `src/openapi.json` is generated from the repository's `openapi.yaml` by `make openapi-json`
//! (minified, to keep the .wasm small); `make api-check` fails when the two differ.

use crate::http::Reply;

/// The OpenAPI document, minified JSON.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// The answer to the documentation route: the document as is, no parsing on the way.
pub fn documentation_reply() -> Reply {
    let mut reply = Reply::new(200);
    reply.push_header("content-type", "application/json");
    reply.body = OPENAPI_JSON.trim_end().as_bytes().to_vec();
    reply
}

#[cfg(test)]
mod tests;
