use super::*;
use crate::testing::MemKv;

#[test]
fn fetches_when_missing_stale_or_wanted_but_not_too_often() {
    assert!(jwks_fetch_due(100, None, None, 600));
    assert!(!jwks_fetch_due(100, Some(50), None, 600));
    assert!(jwks_fetch_due(650, Some(50), None, 600));
    assert!(!jwks_fetch_due(50, Some(50), Some(51), 600), "rate-limited");
    assert!(jwks_fetch_due(51, Some(50), Some(51), 600));
    assert!(
        !jwks_fetch_due(100, Some(50), Some(40), 600),
        "wanted before the last fetch"
    );
    assert!(
        jwks_fetch_due(51, Some(50), Some(50), 600),
        "wanted in the second of the fetch"
    );
}

#[test]
fn one_root_claims_a_fetch_and_the_document_is_shared() {
    let kv: &'static MemKv = Box::leak(Box::default());
    let store = JwksCache::new(kv, "");
    let now = Timestamp::from_secs(1_000);
    assert!(store.claim_fetch("https://t/", now, 600, 5_000));
    assert!(!store.claim_fetch("https://t/", now, 600, 5_000), "leased");
    store.put("https://t/", br#"{"keys":[]}"#, now).unwrap();
    let (_, document, fetched_at) = store.document("https://t/").unwrap().unwrap();
    assert_eq!(
        (document.as_slice(), fetched_at),
        (&br#"{"keys":[]}"#[..], 1_000)
    );
    assert!(!store.claim_fetch("https://t/", Timestamp::from_secs(1_010), 600, 5_000));
    store
        .want("https://t/", Timestamp::from_secs(1_010))
        .unwrap();
    assert!(store.claim_fetch("https://t/", Timestamp::from_secs(1_010), 600, 5_000));
}
