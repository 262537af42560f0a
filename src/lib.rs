//! auth0-filter: an Auth0 client that runs inside Envoy as a proxy-wasm HTTP filter.
//!
//! Everything that decides lives in plain Rust modules with no `proxy_wasm` import; they return
//! values (`flow::Action`) that the thin `host` module executes with proxy-wasm. Only `host` is
//! compiled for the wasm target alone, so the rest is unit-tested natively with `cargo test`.

// A panic aborts the wasm VM and with it every request on that Envoy worker.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod auth0;
pub mod body;
pub mod clients;
pub mod config;
pub mod cookie;
pub mod error;
pub mod flow;
// Only for the fuzz targets in `fuzz/`.
#[doc(hidden)]
pub mod fuzz_entry;
pub mod http;
pub mod jwt;
pub mod login_state;
pub mod lucene;
pub mod metrics;
pub mod mgmt_token;
pub mod multipart;
pub mod openapi;
pub mod path;
pub mod redirect;
pub mod redis_store;
pub mod routes;
pub mod session;
pub mod small_map;
pub mod strict_json;
pub mod timefmt;
pub mod verifier;

#[cfg(target_arch = "wasm32")]
mod host;
