//! The decisions of auth0-filter, an Auth0 client that runs inside Envoy as a proxy-wasm HTTP
//! filter: configuration, routes, client selection, Auth0 requests and answers, tokens,
//! sessions and the per-request flows. Nothing here performs I/O or knows proxy-wasm: the
//! engine's `Runner` (a request) and `Maintenance` (a worker's root) reach the proxy only
//! through the `engine::host` traits, which the filter crate implements with hostcalls and the
//! tests in memory, so everything is unit-tested natively with `cargo test`.
//!
//! Layers, each using only those before it: `time`, `small_map`, `digest` → `http` → `jwt` →
//! `config` → `store`, `tokens` → `auth0` → `metrics` → `flows` → `engine`.

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
pub mod config;
pub mod digest;
pub mod engine;
pub mod flows;
// Only for the fuzz targets in `fuzz/`.
#[doc(hidden)]
pub mod fuzz_entry;
pub mod http;
pub mod jwt;
pub mod metrics;
pub mod small_map;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod time;
pub mod tokens;
