//! Local verification of Auth0 JWTs against the tenant's JWKS, with jwt-simple.
//!
//! Only the RSA algorithms Auth0 signs tokens with are accepted: RS256 by default, RS512 and
//! PS256 when the client's `supportedSigningAlgs` lists them (Auth0's `jwt_configuration.alg`
//! is one of HS256, RS256, RS512, PS256). `none` and HMAC algorithms are refused, so a token
//! signed with the public key as an HMAC secret (alg confusion) never verifies. RS384, PS384
//! and PS512, which Auth0 never uses, are refused too: each algorithm is its own copy of
//! jwt-simple's verification code in the `.wasm` (about 4 KB).

use std::collections::HashSet;

use jwt_simple::prelude::{
    JWTClaims, PS256PublicKey, RS256PublicKey, RS512PublicKey, RSAPublicKeyLike, Token,
    VerificationOptions,
};
use serde::Deserialize;

use crate::time::Timestamp;

pub type Claims = serde_json::Map<String, serde_json::Value>;

/// The algorithms tokens are verified with (the configuration refuses a client that lists
/// none of them).
pub(crate) const RSA_ALGORITHMS: [&str; 3] = ["RS256", "RS512", "PS256"];

/// The algorithms a client's `supportedSigningAlgs` may list; tokens signed
/// with any but `RSA_ALGORITHMS` are refused.
pub(crate) const LISTED_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "HS256",
];

#[derive(Debug, Clone, Deserialize)]
struct Jwk {
    #[serde(default)]
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(rename = "use", default)]
    usage: Option<String>,
}

/// The RSA signing keys of a JWKS document, by `kid`.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: Vec<(String, Vec<u8>, Vec<u8>)>,
}

/// The document of a JWKS fetch's answer when it can be used: a 200 whose body is a JWKS. A
/// call that failed (refused, timed out, torn) or any other answer has none.
pub fn fetched_jwks(result: &crate::http::CalloutResult) -> Option<&[u8]> {
    match result {
        crate::http::CalloutResult::Answered {
            status: 200, body, ..
        } if Jwks::parse(body).is_ok() => Some(body),
        _ => None,
    }
}

impl Jwks {
    pub fn parse(bytes: &[u8]) -> Result<Jwks, String> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<Jwk>,
        }
        let document: Document =
            serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
        let b64 = |v: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(v.trim_end_matches('='))
                .ok()
        };
        let keys: Vec<_> = document
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA" && k.usage.as_deref().unwrap_or("sig") == "sig")
            .filter_map(|k| Some((k.kid?, b64(k.n.as_deref()?)?, b64(k.e.as_deref()?)?)))
            .collect();
        if keys.is_empty() {
            return Err("the JWKS has no RSA signing key".into());
        }
        Ok(Jwks { keys })
    }

    pub fn has_key(&self, kid: &str) -> bool {
        self.keys.iter().any(|(k, _, _)| k == kid)
    }

    fn key(&self, kid: &str) -> Option<(&[u8], &[u8])> {
        self.keys
            .iter()
            .find(|(k, _, _)| k == kid)
            .map(|(_, n, e)| (n.as_slice(), e.as_slice()))
    }
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// `iss`, e.g. `https://tenant.eu.auth0.com/`.
    pub issuer: String,
    /// Any of these in `aud`.
    pub audiences: Vec<String>,
    /// Allowed `alg` values; RSA ones only take effect.
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a JWT, or a header we cannot read.
    Malformed,
    /// `alg` is not an allowed RSA algorithm (`none`, HS256, …).
    Algorithm,
    /// No key with this `kid` in the JWKS we have: maybe the keys rotated.
    UnknownKey(String),
    /// No key with this `kid`, and as many other tokens as may are already waiting for the
    /// tenant's keys to be refetched: final, without waiting.
    UnknownKeyNoWait,
    Expired,
    /// Bad signature, issuer, audience or not yet valid.
    Invalid,
    /// No keys for the issuer yet (the first JWKS fetch has not landed).
    NoKeys,
    /// The token's `azp` names no configured client, so nothing says what it must satisfy.
    NoClient,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Shared: every cache hit hands it out (as the user id header).
    pub subject: std::rc::Rc<str>,
    /// Unix seconds.
    pub expires_at: u64,
    /// Shared: a cache hit hands out the same claims without copying them.
    pub claims: std::rc::Rc<Claims>,
    /// The session key of this token, hashed once per worker with the verification rather
    /// than on every request that looks its session up.
    pub session_key: crate::digest::SessionKey,
    /// The groups of the token's own claims, comma-joined as the groups header carries them:
    /// worked out by the first protected request of the token, shared by every cache hit
    /// after it. They depend on the configuration's `customClaimsNamespaces`: the verifier
    /// drops its cache when those change (`Verifier::verify`).
    pub own_groups: std::rc::Rc<std::cell::OnceCell<String>>,
    /// What a Bearer request last read of the token's session, shared by every cache hit
    /// after it, so repeat requests within `sessionRecheckSeconds` skip the store read (see
    /// `flows::protected`).
    pub session_seen: std::rc::Rc<std::cell::RefCell<Option<SessionSeen>>>,
}

