use super::*;
use crate::testing::MemKv;

fn store() -> ManagementTokenLease<'static, MemKv> {
    let kv: &'static MemKv = Box::leak(Box::default());
    let store = ManagementTokenLease::new(kv, "x:");
    store.ensure_keys().unwrap();
    store
}

const T: Timestamp = Timestamp {
    secs: 1_000,
    nanos: 0,
};

#[test]
fn one_fetch_for_a_burst_then_everyone_shares_the_token() {
    let s = store();
    assert_eq!(s.acquire(T, 5_000).unwrap(), TokenGrant::FetchIt);
    for _ in 0..10 {
        assert_eq!(s.acquire(T, 5_000).unwrap(), TokenGrant::Wait);
    }
    s.save("tok-1", use_until(T, 86_400)).unwrap();
    assert_eq!(
        s.acquire(T, 5_000).unwrap(),
        TokenGrant::Ready("tok-1".into())
    );
}

#[test]
fn a_stale_lease_lets_the_next_request_fetch() {
    let s = store();
    assert_eq!(s.acquire(T, 5_000).unwrap(), TokenGrant::FetchIt);
    let later = Timestamp {
        secs: 1_006,
        nanos: 0,
    };
    assert_eq!(s.acquire(later, 5_000).unwrap(), TokenGrant::FetchIt);
    s.release().unwrap();
    assert_eq!(s.acquire(later, 5_000).unwrap(), TokenGrant::FetchIt);
}

#[test]
fn tokens_are_refetched_shortly_before_they_expire() {
    assert_eq!(use_until(T, 86_400), 1_000 + 86_400 - 60);
    assert_eq!(use_until(T, 30), 1_000 + 27);
    let s = store();
    s.save("tok", use_until(T, 30)).unwrap();
    assert!(matches!(
        s.acquire(Timestamp::from_secs(1_026), 1).unwrap(),
        TokenGrant::Ready(_)
    ));
    assert_eq!(
        s.acquire(Timestamp::from_secs(1_027), 1).unwrap(),
        TokenGrant::FetchIt
    );
}

#[test]
fn dropping_a_refused_token_spares_a_newer_one() {
    let s = store();
    s.save("old", use_until(T, 86_400)).unwrap();
    s.drop_token("old").unwrap();
    assert_eq!(s.acquire(T, 1).unwrap(), TokenGrant::FetchIt);
    s.save("new", use_until(T, 86_400)).unwrap();
    s.drop_token("old").unwrap();
    assert_eq!(s.acquire(T, 1).unwrap(), TokenGrant::Ready("new".into()));
}
