//! The identity flows driven end to end: /authorize, the code exchange, /userinfo with a
//! transparent refresh, and protected routes, with real RS256 tokens and an in-memory store.

use jwt_simple::prelude::{Duration, RSAKeyPairLike, UnixTimeStamp};

use super::driver::{json, Driver, NOW};
use super::*;
use crate::testing::{jwks_json, key};

pub(super) const ISSUER: &str = crate::testing::ISSUER;
const JSON_TYPE: (&str, &str) = ("content-type", "application/json");

pub(super) fn sign(kid: &str, audiences: &[&str], azp: &str, lifetime: u64) -> String {
    crate::testing::sign(kid, audiences, azp, NOW, lifetime)
}

fn driver() -> Driver {
    let d = Driver::new(serde_json::json!({
        "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata"],
        "protectedRoutes": {"prefixes": ["/api/"], "redirectToLogin": true},
        "tokenLeewaySeconds": 0
    }));
    d.jwks()
        .put(ISSUER, jwks_json(&["k1"]).as_bytes(), NOW)
        .unwrap();
    d
}

/// A website password login that Auth0 answers with `access` (and an ID token and a refresh
/// token): its session is stored under `access`.
pub(super) fn website_login(d: &mut Driver, access: &str) {
    let id = sign("k1", &["web-client-id"], "web-client-id", 600);
    d.answers.push_back(token_json(access, &id, "rt-1"));
    let login = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), JSON_TYPE],
            br#"{"grant_type":"password","username":"alice","password":"s3cret-pw"}"#,
        )
        .unwrap();
    assert_eq!(
        login.status,
        200,
        "{}",
        String::from_utf8_lossy(&login.body)
    );
}

pub(super) fn token_json(access: &str, id: &str, refresh: &str) -> CalloutResult {
    let body = serde_json::json!({"access_token": access, "id_token": id, "refresh_token": refresh, "expires_in": 60});
    CalloutResult::Answered {
        status: 200,
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

fn params(location: &str) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
        .into_owned()
        .collect()
}

#[test]
fn authorize_sets_a_login_cookie_that_the_code_exchange_redeems_in_its_browser_only() {
    let mut d = driver();
    let reply = d
        .request(
            "GET",
            "/authorize?redirect=/home&action=signup",
            &[("secret", "web-key")],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 302);
    let p = params(reply.header("location").unwrap());
    assert!(reply
        .header("location")
        .unwrap()
        .starts_with("https://tenant.eu.auth0.com/authorize?"));
    assert_eq!(
        (p["response_type"].as_str(), p["client_id"].as_str()),
        ("code", "web-client-id")
    );
    assert_eq!(p["screen_hint"], "signup");
    assert_eq!(p["connection"], "db-a");
    let set_cookie = reply.header("set-cookie").unwrap();
    assert!(
        set_cookie.starts_with(&crate::tokens::login_state::cookie_name(&p["state"]))
            && set_cookie.ends_with("; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=600"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let body = serde_json::json!({"code": "the-code", "state": p["state"]}).to_string();
    // Login CSRF: the code and state taken to another browser, which has no such cookie or
    // the cookie of another login.
    let (other, _) = {
        let other = d
            .request("GET", "/authorize", &[("secret", "web-key")], b"")
            .unwrap();
        let c = other.header("set-cookie").unwrap();
        (c.split(';').next().unwrap().to_string(), ())
    };
    let renamed = format!(
        "{}={}",
        crate::tokens::login_state::cookie_name(&p["state"]),
        other.split_once('=').unwrap().1
    );
    for headers in [
        vec![],
        vec![("cookie", other.as_str())],
        vec![("cookie", renamed.as_str())],
    ] {
        let mut headers = headers;
        headers.extend([("secret", "web-key"), JSON_TYPE]);
        let refused = d
            .request("POST", "/oauth/token", &headers, body.as_bytes())
            .unwrap();
        assert_eq!(refused.status, 400, "{headers:?}");
    }
    assert!(d.callouts.is_empty(), "no refused login reaches Auth0");
    let access = sign(
        "k1",
        &[
            "https://api.example.org",
            "https://tenant.eu.auth0.com/userinfo",
        ],
        "web-client-id",
        600,
    );
    let id = sign("k1", &["web-client-id"], "web-client-id", 600);
    d.answers.push_back(token_json(&access, &id, "rt"));
    let login = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), JSON_TYPE, ("cookie", &cookie)],
            body.as_bytes(),
        )
        .unwrap();
    assert_eq!(login.status, 200);
    assert_eq!(login.header("location"), Some("/home"));
    // The answer removes the redeemed login's cookie (next to the `sid` it sets).
    let cleared = format!(
        "{}=; Path=/;",
        crate::tokens::login_state::cookie_name(&p["state"])
    );
    assert!(
        login
            .headers
            .iter()
            .any(|(n, v)| n == "set-cookie" && v.starts_with(&cleared) && v.ends_with("Max-Age=0")),
        "{:?}",
        login.headers
    );
    let exchange = d.form(0);
    let get = |n: &str| {
        exchange
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(get("code").as_deref(), Some("the-code"));
    assert_eq!(
        get("redirect_uri").as_deref(),
        Some("https://app.example.org/web-login/callback")
    );
    // The verifier matches the challenge sent to Auth0.
    let verifier = get("code_verifier").unwrap();
    use base64::Engine;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(hmac_sha256::Hash::hash(verifier.as_bytes()));
    assert_eq!(challenge, p["code_challenge"]);
    // Replayed by the browser, whose cookie is gone: 400 and no second call to Auth0.
    let replay = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), JSON_TYPE],
            body.as_bytes(),
        )
        .unwrap();
    assert_eq!(replay.status, 400);
    assert_eq!(d.callouts.len(), 1);
}

