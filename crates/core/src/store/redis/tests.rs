use super::*;
use crate::store::{SessionKey, SessionRecord};
use crate::testing::FakeRedis;

fn config() -> RedisConfig {
    RedisConfig {
        cluster: "webdis".into(),
        authority: "webdis".into(),
        key_prefix: "scope:".into(),
        authorization: Some("Basic Z3c6c2VjcmV0".into()),
        timeout_ms: 500,
    }
}

/// Runs one operation to its outcome against the fake, checking every call's framing.
fn execute(redis: &FakeRedis, op: StoreOp, now: u64) -> StoreOutcome {
    *redis.now.borrow_mut() = now;
    let (mut state, mut step) = RedisOp::start(&config(), op, Timestamp::from_secs(now));
    for _ in 0..10 {
        match step {
            RedisStep::Done(outcome) => return outcome,
            RedisStep::Call(callout) => {
                assert_eq!(
                    (
                        callout.method.as_str(),
                        callout.path.as_str(),
                        callout.cluster.as_str()
                    ),
                    ("POST", "/", "webdis")
                );
                assert!(callout
                    .headers
                    .contains(&("authorization".into(), "Basic Z3c6c2VjcmV0".into())));
                let answer = redis.answer(&callout);
                step = state.on_answer(&config(), &answer, Timestamp::from_secs(now));
            }
        }
    }
    panic!("too many calls");
}

fn record(user: &str, expires_at: u64) -> SessionRecord {
    SessionRecord {
        user_id: user.into(),
        client: "web".into(),
        refresh_token: Some("rt".into()),
        profile: None,
        expires_at,
        ended: false,
    }
}

#[test]
fn sessions_round_trip_and_expire_and_feed_active_users() {
    let redis = FakeRedis::default();
    let (a, b) = (SessionKey::for_token("a"), SessionKey::for_token("b"));
    assert_eq!(
        execute(
            &redis,
            StoreOp::Put(a.clone(), record("auth0|1", 1_100)),
            1_000
        ),
        StoreOutcome::Done
    );
    assert_eq!(
        execute(
            &redis,
            StoreOp::Put(b.clone(), record("auth0|2", 5_000)),
            1_000
        ),
        StoreOutcome::Done
    );
    assert_eq!(
        execute(&redis, StoreOp::Get(a.clone()), 1_000),
        StoreOutcome::Record(Some(record("auth0|1", 1_100)))
    );
    assert_eq!(
        execute(&redis, StoreOp::ActiveUsers, 1_000),
        StoreOutcome::Users(vec!["auth0|1".into(), "auth0|2".into()])
    );
    // Expired by Redis TTL, and gone from the active users.
    assert_eq!(
        execute(&redis, StoreOp::Get(a), 1_200),
        StoreOutcome::Record(None)
    );
    assert_eq!(
        execute(&redis, StoreOp::ActiveUsers, 1_200),
        StoreOutcome::Users(vec!["auth0|2".into()])
    );
    assert_eq!(
        execute(&redis, StoreOp::Delete(b.clone(), 2_000), 1_200),
        StoreOutcome::Deleted(true)
    );
    assert_eq!(
        execute(&redis, StoreOp::Delete(b.clone(), 2_000), 1_200),
        StoreOutcome::Deleted(false),
        "a second delete (a concurrent logout) finds nothing"
    );
    // The ended session's marker refuses its token until it expires.
    assert_eq!(
        execute(&redis, StoreOp::Get(b.clone()), 1_200),
        StoreOutcome::Ended
    );
    assert_eq!(
        execute(&redis, StoreOp::Get(b), 2_000),
        StoreOutcome::Record(None)
    );
    assert_eq!(
        execute(&redis, StoreOp::ActiveUsers, 1_200),
        StoreOutcome::Users(vec![])
    );
    // Keys carry the prefix and never a token.
    assert!(redis
        .strings
        .borrow()
        .keys()
        .chain(redis.zsets.borrow().keys())
        .all(|k| k.starts_with("scope:")));
}

