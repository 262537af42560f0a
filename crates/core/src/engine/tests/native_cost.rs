//! A timing probe, not a test of behaviour: the pure core's share of a protected request whose
//! token is already verified (head built from Envoy's header list, route, cached verification,
//! identity headers), natively. Run by hand, in release:
//! `cargo test --release -p auth0-filter-core --lib native_cost -- --ignored --nocapture`
//! (`PROBE_N` requests, best of 20 batches). `make bench` measures the filter in Envoy.

use super::flows::{Driver, NOW};
use super::identity::sign;
use super::*;
use crate::testing::jwks_json;

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
    let store = d.jwks();
    let source = |issuer: &str| store.source(issuer);
    let mut verifier = crate::tokens::verifier::Verifier::default();
    let pairs: Vec<(&str, &str)> = vec![
        (":method", "GET"),
        (":path", "/api/orders"),
        (":scheme", "http"),
        (":authority", "127.0.0.1:10000"),
        ("user-agent", "wrk"),
        ("authorization", &bearer),
        ("accept", "application/json"),
        ("x-request-id", "4f1c2a9e-8d3b-4c1e-9a2f-3b5d7e9f1a2c"),
    ];
    let n = std::env::var("PROBE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000u32);
    let mut best = f64::MAX;
    for _ in 0..20 {
        let t = std::time::Instant::now();
        for _ in 0..n / 20 {
            let head = RequestHead::from_pairs(pairs.iter().map(|(a, b)| (*a, b.as_bytes())));
            let Start::Exchange(mut ex, Action::Verify { token, against, .. }) =
                Exchange::start(&d.config, &head, NOW, [0; ENTROPY_BYTES])
            else {
                panic!("not a verification")
            };
            let r = verifier.verify(&token, &against, &d.config, &source, NOW);
            let a = ex.on_verified(&d.config, NOW, r);
            assert!(matches!(a, Action::Forward { .. }));
            let _ = std::hint::black_box((
                ex.take_logs(),
                ex.take_metrics(),
                head.header("x-request-id").unwrap_or_default().to_string(),
            ));
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / (n / 20) as f64);
    }
    eprintln!("protected request, cached verification: {best:.2} us (best of 20 batches)");
}
