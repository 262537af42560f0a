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

/// A `state` value: 128 random bits, URL-safe.
pub fn new_state(entropy: &[u8; 32]) -> String {
    b64(entropy.get(..16).unwrap_or(entropy))
}

/// A PKCE verifier (RFC 7636: 43 characters from 256 bits) and its S256 challenge.
pub fn new_pkce(entropy: &[u8; 32]) -> (String, String) {
    let verifier = b64(&hmac_sha256::Hash::hash(entropy));
    let challenge = b64(&hmac_sha256::Hash::hash(verifier.as_bytes()));
    (verifier, challenge)
}

fn state_digest(state: &str) -> String {
    hmac_sha256::Hash::hash(state.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

type Slot = std::collections::BTreeMap<String, LoginState>;

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

    pub(crate) fn put_state(
        &self,
        state: &str,
        record: &LoginState,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let digest = state_digest(state);
        self.update_states(&self.state_slot_key(&digest), |slot| {
            slot.retain(|_, s| s.expires_at > now.secs);
            slot.insert(digest.clone(), record.clone());
            ((), true)
        })
    }

    /// Removes and returns a live state: a second take of the same state finds nothing.
    pub(crate) fn take_state(
        &self,
        state: &str,
        now: Timestamp,
    ) -> Result<Option<LoginState>, StoreError> {
        let digest = state_digest(state);
        self.update_states(&self.state_slot_key(&digest), |slot| {
            let before = slot.len();
            slot.retain(|_, s| s.expires_at > now.secs);
            let taken = slot.remove(&digest);
            let changed = slot.len() != before || taken.is_some();
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
    fn a_state_is_used_once() {
        let s = store();
        s.put_state("abc", &record(1_600), T).unwrap();
        assert_eq!(s.take_state("abc", T).unwrap(), Some(record(1_600)));
        assert_eq!(s.take_state("abc", T).unwrap(), None);
        assert_eq!(s.take_state("never", T).unwrap(), None);
    }

    #[test]
    fn an_expired_state_is_gone() {
        let s = store();
        s.put_state("abc", &record(1_600), T).unwrap();
        assert_eq!(
            s.take_state("abc", Timestamp::from_secs(1_600)).unwrap(),
            None
        );
    }

    #[test]
    fn states_and_pkce_are_random_and_well_formed() {
        let a = new_state(&[1; 32]);
        assert_eq!(a.len(), 22);
        assert_ne!(a, new_state(&[2; 32]));
        let (verifier, challenge) = new_pkce(&[7; 32]);
        assert_eq!(verifier.len(), 43);
        assert_eq!(
            challenge,
            b64(&hmac_sha256::Hash::hash(verifier.as_bytes()))
        );
        assert!(!format!("{:?}", record(1)).contains("verifier\""));
    }
}