#[test]
fn management_token_lease_and_drop() {
    let redis = FakeRedis::default();
    let acquire = |now| {
        execute(
            &redis,
            StoreOp::AcquireManagementToken { lease_ms: 5_000 },
            now,
        )
    };
    assert_eq!(
        acquire(1_000),
        StoreOutcome::ManagementToken(TokenGrant::FetchIt)
    );
    assert_eq!(
        acquire(1_000),
        StoreOutcome::ManagementToken(TokenGrant::Wait)
    );
    execute(
        &redis,
        StoreOp::SaveManagementToken {
            token: "t1".into(),
            use_until: 2_000,
        },
        1_001,
    );
    assert_eq!(
        acquire(1_002),
        StoreOutcome::ManagementToken(TokenGrant::Ready("t1".into()))
    );
    execute(
        &redis,
        StoreOp::DropManagementToken {
            token: "other".into(),
        },
        1_003,
    );
    assert_eq!(
        acquire(1_003),
        StoreOutcome::ManagementToken(TokenGrant::Ready("t1".into()))
    );
    execute(
        &redis,
        StoreOp::DropManagementToken { token: "t1".into() },
        1_003,
    );
    assert_eq!(
        acquire(1_004),
        StoreOutcome::ManagementToken(TokenGrant::FetchIt)
    );
}

#[test]
fn a_lease_won_just_after_the_holder_saved_its_token_uses_that_token() {
    let redis = FakeRedis::default();
    let config = config();
    let now = Timestamp::from_secs(1_000);
    // Request B reads no token...
    let (mut late, step) = RedisOp::start(
        &config,
        StoreOp::AcquireManagementToken { lease_ms: 5_000 },
        now,
    );
    let RedisStep::Call(get) = step else {
        panic!("a GET first")
    };
    *redis.now.borrow_mut() = 1_000;
    let answer = redis.answer(&get);
    // ...meanwhile the lease holder saves its token and releases the lease...
    execute(
        &redis,
        StoreOp::SaveManagementToken {
            token: "t1".into(),
            use_until: 2_000,
        },
        1_000,
    );
    // ...then B wins the lease it asks for: it must take t1, not fetch a second token.
    let mut step = late.on_answer(&config, &answer, now);
    for _ in 0..6 {
        match step {
            RedisStep::Done(outcome) => {
                assert_eq!(
                    outcome,
                    StoreOutcome::ManagementToken(TokenGrant::Ready("t1".into()))
                );
                // And the lease it won is released again.
                assert_eq!(
                    execute(
                        &redis,
                        StoreOp::DropManagementToken { token: "t1".into() },
                        1_001
                    ),
                    StoreOutcome::Done
                );
                assert_eq!(
                    execute(
                        &redis,
                        StoreOp::AcquireManagementToken { lease_ms: 5_000 },
                        1_001
                    ),
                    StoreOutcome::ManagementToken(TokenGrant::FetchIt)
                );
                return;
            }
            RedisStep::Call(callout) => {
                let answer = redis.answer(&callout);
                step = late.on_answer(&config, &answer, now);
            }
        }
    }
    panic!("too many calls");
}

#[test]
fn an_unreachable_or_failing_webdis_is_unavailable() {
    let redis = FakeRedis::default();
    *redis.down.borrow_mut() = true;
    assert!(matches!(
        execute(&redis, StoreOp::Get(SessionKey::for_token("a")), 1_000),
        StoreOutcome::Unavailable(_)
    ));
    let (mut op, _) = RedisOp::start(&config(), StoreOp::ActiveUsers, Timestamp::from_secs(1));
    for answer in [
        CalloutResult::Answered {
            status: 503,
            headers: vec![],
            body: b"Service Unavailable".to_vec(),
        },
        // Webdis's ACL refusal (wrong credentials or a disabled command).
        CalloutResult::Answered {
            status: 403,
            headers: vec![],
            body: b"".to_vec(),
        },
        CalloutResult::Answered {
            status: 200,
            headers: vec![],
            body: br#"{"ZREMRANGEBYSCORE":[false,"ERR boom"]}"#.to_vec(),
        },
    ] {
        assert!(matches!(
            op.on_answer(&config(), &answer, Timestamp::from_secs(1)),
            RedisStep::Done(StoreOutcome::Unavailable(_))
        ));
    }
}

