use base64::Engine;
use jwt_simple::prelude::{
    Duration, HS256Key, MACLike, PS256KeyPair, RS384KeyPair, RS512KeyPair, RSAKeyPairLike,
};

use super::*;
use crate::testing::{jwks_json, key, key_pem};

const ISSUER: &str = "https://tenant.eu.auth0.com/";
const NOW: Timestamp = Timestamp {
    secs: 1_700_000_000,
    nanos: 0,
};

fn claims(audience: &str, valid_secs: u64, issued: u64) -> JWTClaims<Claims> {
    let mut custom = Claims::new();
    custom.insert(
        "https://mia-platform.eu/app_metadata".into(),
        serde_json::json!({"groups": ["admin"]}),
    );
    let mut claims =
        jwt_simple::prelude::Claims::with_custom_claims(custom, Duration::from_secs(valid_secs))
            .with_issuer(ISSUER)
            .with_subject("auth0|u1")
            .with_audience(audience);
    claims.issued_at = Some(jwt_simple::prelude::UnixTimeStamp::from_secs(issued));
    claims.invalid_before = Some(jwt_simple::prelude::UnixTimeStamp::from_secs(issued));
    claims.expires_at = Some(jwt_simple::prelude::UnixTimeStamp::from_secs(
        issued + valid_secs,
    ));
    claims
}

fn sign(kid: &str, audience: &str, valid_secs: u64, issued: u64) -> String {
    key(kid).sign(claims(audience, valid_secs, issued)).unwrap()
}

fn expect(audience: &str) -> Expectation {
    Expectation {
        issuer: ISSUER.into(),
        audiences: vec![audience.into()],
        algorithms: vec![],
        leeway_secs: 60,
    }
}

fn jwks(kids: &[&str]) -> Jwks {
    Jwks::parse(jwks_json(kids).as_bytes()).unwrap()
}

#[test]
fn a_valid_token_verifies_with_its_claims() {
    let token = sign("k1", "client-id", 3_600, NOW.secs - 10);
    let verified = verify(&token, &jwks(&["k1"]), &expect("client-id"), NOW).unwrap();
    assert_eq!(&*verified.subject, "auth0|u1");
    assert_eq!(verified.expires_at, NOW.secs - 10 + 3_600);
    assert_eq!(
        verified.claims["https://mia-platform.eu/app_metadata"]["groups"][0],
        "admin"
    );
}

#[test]
fn expiry_audience_issuer_and_key_are_checked() {
    let jwks = jwks(&["k1"]);
    let expired = sign("k1", "client-id", 100, NOW.secs - 1_000);
    assert_eq!(
        verify(&expired, &jwks, &expect("client-id"), NOW),
        Err(VerifyError::Expired)
    );
    let future = sign("k1", "client-id", 3_600, NOW.secs + 600);
    assert_eq!(
        verify(&future, &jwks, &expect("client-id"), NOW),
        Err(VerifyError::Invalid)
    );
    let token = sign("k1", "other-client", 3_600, NOW.secs);
    assert_eq!(
        verify(&token, &jwks, &expect("client-id"), NOW),
        Err(VerifyError::Invalid)
    );
    let mut wrong_issuer = expect("other-client");
    wrong_issuer.issuer = "https://evil.auth0.com/".into();
    assert_eq!(
        verify(&token, &jwks, &wrong_issuer, NOW),
        Err(VerifyError::Invalid)
    );
    let rotated = sign("k2", "client-id", 3_600, NOW.secs);
    assert_eq!(
        verify(&rotated, &jwks, &expect("client-id"), NOW),
        Err(VerifyError::UnknownKey("k2".into()))
    );
    assert!(verify(
        &rotated,
        &self::jwks(&["k1", "k2"]),
        &expect("client-id"),
        NOW
    )
    .is_ok());
    // Within the 60 s leeway an expired token still passes.
    let just_expired = sign("k1", "client-id", 100, NOW.secs - 130);
    assert!(verify(&just_expired, &jwks, &expect("client-id"), NOW).is_ok());
}

#[test]
fn tampered_none_and_hmac_confusion_tokens_are_refused() {
    let jwks = jwks(&["k1"]);
    let token = sign("k1", "client-id", 3_600, NOW.secs);
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Value =
        serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = "auth0|attacker".into();
    parts[1] = b64.encode(payload.to_string());
    assert_eq!(
        verify(&parts.join("."), &jwks, &expect("client-id"), NOW),
        Err(VerifyError::Invalid)
    );
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","kid":"k1"}"#),
        parts[1]
    );
    assert_eq!(
        verify(&none, &jwks, &expect("client-id"), NOW),
        Err(VerifyError::Algorithm)
    );
    // HS256 keyed with the RSA public key, the classic confusion attack.
    let public_pem = key("k1").public_key().to_pem().unwrap();
    let hmac = HS256Key::from_bytes(public_pem.as_bytes()).with_key_id("k1");
    let confused = hmac
        .authenticate(claims("client-id", 3_600, NOW.secs))
        .unwrap();
    assert_eq!(
        verify(&confused, &jwks, &expect("client-id"), NOW),
        Err(VerifyError::Algorithm)
    );
    assert_eq!(
        verify("not.a.jwt", &jwks, &expect("client-id"), NOW),
        Err(VerifyError::Malformed)
    );
}

