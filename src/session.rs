//! Server-side sessions: what is stored for a logged-in user, the backend-neutral store trait,
//! and its implementation over any compare-and-swap key-value store (proxy-wasm shared data in
//! the host; a `HashMap` in tests).
//!
//! Flows never call a store directly: they return `StoreOp`s and receive `StoreOutcome`s, so a
//! store that answers asynchronously (Redis through a callout) fits the same flows.

use serde::{Deserialize, Serialize};

use crate::timefmt::Timestamp;

/// A stored session. The key is a hash of the access token (the `sid` cookie value), never
/// the token itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    #[serde(rename = "u")]
    pub user_id: String,
    #[serde(rename = "c")]
    pub client: String,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Unix seconds after which the session is gone.
    #[serde(rename = "e")]
    pub expires_at: u64,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user_id", &self.user_id)
            .field("client", &self.client)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Hex SHA-256 of the token a session is found by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(String);

impl SessionKey {
    pub fn for_token(token: &str) -> SessionKey {
        let digest = hmac_sha256::Hash::hash(token.as_bytes());
        SessionKey(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn bucket(&self) -> u32 {
        u32::from_str_radix(self.0.get(..3).unwrap_or("0"), 16).unwrap_or(0) % INDEX_BUCKETS
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    Get(SessionKey),
    Put(SessionKey, SessionRecord),
    Delete(SessionKey),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    Record(Option<SessionRecord>),
    Done,
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

/// A session store. Implementations honour expiry on read and keep memory bounded by sweeping.
pub trait SessionStore {
    fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<SessionRecord>, StoreError>;
    fn put(&self, key: &SessionKey, record: &SessionRecord) -> Result<(), StoreError>;
    fn delete(&self, key: &SessionKey) -> Result<(), StoreError>;

    fn execute(&self, op: &StoreOp, now: Timestamp) -> StoreOutcome {
        let result = match op {
            StoreOp::Get(key) => self.get(key, now).map(StoreOutcome::Record),
            StoreOp::Put(key, record) => self.put(key, record).map(|_| StoreOutcome::Done),
            StoreOp::Delete(key) => self.delete(key).map(|_| StoreOutcome::Done),
        };
        result.unwrap_or_else(|e| StoreOutcome::Unavailable(e.0))
    }
}

/// The primitive every key-value backend offers: read with a version, write if the version
/// still matches.
pub trait CasKv {
    /// Value and version of a key; `(None, _)` when absent.
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), KvError>;
    /// Writes (or with `None` deletes) a key; `cas` of `Some(v)` fails with `CasMismatch` if
    /// the key changed since version `v` was read.
    fn set(&self, key: &str, value: Option<&[u8]>, cas: Option<u32>) -> Result<(), KvError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    CasMismatch,
    Failed(String),
}

/// How many index buckets list the sessions for the sweeper. Many small buckets keep the
/// read-modify-write of a login cheap even with 100k live sessions.
pub const INDEX_BUCKETS: u32 = 1024;
const CAS_ATTEMPTS: usize = 16;

/// Sessions over a CAS key-value store.
///
/// Layout under the configured scope prefix:
/// - `<scope>s/<key>`: the JSON record;
/// - `<scope>i/<bucket>`: lines `<key> <expires_at>` naming every record written, so the
///   sweeper can find and remove expired ones (the KV itself has no expiry or listing);
/// - `<scope>sweep`: the time the next sweep is due, so one worker sweeps at a time.
pub struct KvSessionStore<K> {
    kv: K,
    scope: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    pub removed: usize,
    pub remaining: usize,
}

impl<K: CasKv> KvSessionStore<K> {
    pub fn new(kv: K, scope: &str) -> Self {
        KvSessionStore {
            kv,
            scope: scope.to_string(),
        }
    }

    fn record_key(&self, key: &SessionKey) -> String {
        format!("{}s/{}", self.scope, key.as_str())
    }

    fn index_key(&self, bucket: u32) -> String {
        format!("{}i/{bucket}", self.scope)
    }

    /// Creates the empty index buckets that do not exist yet. Run once per VM start: a bucket
    /// that exists is never overwritten, so only VMs starting together can race, before any
    /// session exists.
    pub fn ensure_index(&self) -> Result<(), StoreError> {
        for bucket in 0..INDEX_BUCKETS {
            let key = self.index_key(bucket);
            let (_, cas) = self.kv.get(&key).map_err(kv_error)?;
            if cas.is_none() {
                self.kv.set(&key, Some(b""), None).map_err(kv_error)?;
            }
        }
        Ok(())
    }

    /// Read-modify-write of one key with CAS retries. `change` may run several times.
    fn update(
        &self,
        key: &str,
        mut change: impl FnMut(Option<&[u8]>) -> Change,
    ) -> Result<(), StoreError> {
        for _ in 0..CAS_ATTEMPTS {
            let (current, cas) = self.kv.get(key).map_err(kv_error)?;
            let next = match change(current.as_deref()) {
                Change::Keep => return Ok(()),
                Change::Write(next) => next,
            };
            match self.kv.set(key, next.as_deref(), cas.or(Some(0))) {
                Ok(()) => return Ok(()),
                Err(KvError::CasMismatch) => continue,
                Err(e) => return Err(kv_error(e)),
            }
        }
        Err(StoreError(format!("{key}: too much contention")))
    }

    /// Claims the next sweep if it is due; true when this caller should sweep now.
    pub fn claim_sweep(&self, now: Timestamp, interval_secs: u64) -> bool {
        let key = format!("{}sweep", self.scope);
        let Ok((current, cas)) = self.kv.get(&key) else {
            return false;
        };
        let due = current
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if now.secs < due {
            return false;
        }
        let next = now.secs.saturating_add(interval_secs).to_string();
        self.kv
            .set(&key, Some(next.as_bytes()), cas.or(Some(0)))
            .is_ok()
    }

    /// Removes every record whose expiry has passed, and its index line.
    pub fn sweep(&self, now: Timestamp) -> SweepStats {
        let mut stats = SweepStats::default();
        for bucket in 0..INDEX_BUCKETS {
            let mut expired: Vec<String> = Vec::new();
            let mut kept_lines = 0;
            let swept = self.update(&self.index_key(bucket), |current| {
                let text = current
                    .and_then(|c| std::str::from_utf8(c).ok())
                    .unwrap_or("");
                let (kept, gone) = split_index(text, now.secs);
                kept_lines = kept.lines().count();
                expired = gone;
                if expired.is_empty() {
                    Change::Keep
                } else {
                    Change::Write(Some(kept.into_bytes()))
                }
            });
            if swept.is_err() {
                // Contended: the next sweep gets it.
                continue;
            }
            stats.remaining += kept_lines;
            for key in expired {
                let record_key = format!("{}s/{key}", self.scope);
                // Remove the record unless it was re-written with a later expiry.
                let _ = self.update(&record_key, |current| {
                    match current.and_then(|c| serde_json::from_slice::<SessionRecord>(c).ok()) {
                        Some(r) if r.expires_at > now.secs => Change::Keep,
                        None if current.is_none() => Change::Keep,
                        _ => Change::Write(None),
                    }
                });
                stats.removed += 1;
            }
        }
        stats
    }
}

/// What a read-modify-write does with the value it read.
enum Change {
    Keep,
    Write(Option<Vec<u8>>),
}

/// Splits index lines into those still live and the keys of the expired ones.
fn split_index(text: &str, now_secs: u64) -> (String, Vec<String>) {
    let mut kept = String::with_capacity(text.len());
    let mut expired = Vec::new();
    for line in text.lines() {
        let Some((key, expiry)) = line.split_once(' ') else {
            continue;
        };
        match expiry.parse::<u64>() {
            Ok(e) if e > now_secs => {
                kept.push_str(line);
                kept.push('\n');
            }
            _ => expired.push(key.to_string()),
        }
    }
    (kept, expired)
}

fn kv_error(e: KvError) -> StoreError {
    match e {
        KvError::CasMismatch => StoreError("concurrent update".into()),
        KvError::Failed(m) => StoreError(m),
    }
}

impl<K: CasKv> SessionStore for KvSessionStore<K> {
    fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<SessionRecord>, StoreError> {
        let (value, _) = self.kv.get(&self.record_key(key)).map_err(kv_error)?;
        let record = value
            .filter(|v| !v.is_empty())
            .and_then(|v| serde_json::from_slice::<SessionRecord>(&v).ok());
        Ok(record.filter(|r| r.expires_at > now.secs))
    }

    fn put(&self, key: &SessionKey, record: &SessionRecord) -> Result<(), StoreError> {
        let json = serde_json::to_vec(record).map_err(|e| StoreError(e.to_string()))?;
        let line = format!("{} {}\n", key.as_str(), record.expires_at);
        self.update(&self.index_key(key.bucket()), |current| {
            let mut next = current.map(<[u8]>::to_vec).unwrap_or_default();
            next.extend_from_slice(line.as_bytes());
            Change::Write(Some(next))
        })?;
        self.kv
            .set(&self.record_key(key), Some(&json), None)
            .map_err(kv_error)
    }

    fn delete(&self, key: &SessionKey) -> Result<(), StoreError> {
        // The index line stays until its expiry passes; the sweeper then finds no record.
        self.kv
            .set(&self.record_key(key), None, None)
            .map_err(kv_error)
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
pub(crate) mod tests;
