//! Two Envoys (replicas) sharing sessions through Redis behind Webdis: every session route works
//! on either, logout on one is honoured on the other at once (cookie and Bearer), Redis outages are 503 on session
//! routes only and recover without a restart, and key prefixes isolate deployments.

use harness::{request, Gateway, Redis, ALICE, APP_KEY, WEB_KEY};
use serde_json::json;

const ADMIN: (&str, &str) = ("secret", "admin-api-key");

fn pair(name: &str, redis: &Redis, prefix: &str) -> (Gateway, Gateway) {
    let store = json!({"sessionStore": redis.store_config(prefix)});
    let a = Gateway::start_with_webdis(&format!("{name}_a"), store.clone(), redis.webdis_port);
    let b = a.start_replica(&format!("{name}_b"), store, redis.webdis_port);
    (a, b)
}

#[test]
fn a_session_from_one_replica_works_on_the_other() {
    let redis = Redis::start("rep_session");
    let (a, b) = pair("rep_session", &redis, "deploy1:");
    let login = a.post_form("/oauth/token", &[WEB_KEY], ALICE);
    assert_eq!(login.status, 200, "{}", login.body);
    let cookie = format!("sid={}", login.sid());
    // Refresh on B rotates the session; the old cookie then fails on A.
    let refreshed = b.call(
        "POST",
        "/refreshtoken",
        &[WEB_KEY, ("cookie", &cookie)],
        None,
    );
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let current = format!("sid={}", refreshed.sid());
    a.call(
        "POST",
        "/refreshtoken",
        &[WEB_KEY, ("cookie", &cookie)],
        None,
    )
    .assert_error(401);
    assert_eq!(
        b.call("GET", "/userinfo", &[("cookie", &current)], None)
            .json()["sub"],
        "auth0|0000000000000000000000a1"
    );
    assert_eq!(
        a.call("GET", "/userinfo", &[("cookie", &current)], None)
            .status,
        200
    );
    let active = b.call("GET", "/users/active", &[ADMIN], None);
    assert_eq!(
        active.json(),
        json!([{"userId": "auth0|0000000000000000000000a1"}])
    );
    // Logout on B: the session is gone on A at once.
    assert_eq!(
        b.call("GET", "/logout", &[WEB_KEY, ("cookie", &current)], None)
            .status,
        302
    );
    a.call("GET", "/userinfo", &[("cookie", &current)], None)
        .assert_error(401);
    a.call(
        "POST",
        "/refreshtoken",
        &[WEB_KEY, ("cookie", &current)],
        None,
    )
    .assert_error(401);
    assert_eq!(
        a.call("GET", "/users/active", &[ADMIN], None).json(),
        json!([])
    );
}

