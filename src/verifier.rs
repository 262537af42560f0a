//! Where verification keys come from and how verified tokens are remembered.
//!
//! The root context fetches each tenant's JWKS (at start, every `jwksRefreshSeconds`, and when
//! a request meets an unknown `kid`, at most every few seconds) into the shared store, so all
//! workers use the same keys. Each worker keeps a `Verifier`: the parsed keys and a cache of
//! verification results.

use std::collections::HashMap;

use crate::jwt::{verify, Expectation, Jwks, Verified, VerifiedCache, VerifyError};
use crate::session::{kv_error, CasKv, KvSessionStore, StoreError};
use crate::timefmt::Timestamp;

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

fn number(value: Option<Vec<u8>>) -> Option<u64> {
    value
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.trim().parse().ok())
}

impl<K: CasKv> KvSessionStore<K> {
    fn jwks_key(&self, what: &str, issuer: &str) -> String {
        let digest = hmac_sha256::Hash::hash(issuer.as_bytes());
        let digest = crate::session::hex(digest.get(..8).unwrap_or_default());
        format!("{}jwks/{what}/{digest}", self.scope())
    }

    /// The stored JWKS of an issuer: its version (the store's CAS), the document, and when it
    /// was fetched.
    pub fn jwks(&self, issuer: &str) -> Result<Option<(u32, Vec<u8>, u64)>, StoreError> {
        let (value, cas) = self
            .raw_kv()
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

    pub fn put_jwks(
        &self,
        issuer: &str,
        document: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut value = format!("{}\n", now.secs).into_bytes();
        value.extend_from_slice(document);
        self.raw_kv()
            .set(&self.jwks_key("doc", issuer), Some(&value), None)
            .map_err(kv_error)?;
        self.raw_kv()
            .set(&self.jwks_key("lease", issuer), Some(b""), None)
            .map_err(kv_error)
    }

    /// Creates the issuer's fetch-lease key if it is missing, so claiming it is a real
    /// compare-and-swap (writing a missing key in shared data ignores the CAS).
    pub fn ensure_jwks_keys(&self, issuer: &str) -> Result<(), StoreError> {
        let key = self.jwks_key("lease", issuer);
        let (_, cas) = self.raw_kv().get(&key).map_err(kv_error)?;
        if cas.is_none() {
            self.raw_kv().set(&key, Some(b""), None).map_err(kv_error)?;
        }
        Ok(())
    }

    /// A request met a `kid` the stored keys lack: ask the root for a refetch.
    pub fn want_jwks(&self, issuer: &str, now: Timestamp) -> Result<(), StoreError> {
        self.raw_kv()
            .set(
                &self.jwks_key("want", issuer),
                Some(now.secs.to_string().as_bytes()),
                None,
            )
            .map_err(kv_error)
    }

    /// True when this root should fetch the issuer's JWKS now (due, and the lease taken).
    pub fn claim_jwks_fetch(
        &self,
        issuer: &str,
        now: Timestamp,
        refresh_secs: u64,
        lease_ms: u64,
    ) -> bool {
        let fetched_at = self.jwks(issuer).ok().flatten().map(|(_, _, at)| at);
        let wanted_at = self
            .raw_kv()
            .get(&self.jwks_key("want", issuer))
            .ok()
            .and_then(|(v, _)| number(v));
        if !jwks_fetch_due(now.secs, fetched_at, wanted_at, refresh_secs) {
            return false;
        }
        let key = self.jwks_key("lease", issuer);
        let Ok((value, cas)) = self.raw_kv().get(&key) else {
            return false;
        };
        if number(value).is_some_and(|until| until > now.millis()) {
            return false;
        }
        let until = now.millis().saturating_add(lease_ms).to_string();
        self.raw_kv()
            .set(&key, Some(until.as_bytes()), cas.or(Some(0)))
            .is_ok()
    }
}

/// A worker's parsed keys and verification cache.
#[derive(Default)]
pub struct Verifier {
    cache: VerifiedCache,
    keys: HashMap<String, (u32, Jwks)>,
}

/// The stored JWKS of an issuer: version and document.
pub type JwksSource<'a> = &'a dyn Fn(&str) -> Option<(u32, Vec<u8>)>;

impl Verifier {
    pub fn verify(
        &mut self,
        token: &str,
        expect: &Expectation,
        source: JwksSource<'_>,
        now: Timestamp,
    ) -> Result<Verified, VerifyError> {
        if let Some(hit) = self.cache.get(token, expect, now) {
            return Ok(hit);
        }
        let (version, document) = source(&expect.issuer).ok_or(VerifyError::NoKeys)?;
        let current = self
            .keys
            .get(&expect.issuer)
            .is_some_and(|(v, _)| *v == version);
        if !current {
            let jwks = Jwks::parse(&document).map_err(|_| VerifyError::NoKeys)?;
            self.keys.insert(expect.issuer.clone(), (version, jwks));
        }
        let jwks = self
            .keys
            .get(&expect.issuer)
            .map(|(_, k)| k)
            .ok_or(VerifyError::NoKeys)?;
        let verified = verify(token, jwks, expect, now)?;
        self.cache.put(token, expect, &verified, now);
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::MemKv;

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
        let store = KvSessionStore::new(kv, "");
        let now = Timestamp::from_secs(1_000);
        assert!(store.claim_jwks_fetch("https://t/", now, 600, 5_000));
        assert!(
            !store.claim_jwks_fetch("https://t/", now, 600, 5_000),
            "leased"
        );
        store
            .put_jwks("https://t/", br#"{"keys":[]}"#, now)
            .unwrap();
        let (_, document, fetched_at) = store.jwks("https://t/").unwrap().unwrap();
        assert_eq!(
            (document.as_slice(), fetched_at),
            (&br#"{"keys":[]}"#[..], 1_000)
        );
        assert!(!store.claim_jwks_fetch("https://t/", Timestamp::from_secs(1_010), 600, 5_000));
        store
            .want_jwks("https://t/", Timestamp::from_secs(1_010))
            .unwrap();
        assert!(store.claim_jwks_fetch("https://t/", Timestamp::from_secs(1_010), 600, 5_000));
    }
}
