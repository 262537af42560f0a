use super::*;

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
    crate::testing::key("k1").sign(claims).unwrap()
}

const NOW: Timestamp = Timestamp {
    secs: 1_700_000_000,
    nanos: 0,
};

/// The keys once, then none: a second verification can only succeed from the cache.
fn keys_once() -> impl Fn(&str) -> Option<(u32, Vec<u8>)> {
    let given = std::cell::Cell::new(false);
    move |_| (!given.replace(true)).then(|| (1, crate::testing::jwks_json(&["k1"]).into_bytes()))
}

#[test]
fn a_token_is_checked_for_the_client_its_azp_names_and_cached_for_it() {
    let config = crate::testing::config_with(serde_json::json!({}));
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
    crate::testing::key("k2").sign(claims).unwrap()
}

#[test]
fn only_so_many_requests_wait_for_an_unknown_kid() {
    let config = crate::testing::config_with(serde_json::json!({}));
    let version = std::cell::Cell::new(1);
    let keys = |_: &str| {
        Some((
            version.get(),
            crate::testing::jwks_json(&["k1"]).into_bytes(),
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
    let config = crate::testing::config_with(serde_json::json!({}));
    let rotated = std::cell::Cell::new(false);
    let keys = |_: &str| {
        let names: &[&str] = if rotated.get() {
            &["k1", "k2"]
        } else {
            &["k1"]
        };
        Some((
            u32::from(rotated.get()) + 1,
            crate::testing::jwks_json(names).into_bytes(),
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
    let config = crate::testing::config_with(serde_json::json!({}));
    let keys = |_: &str| Some((1, crate::testing::jwks_json(&["k1"]).into_bytes()));
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
    let config = crate::testing::config_with(serde_json::json!({}));
    let token = signed_for("web-client-id", "https://api.example.org");
    let mut verifier = Verifier::default();
    let keys = |_: &str| Some((1, crate::testing::jwks_json(&["k1"]).into_bytes()));
    verifier
        .verify(&token, &VerifyAgainst::TokenClient, &config, &keys, NOW)
        .unwrap();
    // A new configuration gives the client another audience: the cached check is not
    // taken, the token is checked again and fails.
    let mut moved = crate::testing::base_json();
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
    let config = crate::testing::config_with(serde_json::json!({}));
    // Issued to `web`, but with the audience `app` expects (Auth0's /userinfo one).
    let token = signed_for("web-client-id", "https://tenant.eu.auth0.com/userinfo");
    let app = config.clients.get("app").unwrap();
    let keys = |_: &str| Some((1, crate::testing::jwks_json(&["k1"]).into_bytes()));
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
    let mut without_web = crate::testing::base_json();
    if let Some(clients) = without_web["clients"].as_object_mut() {
        clients.remove("web");
    }
    let without_web = crate::config::Config::from_json(without_web.to_string().as_bytes()).unwrap();
    assert_eq!(
        verifier.verify(&good, &VerifyAgainst::TokenClient, &without_web, &keys, NOW),
        Err(VerifyError::NoClient)
    );
}
