//! The Management API token, cached in the shared store so every worker uses one token, with a
//! lease so a burst of first requests on several workers makes one fetch, not a stampede.
//!
//! Keys under the scope prefix (both created with the session slots, so every write can be
//! compare-and-swapped):
//! - `mgmt/token`: `<use until, unix secs> <token>`;
//! - `mgmt/lease`: `<lease end, unix ms>` while a request fetches a token.

use super::kv::{ensure_key, kv_error, CasKv, KvError, StoreError};
use super::TokenGrant;
use crate::time::Timestamp;

/// When to stop using a token that lives `expires_in` seconds from `now`: shortly before it
/// expires (a tenth of its life, at most a minute), so a call never carries a dying token.
pub fn use_until(now: Timestamp, expires_in: u64) -> u64 {
    let margin = (expires_in / 10).min(60);
    now.secs.saturating_add(expires_in.saturating_sub(margin))
}

/// The Management API token and its fetch lease.
pub struct ManagementTokenLease<'a, K: ?Sized> {
    kv: &'a K,
    scope: &'a str,
}

impl<'a, K: CasKv + ?Sized> ManagementTokenLease<'a, K> {
    pub fn new(kv: &'a K, scope: &'a str) -> Self {
        ManagementTokenLease { kv, scope }
    }

    /// Creates both keys, so claiming the lease is a real compare-and-swap.
    pub fn ensure_keys(&self) -> Result<(), StoreError> {
        ensure_key(self.kv, &self.token_key())?;
        ensure_key(self.kv, &self.lease_key())
    }

    fn token_key(&self) -> String {
        format!("{}mgmt/token", self.scope)
    }

    fn lease_key(&self) -> String {
        format!("{}mgmt/lease", self.scope)
    }

    fn cached_token(&self, now: Timestamp) -> Result<Option<String>, StoreError> {
        let (value, _) = self.kv.get(&self.token_key()).map_err(kv_error)?;
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

    /// The cached token, or the right to fetch one for `lease_ms`, or a wait.
    pub fn acquire(&self, now: Timestamp, lease_ms: u64) -> Result<TokenGrant, StoreError> {
        if let Some(token) = self.cached_token(now)? {
            return Ok(TokenGrant::Ready(token));
        }
        let key = self.lease_key();
        let (value, cas) = self.kv.get(&key).map_err(kv_error)?;
        let lease_end = value
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if lease_end > now.millis() {
            return Ok(TokenGrant::Wait);
        }
        let claim = now.millis().saturating_add(lease_ms).to_string();
        match self.kv.set(&key, Some(claim.as_bytes()), cas.or(Some(0))) {
            // The previous holder may have saved its token and released the lease after our
            // first look: look again before fetching a second one.
            Ok(()) => match self.cached_token(now)? {
                Some(token) => {
                    // A lease left behind only delays a later refetch until it ends.
                    let _ = self.release();
                    Ok(TokenGrant::Ready(token))
                }
                None => Ok(TokenGrant::FetchIt),
            },
            // Another worker claimed it between our read and write.
            Err(KvError::CasMismatch) => Ok(TokenGrant::Wait),
            Err(e) => Err(kv_error(e)),
        }
    }

    /// Caches a fetched token until `use_until` (unix secs) and ends the lease.
    pub fn save(&self, token: &str, use_until: u64) -> Result<(), StoreError> {
        let value = format!("{use_until} {token}");
        self.kv
            .set(&self.token_key(), Some(value.as_bytes()), None)
            .map_err(kv_error)?;
        self.release()
    }

    /// Ends the lease without a token (the fetch failed).
    pub fn release(&self) -> Result<(), StoreError> {
        self.kv
            .set(&self.lease_key(), Some(b""), None)
            .map_err(kv_error)
    }

    /// Forgets `token` (Auth0 refused it) unless another worker already replaced it.
    pub fn drop_token(&self, token: &str) -> Result<(), StoreError> {
        let key = self.token_key();
        let (value, cas) = self.kv.get(&key).map_err(kv_error)?;
        let current = value
            .and_then(|v| String::from_utf8(v).ok())
            .unwrap_or_default();
        if current.split_once(' ').map(|(_, t)| t) != Some(token) {
            return Ok(());
        }
        match self.kv.set(&key, Some(b""), cas.or(Some(0))) {
            Ok(()) | Err(KvError::CasMismatch) => Ok(()),
            Err(e) => Err(kv_error(e)),
        }
    }
}

#[cfg(test)]
mod tests;