#[test]
fn authorize_keeps_nothing_on_the_gateway_and_caps_the_redirect() {
    let mut d = driver();
    let before = d.kv.data.borrow().clone();
    for i in 0..200 {
        let path = format!("/authorize?redirect=/{}", "a".repeat(i * 10));
        let reply = d
            .request("GET", &path, &[("secret", "web-key")], b"")
            .unwrap();
        assert_eq!(reply.status, 302);
    }
    assert_eq!(*d.kv.data.borrow(), before, "no store write");
    let long = format!("/authorize?redirect=/{}", "a".repeat(2_048));
    let refused = d
        .request("GET", &long, &[("secret", "web-key")], b"")
        .unwrap();
    assert_eq!(refused.status, 400);
    let message = String::from_utf8_lossy(&refused.body).into_owned();
    assert!(message.contains("at most 2048 bytes"), "{message}");
}

#[test]
fn authorize_refuses_a_repeated_parameter_and_more_than_64() {
    let mut d = driver();
    let query = |n: usize| {
        (0..n)
            .map(|i| format!("p{i}=v"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let mut get = |path: &str| {
        d.request("GET", path, &[("secret", "web-key")], b"")
            .unwrap()
    };
    assert_eq!(get(&format!("/authorize?{}", query(64))).status, 302);
    let too_many = get(&format!("/authorize?{}", query(65)));
    assert_eq!(too_many.status, 400);
    let message = String::from_utf8_lossy(&too_many.body).into_owned();
    assert!(message.contains("at most 64 query parameters"), "{message}");
    assert_eq!(get("/authorize?redirect=/a&redirect=/b").status, 400);
}

#[test]
fn userinfo_answers_from_the_session_profile_and_refreshes_an_expired_session() {
    let mut d = driver();
    let audiences = [
        "https://api.example.org",
        "https://tenant.eu.auth0.com/userinfo",
    ];
    // A session whose access token has expired.
    let stale = sign("k1", &audiences, "web-client-id", 1);
    let id = sign("k1", &["web-client-id"], "web-client-id", 600);
    d.sessions()
        .put(
            &crate::digest::SessionKey::for_token(&stale),
            &crate::store::SessionRecord {
                user_id: "auth0|u1".into(),
                client: "web".into(),
                refresh_token: Some("rt-1".into()),
                profile: crate::flows::identity::unverified_claims(&id)
                    .map(|claims| crate::flows::identity::profile_claims(&d.config, claims)),
                expires_at: NOW.secs + 100,
                ended: false,
            },
        )
        .unwrap();
    let fresh = sign("k1", &audiences, "web-client-id", 600);
    d.answers.push_back(token_json(&fresh, &id, "rt-2"));
    let cookie = format!("sid={stale}");
    let reply = d
        .request("GET", "/userinfo", &[("cookie", &cookie)], b"")
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        json(&reply),
        serde_json::json!({"sub": "auth0|u1", "name": "Alice", "email": "a@x.org", "groups": ["admin", "ops"]})
    );
    assert!(reply
        .header("set-cookie")
        .unwrap()
        .starts_with(&format!("sid={fresh};")));
    assert!(d.session(&stale).is_none() && d.session(&fresh).is_some());
    // The new session answers without calling Auth0 again.
    let again = d
        .request(
            "GET",
            "/users/me",
            &[("cookie", &format!("sid={fresh}"))],
            b"",
        )
        .unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(d.callouts.len(), 1);
    assert_eq!(d.request("GET", "/userinfo", &[], b"").unwrap().status, 401);
}

#[test]
fn protected_routes_forward_identity_or_deny() {
    let mut d = driver();
    let access = sign("k1", &["https://api.example.org"], "web-client-id", 600);
    let bearer = format!("Bearer {access}");
    assert!(
        d.request("GET", "/api/orders", &[("authorization", &bearer)], b"")
            .is_none(),
        "forwarded"
    );
    let headers = d.forwarded.clone().unwrap();
    assert_eq!(
        headers,
        vec![
            ("x-auth0-user-id".to_string(), "auth0|u1".to_string()),
            ("x-auth0-user-groups".to_string(), "admin,ops".to_string()),
            ("x-auth0-client-type".to_string(), "web".to_string()),
        ]
    );
    let browser = d
        .request("GET", "/api/orders?a=1", &[("accept", "text/html")], b"")
        .unwrap();
    assert_eq!(
        (browser.status, browser.header("location")),
        (302, Some("/authorize?redirect=%2Fapi%2Forders%3Fa%3D1"))
    );
    let api = d
        .request("GET", "/api/orders", &[("accept", "application/json")], b"")
        .unwrap();
    assert_eq!(api.status, 401);
    // A Bearer request for the protected route, as an API caller or a browser.
    let with_bearer = |d: &mut Driver, token: &str, accept: &str| {
        let bearer = format!("Bearer {token}");
        d.request(
            "GET",
            "/api/orders",
            &[("authorization", &bearer), ("accept", accept)],
            b"",
        )
        .unwrap()
    };
    let expired = sign("k1", &["https://api.example.org"], "web-client-id", 1);
    let r = with_bearer(&mut d, &expired, "application/json");
    assert_eq!(r.status, 401);
    let foreign = sign("k1", &["https://api.example.org"], "someone-else", 600);
    let r = with_bearer(&mut d, &foreign, "application/json");
    assert_eq!(r.status, 401, "a token of an unconfigured client");
    assert_eq!(
        json(&r)["message"],
        "this route needs a valid token",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = with_bearer(&mut d, &foreign, "text/html");
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("/authorize?redirect=%2Fapi%2Forders")),
        "a browser with a token of an unconfigured client is sent to log in"
    );
    assert!(d.request("GET", "/public", &[], b"").is_none());
}

#[test]
fn groups_come_only_from_app_metadata_and_unsafe_values_are_dropped() {
    let config = crate::testing::config_with(serde_json::json!({
        "customClaimsNamespaces": ["https://x/user_metadata", "https://x/app_metadata"]
    }));
    let claims: crate::jwt::Claims = serde_json::from_value(serde_json::json!({
        "https://x/user_metadata": {"groups": ["admin"], "theme": "dark"},
        "https://x/app_metadata": {"groups": ["users", "a,admin", "bad\nvalue"]}
    }))
    .unwrap();
    assert_eq!(
        crate::flows::identity::groups(&config, &claims),
        vec!["users".to_string()]
    );
    // In /userinfo, user_metadata cannot shadow app_metadata members either.
    let body = crate::flows::identity::userinfo_body(&config, &claims, "auth0|u1");
    assert_eq!(
        body["groups"],
        serde_json::json!(["users", "a,admin", "bad\nvalue"])
    );
    assert_eq!(body["theme"], "dark");
    let only_user: crate::jwt::Claims = serde_json::from_value(
        serde_json::json!({"https://x/user_metadata": {"groups": ["admin"]}}),
    )
    .unwrap();
    assert!(crate::flows::identity::groups(&config, &only_user).is_empty());
}

#[test]
fn userinfo_never_takes_groups_from_a_namespace_users_can_edit() {
    let config = crate::testing::config_with(serde_json::json!({
        "customClaimsNamespaces": ["https://x/user_metadata", "https://x/app_metadata", "https://x/prefs"]
    }));
    // No `groups` in app_metadata: the user's own (in any other namespace) are not shown.
    for claims in [
        serde_json::json!({
            "https://x/user_metadata": {"groups": ["admin"], "theme": "dark"},
            "https://x/app_metadata": {"plan": "pro"},
            "https://x/prefs": {"groups": ["root"]}
        }),
        serde_json::json!({"https://x/user_metadata": {"groups": ["admin"], "theme": "dark"}}),
    ] {
        let claims: crate::jwt::Claims = serde_json::from_value(claims).unwrap();
        let body = crate::flows::identity::userinfo_body(&config, &claims, "auth0|u1");
        assert_eq!(body.get("groups"), None, "{body}");
        assert_eq!(body["theme"], "dark");
        assert!(crate::flows::identity::groups(&config, &claims).is_empty());
    }
    // An empty admin list stays empty.
    let claims: crate::jwt::Claims = serde_json::from_value(serde_json::json!({
        "https://x/user_metadata": {"groups": ["admin"]},
        "https://x/app_metadata": {"groups": []}
    }))
    .unwrap();
    let body = crate::flows::identity::userinfo_body(&config, &claims, "auth0|u1");
    assert_eq!(body["groups"], serde_json::json!([]));
    assert!(crate::flows::identity::groups(&config, &claims).is_empty());
}

/// Auth0 puts custom claims in the ID token only (unless an Action adds them to the access
/// token): a Bearer token without groups gets them from its session's profile, taken from the
/// ID token at login.
#[test]
fn a_bearer_token_without_groups_takes_them_from_the_session_profile() {
    let mut d = driver();
    let token_of = |subject: &str| {
        let custom = serde_json::json!({"azp": "web-client-id", "scope": "openid profile"});
        let mut claims =
            jwt_simple::prelude::Claims::with_custom_claims(custom, Duration::from_secs(600))
                .with_issuer(ISSUER)
                .with_subject(subject)
                .with_audience("https://api.example.org");
        claims.issued_at = Some(UnixTimeStamp::from_secs(NOW.secs - 5));
        claims.invalid_before = Some(UnixTimeStamp::from_secs(NOW.secs - 5));
        claims.expires_at = Some(UnixTimeStamp::from_secs(NOW.secs + 600));
        key("k1").sign(claims).unwrap()
    };
    // A token this gateway stored no session for (issued elsewhere): its own claims, no groups.
    let elsewhere = format!("Bearer {}", token_of("auth0|u2"));
    assert!(d
        .request("GET", "/api/orders", &[("authorization", &elsewhere)], b"")
        .is_none());
    let headers = d.forwarded.take().unwrap();
    assert_eq!(headers[1], ("x-auth0-user-groups".into(), String::new()));
    let access = token_of("auth0|u1");
    let bearer = format!("Bearer {access}");
    let api = [("authorization", bearer.as_str())];

    website_login(&mut d, &access);
    // The session keeps the profile claims, not the ID token with its signature.
    let profile = d.session(&access).unwrap().profile.unwrap();
    let mut names: Vec<&str> = profile.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["email", "https://mia-platform.eu/app_metadata", "name"]
    );
    // Twice: the second check is answered from the verification cache.
    for _ in 0..2 {
        assert!(d.request("GET", "/api/orders", &api, b"").is_none());
        let headers = d.forwarded.take().unwrap();
        assert_eq!(
            headers[1],
            ("x-auth0-user-groups".into(), "admin,ops".into())
        );
    }
    // The worker remembers the session's groups with the token's verification: repeat
    // requests within `sessionRecheckSeconds` read no session, so a short store outage
    // goes unnoticed.
    d.store_down = true;
    assert!(d.request("GET", "/api/orders", &api, b"").is_none());
    let headers = d.forwarded.take().unwrap();
    assert_eq!(
        headers[1],
        ("x-auth0-user-groups".into(), "admin,ops".into())
    );
    // A session cookie still needs its session on every request.
    let cookie = format!("sid={access}");
    let browser = [("cookie", cookie.as_str()), ("accept", "application/json")];
    let denied = d.request("GET", "/api/orders", &browser, b"").unwrap();
    assert_eq!(
        denied.status,
        503,
        "{}",
        String::from_utf8_lossy(&denied.body)
    );
    // Past `sessionRecheckSeconds` the session is read again: with the store down, whether
    // the token was logged out cannot be told, so it is refused, not let through.
    d.config = crate::testing::config_with(serde_json::json!({
        "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata"],
        "protectedRoutes": {"prefixes": ["/api/"], "sessionRecheckSeconds": 0},
        "tokenLeewaySeconds": 0
    }));
    let refused = d.request("GET", "/api/orders", &api, b"").unwrap();
    assert_eq!(refused.status, 503);
}

