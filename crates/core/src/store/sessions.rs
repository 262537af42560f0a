//! Sessions: what is stored for a logged-in user, in a fixed set of slot keys of a CAS
//! key-value store, and the sweep that keeps the store bounded.

use serde::{Deserialize, Serialize};

use super::kv::{ensure_key, kv_error, CasKv, KvError, StoreError};
use crate::digest::SessionKey;
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

/// The slot a key's record lives in.
fn slot_of(key: &SessionKey) -> u32 {
    u32::from_str_radix(key.as_str().get(..4).unwrap_or("0"), 16).unwrap_or(0) % SLOTS
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
pub struct Sessions<'a, K: ?Sized> {
    kv: &'a K,
    scope: &'a str,
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

impl<'a, K: CasKv + ?Sized> Sessions<'a, K> {
    pub fn new(kv: &'a K, scope: &'a str) -> Self {
        Sessions { kv, scope }
    }

    fn slot_key(&self, slot: u32) -> String {
        format!("{}s/{slot}", self.scope)
    }

    /// Creates the slot keys that do not exist yet (once per VM start). A set on a missing key
    /// cannot be compare-and-swapped, so every later write must find the key already there.
    /// An existing slot is never overwritten; VMs starting together at worst both write the
    /// same empty value.
    pub fn ensure_slots(&self) -> Result<(), StoreError> {
        (0..SLOTS).try_for_each(|slot| ensure_key(self.kv, &self.slot_key(slot)))
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

impl<K: CasKv + ?Sized> Sessions<'_, K> {
    /// A live session or an ended session's marker (`ended`), unless expired.
    pub fn get(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let (value, _) = self
            .kv
            .get(&self.slot_key(slot_of(key)))
            .map_err(kv_error)?;
        let record = value.and_then(|v| record_in_slot(&v, key.as_str()));
        Ok(record.filter(|r| r.expires_at > now.secs))
    }

    pub fn put(&self, key: &SessionKey, record: &SessionRecord) -> Result<(), StoreError> {
        self.update(&self.slot_key(slot_of(key)), |mut records| {
            records.insert(key.as_str().to_string(), record.clone());
            (records, true)
        })
    }

    /// Replaces a session with its ended marker until `until`; whether a live session was
    /// there to end.
    pub fn delete(&self, key: &SessionKey, until: u64) -> Result<bool, StoreError> {
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

    /// The distinct user ids with a live session.
    pub fn active_users(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
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
}

#[cfg(test)]
mod tests;