#[test]
fn arguments_are_percent_encoded_so_values_cannot_add_arguments() {
    let key = SessionKey::for_token("a");
    let mut evil = record("auth0|1/FLUSHALL", 2_000);
    evil.refresh_token = Some("x/y%2Fz".into());
    let (_, step) = RedisOp::start(
        &config(),
        StoreOp::Put(key, evil.clone()),
        Timestamp::from_secs(1_000),
    );
    let RedisStep::Call(callout) = step else {
        panic!()
    };
    let body = String::from_utf8(callout.body.unwrap()).unwrap();
    assert_eq!(body.split('/').count(), 4, "SETEX key ttl value: {body}");
    let redis = FakeRedis::default();
    execute(
        &redis,
        StoreOp::Put(SessionKey::for_token("a"), evil.clone()),
        1_000,
    );
    assert_eq!(
        execute(&redis, StoreOp::Get(SessionKey::for_token("a")), 1_000),
        StoreOutcome::Record(Some(evil))
    );
}

#[test]
fn the_active_index_is_pruned_on_every_write_and_expires_with_its_sessions() {
    let redis = FakeRedis::default();
    let (a, b) = (SessionKey::for_token("a"), SessionKey::for_token("b"));
    execute(&redis, StoreOp::Put(a, record("auth0|1", 1_100)), 1_000);
    // No one reads /users/active: the next write still drops the expired member.
    execute(&redis, StoreOp::Put(b, record("auth0|2", 1_300)), 1_200);
    let members: Vec<String> = redis.zsets.borrow()["scope:active"]
        .keys()
        .cloned()
        .collect();
    assert_eq!(members.len(), 1);
    assert!(members[0].ends_with(" auth0|2"));
    assert_eq!(redis.zset_expiry.borrow()["scope:active"], 1_300);
    // Once every session has expired the index is gone too.
    assert_eq!(
        execute(&redis, StoreOp::ActiveUsers, 1_300),
        StoreOutcome::Users(vec![])
    );
    assert!(!redis.zsets.borrow().contains_key("scope:active"));
}

#[test]
fn a_reply_for_another_command_or_an_unknown_shape_is_unavailable() {
    for body in [
        r#"{}"#,
        r#"{"ok":true}"#,
        r#"{"SET":[true,"OK"]}"#,
        r#"{"GET":null,"SET":null}"#,
        r#"[1]"#,
    ] {
        let (mut op, _) = RedisOp::start(
            &config(),
            StoreOp::Get(SessionKey::for_token("a")),
            Timestamp::from_secs(1),
        );
        let answer = CalloutResult::Answered {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        assert!(
            matches!(
                op.on_answer(&config(), &answer, Timestamp::from_secs(1)),
                RedisStep::Done(StoreOutcome::Unavailable(_))
            ),
            "{body}"
        );
    }
}

#[test]
fn the_webdis_credentials_never_show_in_debug_output() {
    let mut with_secret = config();
    with_secret.authorization = Some("Basic Z3c6c2VjcmV0".into());
    let shown = format!("{with_secret:?}");
    assert!(!shown.contains("Z3c6c2VjcmV0"), "{shown}");
    assert!(shown.contains("<redacted>"));
}

#[test]
fn the_calls_of_one_operation_share_one_callout_timeout() {
    let at = |millis: u64| Timestamp {
        secs: millis / 1_000,
        nanos: ((millis % 1_000) * 1_000_000) as u32,
    };
    let ok = CalloutResult::Answered {
        status: 200,
        headers: vec![],
        body: br#"{"SETEX":[true,"OK"]}"#.to_vec(),
    };
    let put = StoreOp::Put(SessionKey::for_token("a"), record("auth0|1", 9_000));
    let (mut op, first) = RedisOp::start(&config(), put.clone(), at(10_000));
    let RedisStep::Call(first) = first else {
        panic!("a call")
    };
    assert_eq!(first.timeout_ms, 500);
    // SETEX answered after 400 ms: ZADD gets what is left.
    let RedisStep::Call(second) = op.on_answer(&config(), &ok, at(10_400)) else {
        panic!("a call")
    };
    assert_eq!(second.timeout_ms, 100);
    // Past the budget, the operation gives up instead of starting another call.
    let (mut op, _) = RedisOp::start(&config(), put, at(10_000));
    assert!(matches!(
        op.on_answer(&config(), &ok, at(10_500)),
        RedisStep::Done(StoreOutcome::Unavailable(_))
    ));
}
