use super::*;
use crate::testing::{session_record as record, MemKv};

const T0: Timestamp = Timestamp {
    secs: 1_000,
    nanos: 0,
};

/// A store over a fresh in-memory KV with its slots created. The KV is leaked so the store
/// can borrow it for `'static`; each test has its own.
fn ready(scope: &'static str) -> Sessions<'static, MemKv> {
    let kv: &'static MemKv = Box::leak(Box::default());
    let store = Sessions::new(kv, scope);
    store.ensure_slots().unwrap();
    store
}

fn live_records(kv: &MemKv) -> usize {
    kv.data
        .borrow()
        .values()
        .filter(|(v, _)| !v.is_empty())
        .map(|(v, _)| {
            serde_json::from_slice::<Slot>(v)
                .map(|s| s.len())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn put_get_delete_round_trip() {
    let store = ready("scope:");
    let key = SessionKey::for_token("access-token");
    assert_eq!(store.get(&key, T0).unwrap(), None);
    store.put(&key, &record("auth0|1", 2_000)).unwrap();
    assert_eq!(store.get(&key, T0).unwrap(), Some(record("auth0|1", 2_000)));
    assert!(store.delete(&key, 1_500).unwrap());
    // The ended session's marker stays until it expires, and is no live session.
    let marker = store.get(&key, T0).unwrap().unwrap();
    assert!(marker.ended && marker.user_id.is_empty() && marker.refresh_token.is_none());
    assert!(store.active_users(T0).unwrap().is_empty());
    assert_eq!(store.get(&key, Timestamp::from_secs(1_500)).unwrap(), None);
}

#[test]
fn keys_are_hashes_under_the_scope_never_tokens() {
    let store = ready("scope:");
    let key = SessionKey::for_token("secret-access-token");
    assert_eq!(key.as_str().len(), 64);
    store.put(&key, &record("auth0|1", 2_000)).unwrap();
    for (k, (v, _)) in store.kv.data.borrow().iter() {
        assert!(k.starts_with("scope:"), "{k}");
        assert!(!k.contains("secret-access-token"));
        assert!(!String::from_utf8_lossy(v).contains("secret-access-token"));
    }
}

#[test]
fn expiry_is_honoured_on_read() {
    let store = ready("");
    let key = SessionKey::for_token("t");
    store.put(&key, &record("auth0|1", 1_500)).unwrap();
    assert!(store
        .get(&key, Timestamp::from_secs(1_499))
        .unwrap()
        .is_some());
    assert!(store
        .get(&key, Timestamp::from_secs(1_500))
        .unwrap()
        .is_none());
}

#[test]
fn sweep_removes_expired_records_and_the_key_count_stays_bounded() {
    let store = ready("");
    let kv = store.kv;
    let keys_at_start = kv.data.borrow().len();
    // The session slots, and nothing else.
    assert_eq!(keys_at_start, SLOTS as usize);
    for i in 0..3_000u64 {
        let expiry = if i % 2 == 0 { 1_100 } else { 5_000 };
        store
            .put(
                &SessionKey::for_token(&format!("t{i}")),
                &record("u", expiry),
            )
            .unwrap();
    }
    // An ended session leaves its marker (not a live session), swept once it expires.
    store.delete(&SessionKey::for_token("t1"), 1_100).unwrap();
    assert_eq!(live_records(kv), 3_000);
    let stats = store.sweep(0..SLOTS, Timestamp::from_secs(1_000));
    assert_eq!((stats.removed, stats.remaining), (0, 2_999));
    let stats = store.sweep(0..SLOTS, Timestamp::from_secs(1_200));
    assert_eq!((stats.removed, stats.remaining), (1_501, 1_499));
    let stats = store.sweep(0..SLOTS, Timestamp::from_secs(6_000));
    assert_eq!((stats.removed, stats.remaining), (1_499, 0));
    // Thousands of sessions came and went; no key was added beyond the fixed slots.
    assert_eq!(kv.data.borrow().len(), keys_at_start);
    assert!(kv.data.borrow().values().all(|(v, _)| v.is_empty()));
}

#[test]
fn sweep_keeps_a_record_rewritten_with_a_later_expiry() {
    let store = ready("");
    let key = SessionKey::for_token("t");
    store.put(&key, &record("u", 1_100)).unwrap();
    store.put(&key, &record("u", 9_000)).unwrap();
    store.sweep(0..SLOTS, Timestamp::from_secs(1_200));
    assert!(store
        .get(&key, Timestamp::from_secs(1_200))
        .unwrap()
        .is_some());
}

#[test]
fn updates_retry_on_cas_conflicts() {
    let store = ready("");
    *store.kv.conflicts.borrow_mut() = 5;
    store
        .put(&SessionKey::for_token("t"), &record("u", 2_000))
        .unwrap();
    assert!(store
        .get(&SessionKey::for_token("t"), T0)
        .unwrap()
        .is_some());
    *store.kv.conflicts.borrow_mut() = 100;
    assert!(store
        .put(&SessionKey::for_token("t2"), &record("u", 2_000))
        .is_err());
}

#[test]
fn ensure_slots_never_overwrites_an_existing_slot() {
    let store = ready("");
    store
        .put(&SessionKey::for_token("t"), &record("u", 2_000))
        .unwrap();
    // A VM starting later (config reload) must not wipe live sessions.
    store.ensure_slots().unwrap();
    assert!(store
        .get(&SessionKey::for_token("t"), T0)
        .unwrap()
        .is_some());
}

#[test]
fn sweep_batches_cover_every_slot_once_per_pass_one_claimant_per_second() {
    let store = ready("");
    let mut covered = vec![0u32; SLOTS as usize];
    for second in 0..30u64 {
        let now = Timestamp::from_secs(1_000 + second);
        let range = store.claim_sweep(now, 30).expect("a batch each second");
        assert!(
            store.claim_sweep(now, 30).is_none(),
            "one claimant per second"
        );
        for slot in range {
            covered[slot as usize] += 1;
        }
    }
    assert!(
        covered.iter().all(|c| *c == 1),
        "a 30 s pass sweeps each slot once"
    );
    let store = ready("");
    assert_eq!(
        store.claim_sweep(T0, 1),
        Some(0..SLOTS),
        "a 1 s pass sweeps all each tick"
    );
}

#[test]
fn debug_never_shows_tokens() {
    let r = record("auth0|1", 1);
    assert!(!format!("{r:?}").contains("refresh-secret"));
}

#[test]
fn a_full_sweep_pass_reports_the_live_sessions() {
    let kv = MemKv::default();
    let store = Sessions::new(&kv, "t/");
    assert_eq!(store.record_sweep(&(0..100), 3), None);
    assert_eq!(store.record_sweep(&(100..8_000), 4), None);
    assert_eq!(store.record_sweep(&(8_000..SLOTS), 5), Some(12));
    // The next pass counts from zero.
    assert_eq!(store.record_sweep(&(0..SLOTS), 2), Some(2));
}

#[test]
fn a_lookup_reads_its_record_out_of_a_shared_slot() {
    let profile: crate::jwt::Claims =
        serde_json::from_str(r#"{"name":"Alice","https://x/app_metadata":{"groups":["a"]}}"#)
            .unwrap();
    let mut alice = record("auth0|alice", 2_000);
    alice.profile = Some(profile);
    let mut slot = Slot::new();
    slot.insert("k1".into(), record("auth0|bob", 2_000));
    slot.insert("k2".into(), alice.clone());
    slot.insert("k3".into(), record("auth0|carol", 2_000));
    let json = serde_json::to_vec(&slot).unwrap();
    assert_eq!(record_in_slot(&json, "k2"), Some(alice));
    assert_eq!(
        record_in_slot(&json, "k3").map(|r| r.user_id),
        Some("auth0|carol".into())
    );
    assert_eq!(record_in_slot(&json, "k4"), None);
    assert_eq!(record_in_slot(b"{}", "k1"), None);
    for unreadable in [&b""[..], b"[1]", b"{\"k1\":", b"{\"k1\":{\"u\":1}}"] {
        assert_eq!(record_in_slot(unreadable, "k1"), None);
    }
}

#[test]
fn active_users_are_distinct_and_live() {
    let s = ready("x:");
    let record = |user: &str, expires_at| SessionRecord {
        user_id: user.into(),
        client: "web".into(),
        refresh_token: None,
        profile: None,
        expires_at,
        ended: false,
    };
    s.put(&SessionKey::for_token("a"), &record("auth0|1", 2_000))
        .unwrap();
    s.put(&SessionKey::for_token("b"), &record("auth0|1", 2_000))
        .unwrap();
    s.put(&SessionKey::for_token("c"), &record("auth0|2", 2_000))
        .unwrap();
    s.put(&SessionKey::for_token("d"), &record("auth0|3", 900))
        .unwrap();
    assert_eq!(
        s.active_users(Timestamp::from_secs(1_000)).unwrap(),
        vec!["auth0|1".to_string(), "auth0|2".to_string()]
    );
}
