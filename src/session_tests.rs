use std::cell::RefCell;
use std::collections::HashMap;

use super::*;

/// An in-memory CAS store with the semantics of proxy-wasm shared data: a version per key,
/// `cas = 0` writes unconditionally, deleting leaves nothing behind.
#[derive(Default)]
pub(crate) struct MemKv {
    pub(crate) data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    /// Makes the next N conditional writes fail as if another worker wrote first.
    conflicts: RefCell<usize>,
}

impl CasKv for &MemKv {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), KvError> {
        Ok(match self.data.borrow().get(key) {
            Some((v, cas)) => ((!v.is_empty()).then(|| v.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn set(&self, key: &str, value: Option<&[u8]>, cas: Option<u32>) -> Result<(), KvError> {
        let mut data = self.data.borrow_mut();
        let current = data.get(key).map(|(_, c)| *c);
        if let Some(expected) = cas.filter(|c| *c != 0) {
            let mut conflicts = self.conflicts.borrow_mut();
            if *conflicts > 0 {
                *conflicts -= 1;
                return Err(KvError::CasMismatch);
            }
            if current != Some(expected) {
                return Err(KvError::CasMismatch);
            }
        }
        let version = current.unwrap_or(0) + 1;
        match value {
            Some(v) => {
                data.insert(key.to_string(), (v.to_vec(), version));
            }
            None => {
                data.remove(key);
            }
        }
        Ok(())
    }
}

fn record(user: &str, expires_at: u64) -> SessionRecord {
    SessionRecord {
        user_id: user.into(),
        client: "web".into(),
        refresh_token: Some("rt".into()),
        id_token: None,
        expires_at,
    }
}

const T0: Timestamp = Timestamp {
    secs: 1_000,
    nanos: 0,
};

#[test]
fn put_get_delete_round_trip() {
    let kv = MemKv::default();
    let store = KvSessionStore::new(&kv, "scope:");
    let key = SessionKey::for_token("access-token");
    assert_eq!(store.get(&key, T0).unwrap(), None);
    store.put(&key, &record("auth0|1", 2_000)).unwrap();
    assert_eq!(store.get(&key, T0).unwrap(), Some(record("auth0|1", 2_000)));
    store.delete(&key).unwrap();
    assert_eq!(store.get(&key, T0).unwrap(), None);
}

#[test]
fn keys_are_hashes_under_the_scope_never_tokens() {
    let kv = MemKv::default();
    let store = KvSessionStore::new(&kv, "scope:");
    let key = SessionKey::for_token("secret-access-token");
    assert_eq!(key.as_str().len(), 64);
    store.put(&key, &record("auth0|1", 2_000)).unwrap();
    for k in kv.data.borrow().keys() {
        assert!(k.starts_with("scope:"), "{k}");
        assert!(!k.contains("secret-access-token"));
    }
}

#[test]
fn expiry_is_honoured_on_read() {
    let kv = MemKv::default();
    let store = KvSessionStore::new(&kv, "");
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
fn sweep_removes_expired_records_and_index_lines_only() {
    let kv = MemKv::default();
    let store = KvSessionStore::new(&kv, "");
    store.ensure_index().unwrap();
    for i in 0..200u64 {
        let expiry = if i % 2 == 0 { 1_100 } else { 5_000 };
        store
            .put(
                &SessionKey::for_token(&format!("t{i}")),
                &record("u", expiry),
            )
            .unwrap();
    }
    let deleted = SessionKey::for_token("t1");
    store.delete(&deleted).unwrap();
    let stats = store.sweep(Timestamp::from_secs(1_200));
    assert_eq!(stats.removed, 100);
    assert_eq!(stats.remaining, 100);
    let records = kv
        .data
        .borrow()
        .keys()
        .filter(|k| k.starts_with("s/"))
        .count();
    assert_eq!(records, 99, "expired records gone, the logged-out one too");
    // After everything expires, only the (empty) index buckets remain.
    let stats = store.sweep(Timestamp::from_secs(6_000));
    assert_eq!((stats.removed, stats.remaining), (100, 0));
    assert!(kv.data.borrow().keys().all(|k| k.starts_with("i/")));
    assert!(kv.data.borrow().values().all(|(v, _)| v.is_empty()));
}

#[test]
fn sweep_keeps_a_record_rewritten_with_a_later_expiry() {
    let kv = MemKv::default();
    let store = KvSessionStore::new(&kv, "");
    let key = SessionKey::for_token("t");
    store.put(&key, &record("u", 1_100)).unwrap();
    store.put(&key, &record("u", 9_000)).unwrap();
    store.sweep(Timestamp::from_secs(1_200));
    assert!(store
        .get(&key, Timestamp::from_secs(1_200))
        .unwrap()
        .is_some());
}

#[test]
fn index_updates_retry_on_cas_conflicts() {
    let kv = MemKv::default();
    let store = KvSessionStore::new(&kv, "");
    store.ensure_index().unwrap();
    *kv.conflicts.borrow_mut() = 5;
    store
        .put(&SessionKey::for_token("t"), &record("u", 2_000))
        .unwrap();
    *kv.conflicts.borrow_mut() = 100;
    assert!(store
        .put(&SessionKey::for_token("t2"), &record("u", 2_000))
        .is_err());
}

#[test]
fn only_one_claimant_per_sweep_interval() {
    let kv = MemKv::default();
    let store = KvSessionStore::new(&kv, "");
    assert!(store.claim_sweep(T0, 30));
    assert!(!store.claim_sweep(T0, 30));
    assert!(!store.claim_sweep(Timestamp::from_secs(1_029), 30));
    assert!(store.claim_sweep(Timestamp::from_secs(1_030), 30));
}

#[test]
fn execute_maps_ops_to_outcomes() {
    let kv = MemKv::default();
    let store = KvSessionStore::new(&kv, "");
    let key = SessionKey::for_token("t");
    assert_eq!(
        store.execute(&StoreOp::Put(key.clone(), record("u", 2_000)), T0),
        StoreOutcome::Done
    );
    assert_eq!(
        store.execute(&StoreOp::Get(key.clone()), T0),
        StoreOutcome::Record(Some(record("u", 2_000)))
    );
    assert_eq!(
        store.execute(&StoreOp::Delete(key.clone()), T0),
        StoreOutcome::Done
    );
    assert_eq!(
        store.execute(&StoreOp::Get(key), T0),
        StoreOutcome::Record(None)
    );
}

#[test]
fn debug_never_shows_tokens() {
    let r = record("auth0|1", 1);
    assert!(!format!("{r:?}").contains("rt"));
}