#[test]
fn a_login_started_on_one_replica_finishes_on_the_other_once() {
    let redis = Redis::start("rep_state");
    let (a, b) = pair("rep_state", &redis, "deploy1:");
    let start = a.call("GET", "/authorize", &[WEB_KEY], None);
    let at_auth0 = start.header("location").unwrap().to_string();
    let callback = request("GET", &format!("{at_auth0}&login_hint=alice"), &[], None);
    let location = callback.header("location").unwrap().to_string();
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    // The login travels in the browser's cookie: the other replica redeems it, with no store.
    let cookie = start
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let body = json!({"code": params["code"], "state": params["state"]});
    let r = b.post_json(
        "/oauth/token",
        &[WEB_KEY, ("cookie", &cookie)],
        body.clone(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // From another browser (no cookie): on neither replica.
    a.post_json("/oauth/token", &[WEB_KEY], body.clone())
        .assert_error(400);
    b.post_json("/oauth/token", &[WEB_KEY], body)
        .assert_error(400);
}

#[test]
fn a_logout_on_one_replica_ends_the_bearer_token_on_the_other() {
    let redis = Redis::start("rep_bearer_logout");
    let overrides = json!({
        "sessionStore": redis.store_config("deploy1:"),
        "protectedRoutes": {"prefixes": ["/protected/"], "sessionRecheckSeconds": 0},
    });
    let a = Gateway::start_with_webdis("rep_bearer_logout_a", overrides.clone(), redis.webdis_port);
    let b = a.start_replica("rep_bearer_logout_b", overrides, redis.webdis_port);
    let sid = a.post_form("/oauth/token", &[WEB_KEY], ALICE).sid();
    let bearer = format!("Bearer {sid}");
    let api = [
        ("authorization", bearer.as_str()),
        ("accept", "application/json"),
    ];
    assert_eq!(a.call("GET", "/protected/x", &api, None).status, 200);
    assert_eq!(b.call("GET", "/protected/x", &api, None).status, 200);
    let cookie = format!("sid={sid}");
    let logout = b.call("GET", "/logout", &[WEB_KEY, ("cookie", &cookie)], None);
    assert_eq!(logout.status, 302);
    for replica in [&a, &b] {
        replica
            .call("GET", "/protected/x", &api, None)
            .assert_error(401);
        replica
            .call("GET", "/userinfo", &[("authorization", &bearer)], None)
            .assert_error(401);
    }
}

#[test]
fn a_redis_outage_is_503_on_session_routes_only_and_recovers() {
    let mut redis = Redis::start("rep_outage");
    let (a, _b) = pair("rep_outage", &redis, "deploy1:");
    let tokens = a.post_form("/oauth/token", &[APP_KEY], ALICE).json();
    let bearer = format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    redis.stop_redis();
    a.post_form("/oauth/token", &[WEB_KEY], ALICE)
        .assert_error(503);
    a.call("GET", "/userinfo", &[("authorization", &bearer)], None)
        .assert_error(503);
    a.call("GET", "/users/active", &[ADMIN], None)
        .assert_error(503);
    // What needs no session keeps working: pass-through. A protected route is 503 even with a
    // valid Bearer token: whether it was logged out cannot be told.
    assert_eq!(a.call("GET", "/anything", &[], None).status, 200);
    a.call(
        "GET",
        "/protected/x",
        &[("authorization", &bearer), ("accept", "application/json")],
        None,
    )
    .assert_error(503);
    redis.start_redis();
    await_recovery(&a);
}

/// Retries `login` until it answers 200, for at most 10 s.
fn await_recovery(gateway: &Gateway) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = gateway.post_form("/oauth/token", &[WEB_KEY], ALICE);
        if r.status == 200 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery: {} {}",
            r.status,
            r.body
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn webdis_down_or_redis_hanging_is_503_and_recovers() {
    let mut redis = Redis::start("rep_webdis");
    let store = json!({"sessionStore": redis.store_config("deploy1:"), "calloutTimeoutMs": 1000});
    let a = Gateway::start_with_webdis("rep_webdis_a", store, redis.webdis_port);
    let login = a.post_form("/oauth/token", &[WEB_KEY], ALICE);
    let cookie = format!("sid={}", login.sid());
    // Webdis unreachable: the callout fails at once.
    redis.stop_webdis();
    let refused = a.call("GET", "/userinfo", &[("cookie", &cookie)], None);
    refused.assert_error(503);
    assert_eq!(
        refused.json()["message"],
        "the session store is unavailable"
    );
    assert_eq!(a.call("GET", "/anything", &[], None).status, 200);
    redis.start_webdis();
    await_recovery(&a);
    assert_eq!(
        a.call("GET", "/userinfo", &[("cookie", &cookie)], None)
            .status,
        200
    );
    // Redis hanging: Webdis waits on it, the filter's callout times out.
    redis.pause_redis(true);
    a.call("GET", "/userinfo", &[("cookie", &cookie)], None)
        .assert_error(503);
    assert_eq!(a.call("GET", "/anything", &[], None).status, 200);
    redis.pause_redis(false);
    await_recovery(&a);
}

#[test]
fn key_prefixes_isolate_deployments_sharing_one_redis() {
    let redis = Redis::start("rep_prefix");
    let a = Gateway::start_with_webdis(
        "rep_prefix_a",
        json!({"sessionStore": redis.store_config("one:")}),
        redis.webdis_port,
    );
    let b = a.start_replica(
        "rep_prefix_b",
        json!({"sessionStore": redis.store_config("two:")}),
        redis.webdis_port,
    );
    let login = a.post_form("/oauth/token", &[WEB_KEY], ALICE);
    let cookie = format!("sid={}", login.sid());
    assert_eq!(
        a.call("GET", "/userinfo", &[("cookie", &cookie)], None)
            .status,
        200
    );
    b.call("GET", "/userinfo", &[("cookie", &cookie)], None)
        .assert_error(401);
    assert_eq!(
        b.call("GET", "/users/active", &[ADMIN], None).json(),
        json!([])
    );
}

#[test]
fn webdis_and_redis_allow_only_the_filters_commands() {
    use base64::Engine;
    let redis = Redis::start("rep_acl");
    let url = format!("http://127.0.0.1:{}/", redis.webdis_port);
    let anonymous = request("POST", &url, &[], Some(b"GET/anything"));
    assert_eq!(anonymous.status, 403);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            harness::WEBDIS_USER,
            harness::WEBDIS_PASSWORD
        ))
    );
    let as_filter = |command: &str| {
        request(
            "POST",
            &url,
            &[("authorization", &basic)],
            Some(command.as_bytes()),
        )
    };
    let allowed = as_filter("SET/deploy1%3Ax/1");
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    // Webdis refuses commands outside its list...
    assert_eq!(as_filter("FLUSHALL").status, 403);
    assert_eq!(as_filter("EVAL/return%201/0").status, 403);
    // ...but matches names by prefix (ZRANGE passes as ZRANGEBYSCORE): Redis's ACL refuses it.
    let by_prefix = as_filter("ZRANGE/deploy1%3Aactive/0/-1");
    assert!(
        by_prefix.body.contains("NOPERM"),
        "{} {}",
        by_prefix.status,
        by_prefix.body
    );
}