/// Past the cap of requests waiting for an unknown `kid`, a request is answered at once: no
/// refetch asked for, no wait.
#[test]
fn a_token_past_the_unknown_kid_cap_is_401_at_once() {
    use crate::tokens::verifier::{VerifyAgainst, MAX_UNKNOWN_KEY_WAITERS};
    let mut d = driver();
    let unknown = |n: u64| sign("k2", &["https://api.example.org"], "web-client-id", 600 + n);
    {
        let store = crate::store::JwksCache::new(&d.kv, &d.config.session_scope);
        let source = |issuer: &str| store.source(issuer);
        for n in 0..MAX_UNKNOWN_KEY_WAITERS as u64 {
            let result = d.verifier.borrow_mut().verify(
                &unknown(n),
                &VerifyAgainst::TokenClient,
                &d.config,
                &source,
                NOW,
            );
            assert!(matches!(
                result,
                Err(crate::jwt::VerifyError::UnknownKey(_))
            ));
        }
    }
    let bearer = format!("Bearer {}", unknown(1_000));
    let reply = d
        .request(
            "GET",
            "/api/orders",
            &[("authorization", &bearer), ("accept", "application/json")],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(
        json(&reply)["message"],
        "the token is signed with an unknown key"
    );
    assert_eq!(d.waits, 0);
    // The same answer on /userinfo's path through `unauthorized`, never a 503.
    let err = crate::flows::identity::unauthorized(&crate::jwt::VerifyError::UnknownKeyNoWait);
    assert_eq!(err.status, 401);
}
