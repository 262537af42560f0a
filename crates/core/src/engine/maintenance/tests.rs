//! The root's maintenance against hosts in memory sharing one store: configuration, the JWKS
//! fetches and their lease, the sweep and its stats, and the tick.

use super::*;
use crate::metrics::MetricKind;
use crate::testing::{base_json, jwks_json, FakeHost, FlakyKv, MemKv, ISSUER};

const NOW: Timestamp = Timestamp {
    secs: 1_700_000_000,
    nanos: 0,
};

/// A worker's root over the shared store `kv`.
fn root(kv: &MemKv) -> FakeHost<FlakyKv<'_, MemKv>> {
    let kv = FlakyKv {
        kv,
        down: false,
        writes_down: false,
    };
    FakeHost::new(kv, NOW)
}

fn configured(host: &mut FakeHost<FlakyKv<'_, MemKv>>, extra: serde_json::Value) -> Maintenance {
    let mut json = base_json();
    if let (Some(base), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    let mut maintenance = Maintenance::default();
    let role = maintenance.configure(host, json.to_string().as_bytes());
    assert_eq!(role, Role::Filter);
    maintenance
}

fn names<'h>(host: &'h FakeHost<FlakyKv<'_, MemKv>>) -> Vec<&'h str> {
    host.metrics.iter().map(|m| m.name.as_str()).collect()
}

fn answered(status: u16, body: &str) -> CalloutResult {
    CalloutResult::Answered {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// Hands the root the answer to its oldest callout, as the proxy reports it.
fn answer(
    maintenance: &mut Maintenance,
    host: &mut FakeHost<FlakyKv<'_, MemKv>>,
    result: CalloutResult,
) -> bool {
    let (token, _) = host.calls.pop_front().unwrap();
    let (headers, body) = match &result {
        CalloutResult::Answered { headers, body, .. } => (headers.len() + 1, body.len()),
        CalloutResult::Failed { .. } => (0, 0),
    };
    host.set_answer(result);
    maintenance.on_callout_answer(host, token, headers, body)
}

#[test]
fn a_configuration_prepares_the_store_and_starts_the_clock() {
    let kv = MemKv::default();
    let mut host = root(&kv);
    let maintenance = configured(&mut host, serde_json::json!({}));
    assert!(maintenance.config().is_some());
    assert_eq!(host.tick, Some(WAIT_TICK), "at once, for the first fetch");
    let keys = kv.data.borrow();
    assert!(keys.keys().any(|k| k.starts_with("s/")), "session slots");
    assert!(
        keys.keys().any(|k| k.starts_with("jwks/lease/")),
        "fetch lease"
    );
}

#[test]
fn a_hold_instance_or_a_refused_configuration_runs_no_maintenance() {
    let kv = MemKv::default();
    let mut host = root(&kv);
    let mut maintenance = Maintenance::default();
    assert_eq!(
        maintenance.configure(&mut host, br#"{"role": "hold"}"#),
        Role::Hold
    );
    assert!(maintenance.config().is_none());
    maintenance.on_tick(&mut host, false);
    assert!(host.calls.is_empty() && host.tick.is_none());
    assert_eq!(
        maintenance.configure(&mut host, br#"{"clients": 1}"#),
        Role::Refused
    );
    assert_eq!(host.logs[0].level, LogLevel::Error);
    assert!(host.logs[0].message.contains("clients"));
    assert!(kv.data.borrow().is_empty(), "nothing prepared");
}

#[test]
fn the_tenant_keys_are_fetched_once_by_one_worker_and_stored_for_all() {
    let kv = MemKv::default();
    let mut first = root(&kv);
    let mut one = configured(&mut first, serde_json::json!({}));
    let mut second = root(&kv);
    let mut other = configured(&mut second, serde_json::json!({}));
    one.on_tick(&mut first, false);
    // Both clients are of one tenant: one fetch.
    assert_eq!(first.calls.len(), 1);
    let (_, call) = first.calls.front().unwrap().clone();
    assert_eq!(
        (
            call.cluster.as_str(),
            call.method.as_str(),
            call.path.as_str()
        ),
        ("auth0", "GET", "/.well-known/jwks.json")
    );
    assert_eq!(call.authority, "tenant.eu.auth0.com");
    assert_eq!(names(&first), ["auth0_filter.jwks_fetch"]);
    // The other worker finds the lease taken; the first does not fetch twice.
    other.on_tick(&mut second, false);
    one.on_tick(&mut first, false);
    assert!(second.calls.is_empty());
    assert_eq!(first.calls.len(), 1);
    assert!(answer(
        &mut one,
        &mut first,
        answered(200, &jwks_json(&["k1"]))
    ));
    let stored = JwksCache::new(&kv, "").source(ISSUER);
    assert!(stored.is_some_and(|(_, document)| document == jwks_json(&["k1"]).as_bytes()));
    assert!(names(&first).contains(&"auth0_filter.callout_latency_ms"));
    // Fresh keys: nobody fetches again until they are due.
    one.on_tick(&mut first, false);
    other.on_tick(&mut second, false);
    assert!(first.calls.is_empty() && second.calls.is_empty());
}

#[test]
fn a_failed_fetch_is_logged_counted_and_tried_again_after_the_lease() {
    let kv = MemKv::default();
    let mut host = root(&kv);
    let mut maintenance = configured(&mut host, serde_json::json!({}));
    maintenance.on_tick(&mut host, false);
    assert!(answer(
        &mut maintenance,
        &mut host,
        CalloutResult::Failed { elapsed_ms: 3 }
    ));
    let warning = host
        .logs
        .iter()
        .find(|l| l.level == LogLevel::Warn)
        .unwrap();
    assert_eq!(
        warning.message,
        format!("JWKS fetch for {ISSUER} failed (no answer); retrying later")
    );
    assert!(names(&host).contains(&"auth0_filter.callout_failure.connect"));
    // An answer that is no JWKS is counted as such, and stores nothing.
    host.now = NOW.plus_secs(10);
    maintenance.on_tick(&mut host, false);
    assert_eq!(host.calls.len(), 1, "fetched again once the lease ran out");
    assert!(answer(&mut maintenance, &mut host, answered(200, "<html>")));
    assert!(names(&host).contains(&"auth0_filter.callout_failure.invalid_answer"));
    assert!(JwksCache::new(&kv, "").source(ISSUER).is_none());
}

#[test]
fn a_refused_fetch_is_logged() {
    let kv = MemKv::default();
    let mut host = root(&kv);
    let mut maintenance = configured(&mut host, serde_json::json!({}));
    host.refuse_callouts = true;
    maintenance.on_tick(&mut host, false);
    assert!(host.metrics.is_empty());
    let line = &host.logs[0];
    assert_eq!(line.level, LogLevel::Warn);
    assert_eq!(
        line.message,
        format!("JWKS fetch for {ISSUER} refused: BadArgument")
    );
}

#[test]
fn answers_to_other_callouts_are_not_the_roots() {
    let kv = MemKv::default();
    let mut host = root(&kv);
    let mut maintenance = configured(&mut host, serde_json::json!({}));
    assert!(!maintenance.on_callout_answer(&mut host, 99, 0, 0));
}

fn session(user: &str, expires_at: u64) -> crate::store::SessionRecord {
    crate::store::SessionRecord {
        user_id: user.into(),
        client: "web".into(),
        refresh_token: None,
        expires_at,
        ended: false,
        profile: None,
    }
}

#[test]
fn the_sweep_removes_expired_sessions_and_a_full_pass_reports_the_live_ones() {
    let kv = MemKv::default();
    let mut host = root(&kv);
    let mut maintenance = configured(&mut host, serde_json::json!({"sweepIntervalSeconds": 1}));
    let sessions = Sessions::new(&kv, "");
    for (token, expires_at) in [
        ("a", NOW.secs - 1),
        ("b", NOW.secs + 60),
        ("c", NOW.secs + 60),
    ] {
        let key = crate::digest::SessionKey::for_token(token);
        sessions.put(&key, &session("auth0|u", expires_at)).unwrap();
    }
    host.refuse_callouts = true;
    maintenance.on_tick(&mut host, false);
    let swept = host
        .logs
        .iter()
        .find(|l| l.level == LogLevel::Debug)
        .unwrap();
    assert_eq!(
        swept.message,
        "swept 1 expired sessions, 2 live in the slots swept"
    );
    let live = host
        .metrics
        .iter()
        .find(|m| m.kind == MetricKind::Gauge)
        .unwrap();
    assert_eq!(
        (live.name.as_str(), live.value),
        ("auth0_filter.sessions_live", 2)
    );
    // One batch a second, whichever worker claims it.
    host.metrics.clear();
    maintenance.on_tick(&mut host, false);
    assert!(host.metrics.is_empty());
}

#[test]
fn with_redis_the_sweep_reports_no_sessions_it_does_not_hold() {
    let kv = MemKv::default();
    let mut host = root(&kv);
    let redis = serde_json::json!({"sessionStore": {"backend": "redis", "webdisCluster": "webdis"}, "sweepIntervalSeconds": 1});
    let mut maintenance = configured(&mut host, redis);
    host.refuse_callouts = true;
    maintenance.on_tick(&mut host, false);
    assert!(host.metrics.iter().all(|m| m.kind != MetricKind::Gauge));
}

#[test]
fn the_tick_is_fine_only_while_requests_wait() {
    let kv = MemKv::default();
    let mut host = root(&kv);
    let mut maintenance = configured(&mut host, serde_json::json!({}));
    host.refuse_callouts = true;
    maintenance.on_tick(&mut host, false);
    assert_eq!(host.tick, Some(IDLE_TICK));
    maintenance.on_tick(&mut host, true);
    assert_eq!(host.tick, Some(WAIT_TICK));
    host.tick = None;
    maintenance.on_tick(&mut host, true);
    assert_eq!(host.tick, None, "unchanged: not asked again");
    maintenance.on_tick(&mut host, false);
    assert_eq!(host.tick, Some(IDLE_TICK));
    // A request's wake-up made the host tick fine: the next idle tick slows it down again.
    host.tick = None;
    maintenance.tick_raised();
    maintenance.on_tick(&mut host, false);
    assert_eq!(host.tick, Some(IDLE_TICK));
}
