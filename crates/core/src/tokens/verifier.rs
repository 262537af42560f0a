//! Where verification keys come from and how verified tokens are remembered.
//!
//! The root context fetches each tenant's JWKS (at start, every `jwksRefreshSeconds`, and when
//! a request meets an unknown `kid`, at most every few seconds) into the shared store, so all
//! workers use the same keys. Each worker keeps a `Verifier`: the parsed keys and a cache of
//! verification results.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;

use crate::jwt::{verify, Expectation, Jwks, Verified, VerifiedCache, VerifyError};
use crate::store::jwks::MIN_REFETCH_SECS;
use crate::time::Timestamp;

/// How long a request that met an unknown `kid` waits for the refetch: long enough for the
/// rate-limited refetch to land, then a made-up `kid` gives up.
pub const UNKNOWN_KEY_WAIT_MS: u64 = MIN_REFETCH_SECS * 1_000 + 2_000;

/// Most requests a worker lets wait for one tenant's keys at once after meeting an unknown
/// `kid`; another is refused at once. Each waiting request holds its connection and
/// polls, so without a cap a flood of tokens with made-up `kid`s holds as many as it sends.
pub const MAX_UNKNOWN_KEY_WAITERS: usize = 16;

/// A worker's parsed keys and verification cache.
#[derive(Default)]
pub struct Verifier {
    cache: VerifiedCache,
    keys: HashMap<String, (u32, Jwks)>,
    /// The claim namespaces of the configuration the cached entries were made under: their
    /// remembered groups come from those, so another configuration starts a new cache.
    namespaces: Vec<String>,
    /// Per issuer, the requests waiting for a refetch after an unknown `kid`: their token's
    /// SHA-256 digest and when the wait began (unix ms). At most `MAX_UNKNOWN_KEY_WAITERS`,
    /// forgotten once the token verifies or after `UNKNOWN_KEY_WAIT_MS`.
    waiting: HashMap<String, Vec<([u8; 32], u64)>>,
}

/// The stored JWKS of an issuer: version and document.
pub type JwksSource<'a> = &'a dyn Fn(&str) -> Option<(u32, Vec<u8>)>;

/// What a token is verified against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyAgainst {
    /// The access-token expectation of the configured client its `azp` names. A repeat check
    /// finds that client from the cached claims, without decoding the token again.
    TokenClient,
    /// This expectation (`/userinfo`: the client of the session).
    Expectation(Arc<Expectation>),
}

impl Verifier {
    /// Forgets this worker's last read of `token`'s session: a flow here ended it.
    pub fn forget_session_read(&self, token: &str) {
        self.cache.forget_session_read(token);
    }

    /// A request's first check of its token.
    pub fn verify(
        &mut self,
        token: &str,
        against: &VerifyAgainst,
        config: &Config,
        source: JwksSource<'_>,
        now: Timestamp,
    ) -> Result<Verified, VerifyError> {
        self.check(token, against, config, source, now, false)
    }

    /// The check again of a request that is waiting for a refetch of the keys: it already has
    /// its place among the waiting requests.
    pub fn verify_waiting(
        &mut self,
        token: &str,
        against: &VerifyAgainst,
        config: &Config,
        source: JwksSource<'_>,
        now: Timestamp,
    ) -> Result<Verified, VerifyError> {
        self.check(token, against, config, source, now, true)
    }

    fn check(
        &mut self,
        token: &str,
        against: &VerifyAgainst,
        config: &Config,
        source: JwksSource<'_>,
        now: Timestamp,
        waiting: bool,
    ) -> Result<Verified, VerifyError> {
        self.follow_namespaces(config);
        let expect = match against {
            VerifyAgainst::Expectation(expect) => {
                if let Some(hit) = self.cache.get(token, now, |e, _| e == &**expect) {
                    return Ok(hit);
                }
                Arc::clone(expect)
            }
            VerifyAgainst::TokenClient => {
                if let Some(hit) = self.remembered_for_token_client(token, config, now) {
                    return Ok(hit);
                }
                let client = config.client_of_token(token).ok_or(VerifyError::NoClient)?;
                Arc::clone(&client.access_expectation)
            }
        };
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
        match verify(token, jwks, &expect, now) {
            Ok(verified) => {
                self.cache.put(token, &expect, &verified, now);
                // A token that waited for a refetch and now verifies leaves the room at once;
                // one still waiting keeps its place until its wait ends, so no more than
                // `MAX_UNKNOWN_KEY_WAITERS` are ever held at the same time.
                if let Some(waiters) = self.waiting.get_mut(&expect.issuer) {
                    let digest = hmac_sha256::Hash::hash(token.as_bytes());
                    waiters.retain(|(waiter, _)| *waiter != digest);
                }
                Ok(verified)
            }
            Err(VerifyError::UnknownKey(kid)) => {
                if waiting || self.may_wait_for_keys(&expect.issuer, token, now) {
                    Err(VerifyError::UnknownKey(kid))
                } else {
                    Err(VerifyError::UnknownKeyNoWait)
                }
            }
            Err(error) => Err(error),
        }
    }

    /// A token this worker verified for the client its `azp` names, still unexpired, as the
    /// configuration now loaded expects it: what `verify` with `VerifyAgainst::TokenClient`
    /// answers from its cache, or `None` where that would need the token decoded.
    pub fn remembered(&mut self, token: &str, config: &Config, now: Timestamp) -> Option<Verified> {
        self.follow_namespaces(config);
        self.remembered_for_token_client(token, config, now)
    }

    fn remembered_for_token_client(
        &mut self,
        token: &str,
        config: &Config,
        now: Timestamp,
    ) -> Option<Verified> {
        // A hit still has to be the current configuration's expectation for the client its
        // `azp` names.
        let current = |e: &Expectation, v: &Verified| {
            v.authorized_party()
                .and_then(|azp| config.client_by_id(azp))
                .is_some_and(|c| *c.access_expectation == *e)
        };
        self.cache.get(token, now, current)
    }

    /// Cached entries remember groups read under the configuration's claim namespaces: other
    /// namespaces start the cache afresh.
    fn follow_namespaces(&mut self, config: &Config) {
        if self.namespaces != config.custom_claims_namespaces {
            self.cache = VerifiedCache::default();
            self.namespaces.clone_from(&config.custom_claims_namespaces);
        }
    }

    /// Whether a request whose token names an unknown `kid` may wait for the issuer's keys:
    /// fewer than `MAX_UNKNOWN_KEY_WAITERS` requests do (then it is counted, until its wait is
    /// over or its token verifies). Requests are counted, not tokens: copies of one token each
    /// take a place.
    fn may_wait_for_keys(&mut self, issuer: &str, token: &str, now: Timestamp) -> bool {
        let now_ms = now.millis();
        let waiters = self.waiting.entry(issuer.to_string()).or_default();
        waiters.retain(|(_, since)| now_ms < since.saturating_add(UNKNOWN_KEY_WAIT_MS));
        if waiters.len() >= MAX_UNKNOWN_KEY_WAITERS {
            return false;
        }
        waiters.push((hmac_sha256::Hash::hash(token.as_bytes()), now_ms));
        true
    }
}

#[cfg(test)]
mod tests;
