//! A protected request whose Bearer token the worker verified and whose session it read within
//! `sessionRecheckSeconds` goes on from the worker's memory (`protected::remembered_bearer`)
//! without its head and exchange. These tests hold that shortcut to what the full check
//! concludes: the same identity headers and stats, and every case it must not answer (a second
//! credential, an expired token, a configuration that no longer expects the token, a session
//! ended past the window) still decided by the full check.

use super::driver::{Driver, NOW};
use super::identity::{sign, website_login};
use super::*;
use crate::digest::SessionKey;
use crate::testing::jwks_json;

const API: &str = "https://api.example.org";

fn driver(recheck: u64) -> Driver {
    let d = Driver::new(serde_json::json!({
        "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata"],
        "protectedRoutes": {"prefixes": ["/api/"], "sessionRecheckSeconds": recheck},
        "tokenLeewaySeconds": 0
    }));
    d.jwks()
        .put(identity::ISSUER, jwks_json(&["k1"]).as_bytes(), NOW)
        .unwrap();
    d
}

/// A Bearer token with a session on this gateway, checked once (verified, session read).
fn warmed(d: &mut Driver, lifetime: u64) -> (String, Vec<(String, String)>) {
    let access = sign("k1", &[API], "web-client-id", lifetime);
    website_login(d, &access);
    let bearer = format!("Bearer {access}");
    assert!(d
        .request("GET", "/api/orders", &[("authorization", &bearer)], b"")
        .is_none());
    let headers = d.forwarded.take().expect("identity headers");
    (bearer, headers)
}

fn protected_successes(d: &Driver) -> usize {
    d.metrics
        .iter()
        .filter(|m| m.name == "auth0_filter.route.protected.success")
        .count()
}

#[test]
fn a_remembered_token_goes_on_with_the_headers_and_stats_of_its_full_check() {
    let mut d = driver(5);
    let (bearer, first) = warmed(&mut d, 600);
    assert_eq!(
        first,
        vec![
            ("x-auth0-user-id".to_string(), "auth0|u1".to_string()),
            ("x-auth0-user-groups".to_string(), "admin,ops".to_string()),
            ("x-auth0-client-type".to_string(), "web".to_string()),
        ]
    );
    // The store is down: an answer now comes from the worker's memory alone.
    d.store_down = true;
    for _ in 0..3 {
        assert!(d
            .request("GET", "/api/orders", &[("authorization", &bearer)], b"")
            .is_none());
        assert_eq!(d.forwarded.take().as_ref(), Some(&first));
    }
    assert_eq!(protected_successes(&d), 4);
    // Forged identity headers, in spellings the filter never sets, are still removed first.
    let forged = [
        ("authorization", bearer.as_str()),
        ("x_auth0_user_id", "root"),
        ("X-Auth0-User-Groups", "admin"),
    ];
    assert!(d.request("GET", "/api/orders", &forged, b"").is_none());
    assert_eq!(d.forwarded.take().as_ref(), Some(&first));
    let identity: Vec<_> = d
        .upstream_headers
        .iter()
        .filter(|(name, _)| {
            name.to_ascii_lowercase()
                .replace('_', "-")
                .starts_with("x-auth0")
        })
        .cloned()
        .collect();
    assert_eq!(identity, first);
}

#[test]
fn a_second_credential_is_decided_by_the_full_check() {
    let mut d = driver(5);
    let (bearer, first) = warmed(&mut d, 600);
    // A `sid` cookie wins over the Bearer token: one without a session is refused, whatever
    // the worker remembers of the Bearer token.
    let stranger = sign("k1", &[API], "web-client-id", 300);
    let cookie = format!("sid={stranger}");
    let both = [
        ("authorization", bearer.as_str()),
        ("cookie", cookie.as_str()),
        ("accept", "application/json"),
    ];
    let refused = d.request("GET", "/api/orders", &both, b"").unwrap();
    assert_eq!(refused.status, 401);
    // Two Authorization headers present no token: which one the upstream reads is unknown.
    let twice = [
        ("authorization", bearer.as_str()),
        ("authorization", "Bearer other"),
        ("accept", "application/json"),
    ];
    assert_eq!(
        d.request("GET", "/api/orders", &twice, b"").unwrap().status,
        401
    );
    // Another cookie leaves the Bearer token the credential: the same headers.
    let other_cookie = [("authorization", bearer.as_str()), ("cookie", "theme=dark")];
    assert!(d
        .request("GET", "/api/orders", &other_cookie, b"")
        .is_none());
    assert_eq!(d.forwarded.take().as_ref(), Some(&first));
}

#[test]
fn past_the_recheck_window_the_session_is_read_again() {
    let mut d = driver(5);
    let (bearer, _) = warmed(&mut d, 600);
    // Ended elsewhere (another replica's logout): unseen within the window, as documented.
    let key = SessionKey::for_token(bearer.trim_start_matches("Bearer "));
    d.sessions().delete(&key, NOW.secs + 600).unwrap();
    let api = [
        ("authorization", bearer.as_str()),
        ("accept", "application/json"),
    ];
    d.now = Timestamp::from_secs(NOW.secs + 4);
    assert!(d.request("GET", "/api/orders", &api, b"").is_none());
    d.now = Timestamp::from_secs(NOW.secs + 5);
    let refused = d.request("GET", "/api/orders", &api, b"").unwrap();
    assert_eq!(refused.status, 401);
}

#[test]
fn a_remembered_token_past_its_expiry_is_refused() {
    let mut d = driver(300);
    let (bearer, _) = warmed(&mut d, 30);
    // `sign` dates the token 5 s back: it expires at NOW + 25 (the cache keeps it while `exp`
    // is ahead; at `exp` itself the full check decides).
    let api = [
        ("authorization", bearer.as_str()),
        ("accept", "application/json"),
    ];
    d.now = Timestamp::from_secs(NOW.secs + 24);
    assert!(d.request("GET", "/api/orders", &api, b"").is_none());
    d.now = Timestamp::from_secs(NOW.secs + 26);
    assert_eq!(
        d.request("GET", "/api/orders", &api, b"").unwrap().status,
        401
    );
}

#[test]
fn a_configuration_that_no_longer_expects_the_token_is_not_answered_from_memory() {
    let mut d = driver(300);
    let (bearer, _) = warmed(&mut d, 600);
    // All as before but the client's audience: the namespaces are kept, so is the cache.
    let mut json = crate::testing::base_json();
    json["clients"]["web"]["audience"] = "https://other.example.org".into();
    json["apiKeys"] = serde_json::json!([{"key": "web-key", "clientType": "web"}]);
    json["customClaimsNamespaces"] = serde_json::json!(["https://mia-platform.eu/app_metadata"]);
    json["protectedRoutes"] =
        serde_json::json!({"prefixes": ["/api/"], "sessionRecheckSeconds": 300});
    json["tokenLeewaySeconds"] = 0.into();
    d.config = crate::testing::config_with(json);
    let api = [
        ("authorization", bearer.as_str()),
        ("accept", "application/json"),
    ];
    assert_eq!(
        d.request("GET", "/api/orders", &api, b"").unwrap().status,
        401
    );
}
