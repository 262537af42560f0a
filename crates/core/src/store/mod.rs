//! Server-side sessions: what is stored for a logged-in user, the backend-neutral store trait,
//! and its implementation over any compare-and-swap key-value store (proxy-wasm shared data in
//! the host; a `HashMap` in tests).
//!
//! Flows never call a store directly: they return `StoreOp`s and receive `StoreOutcome`s, so a
//! store that answers asynchronously (Redis through a callout) fits the same flows.

pub mod management_token;
pub mod redis;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

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
    /// The ID token's profile: its standard profile claims and `customClaimsNamespaces`
    /// members, as Auth0's token endpoint gave them at login over the filter's own callout
    /// (OIDC Core 3.1.3.7 lets such a token be trusted without its signature). `/userinfo`
    /// answers from it and protected routes take the groups from it; the token itself, three
    /// times larger with its header and signature, is not kept.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::jwt::Claims>,
    /// Unix seconds after which the session is gone.
    #[serde(rename = "e")]
    pub expires_at: u64,
    /// A marker left where a session was ended (logout, refresh), kept while its access token
    /// could still be presented: that token is refused, not taken for one issued elsewhere.
    #[serde(rename = "x", default, skip_serializing_if = "std::ops::Not::not")]
    pub ended: bool,
}

