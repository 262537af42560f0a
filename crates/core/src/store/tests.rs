use super::*;
use crate::testing::{session_record as record, MemKv};

const T0: Timestamp = Timestamp {
    secs: 1_000,
    nanos: 0,
};

#[test]
fn execute_maps_ops_to_outcomes() {
    let kv = MemKv::default();
    Sessions::new(&kv, "").ensure_slots().unwrap();
    let run = |op: &StoreOp| execute(&kv, "", op, T0);
    let key = SessionKey::for_token("t");
    assert_eq!(
        run(&StoreOp::Put(key.clone(), record("u", 2_000))),
        StoreOutcome::Done
    );
    assert_eq!(
        run(&StoreOp::Get(key.clone())),
        StoreOutcome::Record(Some(record("u", 2_000)))
    );
    assert_eq!(
        run(&StoreOp::Delete(key.clone(), 2_000)),
        StoreOutcome::Deleted(true)
    );
    assert_eq!(
        run(&StoreOp::Delete(key.clone(), 2_000)),
        StoreOutcome::Deleted(false),
        "a second delete (a concurrent logout) finds nothing"
    );
    assert_eq!(run(&StoreOp::Get(key)), StoreOutcome::Ended);
}

#[test]
fn prepare_creates_every_key_a_compare_and_swap_needs() {
    let kv = MemKv::default();
    prepare(&kv, "p/", ["https://a/", "https://b/"]).unwrap();
    // The session slots, the Management API token and its lease, a JWKS lease per issuer.
    assert_eq!(kv.data.borrow().len(), SLOTS as usize + 2 + 2);
    let before = kv.data.borrow().clone();
    prepare(&kv, "p/", ["https://a/", "https://b/"]).unwrap();
    assert_eq!(
        *kv.data.borrow(),
        before,
        "a second VM start overwrites nothing"
    );
}
