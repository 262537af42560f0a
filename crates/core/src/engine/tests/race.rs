//! Sessions under concurrency and store trouble: a logout that lands while a refresh waits for
//! Auth0 (on another replica, or another worker) wins, with either backend; a Bearer token that
//! carries its groups is decided without the store.

use super::driver::{Driver, FORM, LOGIN, NOW};
use super::identity::{sign, token_json, ISSUER};
use crate::testing::jwks_json;

const AUDIENCES: [&str; 2] = [
    "https://api.example.org",
    "https://tenant.eu.auth0.com/userinfo",
];

/// The same setup on shared data and on Redis.
fn drivers() -> [Driver; 2] {
    [
        serde_json::json!({}),
        serde_json::json!({"sessionStore": {"backend": "redis", "webdisCluster": "webdis", "keyPrefix": "gw1:"}}),
    ]
    .map(|store| {
        let mut overrides = serde_json::json!({
            "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata"],
            "tokenLeewaySeconds": 0
        });
        if let (Some(all), Some(extra)) = (overrides.as_object_mut(), store.as_object()) {
            all.extend(extra.clone());
        }
        let d = Driver::new(overrides);
        d.jwks()
            .put(ISSUER, jwks_json(&["k1"]).as_bytes(), NOW)
            .unwrap();
        d
    })
}

/// Logs in through the filter (so the session lands in the configured backend) with `access`.
fn login(d: &mut Driver, access: &str) {
    let id = sign("k1", &["web-client-id"], "web-client-id", 600);
    d.answers.push_back(token_json(access, &id, "rt-1"));
    let reply = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), FORM],
            LOGIN,
        )
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

/// A session whose access token has expired, and Auth0's refresh answer queued: returns the
/// (stale, fresh) access tokens.
fn expired_session(d: &mut Driver) -> (String, String) {
    let stale = sign("k1", &AUDIENCES, "web-client-id", 1);
    login(d, &stale);
    let id = sign("k1", &["web-client-id"], "web-client-id", 600);
    let fresh = sign("k1", &AUDIENCES, "web-client-id", 600);
    d.answers.push_back(token_json(&fresh, &id, "rt-2"));
    (stale, fresh)
}

fn userinfo_status(d: &mut Driver, token: &str) -> u16 {
    d.request(
        "GET",
        "/userinfo",
        &[("cookie", &format!("sid={token}"))],
        b"",
    )
    .unwrap()
    .status
}

#[test]
fn a_logout_during_a_refresh_is_not_undone() {
    for mut d in drivers() {
        let old = sign("k1", &AUDIENCES, "web-client-id", 600);
        login(&mut d, &old);
        let id = sign("k1", &["web-client-id"], "web-client-id", 600);
        let new = sign("k1", &AUDIENCES, "web-client-id", 900);
        d.answers.push_back(token_json(&new, &id, "rt-2"));
        d.end_session_during_auth0 = Some(old.clone());
        let refresh = d
            .request(
                "POST",
                "/refreshtoken",
                &[("secret", "web-key"), ("cookie", &format!("sid={old}"))],
                b"",
            )
            .unwrap();
        assert_eq!(refresh.status, 401, "{}", d.config.redis.is_some());
        assert!(refresh.header("set-cookie").is_none());
        assert_eq!(userinfo_status(&mut d, &new), 401, "no session was saved");
        assert_eq!(userinfo_status(&mut d, &old), 401);
    }
}

#[test]
fn a_logout_during_a_transparent_refresh_is_not_undone() {
    for mut d in drivers() {
        // An expired access token: /userinfo refreshes it with Auth0.
        let (stale, fresh) = expired_session(&mut d);
        d.end_session_during_auth0 = Some(stale.clone());
        assert_eq!(
            userinfo_status(&mut d, &stale),
            401,
            "{}",
            d.config.redis.is_some()
        );
        assert_eq!(d.callouts.len(), 2, "Auth0 was asked to refresh");
        assert_eq!(userinfo_status(&mut d, &fresh), 401, "no session was saved");
    }
}

#[test]
fn without_a_concurrent_logout_the_transparent_refresh_saves_the_new_session() {
    for mut d in drivers() {
        let (stale, fresh) = expired_session(&mut d);
        assert_eq!(
            userinfo_status(&mut d, &stale),
            200,
            "{}",
            d.config.redis.is_some()
        );
        assert_eq!(userinfo_status(&mut d, &fresh), 200);
        assert_eq!(
            userinfo_status(&mut d, &stale),
            401,
            "the old session is gone"
        );
    }
}

#[test]
fn a_bearer_token_is_answered_from_its_last_session_read_within_the_recheck_bound() {
    let mut d = Driver::new(serde_json::json!({
        "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata"],
        "protectedRoutes": {"prefixes": ["/api/"]},
    }));
    d.jwks()
        .put(ISSUER, jwks_json(&["k1"]).as_bytes(), NOW)
        .unwrap();
    let access = sign("k1", &AUDIENCES, "web-client-id", 600);
    let bearer = format!("Bearer {access}");
    assert!(d
        .request("GET", "/api/orders", &[("authorization", &bearer)], b"")
        .is_none());
    let forwarded = d.forwarded.clone().unwrap();
    assert!(forwarded.contains(&("x-auth0-user-groups".to_string(), "admin,ops".to_string())));
    // Again, from the verification cache and its session read, while the store is down.
    d.store_down = true;
    d.forwarded = None;
    assert!(d
        .request("GET", "/api/orders", &[("authorization", &bearer)], b"")
        .is_none());
    assert_eq!(d.forwarded.as_ref(), Some(&forwarded));
    // A configuration with other claim namespaces drops the cache: the session must be read
    // again, and while the store is down nobody can tell the token was not logged out.
    d.config = crate::testing::config_with(serde_json::json!({
        "apiKeys": [{"key": "web-key", "clientType": "web"}],
        "customClaimsNamespaces": ["https://mia-platform.eu/user_metadata"],
        "protectedRoutes": {"prefixes": ["/api/"]},
    }));
    assert_eq!(
        d.request("GET", "/api/orders", &[("authorization", &bearer)], b"")
            .unwrap()
            .status,
        503
    );
    // A cookie needs its session: 503 while the store is down.
    let cookie = format!("sid={access}");
    assert_eq!(
        d.request("GET", "/api/orders", &[("cookie", &cookie)], b"")
            .unwrap()
            .status,
        503
    );
}
