//! RS256 signing of access and ID tokens, the JWKS that verifies them, and random values.

use std::collections::HashSet;

use base64::Engine;
use jwt_simple::prelude::{
    Claims, RS256KeyPair, RSAKeyPairLike, RSAPublicKeyLike, VerificationOptions,
};

/// Signs with the newest key; the JWKS publishes the newest two, as Auth0 does while rotating.
pub struct Signer {
    keys: std::sync::RwLock<Vec<RS256KeyPair>>,
    pub issuer: String,
}

type VerifiedClaims = jwt_simple::prelude::JWTClaims<serde_json::Map<String, serde_json::Value>>;

fn kid_of(key: &RS256KeyPair) -> String {
    let components = key.public_key().to_components();
    hex(hmac_sha256::Hash::hash(&components.n)
        .get(..8)
        .unwrap_or_default())
}

impl Signer {
    /// Loads the PEM key at `path`, or generates a 2048-bit key and saves it there, so restarts
    /// (and every test) reuse one key instead of paying for RSA key generation.
    pub fn load_or_create(path: &str, issuer: &str) -> Result<Signer, String> {
        let key = match std::fs::read_to_string(path) {
            Ok(pem) => {
                RS256KeyPair::from_pem(&pem).map_err(|e| format!("bad key in {path}: {e}"))?
            }
            Err(_) => {
                let key =
                    RS256KeyPair::generate(2048).map_err(|e| format!("key generation: {e}"))?;
                let pem = key.to_pem().map_err(|e| format!("key encoding: {e}"))?;
                // Written aside and renamed into place: emulators started at once (parallel
                // tests) must never read each other's half-written key.
                let aside = format!("{path}.{}.tmp", std::process::id());
                std::fs::write(&aside, pem).map_err(|e| format!("cannot write {aside}: {e}"))?;
                std::fs::rename(&aside, path)
                    .map_err(|e| format!("cannot rename {aside} to {path}: {e}"))?;
                key
            }
        };
        let kid = kid_of(&key);
        Ok(Signer {
            keys: std::sync::RwLock::new(vec![key.with_key_id(&kid)]),
            issuer: issuer.to_string(),
        })
    }

    /// Starts signing with a new key; the previous one stays in the JWKS.
    pub fn rotate(&self) -> Result<String, String> {
        let key = RS256KeyPair::generate(2048).map_err(|e| format!("key generation: {e}"))?;
        let kid = kid_of(&key);
        let mut keys = self
            .keys
            .write()
            .map_err(|_| "key lock poisoned".to_string())?;
        keys.push(key.with_key_id(&kid));
        if keys.len() > 2 {
            keys.remove(0);
        }
        Ok(kid)
    }

    pub fn sign(
        &self,
        subject: &str,
        audiences: &[String],
        lifetime_secs: u64,
        custom: serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, String> {
        self.sign_with_id(subject, audiences, lifetime_secs, custom, &random_token(12))
    }

    /// Like `sign`, with the given `jti`.
    pub fn sign_with_id(
        &self,
        subject: &str,
        audiences: &[String],
        lifetime_secs: u64,
        custom: serde_json::Map<String, serde_json::Value>,
        jti: &str,
    ) -> Result<String, String> {
        let claims = Claims::with_custom_claims(
            custom,
            jwt_simple::prelude::Duration::from_secs(lifetime_secs),
        )
        .with_issuer(&self.issuer)
        .with_subject(subject)
        .with_jwt_id(jti);
        // Auth0 writes a single audience as a string and several as an array.
        let claims = match audiences {
            [one] => claims.with_audience(one),
            _ => claims.with_audiences(audiences.iter().cloned().collect::<HashSet<String>>()),
        };
        let keys = self
            .keys
            .read()
            .map_err(|_| "key lock poisoned".to_string())?;
        let key = keys.last().ok_or("no signing key")?;
        key.sign(claims).map_err(|e| format!("signing: {e}"))
    }

    fn verify_with(&self, token: &str, tolerance_secs: Option<u64>) -> Option<VerifiedClaims> {
        let kid = jwt_simple::prelude::Token::decode_metadata(token)
            .ok()?
            .key_id()?
            .to_string();
        let keys = self.keys.read().ok()?;
        let key = keys
            .iter()
            .find(|k| k.key_id().as_deref() == Some(kid.as_str()))?;
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from([self.issuer.clone()])),
            time_tolerance: tolerance_secs.map(jwt_simple::prelude::Duration::from_secs),
            ..Default::default()
        };
        key.public_key().verify_token(token, Some(options)).ok()
    }

    /// The claims of a token this emulator signed, if it is valid now.
    pub fn verify(&self, token: &str) -> Option<VerifiedClaims> {
        self.verify_with(token, None)
    }

    /// Like `verify`, with no clock tolerance: a token is refused from its `exp` second on.
    pub fn verify_exact(&self, token: &str) -> Option<VerifiedClaims> {
        self.verify_with(token, Some(0))
    }

    pub fn jwks(&self) -> serde_json::Value {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let keys = self.keys.read().map(|k| k.clone()).unwrap_or_default();
        let published: Vec<serde_json::Value> = keys
            .iter()
            .rev()
            .map(|key| {
                let components = key.public_key().to_components();
                serde_json::json!({
                    "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid_of(key),
                    "n": b64.encode(&components.n), "e": b64.encode(&components.e),
                })
            })
            .collect();
        serde_json::json!({ "keys": published })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes, URL-safe base64.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    let _ = getrandom::getrandom(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// PKCE S256: base64url(SHA-256(verifier)).
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(hmac_sha256::Hash::hash(verifier.as_bytes()))
}
