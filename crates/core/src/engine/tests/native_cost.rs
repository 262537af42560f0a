//! A timing probe, not a test of behaviour: the pure core's share of a protected request whose
//! token is already verified (header map read in place, route, cached verification, identity
//! headers), natively, through the runner and a host in memory. Run by hand, in release:
//! `cargo test --release -p auth0-filter-core --lib native_cost -- --ignored --nocapture`
//! (`PROBE_N` requests, best of 20 batches). `make bench` measures the filter in Envoy.

use super::driver::{Driver, NOW};
use super::identity::sign;
use super::*;
use crate::testing::{jwks_json, FakeHost, FlakyKv};
use crate::tokens::verifier::Verifier;

#[test]
#[ignore = "a timing probe, run by hand"]
fn protected_cache_hit() {
    let d = Driver::new(serde_json::json!({
        "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata"],
        "protectedRoutes": {"prefixes": ["/api/"], "redirectToLogin": true},
        "tokenLeewaySeconds": 0
    }));
    d.jwks()
        .put(super::identity::ISSUER, jwks_json(&["k1"]).as_bytes(), NOW)
        .unwrap();
    let access = sign("k1", &["https://api.example.org"], "web-client-id", 600);
    let bearer = format!("Bearer {access}");
    let config = std::rc::Rc::new(d.config.clone());
    let verifier = std::rc::Rc::new(std::cell::RefCell::new(Verifier::default()));
    let headers: Vec<(&str, &str)> = vec![
        (":method", "GET"),
        (":path", "/api/orders"),
        (":scheme", "http"),
        (":authority", "127.0.0.1:10000"),
        ("user-agent", "wrk"),
        ("authorization", &bearer),
        ("accept", "application/json"),
        ("x-request-id", "4f1c2a9e-8d3b-4c1e-9a2f-3b5d7e9f1a2c"),
    ];
    let kv = FlakyKv {
        kv: &d.kv,
        down: false,
        writes_down: false,
    };
    let mut host = FakeHost::with_request(kv, NOW, &headers);
    // The identity headers the runner sets would read as forged on the next request.
    let map = host.headers.clone();
    let n = std::env::var("PROBE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000u32);
    let mut best = f64::MAX;
    for _ in 0..20 {
        let t = std::time::Instant::now();
        for _ in 0..n / 20 {
            let mut runner = Runner::new(Some(config.clone()), verifier.clone());
            let verdict = runner.on_request_headers(&mut host, true);
            assert_eq!(verdict, Verdict::Continue);
            host.headers.clone_from(&map);
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / (n / 20) as f64);
    }
    eprintln!("protected request, cached verification: {best:.2} us (best of 20 batches)");
}
