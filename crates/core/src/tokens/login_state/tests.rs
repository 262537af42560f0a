use super::*;
use crate::testing::config_with;

fn web() -> Client {
    config_with(serde_json::json!({}))
        .clients
        .get("web")
        .unwrap()
        .clone()
}

fn login(expires_at: u64) -> LoginState {
    LoginState {
        client: "web".into(),
        redirect: Some("/home".into()),
        nonce: random_token(&[9; 16]),
        expires_at,
    }
}

const T: Timestamp = Timestamp {
    secs: 1_000,
    nanos: 0,
};

#[test]
fn a_sealed_login_opens_for_its_client_and_state_only() {
    let client = web();
    let value = seal(&client, "state-a", &login(1_600)).unwrap();
    assert_eq!(open(&client, "state-a", &value, T).unwrap(), login(1_600));
    assert!(
        open(&client, "state-b", &value, T).is_err(),
        "another state"
    );
    let mut other = client.clone();
    other.name = "app".into();
    assert!(
        open(&other, "state-a", &value, T).is_err(),
        "another client"
    );
    let mut rotated = client.clone();
    rotated.client_secret = serde_json::from_value(serde_json::json!("new")).unwrap();
    assert!(open(&rotated, "state-a", &value, T).is_err(), "another key");
    assert!(
        open(&client, "state-a", &value, Timestamp::from_secs(1_600)).is_err(),
        "expired"
    );
}

#[test]
fn a_tampered_cookie_is_refused() {
    let client = web();
    let value = seal(&client, "s", &login(1_600)).unwrap();
    let (payload, mac) = value.split_once('.').unwrap();
    let mut forged = login(1_600);
    forged.redirect = Some("/evil".into());
    let forged_payload = b64(&serde_json::to_vec(&forged).unwrap());
    for bad in [
        format!("{forged_payload}.{mac}"),
        format!("{payload}."),
        format!("{payload}.{}", b64(&[0; 32])),
        payload.to_string(),
        String::new(),
        format!("{payload}.{mac}x"),
    ] {
        assert!(open(&client, "s", &bad, T).is_err(), "{bad}");
    }
}

#[test]
fn the_verifier_is_derived_not_carried() {
    let client = web();
    let (verifier, challenge) = pkce(&client, "nonce-1");
    assert_eq!(verifier.len(), 43);
    assert_eq!(
        challenge,
        b64(&hmac_sha256::Hash::hash(verifier.as_bytes()))
    );
    assert_eq!(pkce(&client, "nonce-1").0, verifier, "stable");
    assert_ne!(pkce(&client, "nonce-2").0, verifier);
    let value = seal(&client, "s", &login(1_600)).unwrap();
    assert!(!value.contains(&pkce(&client, &login(1).nonce).0));
    assert!(!format!("{:?}", login(1)).contains(&login(1).nonce));
}

#[test]
fn cookie_names_and_attributes() {
    let name = cookie_name("some-state");
    assert!(name.starts_with("__Host-auth0-login-") && name.len() == 19 + 16);
    assert_ne!(name, cookie_name("other-state"));
    assert_eq!(
        set_cookie(&name, "v", 600, None),
        format!("{name}=v; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=600")
    );
    assert!(clear_cookie(&name, Some(SameSite::Strict)).ends_with("SameSite=Strict; Max-Age=0"));
    let mut head = crate::http::RequestHead::default();
    head.push_header("cookie", &format!("sid=x; {name}=abc; other=1"));
    head.push_header("cookie", "__Host-auth0-login-empty=");
    assert_eq!(login_cookies(&head), vec![(name, "abc".to_string())]);
}
