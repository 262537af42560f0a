//! JWT handling: `Jwks::parse` on a JWKS document, `verify` of a token against it, and the
//! unverified readers (`key_id`, `jwt_subject` of token answers, the stored ID token's
//! claims).
//!
//! With the fixed test key below (its private half is not in the repository), a token only
//! verifies if its signed part is the one the seed corpus was signed with: the fuzzer must
//! never forge a token, whatever it does to the header (`alg`, `kid`, `crit`, …).
#![no_main]

use auth0_filter_core::auth0::jwt_subject;
use auth0_filter_core::fuzz_entry::unverified_claims;
use auth0_filter_core::jwt::{key_id, verify, Expectation, Jwks, VerifyError};
use auth0_filter_core::time::Timestamp;
use auth0_filter_fuzz::{fields, text};
use libfuzzer_sys::fuzz_target;

/// A 2048-bit RSA public key (n, e) generated for these fuzz seeds only.
const TEST_N: &str = "0KYigGSf2JPK4JEqMU_tyDapqvl-h_neZr3i1ee_c2QpdzDts_ULwUFgaUxZh-lbeREERtJcKe99n2GEKyzPpX2xzKHGHDr-875WiQEnw988hBw8I14-bwH6l0a1LcDbIDbm-cCmu6W1wdUE-soRAso6GgDBP7Iyn_Jl20dzACJ7SVL-lmidlthRTsCOxZX33oldIOGJ2jxsEQX4nj61iNYXp86yTiCTbCb_v75g1plnv9cANMd6uYfOtlxuh1Ryj0tUy29rFuawo1gsVbiM7u1a8F6YgG7oYPl1n5URQfTBuNIYMrn4NYk634IvaCk8XNJN7jANrLR5WhMZQ_Jn7Q";
const TEST_E: &str = "AQAB";
/// `header.payload` of the seed token signed with the test key (kid `k1`, sub `auth0|u1`,
/// valid from 1700000000 to 1700003600).
const SIGNED_PART: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL3RlbmFudC5ldS5hdXRoMC5jb20vIiwic3ViIjoiYXV0aDB8dTEiLCJhdWQiOiJ3ZWItY2xpZW50LWlkIiwiaWF0IjoxNzAwMDAwMDAwLCJuYmYiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMCwiZW1haWwiOiJhQGIuYyJ9";

struct Input<'a> {
    token: &'a str,
    /// A JWKS document to use instead of the test key.
    jwks: Option<&'a [u8]>,
    algorithms: u8,
    /// Seconds after 1700000000.
    now: u16,
}

fn test_jwks() -> Jwks {
    let document = serde_json::json!({"keys": [
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "RSA", "use": "enc", "kid": "enc", "n": TEST_N, "e": TEST_E},
        {"kty": "RSA", "use": "sig", "kid": "k1", "n": TEST_N, "e": TEST_E}
    ]});
    Jwks::parse(document.to_string().as_bytes()).expect("the test JWKS parses")
}

/// `options 0xFF token 0xFF jwks`: options byte 0 picks the allowed algorithms, byte 1 the
/// time; an empty JWKS field means the test key.
fn input(data: &[u8]) -> Option<Input<'_>> {
    let [options, token, jwks] = fields(data);
    Some(Input {
        token: text(token)?,
        jwks: (!jwks.is_empty()).then_some(jwks),
        algorithms: options.first().copied().unwrap_or(0),
        now: options.get(1).map_or(100, |b| u16::from(*b) * 64),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = input(data) else {
        return;
    };
    // The unverified readers never fail loudly.
    let _ = key_id(input.token);
    let subject = jwt_subject(input.token);
    let claims = unverified_claims(input.token);
    if let (Some(subject), Some(claims)) = (&subject, &claims) {
        // Both go through the one unverified reader.
        assert_eq!(
            claims.get("sub").and_then(|s| s.as_str()),
            Some(subject.as_str())
        );
    }

    let fixed_key = input.jwks.is_none();
    let jwks = match input.jwks {
        None => test_jwks(),
        Some(document) => match Jwks::parse(document) {
            Ok(jwks) => jwks,
            Err(_) => return,
        },
    };
    let algorithms = match input.algorithms % 4 {
        0 => vec![],
        1 => vec!["RS256".to_string(), "PS256".to_string()],
        2 => vec!["HS256".to_string(), "none".to_string()],
        _ => vec![
            "RS256".to_string(),
            "RS384".to_string(),
            "RS512".to_string(),
            "PS256".to_string(),
        ],
    };
    let only_non_rsa = input.algorithms % 4 == 2;
    let expect = Expectation {
        issuer: "https://tenant.eu.auth0.com/".into(),
        audiences: vec!["web-client-id".into()],
        algorithms,
        leeway_secs: 60,
    };
    let now = Timestamp {
        secs: 1_700_000_000 + u64::from(input.now),
        nanos: 0,
    };
    match verify(input.token, &jwks, &expect, now) {
        Ok(verified) => {
            assert!(
                !only_non_rsa,
                "a token verified with no RSA algorithm allowed"
            );
            assert!(!verified.subject.is_empty() || !fixed_key);
            assert!(verified.expires_at + expect.leeway_secs >= now.secs);
            if fixed_key {
                let signed = input.token.rsplit_once('.').map(|(s, _)| s);
                assert_eq!(signed, Some(SIGNED_PART), "forged: {:?}", input.token);
                assert_eq!(&*verified.subject, "auth0|u1");
            }
        }
        Err(VerifyError::UnknownKey(kid)) => assert!(!jwks.has_key(&kid)),
        Err(_) => {}
    }
});
