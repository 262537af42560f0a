//! The runner against a host in memory: what it asks of the host for each kind of request, the
//! identity headers, waiting and waking, the body, refused host calls, Redis as the store's
//! executor, and the hold mode.

use std::rc::Rc;

use super::*;
use crate::engine::host::HoldHost;
use crate::metrics::MetricKind;
use crate::testing::{config_with, jwks_json, sign, FakeHost, MemKv, ISSUER};

const NOW: Timestamp = Timestamp {
    secs: 1_700_000_000,
    nanos: 0,
};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const LOGIN: &[u8] = b"grant_type=password&username=alice&password=s3cret-pw";
const IDENTITY: [&str; 3] = [
    "x-auth0-user-id",
    "x-auth0-user-groups",
    "x-auth0-client-type",
];

fn settings(extra: serde_json::Value) -> serde_json::Value {
    let mut json = serde_json::json!({
        "apiKeys": [{"key": "app-key", "clientType": "app"}],
        "managementAccess": {"apiKeys": ["admin-key"]},
        "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata"],
        "protectedRoutes": {"prefixes": ["/api/"]},
        "tokenLeewaySeconds": 0
    });
    if let (Some(base), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    json
}

fn filter(extra: serde_json::Value) -> Runner {
    Runner::new(
        Some(Rc::new(config_with(settings(extra)))),
        Default::default(),
    )
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> FakeHost<MemKv> {
    let mut all = vec![(":method", method), (":path", path)];
    all.extend_from_slice(headers);
    let mut host = FakeHost::with_request(MemKv::default(), NOW, &all);
    host.client_address = Some("198.51.100.23:50314".into());
    host
}

fn bearer() -> String {
    let token = sign(
        "k1",
        &["https://api.example.org"],
        "web-client-id",
        NOW,
        600,
    );
    format!("Bearer {token}")
}

fn with_keys(host: &FakeHost<MemKv>) {
    let jwks = crate::store::JwksCache::new(&host.kv, "");
    jwks.put(ISSUER, jwks_json(&["k1"]).as_bytes(), NOW)
        .unwrap();
}

fn counters(host: &FakeHost<MemKv>) -> Vec<&str> {
    host.metrics
        .iter()
        .filter(|m| m.kind == MetricKind::Counter)
        .map(|m| m.name.as_str())
        .collect()
}

fn token_answer() -> CalloutResult {
    let body =
        serde_json::json!({"access_token": "at", "expires_in": 3600, "token_type": "Bearer"});
    CalloutResult::Answered {
        status: 200,
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

#[test]
fn forged_identity_headers_leave_every_request_the_filter_sees() {
    let forged = [
        ("x-auth0-user-id", "auth0|admin"),
        ("x_auth0_user_groups", "admin"),
        ("X-Auth0-Client-Type", "web"),
        ("x-other", "kept"),
    ];
    // Passed through, refused for its path, answered, refused for its token.
    let cases: [(&str, &str, Option<u16>); 4] = [
        ("GET", "/elsewhere", None),
        ("GET", "/api%2forders", Some(400)),
        ("POST", "/oauth/token", Some(401)),
        ("GET", "/api/orders", Some(401)),
    ];
    for (method, path, status) in cases {
        let mut host = request(method, path, &forged);
        let verdict = filter(serde_json::json!({})).on_request_headers(&mut host, true);
        assert_eq!(host.reply.as_ref().map(|r| r.status), status, "{path}");
        let expected = match status {
            None => Verdict::Continue,
            Some(_) => Verdict::Pause,
        };
        assert_eq!(verdict, expected, "{path}");
        let left = host.headers.as_ref().unwrap();
        assert!(
            left.iter().all(|(name, _)| !name.contains("auth0")),
            "{path}: {left:?}"
        );
        assert_eq!(host.header("x-other"), Some("kept"));
    }
    // A request let through with an identity carries the filter's, not the client's.
    let bearer = bearer();
    let mut headers = forged.to_vec();
    headers.push(("authorization", &bearer));
    let mut host = request("GET", "/api/orders", &headers);
    with_keys(&host);
    let verdict = filter(serde_json::json!({})).on_request_headers(&mut host, true);
    assert_eq!(verdict, Verdict::Continue);
    assert_eq!(host.header("x-auth0-user-id"), Some("auth0|u1"));
    assert_eq!(host.header("x-auth0-user-groups"), Some("admin,ops"));
    let identity = host.headers.as_ref().unwrap().iter();
    let names: Vec<&str> = identity
        .filter(|(n, _)| n.contains("auth0"))
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, IDENTITY);
}

#[test]
fn without_protected_routes_no_header_is_an_identity_header() {
    let mut host = request("GET", "/elsewhere", &[("x-auth0-user-id", "u")]);
    let config = config_with(serde_json::json!({}));
    let mut runner = Runner::new(Some(Rc::new(config)), Default::default());
    assert_eq!(
        runner.on_request_headers(&mut host, true),
        Verdict::Continue
    );
    assert_eq!(host.header("x-auth0-user-id"), Some("u"));
}

#[test]
fn each_kind_of_request_costs_the_host_calls_it_needs_and_no_more() {
    let bearer = bearer();
    // (path, header reads, clock reads, address reads, random reads)
    let cases = [
        ("/elsewhere", vec![], (1, 0, 0, 0)),
        (
            "/api/orders",
            vec![("authorization", bearer.as_str())],
            (1, 1, 0, 0),
        ),
        ("/api%2forders", vec![], (1, 1, 0, 0)),
        (
            "/oauth/token",
            vec![("secret", "app-key"), FORM],
            (1, 1, 1, 1),
        ),
    ];
    for (path, headers, (header_reads, clock, address, random)) in cases {
        let mut host = request("POST", path, &headers);
        with_keys(&host);
        filter(serde_json::json!({})).on_request_headers(&mut host, false);
        let reads = host.reads;
        assert_eq!(
            (reads.headers, reads.clock, reads.address, reads.random),
            (header_reads, clock, address, random),
            "{path}"
        );
    }
}

#[test]
fn the_route_classified_names_the_request_in_its_stats_and_log_lines() {
    let mut host = request("GET", "/api%2forders", &[("x-request-id", "r-1")]);
    filter(serde_json::json!({})).on_request_headers(&mut host, true);
    assert_eq!(
        counters(&host),
        ["auth0_filter.route.unreadable_path.client_error"]
    );
    let mut host = request("POST", "/oauth/token", &[("secret", "app-key"), FORM]);
    host.refuse_callouts = true;
    let mut runner = filter(serde_json::json!({}));
    assert_eq!(runner.on_request_headers(&mut host, false), Verdict::Pause);
    host.body = LOGIN.to_vec();
    runner.on_request_body(&mut host, LOGIN.len(), true);
    assert_eq!(host.reply.as_ref().unwrap().status, 502);
    assert!(counters(&host).contains(&"auth0_filter.route.token.auth0_error"));
}

#[test]
fn a_request_that_waits_is_woken_and_resumes() {
    let bearer = bearer();
    let mut host = request("GET", "/api/orders", &[("authorization", &bearer)]);
    let mut runner = filter(serde_json::json!({}));
    // No keys yet (the root has not fetched them): the request waits.
    assert_eq!(runner.on_request_headers(&mut host, false), Verdict::Pause);
    assert_eq!(host.wakes, [NOW.millis() + 25]);
    // Whatever else of it arrives waits with it.
    assert_eq!(runner.on_request_body(&mut host, 10, false), Verdict::Pause);
    assert_eq!(runner.on_request_trailers(), Verdict::Pause);
    // Woken before the keys arrive: it waits again.
    host.wakes.clear();
    assert_eq!(runner.on_wake(&mut host), Verdict::Pause);
    assert_eq!(host.wakes.len(), 1);
    // Woken after: it goes on, with its identity.
    host.wakes.clear();
    with_keys(&host);
    assert_eq!(runner.on_wake(&mut host), Verdict::Resume);
    assert!(host.wakes.is_empty() && host.reply.is_none());
    assert_eq!(host.header("x-auth0-user-id"), Some("auth0|u1"));
    assert_eq!(runner.on_request_trailers(), Verdict::Continue);
    assert_eq!(
        runner.on_request_body(&mut host, 10, true),
        Verdict::Continue
    );
}

#[test]
fn a_callout_answered_after_a_wait_resumes_or_answers() {
    let mut host = request("GET", "/users", &[("secret", "admin-key")]);
    let mut runner = filter(serde_json::json!({}));
    assert_eq!(runner.on_request_headers(&mut host, true), Verdict::Pause);
    assert_eq!(host.calls.len(), 1, "the Management API token");
    let token = CalloutResult::Answered {
        status: 200,
        headers: vec![],
        body: br#"{"access_token":"m","expires_in":86400}"#.to_vec(),
    };
    assert_eq!(host.answer(&mut runner, token), Verdict::Pause);
    assert_eq!(host.calls.len(), 1, "the search");
    let users = CalloutResult::Answered {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: b"[]".to_vec(),
    };
    // Answered: the reply is sent and the request stays paused.
    assert_eq!(host.answer(&mut runner, users), Verdict::Pause);
    assert_eq!(host.reply.as_ref().unwrap().status, 200);
}

#[test]
fn a_callout_the_host_refuses_fails_like_an_unreachable_auth0() {
    let mut host = request("POST", "/oauth/token", &[("secret", "app-key"), FORM]);
    host.body = LOGIN.to_vec();
    host.refuse_callouts = true;
    let mut runner = filter(serde_json::json!({}));
    runner.on_request_headers(&mut host, false);
    assert_eq!(
        runner.on_request_body(&mut host, LOGIN.len(), true),
        Verdict::Pause
    );
    assert_eq!(host.reply.as_ref().unwrap().status, 502);
    assert!(host.logs.iter().any(|l| l.level == LogLevel::Warn
        && l.message == "callout to cluster auth0 refused: BadArgument"));
    assert!(counters(&host).contains(&"auth0_filter.callout_failure.connect"));
}

#[test]
fn a_callout_without_an_answer_is_timed_by_the_runner() {
    let mut host = request("POST", "/oauth/token", &[("secret", "app-key"), FORM]);
    host.body = LOGIN.to_vec();
    let mut runner = filter(serde_json::json!({}));
    runner.on_request_headers(&mut host, false);
    runner.on_request_body(&mut host, LOGIN.len(), true);
    assert_eq!(host.calls.len(), 1);
    let verdict = host.answer(&mut runner, CalloutResult::Failed { elapsed_ms: 5_000 });
    assert_eq!(verdict, Verdict::Pause);
    assert_eq!(host.reply.as_ref().unwrap().status, 504);
}

#[test]
fn a_body_over_the_limit_is_413_as_soon_as_it_is_over() {
    let mut host = request("POST", "/oauth/token", &[("secret", "app-key"), FORM]);
    let mut runner = filter(serde_json::json!({"maxBodyBytes": 256}));
    assert_eq!(runner.on_request_headers(&mut host, false), Verdict::Pause);
    assert_eq!(
        runner.on_request_body(&mut host, 200, false),
        Verdict::Pause
    );
    assert!(host.reply.is_none());
    assert_eq!(
        runner.on_request_body(&mut host, 300, false),
        Verdict::Pause
    );
    assert_eq!(host.reply.as_ref().unwrap().status, 413);
    assert_eq!(host.reads.body, 0, "never read");
    // The rest of it is not the filter's any more.
    assert_eq!(
        runner.on_request_body(&mut host, 400, true),
        Verdict::Continue
    );
}

#[test]
fn what_the_host_cannot_give_is_answered_never_let_through() {
    let mut unreadable = request("GET", "/elsewhere", &[]);
    unreadable.headers = None;
    let verdict = filter(serde_json::json!({})).on_request_headers(&mut unreadable, true);
    assert_eq!(verdict, Verdict::Pause);
    assert_eq!(unreadable.reply.as_ref().unwrap().status, 500);
    assert_eq!(unreadable.logs[0].level, LogLevel::Error);

    let mut no_random = request("POST", "/oauth/token", &[("secret", "app-key"), FORM]);
    no_random.entropy = None;
    filter(serde_json::json!({})).on_request_headers(&mut no_random, false);
    assert_eq!(no_random.reply.as_ref().unwrap().status, 500);

    // An empty header map (no request to speak of) goes on untouched.
    let mut empty = request("GET", "/", &[]);
    empty.headers = Some(Vec::new());
    let verdict = filter(serde_json::json!({})).on_request_headers(&mut empty, true);
    assert_eq!(verdict, Verdict::Continue);
}

#[test]
fn before_a_configuration_every_request_goes_on_untouched() {
    let mut host = request("POST", "/oauth/token", &[("x-auth0-user-id", "u")]);
    let mut runner = Runner::new(None, Default::default());
    assert_eq!(
        runner.on_request_headers(&mut host, false),
        Verdict::Continue
    );
    assert_eq!(
        runner.on_request_body(&mut host, 3, true),
        Verdict::Continue
    );
    assert_eq!(host.reads, Default::default());
}

#[test]
fn the_callouts_a_request_leaves_behind_are_counted() {
    let mut host = request("GET", "/elsewhere", &[]);
    let runner = filter(serde_json::json!({}));
    runner.on_end(&mut host, 0);
    assert!(host.metrics.is_empty());
    runner.on_end(&mut host, 3);
    assert_eq!(host.metrics[0].name, "auth0_filter.callout_abandoned");
    assert_eq!(host.metrics[0].value, 3);
}

fn redis() -> serde_json::Value {
    serde_json::json!({
        "sessionStore": {"backend": "redis", "webdisCluster": "webdis"},
    })
}

#[test]
fn with_redis_store_operations_are_webdis_calls_and_jwks_wants_stay_in_shared_data() {
    let mut host = request("GET", "/users/active", &[("secret", "admin-key")]);
    let mut runner = filter(redis());
    assert_eq!(runner.on_request_headers(&mut host, true), Verdict::Pause);
    let (_, call) = host.calls.front().unwrap().clone();
    assert_eq!(call.cluster, "webdis");
    let fake = crate::testing::FakeRedis::default();
    while let Some((_, call)) = host.calls.front().cloned() {
        host.answer(&mut runner, fake.answer(&call));
    }
    assert_eq!(host.reply.as_ref().unwrap().status, 200);
    assert!(counters(&host).iter().all(|c| !c.contains("callout")));

    // A token signed with a key the store lacks asks for a refetch in shared data, not Redis.
    let unknown = sign(
        "k2",
        &["https://api.example.org"],
        "web-client-id",
        NOW,
        600,
    );
    let bearer = format!("Bearer {unknown}");
    let mut host = request("GET", "/api/orders", &[("authorization", &bearer)]);
    with_keys(&host);
    let mut runner = filter(redis());
    assert_eq!(runner.on_request_headers(&mut host, true), Verdict::Pause);
    assert!(host.calls.is_empty());
    assert_eq!(host.wakes.len(), 1);
    let wanted = host
        .kv
        .data
        .borrow()
        .keys()
        .any(|k| k.contains("jwks/want/"));
    assert!(wanted);
}

#[test]
fn with_redis_a_webdis_call_the_host_refuses_is_an_unavailable_store() {
    let mut host = request("GET", "/users/active", &[("secret", "admin-key")]);
    host.refuse_callouts = true;
    filter(redis()).on_request_headers(&mut host, true);
    assert_eq!(host.reply.as_ref().unwrap().status, 503);
}

fn hold() -> serde_json::Value {
    serde_json::json!({"bodyReading": "holdFilter"})
}

fn held_login() -> (Runner, FakeHost<MemKv>) {
    let headers = [
        ("secret", "app-key"),
        ("client-key", "other"),
        ("authorization", "Bearer x"),
        ("cookie", "sid=y"),
        FORM,
    ];
    let mut host = request("POST", "/oauth/token", &headers);
    host.body = LOGIN.to_vec();
    let mut runner = filter(hold());
    // Marked for the hold instance instead of paused, without its credentials.
    assert_eq!(
        runner.on_request_headers(&mut host, false),
        Verdict::Continue
    );
    assert!(host.hold_marked);
    for name in ["secret", "client-key", "authorization", "cookie"] {
        assert_eq!(host.header(name), None, "{name}");
    }
    (runner, host)
}

#[test]
fn in_the_hold_mode_a_request_whose_body_is_read_is_marked_not_paused() {
    let (mut runner, mut host) = held_login();
    host.hold_taken = true;
    assert_eq!(
        runner.on_request_body(&mut host, LOGIN.len(), true),
        Verdict::Pause
    );
    assert_eq!(host.calls.len(), 1);
    assert_eq!(host.answer(&mut runner, token_answer()), Verdict::Pause);
    assert_eq!(host.reply.as_ref().unwrap().status, 200);
}

#[test]
fn in_the_hold_mode_a_marked_request_no_hold_instance_stopped_is_refused() {
    let (mut runner, mut host) = held_login();
    assert_eq!(
        runner.on_request_body(&mut host, LOGIN.len(), true),
        Verdict::Pause
    );
    let reply = host.reply.as_ref().unwrap();
    assert_eq!(reply.status, 500);
    assert!(String::from_utf8_lossy(&reply.body).contains("could not be held"));
    assert!(host.calls.is_empty());
    assert_eq!(host.metrics[0].name, "auth0_filter.hold_missing");
    assert!(host.logs.iter().any(|l| l.level == LogLevel::Error));
}

#[test]
fn in_the_hold_mode_what_needs_no_hold_is_not_marked() {
    let mut refused = request("POST", "/oauth/token", &[("secret", "app-key"), FORM]);
    refused.refuse_hold_mark = true;
    filter(hold()).on_request_headers(&mut refused, false);
    assert_eq!(refused.reply.as_ref().unwrap().status, 500);
    // No body to wait for, or no body read: nothing to hold.
    let mut bodiless = request("POST", "/oauth/token", &[("secret", "app-key"), FORM]);
    filter(hold()).on_request_headers(&mut bodiless, true);
    assert!(!bodiless.hold_marked);
    let mut elsewhere = request("POST", "/elsewhere", &[("authorization", "Bearer x")]);
    let verdict = filter(hold()).on_request_headers(&mut elsewhere, false);
    assert_eq!(verdict, Verdict::Continue);
    assert!(!elsewhere.hold_marked);
    assert_eq!(elsewhere.header("authorization"), Some("Bearer x"));
}

#[test]
fn a_held_request_cannot_go_on() {
    for action in [
        Action::PassThrough,
        Action::Forward {
            set_headers: vec![],
        },
    ] {
        let mut host = request("POST", "/oauth/token", &[]);
        let mut runner = filter(hold());
        runner.held = Held::Confirmed;
        assert_eq!(runner.run(&mut host, action, true, NOW), Verdict::Pause);
        assert_eq!(host.reply.as_ref().unwrap().status, 500);
    }
}

#[test]
fn the_hold_instance_stops_exactly_the_marked_requests() {
    let mut marked = FakeHost::new(MemKv::default(), NOW);
    marked.hold_marked = true;
    let mut instance = HoldInstance::default();
    assert_eq!(instance.on_request_headers(&mut marked), Verdict::Pause);
    assert!(marked.hold_taken);
    assert_eq!(instance.on_rest(), Verdict::Pause);

    let mut other = FakeHost::new(MemKv::default(), NOW);
    let mut instance = HoldInstance::default();
    assert_eq!(instance.on_request_headers(&mut other), Verdict::Continue);
    assert!(!HoldHost::marked(&mut other) && !other.hold_taken);
    assert_eq!(instance.on_rest(), Verdict::Continue);
}
