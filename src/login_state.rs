//! Browser logins in progress: the `state` of `/authorize`, kept server-side (10 minutes by
//! default, `loginStateTtlSeconds`)
//! with the client, the requested redirect and the PKCE verifier, and usable once.
//!
//! States live in a fixed set of slot keys, like sessions (shared data cannot delete a key);
//! expired ones are dropped whenever their slot is written.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::session::{kv_error, CasKv, KvError, KvSessionStore, StoreError};
use crate::timefmt::Timestamp;

pub const STATE_SLOTS: u32 = 1_024;
/// At most this many logins in progress per slot (65k in all): an `/authorize` flood cannot
/// grow the store without bound or make every write re-serialise a huge slot.
pub const MAX_STATES_PER_SLOT: usize = 64;
const CAS_ATTEMPTS: usize = 16;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    #[serde(rename = "c")]
    pub client: String,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    #[serde(rename = "v")]
    pub code_verifier: String,
    #[serde(rename = "e")]
    pub expires_at: u64,
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState")
            .field("client", &self.client)
            .field("redirect", &self.redirect)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A `state` value from 16 random bytes (128 bits), URL-safe.
pub fn new_state(random: &[u8]) -> String {
    b64(random.get(..16).unwrap_or(random))
}

/// A PKCE verifier from 32 random bytes (RFC 7636: 43 characters, 256 bits) and its S256
/// challenge. Its bytes must be independent of the (public) state's.
pub fn new_pkce(random: &[u8]) -> (String, String) {
    let verifier = b64(random.get(..32).unwrap_or(random));
    let challenge = b64(&hmac_sha256::Hash::hash(verifier.as_bytes()));
    (verifier, challenge)
}

/// The hex SHA-256 a login state is stored under (never the state itself), in either backend.
pub(crate) fn state_digest(state: &str) -> String {
    crate::session::hex(&hmac_sha256::Hash::hash(state.as_bytes()))
}

type Slot = crate::small_map::SmallMap<LoginState>;

impl<K: CasKv> KvSessionStore<K> {
    pub(crate) fn state_slot_key(&self, digest: &str) -> String {
        let slot =
            u32::from_str_radix(digest.get(..4).unwrap_or("0"), 16).unwrap_or(0) % STATE_SLOTS;
        format!("{}st/{slot}", self.scope())
    }

    /// Read-modify-write of a state slot; `change` returns what to answer and whether to write.
    fn update_states<T>(
        &self,
        key: &str,
        mut change: impl FnMut(&mut Slot) -> (T, bool),
    ) -> Result<T, StoreError> {
        for _ in 0..CAS_ATTEMPTS {
            let (value, cas) = self.raw_kv().get(key).map_err(kv_error)?;
            let mut slot: Slot = value
                .filter(|v| !v.is_empty())
                .and_then(|v| serde_json::from_slice(&v).ok())
                .unwrap_or_default();
            let (answer, changed) = change(&mut slot);
            if !changed {
                return Ok(answer);
            }
            let bytes = if slot.is_empty() {
                Vec::new()
            } else {
                serde_json::to_vec(&slot).map_err(|e| StoreError(e.to_string()))?
            };
            match self.raw_kv().set(key, Some(&bytes), cas.or(Some(0))) {
                Ok(()) => return Ok(answer),
                Err(KvError::CasMismatch) => continue,
                Err(e) => return Err(kv_error(e)),
            }
        }
        Err(StoreError(format!("{key}: too much contention")))
    }

