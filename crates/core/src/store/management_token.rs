//! The Management API token, cached in the shared store so every worker uses one token, with a
//! lease so a burst of first requests on several workers makes one fetch, not a stampede.
//!
//! Keys under the scope prefix (both created with the session slots, so every write can be
//! compare-and-swapped):
//! - `mgmt/token`: `<use until, unix secs> <token>`;
//! - `mgmt/lease`: `<lease end, unix ms>` while a request fetches a token.

use crate::store::{kv_error, CasKv, KvError, KvSessionStore, StoreError, TokenGrant};
use crate::time::Timestamp;

/// When to stop using a token that lives `expires_in` seconds from `now`: shortly before it
/// expires (a tenth of its life, at most a minute), so a call never carries a dying token.
pub fn use_until(now: Timestamp, expires_in: u64) -> u64 {
    let margin = (expires_in / 10).min(60);
    now.secs.saturating_add(expires_in.saturating_sub(margin))
}

impl<K: CasKv> KvSessionStore<K> {
    pub(crate) fn management_token_key(&self) -> String {
        format!("{}mgmt/token", self.scope())
    }

    pub(crate) fn management_lease_key(&self) -> String {
        format!("{}mgmt/lease", self.scope())
    }

    fn cached_token(&self, now: Timestamp) -> Result<Option<String>, StoreError> {
        let (value, _) = self
            .raw_kv()
            .get(&self.management_token_key())
            .map_err(kv_error)?;
        let text = value
            .and_then(|v| String::from_utf8(v).ok())
            .unwrap_or_default();
        Ok(text
            .split_once(' ')
            .filter(|(until, token)| {
                until.parse::<u64>().is_ok_and(|u| u > now.secs) && !token.is_empty()
            })
            .map(|(_, token)| token.to_string()))
    }

    pub(crate) fn acquire_token(
        &self,
        now: Timestamp,
        lease_ms: u64,
    ) -> Result<TokenGrant, StoreError> {
        if let Some(token) = self.cached_token(now)? {
            return Ok(TokenGrant::Ready(token));
        }
        let key = self.management_lease_key();
        let (value, cas) = self.raw_kv().get(&key).map_err(kv_error)?;
        let lease_end = value
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if lease_end > now.millis() {
            return Ok(TokenGrant::Wait);
        }
        let claim = now.millis().saturating_add(lease_ms).to_string();
        match self
            .raw_kv()
            .set(&key, Some(claim.as_bytes()), cas.or(Some(0)))
        {
            // The previous holder may have saved its token and released the lease after our
            // first look: look again before fetching a second one.
            Ok(()) => match self.cached_token(now)? {
                Some(token) => {
                    // A lease left behind only delays a later refetch until it ends.
                    let _ = self.release_lease();
                    Ok(TokenGrant::Ready(token))
                }
                None => Ok(TokenGrant::FetchIt),
            },
            // Another worker claimed it between our read and write.
            Err(KvError::CasMismatch) => Ok(TokenGrant::Wait),
            Err(e) => Err(kv_error(e)),
        }
    }

    pub(crate) fn save_token(&self, token: &str, use_until: u64) -> Result<(), StoreError> {
        let value = format!("{use_until} {token}");
        self.raw_kv()
            .set(&self.management_token_key(), Some(value.as_bytes()), None)
            .map_err(kv_error)?;
        self.release_lease()
    }

    pub(crate) fn release_lease(&self) -> Result<(), StoreError> {
        self.raw_kv()
            .set(&self.management_lease_key(), Some(b""), None)
            .map_err(kv_error)
    }

    pub(crate) fn drop_token(&self, token: &str) -> Result<(), StoreError> {
        let key = self.management_token_key();
        let (value, cas) = self.raw_kv().get(&key).map_err(kv_error)?;
        let current = value
            .and_then(|v| String::from_utf8(v).ok())
            .unwrap_or_default();
        if current.split_once(' ').map(|(_, t)| t) != Some(token) {
            return Ok(());
        }
        match self.raw_kv().set(&key, Some(b""), cas.or(Some(0))) {
            Ok(()) | Err(KvError::CasMismatch) => Ok(()),
            Err(e) => Err(kv_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::MemKv;
    use crate::store::SessionStore;

    fn store() -> KvSessionStore<&'static MemKv> {
        let kv: &'static MemKv = Box::leak(Box::default());
        let store = KvSessionStore::new(kv, "x:");
        store.ensure_slots().unwrap();
        store
    }

    const T: Timestamp = Timestamp {
        secs: 1_000,
        nanos: 0,
    };

    #[test]
    fn one_fetch_for_a_burst_then_everyone_shares_the_token() {
        let s = store();
        assert_eq!(
            s.acquire_management_token(T, 5_000).unwrap(),
            TokenGrant::FetchIt
        );
        for _ in 0..10 {
            assert_eq!(
                s.acquire_management_token(T, 5_000).unwrap(),
                TokenGrant::Wait
            );
        }
        s.save_management_token("tok-1", use_until(T, 86_400))
            .unwrap();
        assert_eq!(
            s.acquire_management_token(T, 5_000).unwrap(),
            TokenGrant::Ready("tok-1".into())
        );
    }

    #[test]
    fn a_stale_lease_lets_the_next_request_fetch() {
        let s = store();
        assert_eq!(
            s.acquire_management_token(T, 5_000).unwrap(),
            TokenGrant::FetchIt
        );
        let later = Timestamp {
            secs: 1_006,
            nanos: 0,
        };
        assert_eq!(
            s.acquire_management_token(later, 5_000).unwrap(),
            TokenGrant::FetchIt
        );
        s.release_management_token().unwrap();
        assert_eq!(
            s.acquire_management_token(later, 5_000).unwrap(),
            TokenGrant::FetchIt
        );
    }

    #[test]
    fn tokens_are_refetched_shortly_before_they_expire() {
        assert_eq!(use_until(T, 86_400), 1_000 + 86_400 - 60);
        assert_eq!(use_until(T, 30), 1_000 + 27);
        let s = store();
        s.save_management_token("tok", use_until(T, 30)).unwrap();
        assert!(matches!(
            s.acquire_management_token(Timestamp::from_secs(1_026), 1)
                .unwrap(),
            TokenGrant::Ready(_)
        ));
        assert_eq!(
            s.acquire_management_token(Timestamp::from_secs(1_027), 1)
                .unwrap(),
            TokenGrant::FetchIt
        );
    }

    #[test]
    fn dropping_a_refused_token_spares_a_newer_one() {
        let s = store();
        s.save_management_token("old", use_until(T, 86_400))
            .unwrap();
        s.drop_management_token("old").unwrap();
        assert_eq!(
            s.acquire_management_token(T, 1).unwrap(),
            TokenGrant::FetchIt
        );
        s.save_management_token("new", use_until(T, 86_400))
            .unwrap();
        s.drop_management_token("old").unwrap();
        assert_eq!(
            s.acquire_management_token(T, 1).unwrap(),
            TokenGrant::Ready("new".into())
        );
    }

    #[test]
    fn active_users_are_distinct_and_live() {
        use crate::store::{SessionKey, SessionRecord};
        let s = store();
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
            s.active_users(T).unwrap(),
            vec!["auth0|1".to_string(), "auth0|2".to_string()]
        );
    }
}