/// A read of a token's session: when (unix secs), and the groups it gave (comma-joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSeen {
    pub at: u64,
    pub groups: String,
}

impl Verified {
    /// `azp`: the Auth0 `client_id` the token was issued to.
    pub fn authorized_party(&self) -> Option<&str> {
        self.claims.get("azp").and_then(serde_json::Value::as_str)
    }
}

/// A JWT's payload, read without checking its signature, as `T`: the one reader of unverified
/// payloads. Trailing `=` padding, which JWS omits, is tolerated: the claims read this way
/// only pick a client, a session's expiry or a profile, and every presented token is verified
/// separately (`verify`).
pub fn unverified_payload<T: serde::de::DeserializeOwned>(token: &str) -> Option<T> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `kid` of a token's header, if it has one.
pub fn key_id(token: &str) -> Option<String> {
    Token::decode_metadata(token)
        .ok()?
        .key_id()
        .map(str::to_string)
}

pub fn verify(
    token: &str,
    jwks: &Jwks,
    expect: &Expectation,
    now: Timestamp,
) -> Result<Verified, VerifyError> {
    let metadata = Token::decode_metadata(token).map_err(|_| VerifyError::Malformed)?;
    let alg = metadata.algorithm().to_string();
    let allowed = if expect.algorithms.is_empty() {
        vec!["RS256".to_string()]
    } else {
        expect.algorithms.clone()
    };
    if !RSA_ALGORITHMS.contains(&alg.as_str()) || !allowed.contains(&alg) {
        return Err(VerifyError::Algorithm);
    }
    let kid = metadata.key_id().ok_or(VerifyError::Malformed)?.to_string();
    let (n, e) = jwks
        .key(&kid)
        .ok_or_else(|| VerifyError::UnknownKey(kid.clone()))?;
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from([expect.issuer.clone()])),
        allowed_audiences: Some(expect.audiences.iter().cloned().collect()),
        time_tolerance: Some(jwt_simple::prelude::Duration::from_secs(expect.leeway_secs)),
        artificial_time: Some(jwt_simple::prelude::UnixTimeStamp::from_secs(now.secs)),
        required_key_id: Some(kid),
        ..Default::default()
    };
    let result: Result<JWTClaims<Claims>, jwt_simple::Error> =
        match alg.as_str() {
            "RS256" => RS256PublicKey::from_components(n, e)
                .and_then(|k| k.verify_token(token, Some(options))),
            "RS512" => RS512PublicKey::from_components(n, e)
                .and_then(|k| k.verify_token(token, Some(options))),
            _ => PS256PublicKey::from_components(n, e)
                .and_then(|k| k.verify_token(token, Some(options))),
        };
    let claims = result.map_err(|error| match error.downcast_ref::<jwt_simple::JWTError>() {
        Some(jwt_simple::JWTError::TokenHasExpired) => VerifyError::Expired,
        _ => VerifyError::Invalid,
    })?;
    let subject = claims
        .subject
        .as_deref()
        .map(std::rc::Rc::from)
        .ok_or(VerifyError::Invalid)?;
    let expires_at = claims
        .expires_at
        .map(|t| t.as_secs())
        .ok_or(VerifyError::Invalid)?;
    Ok(Verified {
        subject,
        expires_at,
        claims: std::rc::Rc::new(claims.custom),
        session_key: crate::digest::SessionKey::for_token(token),
        own_groups: std::rc::Rc::default(),
        session_seen: std::rc::Rc::default(),
    })
}