impl SessionRecord {
    /// The marker of an ended session, kept until `until` (unix secs).
    pub fn ended_marker(until: u64) -> SessionRecord {
        SessionRecord {
            user_id: String::new(),
            client: String::new(),
            refresh_token: None,
            profile: None,
            expires_at: until,
            ended: true,
        }
    }
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user_id", &self.user_id)
            .field("client", &self.client)
            .field("expires_at", &self.expires_at)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

pub use crate::digest::SessionKey;

/// The slot a key's record lives in.
fn slot_of(key: &SessionKey) -> u32 {
    u32::from_str_radix(key.as_str().get(..4).unwrap_or("0"), 16).unwrap_or(0) % SLOTS
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    Get(SessionKey),
    Put(SessionKey, SessionRecord),
    /// Ends a session: removes it and leaves its ended marker until the given unix secs.
    Delete(SessionKey, u64),
    /// The distinct user ids with a live session.
    ActiveUsers,
    /// The cached Management API token, or the right to fetch it for `lease_ms`.
    AcquireManagementToken {
        lease_ms: u64,
    },
    /// Caches a fetched token until `use_until` (unix secs) and ends the lease.
    SaveManagementToken {
        token: String,
        use_until: u64,
    },
    /// Ends the lease without a token (the fetch failed).
    ReleaseManagementToken,
    /// Forgets `token` (Auth0 refused it) unless another worker already replaced it.
    DropManagementToken {
        token: String,
    },
    /// Asks the root context to refetch an issuer's JWKS (a token named an unknown `kid`).
    WantJwks {
        issuer: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// A live session, or none (never stored, expired, or its marker expired).
    Record(Option<SessionRecord>),
    /// A `Get` found the marker of a session that was ended: its token is refused.
    Ended,
    Done,
    /// A `Delete`'s answer: whether the session was still there. `false` means another request
    /// (a logout or refresh, perhaps on another replica) ended it first.
    Deleted(bool),
    Users(Vec<String>),
    ManagementToken(TokenGrant),
    /// The store refused the operation for a reason the caller can be told.
    Refused(String),
    Unavailable(String),
}

/// What a request gets when it asks for the Management API token.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenGrant {
    /// A cached token, still fresh.
    Ready(String),
    /// No fresh token, and this request now holds the lease: it fetches one.
    FetchIt,
    /// Another request holds the lease and is fetching: wait and ask again.
    Wait,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenGrant::Ready(_) => "Ready(***)",
            TokenGrant::FetchIt => "FetchIt",
            TokenGrant::Wait => "Wait",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

/// A session store. Implementations honour expiry on read and keep memory bounded by sweeping.
pub trait SessionStore {
    /// A live session or an ended session's marker (`ended`), unless expired.
    fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<SessionRecord>, StoreError>;
    fn put(&self, key: &SessionKey, record: &SessionRecord) -> Result<(), StoreError>;
    /// Replaces a session with its ended marker until `until`; whether a live session was
    /// there to end.
    fn delete(&self, key: &SessionKey, until: u64) -> Result<bool, StoreError>;
    fn active_users(&self, now: Timestamp) -> Result<Vec<String>, StoreError>;
    fn acquire_management_token(
        &self,
        now: Timestamp,
        lease_ms: u64,
    ) -> Result<TokenGrant, StoreError>;
    fn save_management_token(&self, token: &str, use_until: u64) -> Result<(), StoreError>;
    fn release_management_token(&self) -> Result<(), StoreError>;
    fn drop_management_token(&self, token: &str) -> Result<(), StoreError>;
    fn want_jwks(&self, issuer: &str, now: Timestamp) -> Result<(), StoreError>;

    fn execute(&self, op: &StoreOp, now: Timestamp) -> StoreOutcome {
        let done = |r: Result<(), StoreError>| r.map(|_| StoreOutcome::Done);
        let result = match op {
            StoreOp::Get(key) => self.get(key, now).map(|found| match found {
                Some(record) if record.ended => StoreOutcome::Ended,
                found => StoreOutcome::Record(found),
            }),
            StoreOp::Put(key, record) => done(self.put(key, record)),
            StoreOp::Delete(key, until) => self.delete(key, *until).map(StoreOutcome::Deleted),
            StoreOp::ActiveUsers => self.active_users(now).map(StoreOutcome::Users),
            StoreOp::AcquireManagementToken { lease_ms } => self
                .acquire_management_token(now, *lease_ms)
                .map(StoreOutcome::ManagementToken),
            StoreOp::SaveManagementToken { token, use_until } => {
                done(self.save_management_token(token, *use_until))
            }
            StoreOp::ReleaseManagementToken => done(self.release_management_token()),
            StoreOp::DropManagementToken { token } => done(self.drop_management_token(token)),
            StoreOp::WantJwks { issuer } => done(self.want_jwks(issuer, now)),
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

/// How many slot keys hold the sessions. Envoy's shared data cannot delete a key (setting
/// `None` keeps it with an empty value), so one key per session would grow forever. A fixed
/// set of slots, each holding the records whose key hashes to it, bounds the key count; with
/// 100k live sessions a slot holds about six records.
pub const SLOTS: u32 = 16_384;
const CAS_ATTEMPTS: usize = 16;

/// Sessions over a CAS key-value store.
///
/// Layout under the configured scope prefix:
/// - `<scope>s/<slot>`: a JSON object `{"<session key>": record, ...}`;
/// - `<scope>sweep`: `<next due unix secs> <next slot>`, the lease and cursor of the sweeper,
///   so one worker at a time sweeps the next batch of slots.
pub struct KvSessionStore<K> {
    kv: K,
    scope: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Expired records removed.
    pub removed: usize,
    /// Live sessions left in the slots swept (ended sessions' markers not counted).
    pub remaining: usize,
}

pub(crate) type Slot = crate::small_map::SmallMap<SessionRecord>;

/// What a read-modify-write does with the value it read.
enum Change {
    Keep,
    Write(Vec<u8>),
}

/// The record under `key` in a slot's JSON, skipping the slot's other records without building
/// them: a lookup is on the path of every protected request. Unreadable JSON reads as no
/// record, as in `parse_slot`.
pub(crate) fn record_in_slot(value: &[u8], key: &str) -> Option<SessionRecord> {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
    struct Find<'k>(&'k str);
    impl<'de> Visitor<'de> for Find<'_> {
        type Value = Option<SessionRecord>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a slot of session records")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(name) = map.next_key::<String>()? {
                if found.is_none() && name == self.0 {
                    found = Some(map.next_value::<SessionRecord>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    impl<'de> DeserializeSeed<'de> for Find<'_> {
        type Value = Option<SessionRecord>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    let mut json = serde_json::Deserializer::from_slice(value);
    Find(key).deserialize(&mut json).ok().flatten()
}

fn parse_slot(value: Option<&[u8]>) -> Slot {
    value
        .filter(|v| !v.is_empty())
        .and_then(|v| serde_json::from_slice(v).ok())
        .unwrap_or_default()
}

impl<K: CasKv> KvSessionStore<K> {
    pub fn new(kv: K, scope: &str) -> Self {
        KvSessionStore {
            kv,
            scope: scope.to_string(),
        }
    }

    pub(crate) fn raw_kv(&self) -> &K {
        &self.kv
    }

    pub(crate) fn scope(&self) -> &str {
        &self.scope
    }

    fn slot_key(&self, slot: u32) -> String {
        format!("{}s/{slot}", self.scope)
    }

    /// Creates the slot keys that do not exist yet (once per VM start). A set on a missing key
    /// cannot be compare-and-swapped, so every later write must find the key already there.
    /// An existing slot is never overwritten; VMs starting together at worst both write the
    /// same empty value.
    pub fn ensure_slots(&self) -> Result<(), StoreError> {
        let fixed = [self.management_token_key(), self.management_lease_key()];
        for key in (0..SLOTS).map(|slot| self.slot_key(slot)).chain(fixed) {
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
        mut change: impl FnMut(Slot) -> (Slot, bool),
    ) -> Result<(), StoreError> {
        for _ in 0..CAS_ATTEMPTS {
            let (current, cas) = self.kv.get(key).map_err(kv_error)?;
            let (next, changed) = change(parse_slot(current.as_deref()));
            let write = match changed {
                false => Change::Keep,
                true if next.is_empty() => Change::Write(Vec::new()),
                true => {
                    Change::Write(serde_json::to_vec(&next).map_err(|e| StoreError(e.to_string()))?)
                }
            };
            let Change::Write(bytes) = write else {
                return Ok(());
            };
            match self.kv.set(key, Some(&bytes), cas.or(Some(0))) {
                Ok(()) => return Ok(()),
                Err(KvError::CasMismatch) => continue,
                Err(e) => return Err(kv_error(e)),
            }
        }
        Err(StoreError(format!("{key}: too much contention")))
    }

    /// Claims the next batch of slots to sweep if one is due. Batches are one second apart and
    /// sized so a full pass over every slot takes `pass_secs`.
    pub fn claim_sweep(&self, now: Timestamp, pass_secs: u64) -> Option<std::ops::Range<u32>> {
        let key = format!("{}sweep", self.scope);
        let (current, cas) = self.kv.get(&key).ok()?;
        let text = current
            .and_then(|v| String::from_utf8(v).ok())
            .unwrap_or_default();
        let mut parts = text.split(' ');
        let due = parts
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let cursor = parts
            .next()
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
            % SLOTS;
        if now.secs < due {
            return None;
        }
        let batch = u32::try_from(u64::from(SLOTS).div_ceil(pass_secs.max(1)))
            .unwrap_or(SLOTS)
            .max(1);
        let end = cursor.saturating_add(batch).min(SLOTS);
        let next = format!("{} {}", now.secs.saturating_add(1), end % SLOTS);
        self.kv
            .set(&key, Some(next.as_bytes()), cas.or(Some(0)))
            .ok()?;
        Some(cursor..end)
    }

    /// Adds the live records left in a swept range to the pass's running count; at the end of
    /// a pass over every slot, returns the pass's total (the live sessions) and starts again.
    pub fn record_sweep(&self, slots: &std::ops::Range<u32>, remaining: usize) -> Option<u64> {
        let key = format!("{}sweep-live", self.scope);
        for _ in 0..CAS_ATTEMPTS {
            let (current, cas) = self.kv.get(&key).ok()?;
            let so_far = current
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let total = so_far.saturating_add(remaining as u64);
            let (keep, finished) = if slots.end >= SLOTS {
                (0, Some(total))
            } else {
                (total, None)
            };
            match self
                .kv
                .set(&key, Some(keep.to_string().as_bytes()), cas.or(Some(0)))
            {
                Ok(()) => return finished,
                Err(KvError::CasMismatch) => continue,
                Err(KvError::Failed(_)) => return None,
            }
        }
        None
    }

    /// Removes the expired records of a range of slots.
    pub fn sweep(&self, slots: std::ops::Range<u32>, now: Timestamp) -> SweepStats {
        let mut stats = SweepStats::default();
        for slot in slots {
            let mut removed = 0;
            let mut remaining = 0;
            let result = self.update(&self.slot_key(slot), |mut records| {
                let before = records.len();
                records.retain(|_, r| r.expires_at > now.secs);
                removed = before - records.len();
                // Ended sessions' markers are kept, but are no live session.
                remaining = records.values().filter(|r| !r.ended).count();
                (records, removed > 0)
            });
            // A contended slot is swept on the next pass.
            if result.is_ok() {
                stats.removed += removed;
                stats.remaining += remaining;
            }
        }
        stats
    }
}

pub(crate) fn kv_error(e: KvError) -> StoreError {
    match e {
        KvError::CasMismatch => StoreError("concurrent update".into()),
        KvError::Failed(m) => StoreError(m),
    }
}

impl<K: CasKv> SessionStore for KvSessionStore<K> {
    fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<SessionRecord>, StoreError> {
        let (value, _) = self
            .kv
            .get(&self.slot_key(slot_of(key)))
            .map_err(kv_error)?;
        let record = value.and_then(|v| record_in_slot(&v, key.as_str()));
        Ok(record.filter(|r| r.expires_at > now.secs))
    }

    fn put(&self, key: &SessionKey, record: &SessionRecord) -> Result<(), StoreError> {
        self.update(&self.slot_key(slot_of(key)), |mut records| {
            records.insert(key.as_str().to_string(), record.clone());
            (records, true)
        })
    }

    fn delete(&self, key: &SessionKey, until: u64) -> Result<bool, StoreError> {
        // Set on every CAS attempt: the last (successful) one decides.
        let mut removed = false;
        self.update(&self.slot_key(slot_of(key)), |mut records| {
            let marker = SessionRecord::ended_marker(until);
            removed = records
                .insert(key.as_str().to_string(), marker)
                .is_some_and(|previous| !previous.ended);
            (records, true)
        })?;
        Ok(removed)
    }

    fn active_users(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
        let mut users = Vec::new();
        for slot in 0..SLOTS {
            let (value, _) = self.kv.get(&self.slot_key(slot)).map_err(kv_error)?;
            for record in parse_slot(value.as_deref()).into_values() {
                if record.expires_at > now.secs && !record.ended {
                    users.push(record.user_id);
                }
            }
        }
        // Sorted and without repeats, as the original's list of users with sessions.
        users.sort();
        users.dedup();
        Ok(users)
    }

    fn acquire_management_token(
        &self,
        now: Timestamp,
        lease_ms: u64,
    ) -> Result<TokenGrant, StoreError> {
        self.acquire_token(now, lease_ms)
    }

    fn save_management_token(&self, token: &str, use_until: u64) -> Result<(), StoreError> {
        self.save_token(token, use_until)
    }

    fn release_management_token(&self) -> Result<(), StoreError> {
        self.release_lease()
    }

    fn drop_management_token(&self, token: &str) -> Result<(), StoreError> {
        self.drop_token(token)
    }

    fn want_jwks(&self, issuer: &str, now: Timestamp) -> Result<(), StoreError> {
        KvSessionStore::want_jwks(self, issuer, now)
    }
}

#[cfg(test)]
pub(crate) mod tests;
