//! The tenants' JWKS in the shared store. The root context fetches each tenant's keys (at
//! start, every `jwksRefreshSeconds`, and when a request meets an unknown `kid`, at most every
//! `MIN_REFETCH_SECS`) so every worker verifies with the same keys; a lease per tenant makes
//! one worker fetch.

use super::kv::{ensure_key, kv_error, number, CasKv, StoreError};
use crate::time::Timestamp;

/// A forced refetch (unknown `kid`) happens at most this often per tenant.
pub const MIN_REFETCH_SECS: u64 = 1;

/// Whether a tenant's JWKS should be fetched now.
pub fn jwks_fetch_due(
    now: u64,
    fetched_at: Option<u64>,
    wanted_at: Option<u64>,
    refresh_secs: u64,
) -> bool {
    match fetched_at {
        None => true,
        Some(fetched) => {
            now >= fetched.saturating_add(refresh_secs)
                // Times are whole seconds: a want in the second of the fetch may be newer.
                || (wanted_at.is_some_and(|w| w >= fetched)
                    && now >= fetched.saturating_add(MIN_REFETCH_SECS))
        }
    }
}

/// The tenants' signing keys as fetched by the root contexts, with their fetch leases and the
/// requests' asks for a refetch.
pub struct JwksCache<'a, K: ?Sized> {
    kv: &'a K,
    scope: &'a str,
}

impl<'a, K: CasKv + ?Sized> JwksCache<'a, K> {
    pub fn new(kv: &'a K, scope: &'a str) -> Self {
        JwksCache { kv, scope }
    }

    fn jwks_key(&self, what: &str, issuer: &str) -> String {
        let digest = hmac_sha256::Hash::hash(issuer.as_bytes());
        let digest = crate::digest::hex(digest.get(..8).unwrap_or_default());
        format!("{}jwks/{what}/{digest}", self.scope)
    }

    /// The stored JWKS of an issuer: its version (the store's CAS), the document, and when it
    /// was fetched.
    pub fn document(&self, issuer: &str) -> Result<Option<(u32, Vec<u8>, u64)>, StoreError> {
        let (value, cas) = self
            .kv
            .get(&self.jwks_key("doc", issuer))
            .map_err(kv_error)?;
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let Some(split) = value.iter().position(|b| *b == b'\n') else {
            return Ok(None);
        };
        let fetched_at = std::str::from_utf8(value.get(..split).unwrap_or_default())
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        Ok(Some((
            cas.unwrap_or(0),
            value.get(split + 1..).unwrap_or_default().to_vec(),
            fetched_at,
        )))
    }

    /// What a verification reads of the stored JWKS of an issuer: its version and document
    /// (a store that cannot answer has none).
    pub fn source(&self, issuer: &str) -> Option<(u32, Vec<u8>)> {
        self.document(issuer)
            .ok()
            .flatten()
            .map(|(version, document, _)| (version, document))
    }

    pub fn put(&self, issuer: &str, document: &[u8], now: Timestamp) -> Result<(), StoreError> {
        let mut value = format!("{}\n", now.secs).into_bytes();
        value.extend_from_slice(document);
        self.kv
            .set(&self.jwks_key("doc", issuer), Some(&value), None)
            .map_err(kv_error)?;
        self.kv
            .set(&self.jwks_key("lease", issuer), Some(b""), None)
            .map_err(kv_error)
    }

    /// Creates the issuer's fetch-lease key if it is missing, so claiming it is a real
    /// compare-and-swap (writing a missing key in shared data ignores the CAS).
    pub fn ensure_keys(&self, issuer: &str) -> Result<(), StoreError> {
        ensure_key(self.kv, &self.jwks_key("lease", issuer))
    }

    /// A request met a `kid` the stored keys lack: ask the root for a refetch.
    pub fn want(&self, issuer: &str, now: Timestamp) -> Result<(), StoreError> {
        self.kv
            .set(
                &self.jwks_key("want", issuer),
                Some(now.secs.to_string().as_bytes()),
                None,
            )
            .map_err(kv_error)
    }

    /// True when this root should fetch the issuer's JWKS now (due, and the lease taken).
    pub fn claim_fetch(
        &self,
        issuer: &str,
        now: Timestamp,
        refresh_secs: u64,
        lease_ms: u64,
    ) -> bool {
        let fetched_at = self.document(issuer).ok().flatten().map(|(_, _, at)| at);
        let wanted_at = self
            .kv
            .get(&self.jwks_key("want", issuer))
            .ok()
            .and_then(|(v, _)| number(v));
        if !jwks_fetch_due(now.secs, fetched_at, wanted_at, refresh_secs) {
            return false;
        }
        let key = self.jwks_key("lease", issuer);
        let Ok((value, cas)) = self.kv.get(&key) else {
            return false;
        };
        if number(value).is_some_and(|until| until > now.millis()) {
            return false;
        }
        let until = now.millis().saturating_add(lease_ms).to_string();
        self.kv
            .set(&key, Some(until.as_bytes()), cas.or(Some(0)))
            .is_ok()
    }
}

#[cfg(test)]
mod tests;