#[test]
fn auth0s_other_rsa_algorithms_only_when_allowed() {
    let token = claims("client-id", 3_600, NOW.secs);
    let rs512 = RS512KeyPair::from_pem(key_pem()).unwrap().with_key_id("k1");
    let ps256 = PS256KeyPair::from_pem(key_pem()).unwrap().with_key_id("k1");
    let rs384 = RS384KeyPair::from_pem(key_pem()).unwrap().with_key_id("k1");
    let rs512 = rs512.sign(token.clone()).unwrap();
    let ps256 = ps256.sign(token.clone()).unwrap();
    let rs384 = rs384.sign(token).unwrap();
    let mut allowing = expect("client-id");
    allowing.algorithms = ["RS256", "RS512", "PS256", "RS384"]
        .map(String::from)
        .to_vec();
    for token in [&rs512, &ps256] {
        assert_eq!(
            verify(token, &jwks(&["k1"]), &expect("client-id"), NOW),
            Err(VerifyError::Algorithm)
        );
        assert!(verify(token, &jwks(&["k1"]), &allowing, NOW).is_ok());
    }
    // Auth0 never signs with RS384 (nor PS384/PS512): refused even when listed.
    assert_eq!(
        verify(&rs384, &jwks(&["k1"]), &allowing, NOW),
        Err(VerifyError::Algorithm)
    );
}

#[test]
fn jwks_documents_need_rsa_signing_keys() {
    assert!(Jwks::parse(br#"{"keys":[{"kty":"EC","kid":"e"}]}"#).is_err());
    assert!(Jwks::parse(b"{}").is_err());
    assert!(Jwks::parse(b"not json").is_err());
    let mixed = jwks_json(&["a"]).replace(
        r#""keys":["#,
        r#""keys":[{"kty":"RSA","use":"enc","kid":"enc","n":"AQ","e":"AQ"},"#,
    );
    let parsed = Jwks::parse(mixed.as_bytes()).unwrap();
    assert!(parsed.has_key("a") && !parsed.has_key("enc"));
}

#[test]
fn the_cache_answers_until_expiry_and_per_expectation() {
    let mut cache = VerifiedCache::default();
    let token = sign("k1", "client-id", 3_600, NOW.secs);
    let verified = verify(&token, &jwks(&["k1"]), &expect("client-id"), NOW).unwrap();
    cache.put(&token, &expect("client-id"), &verified, NOW);
    let against =
        |audience: &'static str| move |e: &Expectation, _: &Verified| *e == expect(audience);
    assert_eq!(
        cache.get(&token, NOW, against("client-id")),
        Some(verified.clone())
    );
    assert_eq!(cache.get(&token, NOW, against("another-audience")), None);
    // The lookup hashes the signature's tail; a token that only shares it is no hit.
    let same_tail = format!("x{}", token.get(1..).unwrap());
    assert_eq!(cache.get(&same_tail, NOW, against("client-id")), None);
    let after = Timestamp::from_secs(verified.expires_at + 61);
    assert_eq!(cache.get(&token, after, against("client-id")), None);
}

#[test]
fn only_a_200_with_a_jwks_is_a_fetched_jwks() {
    use crate::http::CalloutResult;
    let answer = |status: u16, body: &str| CalloutResult::Answered {
        status,
        headers: vec![(":status".into(), status.to_string())],
        body: body.as_bytes().to_vec(),
    };
    let document = jwks_json(&["k1"]);
    assert_eq!(
        fetched_jwks(&answer(200, &document)),
        Some(document.as_bytes())
    );
    // A call that failed (refused, timed out, a torn body) has no answer to read.
    assert_eq!(fetched_jwks(&CalloutResult::Failed { elapsed_ms: 3 }), None);
    let torn = document.get(..document.len() / 2).unwrap();
    for (status, body) in [
        (200, torn),
        (200, "<html>maintenance</html>"),
        (200, r#"{"token_type":"Bearer"}"#),
        (429, document.as_str()),
        (503, document.as_str()),
    ] {
        assert_eq!(fetched_jwks(&answer(status, body)), None, "{status} {body}");
    }
}

#[test]
fn the_unverified_reader_takes_payloads_with_or_without_padding() {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // 17 bytes of JSON: unpadded base64url ends without `=`, padded with `=`.
    let payload = b64.encode(r#"{"sub":"auth0|1"}"#);
    for token in [format!("e30.{payload}.sig"), format!("e30.{payload}=.sig")] {
        let read: serde_json::Value = unverified_payload(&token).unwrap();
        assert_eq!(read["sub"], "auth0|1", "{token}");
        assert_eq!(
            crate::auth0::jwt_subject(&token).as_deref(),
            Some("auth0|1")
        );
    }
    assert!(unverified_payload::<serde_json::Value>("no-dots").is_none());
    assert!(unverified_payload::<serde_json::Value>("a.!!!.c").is_none());
}