/// Verification results by token, until the token expires: a repeat check costs a lookup by
/// the token (no digest) instead of an RSA verification (~2 ms in wasm). Each token keeps
/// what it was checked against, so a token verified for one audience is never taken as
/// verified for another. Bounded; per worker.
#[derive(Default)]
pub struct VerifiedCache {
    entries: std::collections::HashMap<
        String,
        Vec<(Expectation, Verified)>,
        std::hash::BuildHasherDefault<TokenTailHasher>,
    >,
    len: usize,
}

/// Hashes a token by its last 16 bytes, the tail of its signature, which is as random as any
/// hash; SipHash over a whole token (~800 bytes) cost more than the rest of a cache hit.
/// Only verified tokens are stored, so nobody can choose tokens that collide with them, and
/// equal hashes are still compared in full.
pub struct TokenTailHasher(u64);

impl Default for TokenTailHasher {
    fn default() -> Self {
        // FNV-1a's offset basis.
        TokenTailHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for TokenTailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = bytes.get(bytes.len().saturating_sub(16)..).unwrap_or(bytes);
        // FNV-1a over the tail.
        for &byte in tail {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

const CACHE_LIMIT: usize = 10_000;

impl VerifiedCache {
    /// Forgets what requests last read of `token`'s session: it was ended.
    pub fn forget_session_read(&self, token: &str) {
        for (_, verified) in self.entries.get(token).into_iter().flatten() {
            *verified.session_seen.borrow_mut() = None;
        }
    }

    /// The cached verification of `token` against the first expectation `wanted` accepts
    /// (given what that check found), unless it has expired (then it is dropped).
    pub fn get(
        &mut self,
        token: &str,
        now: Timestamp,
        wanted: impl Fn(&Expectation, &Verified) -> bool,
    ) -> Option<Verified> {
        let checks = self.entries.get_mut(token)?;
        let position = checks.iter().position(|(e, v)| wanted(e, v))?;
        match checks.get(position) {
            Some((e, v)) if v.expires_at + e.leeway_secs > now.secs => Some(v.clone()),
            _ => {
                checks.swap_remove(position);
                self.len = self.len.saturating_sub(1);
                if checks.is_empty() {
                    self.entries.remove(token);
                }
                None
            }
        }
    }

    pub fn put(&mut self, token: &str, expect: &Expectation, verified: &Verified, now: Timestamp) {
        if self.len >= CACHE_LIMIT {
            self.entries.retain(|_, checks| {
                checks.retain(|(e, v)| v.expires_at + e.leeway_secs > now.secs);
                !checks.is_empty()
            });
            self.len = self.entries.values().map(Vec::len).sum();
            if self.len >= CACHE_LIMIT {
                self.entries.clear();
                self.len = 0;
            }
        }
        let checks = self.entries.entry(token.to_string()).or_default();
        let before = checks.len();
        checks.retain(|(e, _)| e != expect);
        let replaced = before - checks.len();
        checks.push((expect.clone(), verified.clone()));
        self.len = self.len.saturating_sub(replaced) + 1;
    }
}

#[cfg(test)]
pub(crate) mod tests;
