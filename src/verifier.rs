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
use crate::session::{kv_error, CasKv, KvSessionStore, StoreError};
use crate::timefmt::Timestamp;

/// A forced refetch (unknown `kid`) happens at most this often per tenant.
pub const MIN_REFETCH_SECS: u64 = 1;

/// How long a request that met an unknown `kid` waits for the refetch: long enough for the
/// rate-limited refetch to land, then a made-up `kid` gives up.
pub const UNKNOWN_KEY_WAIT_MS: u64 = MIN_REFETCH_SECS * 1_000 + 2_000;

/// Most requests a worker lets wait for one tenant's keys at once after meeting an unknown
/// `kid`; another is refused at once. Each waiting request holds its connection and
/// polls, so without a cap a flood of tokens with made-up `kid`s holds as many as it sends.
pub const MAX_UNKNOWN_KEY_WAITERS: usize = 16;

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

    /// What a verification reads of the stored JWKS of an issuer: its version and document
    /// (a store that cannot answer has none).
    pub fn jwks_source(&self, issuer: &str) -> Option<(u32, Vec<u8>)> {
        self.jwks(issuer)
            .ok()
            .flatten()
            .map(|(version, document, _)| (version, document))
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
        if self.namespaces != config.custom_claims_namespaces {
            self.cache = VerifiedCache::default();
            self.namespaces.clone_from(&config.custom_claims_namespaces);
        }
        let expect = match against {
            VerifyAgainst::Expectation(expect) => {
                if let Some(hit) = self.cache.get(token, now, |e, _| e == &**expect) {
                    return Ok(hit);
                }
                Arc::clone(expect)
            }
            VerifyAgainst::TokenClient => {
                // A hit still has to be the current configuration's expectation for the
                // client its `azp` names.
                let current = |e: &Expectation, v: &Verified| {
                    v.authorized_party()
                        .and_then(|azp| config.client_by_id(azp))
                        .is_some_and(|c| *c.access_expectation == *e)
                };
                if let Some(hit) = self.cache.get(token, now, current) {
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

    fn signed_for(azp: &str, audience: &str) -> String {
        use jwt_simple::prelude::{Duration, RSAKeyPairLike, UnixTimeStamp};
        let custom = serde_json::json!({"azp": azp});
        let mut claims =
            jwt_simple::prelude::Claims::with_custom_claims(custom, Duration::from_secs(600))
                .with_issuer("https://tenant.eu.auth0.com/")
                .with_subject("auth0|u1")
                .with_audience(audience);
        claims.issued_at = Some(UnixTimeStamp::from_secs(NOW.secs - 5));
        claims.invalid_before = Some(UnixTimeStamp::from_secs(NOW.secs - 5));
        claims.expires_at = Some(UnixTimeStamp::from_secs(NOW.secs + 600));
        crate::jwt::tests::key("k1").sign(claims).unwrap()
    }

    const NOW: Timestamp = Timestamp {
        secs: 1_700_000_000,
        nanos: 0,
    };

    /// The keys once, then none: a second verification can only succeed from the cache.
    fn keys_once() -> impl Fn(&str) -> Option<(u32, Vec<u8>)> {
        let given = std::cell::Cell::new(false);
        move |_| {
            (!given.replace(true)).then(|| (1, crate::jwt::tests::jwks_json(&["k1"]).into_bytes()))
        }
    }

    #[test]
    fn a_token_is_checked_for_the_client_its_azp_names_and_cached_for_it() {
        let config = crate::config::tests_support::config_with(serde_json::json!({}));
        let token = signed_for("web-client-id", "https://api.example.org");
        let source = keys_once();
        let mut verifier = Verifier::default();
        for _ in 0..2 {
            let verified = verifier
                .verify(&token, &VerifyAgainst::TokenClient, &config, &source, NOW)
                .unwrap();
            assert_eq!(verified.authorized_party(), Some("web-client-id"));
        }
        // The `app` client has no audience: Auth0's /userinfo one is expected, and a token
        // of `app` for another API does not pass.
        let other_api = signed_for("app-client-id", "https://api.example.org");
        let mut verifier = Verifier::default();
        assert_eq!(
            verifier.verify(
                &other_api,
                &VerifyAgainst::TokenClient,
                &config,
                &keys_once(),
                NOW
            ),
            Err(VerifyError::Invalid)
        );
        let unknown = signed_for("someone-else", "https://api.example.org");
        assert_eq!(
            verifier.verify(
                &unknown,
                &VerifyAgainst::TokenClient,
                &config,
                &keys_once(),
                NOW
            ),
            Err(VerifyError::NoClient)
        );
        assert_eq!(
            verifier.verify(
                "not.a-token",
                &VerifyAgainst::TokenClient,
                &config,
                &keys_once(),
                NOW
            ),
            Err(VerifyError::NoClient)
        );
    }

    /// A token signed with `k2`, which the stored keys lack; `n` makes each one distinct.
    fn unknown_kid_token(n: u64) -> String {
        use jwt_simple::prelude::{Duration, RSAKeyPairLike, UnixTimeStamp};
        let mut claims = jwt_simple::prelude::Claims::with_custom_claims(
            serde_json::json!({"azp": "web-client-id", "n": n}),
            Duration::from_secs(600),
        )
        .with_issuer("https://tenant.eu.auth0.com/")
        .with_subject("auth0|u1")
        .with_audience("https://api.example.org");
        claims.issued_at = Some(UnixTimeStamp::from_secs(NOW.secs - 5));
        claims.invalid_before = Some(UnixTimeStamp::from_secs(NOW.secs - 5));
        claims.expires_at = Some(UnixTimeStamp::from_secs(NOW.secs + 600));
        crate::jwt::tests::key("k2").sign(claims).unwrap()
    }

    #[test]
    fn only_so_many_requests_wait_for_an_unknown_kid() {
        let config = crate::config::tests_support::config_with(serde_json::json!({}));
        let version = std::cell::Cell::new(1);
        let keys = |_: &str| {
            Some((
                version.get(),
                crate::jwt::tests::jwks_json(&["k1"]).into_bytes(),
            ))
        };
        let mut verifier = Verifier::default();
        // Signed once each: a token carries the signing time.
        let mut tokens = std::collections::HashMap::new();
        let mut token = |n: u64| {
            tokens
                .entry(n)
                .or_insert_with(|| unknown_kid_token(n))
                .clone()
        };
        let waits = |r: Result<Verified, VerifyError>| matches!(r, Err(VerifyError::UnknownKey(_)));
        let against = VerifyAgainst::TokenClient;
        for n in 0..MAX_UNKNOWN_KEY_WAITERS as u64 {
            let first = verifier.verify(&token(n), &against, &config, &keys, NOW);
            assert!(waits(first), "request {n} waits");
        }
        // The 17th request is refused at once, whether its token is new or a copy of a waiting
        // one; the 16 waiting requests check again and still wait.
        for n in [100, 0] {
            let refused = verifier.verify(&token(n), &against, &config, &keys, NOW);
            assert_eq!(refused, Err(VerifyError::UnknownKeyNoWait), "{n}");
        }
        for n in 0..MAX_UNKNOWN_KEY_WAITERS as u64 {
            let again = verifier.verify_waiting(&token(n), &against, &config, &keys, NOW);
            assert!(waits(again), "request {n} still waits");
        }
        // A refetch that still lacks the key frees nothing.
        version.set(2);
        let refused = verifier.verify(&token(101), &against, &config, &keys, NOW);
        assert_eq!(refused, Err(VerifyError::UnknownKeyNoWait));
        // The room frees itself once the waits are over.
        let later = Timestamp::from_secs(NOW.secs + UNKNOWN_KEY_WAIT_MS / 1_000 + 1);
        assert!(waits(verifier.verify(
            &token(300),
            &against,
            &config,
            &keys,
            later
        )));
    }

    #[test]
    fn a_token_whose_key_arrives_leaves_the_room_at_once() {
        let config = crate::config::tests_support::config_with(serde_json::json!({}));
        let rotated = std::cell::Cell::new(false);
        let keys = |_: &str| {
            let names: &[&str] = if rotated.get() {
                &["k1", "k2"]
            } else {
                &["k1"]
            };
            Some((
                u32::from(rotated.get()) + 1,
                crate::jwt::tests::jwks_json(names).into_bytes(),
            ))
        };
        let mut verifier = Verifier::default();
        let tokens: Vec<String> = (0..MAX_UNKNOWN_KEY_WAITERS as u64)
            .map(unknown_kid_token)
            .collect();
        for token in &tokens {
            let waited = verifier.verify(token, &VerifyAgainst::TokenClient, &config, &keys, NOW);
            assert!(matches!(waited, Err(VerifyError::UnknownKey(_))));
        }
        rotated.set(true);
        for token in &tokens {
            let verified = verifier.verify(token, &VerifyAgainst::TokenClient, &config, &keys, NOW);
            assert!(verified.is_ok(), "{verified:?}");
        }
        assert!(verifier.waiting.values().all(Vec::is_empty));
    }

    #[test]
    fn the_unknown_kid_budget_is_per_issuer() {
        let config = crate::config::tests_support::config_with(serde_json::json!({}));
        let keys = |_: &str| Some((1, crate::jwt::tests::jwks_json(&["k1"]).into_bytes()));
        let mut verifier = Verifier::default();
        for n in 0..MAX_UNKNOWN_KEY_WAITERS as u64 {
            verifier
                .verify(
                    &unknown_kid_token(n),
                    &VerifyAgainst::TokenClient,
                    &config,
                    &keys,
                    NOW,
                )
                .unwrap_err();
        }
        let full = unknown_kid_token(99);
        assert_eq!(
            verifier.verify(&full, &VerifyAgainst::TokenClient, &config, &keys, NOW),
            Err(VerifyError::UnknownKeyNoWait)
        );
        // Another tenant has its own room.
        let other = Expectation {
            issuer: "https://other.eu.auth0.com/".into(),
            ..(*config.clients["web"].access_expectation).clone()
        };
        let against = VerifyAgainst::Expectation(Arc::new(other));
        assert!(matches!(
            verifier.verify(&full, &against, &config, &keys, NOW),
            Err(VerifyError::UnknownKey(_))
        ));
        assert!(verifier
            .waiting
            .values()
            .all(|w| w.len() <= MAX_UNKNOWN_KEY_WAITERS));
    }

    #[test]
    fn a_cached_verification_counts_only_while_the_client_still_expects_the_same() {
        let config = crate::config::tests_support::config_with(serde_json::json!({}));
        let token = signed_for("web-client-id", "https://api.example.org");
        let mut verifier = Verifier::default();
        let keys = |_: &str| Some((1, crate::jwt::tests::jwks_json(&["k1"]).into_bytes()));
        verifier
            .verify(&token, &VerifyAgainst::TokenClient, &config, &keys, NOW)
            .unwrap();
        // A new configuration gives the client another audience: the cached check is not
        // taken, the token is checked again and fails.
        let mut moved = crate::config::tests_support::base_json();
        moved["clients"]["web"]["audience"] = "https://other.example.org".into();
        let moved = crate::config::Config::from_json(moved.to_string().as_bytes()).unwrap();
        assert_eq!(
            verifier.verify(&token, &VerifyAgainst::TokenClient, &moved, &keys, NOW),
            Err(VerifyError::Invalid)
        );
        // An explicit expectation is cached apart from it.
        let web = config.clients.get("web").unwrap();
        let against = VerifyAgainst::Expectation(Arc::clone(&web.access_expectation));
        let source = keys_once();
        assert!(verifier
            .verify(&token, &against, &config, &source, NOW)
            .is_ok());
        assert!(verifier
            .verify(&token, &against, &config, &source, NOW)
            .is_ok());
    }

    #[test]
    fn a_verification_cached_for_one_client_is_not_taken_for_the_client_its_azp_names() {
        let config = crate::config::tests_support::config_with(serde_json::json!({}));
        // Issued to `web`, but with the audience `app` expects (Auth0's /userinfo one).
        let token = signed_for("web-client-id", "https://tenant.eu.auth0.com/userinfo");
        let app = config.clients.get("app").unwrap();
        let keys = |_: &str| Some((1, crate::jwt::tests::jwks_json(&["k1"]).into_bytes()));
        let mut verifier = Verifier::default();
        let for_app = VerifyAgainst::Expectation(Arc::clone(&app.access_expectation));
        assert!(verifier
            .verify(&token, &for_app, &config, &keys, NOW)
            .is_ok());
        // `web` expects its API audience: the entry cached for `app` does not count.
        assert_eq!(
            verifier.verify(&token, &VerifyAgainst::TokenClient, &config, &keys, NOW),
            Err(VerifyError::Invalid)
        );
        // A client removed from the config: no cached entry is taken for it either.
        let good = signed_for("web-client-id", "https://api.example.org");
        verifier
            .verify(&good, &VerifyAgainst::TokenClient, &config, &keys, NOW)
            .unwrap();
        let mut without_web = crate::config::tests_support::base_json();
        if let Some(clients) = without_web["clients"].as_object_mut() {
            clients.remove("web");
        }
        let without_web =
            crate::config::Config::from_json(without_web.to_string().as_bytes()).unwrap();
        assert_eq!(
            verifier.verify(&good, &VerifyAgainst::TokenClient, &without_web, &keys, NOW),
            Err(VerifyError::NoClient)
        );
    }
}
