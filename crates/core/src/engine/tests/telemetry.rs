//! The stats each flow asks the host to count, driven with the flow tests' driver.

use super::driver::{jwt, token_answer, Driver, FORM, LOGIN};
use super::flows::logged_in;
use super::*;
use crate::metrics::MetricKind;

fn counters(d: &Driver) -> Vec<String> {
    d.metrics
        .iter()
        .filter(|m| m.kind == MetricKind::Counter)
        .map(|m| m.name.clone())
        .collect()
}

fn answered(status: u16, body: &str) -> CalloutResult {
    CalloutResult::Answered {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

fn login(d: &mut Driver) -> Reply {
    d.request(
        "POST",
        "/oauth/token",
        &[("secret", "app-key"), FORM],
        LOGIN,
    )
    .unwrap()
}

#[test]
fn a_password_login_counts_its_route_grant_and_callout_latency() {
    let mut d = Driver::new(serde_json::json!({}));
    d.answers
        .push_back(token_answer(&jwt("auth0|u1", "a"), Some("rt")));
    assert_eq!(login(&mut d).status, 200);
    assert_eq!(
        counters(&d),
        [
            "auth0_filter.route.token.success",
            "auth0_filter.login.password"
        ]
    );
    let histograms: Vec<_> = d
        .metrics
        .iter()
        .filter(|m| m.kind == MetricKind::Histogram)
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(histograms, ["auth0_filter.callout_latency_ms"]);
}

#[test]
fn the_stat_prefix_comes_from_the_config() {
    let mut d = Driver::new(serde_json::json!({"statPrefix": "edge_auth"}));
    d.request("POST", "/oauth/token", &[("secret", "app-key")], b"")
        .unwrap();
    assert_eq!(counters(&d), ["edge_auth.route.token.client_error"]);
}

#[test]
fn auth0_failures_count_by_kind_and_outcome() {
    let mut d = Driver::new(serde_json::json!({}));
    d.answers.push_back(answered(500, "{}"));
    assert_eq!(login(&mut d).status, 502);
    d.answers.push_back(answered(200, "<html>not json</html>"));
    assert_eq!(login(&mut d).status, 502);
    d.answers.push_back(CalloutResult::Failed { elapsed_ms: 1 });
    assert_eq!(login(&mut d).status, 502);
    d.answers
        .push_back(CalloutResult::Failed { elapsed_ms: 60_000 });
    assert_eq!(login(&mut d).status, 504);
    d.answers.push_back(answered(429, "{}"));
    assert_eq!(login(&mut d).status, 429);
    assert_eq!(
        counters(&d),
        [
            "auth0_filter.callout_failure.status_5xx",
            "auth0_filter.route.token.auth0_error",
            "auth0_filter.route.token.auth0_error",
            "auth0_filter.callout_failure.invalid_answer",
            "auth0_filter.callout_failure.connect",
            "auth0_filter.route.token.auth0_error",
            "auth0_filter.callout_failure.timeout",
            "auth0_filter.route.token.timeout",
            "auth0_filter.callout_failure.rate_limited",
            "auth0_filter.route.token.auth0_error",
        ]
    );
}

#[test]
fn refresh_and_logout_count_as_such() {
    let mut d = Driver::new(serde_json::json!({}));
    let (old, new) = (jwt("auth0|u1", "old"), jwt("auth0|u1", "new"));
    logged_in(&mut d, "web-key", &old, "rt-old");
    d.metrics.clear();
    d.answers.push_back(token_answer(&new, Some("rt-new")));
    let session_request = |d: &mut Driver, method: &str, path: &str, sid: &str| {
        let cookie = format!("sid={sid}");
        d.request(
            method,
            path,
            &[("secret", "web-key"), ("cookie", &cookie)],
            b"",
        )
        .unwrap()
    };
    assert_eq!(
        session_request(&mut d, "POST", "/refreshtoken", &old).status,
        200
    );
    assert_eq!(
        counters(&d),
        [
            "auth0_filter.route.refresh_token.success",
            "auth0_filter.login.refresh"
        ]
    );
    d.metrics.clear();
    d.answers.push_back(answered(200, "{}"));
    assert_eq!(session_request(&mut d, "GET", "/logout", &new).status, 302);
    let counted = counters(&d);
    assert!(
        counted.contains(&"auth0_filter.logout".to_string()),
        "{counted:?}"
    );
    assert!(counted.contains(&"auth0_filter.route.logout.success".to_string()));
}

#[test]
fn management_calls_count_the_token_fetch_and_the_api_call_by_route() {
    let mut d = Driver::new(
        serde_json::json!({"managementAccess": {"apiKeys": ["admin-key"], "clientTypes": ["app"]}}),
    );
    d.answers.push_back(answered(
        200,
        r#"{"access_token":"m","expires_in":86400,"token_type":"Bearer"}"#,
    ));
    d.answers.push_back(answered(200, "[]"));
    let reply = d
        .request("GET", "/users?email=a*", &[("secret", "admin-key")], b"")
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        counters(&d),
        [
            "auth0_filter.management_token_fetch",
            "auth0_filter.management_call.users_search",
            "auth0_filter.route.users_search.success",
        ]
    );
}

#[test]
fn an_oversized_body_is_counted_as_a_client_error() {
    let mut d = Driver::new(serde_json::json!({"maxBodyBytes": 256}));
    let reply = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "app-key"), FORM],
            &[b'a'; 1024],
        )
        .unwrap();
    assert_eq!(reply.status, 413);
    assert_eq!(counters(&d), ["auth0_filter.route.token.client_error"]);
}

#[test]
fn requests_the_filter_does_not_own_count_nothing() {
    let mut d = Driver::new(serde_json::json!({}));
    assert!(d.request("GET", "/api/orders", &[], b"").is_none());
    assert!(d.metrics.is_empty());
}