    /// Stores a new state. A state that is already stored (a caller reusing its own `state`)
    /// is never replaced: `Ok(Err(..))` says why it was refused.
    pub(crate) fn put_state(
        &self,
        state: &str,
        record: &LoginState,
        now: Timestamp,
    ) -> Result<Result<(), &'static str>, StoreError> {
        let digest = state_digest(state);
        self.update_states(&self.state_slot_key(&digest), |slot| {
            let before = slot.len();
            slot.retain(|_, s| s.expires_at > now.secs);
            if slot.contains_key(&digest) {
                return (Err("this state is already in use"), slot.len() != before);
            }
            if slot.len() >= MAX_STATES_PER_SLOT {
                return (Err("too many logins in progress"), slot.len() != before);
            }
            slot.insert(digest.clone(), record.clone());
            (Ok(()), true)
        })
    }

    /// Removes and returns a live state of `client`: a second take finds nothing, and another
    /// client's attempt neither gets it nor uses it up.
    pub(crate) fn take_state(
        &self,
        state: &str,
        client: &str,
        now: Timestamp,
    ) -> Result<Option<LoginState>, StoreError> {
        let digest = state_digest(state);
        self.update_states(&self.state_slot_key(&digest), |slot| {
            let before = slot.len();
            slot.retain(|_, s| s.expires_at > now.secs);
            // Shown once: a state presented by another client is burnt too, so a leaked
            // state cannot be tried again (the Redis backend's GETDEL does the same).
            let taken = slot.remove(&digest).filter(|s| s.client == client);
            let changed = slot.len() != before;
            (taken, changed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::MemKv;

    fn store() -> KvSessionStore<&'static MemKv> {
        let kv: &'static MemKv = Box::leak(Box::default());
        let store = KvSessionStore::new(kv, "");
        store.ensure_slots().unwrap();
        store
    }

    fn record(expires_at: u64) -> LoginState {
        LoginState {
            client: "web".into(),
            redirect: Some("/home".into()),
            code_verifier: "verifier".into(),
            expires_at,
        }
    }

    const T: Timestamp = Timestamp {
        secs: 1_000,
        nanos: 0,
    };

    #[test]
    fn a_state_is_used_once_by_its_client() {
        let s = store();
        s.put_state("abc", &record(1_600), T).unwrap().unwrap();
        assert_eq!(
            s.take_state("abc", "web", T).unwrap(),
            Some(record(1_600)),
            "its client gets it"
        );
        assert_eq!(s.take_state("abc", "web", T).unwrap(), None, "once");
        s.put_state("def", &record(1_600), T).unwrap().unwrap();
        assert_eq!(
            s.take_state("def", "other", T).unwrap(),
            None,
            "another client gets nothing"
        );
        assert_eq!(
            s.take_state("def", "web", T).unwrap(),
            None,
            "and the state is burnt"
        );
        assert_eq!(s.take_state("never", "web", T).unwrap(), None);
    }

    #[test]
    fn an_expired_state_is_gone() {
        let s = store();
        s.put_state("abc", &record(1_600), T).unwrap().unwrap();
        assert_eq!(
            s.take_state("abc", "web", Timestamp::from_secs(1_600))
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_stored_state_is_never_replaced_and_slots_are_capped() {
        let s = store();
        s.put_state("mine", &record(1_600), T).unwrap().unwrap();
        let mut hijack = record(1_600);
        hijack.redirect = Some("/evil".into());
        assert!(s.put_state("mine", &hijack, T).unwrap().is_err());
        assert_eq!(s.take_state("mine", "web", T).unwrap(), Some(record(1_600)));
        // Fill one slot with states whose digests land in it.
        let slot_of = |st: &str| s.state_slot_key(&state_digest(st));
        let target = slot_of("seed");
        let same_slot: Vec<String> = (0..400_000)
            .map(|i| format!("s{i}"))
            .filter(|st| slot_of(st) == target)
            .take(MAX_STATES_PER_SLOT + 1)
            .collect();
        for st in &same_slot[..MAX_STATES_PER_SLOT] {
            s.put_state(st, &record(1_600), T).unwrap().unwrap();
        }
        let last = &same_slot[MAX_STATES_PER_SLOT];
        assert!(s.put_state(last, &record(1_600), T).unwrap().is_err());
        // Expired ones make room again.
        assert!(s
            .put_state(last, &record(1_800), Timestamp::from_secs(1_700))
            .unwrap()
            .is_ok());
    }

    #[test]
    fn states_and_pkce_are_random_and_well_formed() {
        let a = new_state(&[1; 16]);
        assert_eq!(a.len(), 22);
        assert_ne!(a, new_state(&[2; 16]));
        let (verifier, challenge) = new_pkce(&[7; 32]);
        assert_eq!(verifier.len(), 43);
        assert_eq!(
            challenge,
            b64(&hmac_sha256::Hash::hash(verifier.as_bytes()))
        );
        assert!(!format!("{:?}", record(1)).contains("verifier\""));
    }
}
