//! Browser login and identity through a real Envoy: /authorize → emulator → code → token →
//! sid → /userinfo → protected route → logout, plus every refusal: state replay, expiry and
//! client, PKCE mismatch, forged tokens, key rotation, transparent refresh, forged identity
//! headers, and 401 vs 302. Run through `make test`.

use std::collections::HashMap;

use base64::Engine;
use harness::{request, Gateway, APP_KEY, WEB_KEY};
use jwt_simple::prelude::{Duration, HS256Key, MACLike, RS256KeyPair, RSAKeyPairLike};
use serde_json::{json, Value};

const ALICE_ID: &str = "auth0|0000000000000000000000a1";

fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// A browser login up to the callback: the login cookie `/authorize` set, the code and state.
struct Started {
    cookie: String,
    code: String,
    state: String,
}

/// `/authorize` through the gateway, then the emulator's login (as `user`), up to the callback.
fn authorize(gw: &Gateway, key: (&str, &str), query: &str, user: &str) -> Started {
    let start = gw.call("GET", &format!("/authorize{query}"), &[key], None);
    assert_eq!(start.status, 302, "{}", start.body);
    let at_auth0 = start.header("location").unwrap().to_string();
    assert!(
        at_auth0.starts_with(&format!("{}/authorize?", gw.auth0_base)),
        "{at_auth0}"
    );
    let callback = request("GET", &format!("{at_auth0}&login_hint={user}"), &[], None);
    assert_eq!(callback.status, 302, "{}", callback.body);
    let params = query_of(callback.header("location").unwrap());
    let cookie = start
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a login cookie")
        .to_string();
    Started {
        cookie,
        code: params["code"].clone(),
        state: params["state"].clone(),
    }
}

/// The login site's callback: `{code, state}` posted from the browser, with its cookies.
fn redeem(
    gw: &Gateway,
    key: (&str, &str),
    code: &str,
    state: &str,
    cookie: &str,
) -> harness::Response {
    let mut headers = vec![key];
    if !cookie.is_empty() {
        headers.push(("cookie", cookie));
    }
    gw.post_json(
        "/oauth/token",
        &headers,
        json!({"code": code, "state": state}),
    )
}

fn echo_header(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == name)
        .map(|h| h[1].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn browser_login_from_authorize_to_logout() {
    let gw = Gateway::start("id_browser", json!({}));
    let start = gw.call(
        "GET",
        "/authorize?redirect=/home&prompt=login&action=signup",
        &[WEB_KEY],
        None,
    );
    let params = query_of(start.header("location").unwrap());
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], "website-client-id");
    assert_eq!(
        params["redirect_uri"],
        "http://localhost:8080/web-login/callback"
    );
    assert_eq!(params["scope"], "openid offline_access profile email");
    assert_eq!(params["audience"], "https://api.example.org");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43);
    assert_eq!(params["connection"], "Username-Password-Authentication");
    assert_eq!(
        (params["prompt"].as_str(), params["screen_hint"].as_str()),
        ("login", "signup")
    );
    assert!(params["state"].len() >= 22, "at least 128 random bits");

    let started = authorize(&gw, WEB_KEY, "?redirect=/home", "alice");
    let login = redeem(&gw, WEB_KEY, &started.code, &started.state, &started.cookie);
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(
        login.header("location"),
        Some("/home"),
        "the stored redirect"
    );
    let cookie = format!("sid={}", login.sid());

    let info = gw.call("GET", "/userinfo", &[("cookie", &cookie)], None);
    assert_eq!(info.status, 200, "{}", info.body);
    let info = info.json();
    assert_eq!(info["sub"], ALICE_ID);
    assert_eq!(
        (info["email"].as_str(), info["name"].as_str()),
        (Some("alice@example.org"), Some("Alice Example"))
    );
    assert_eq!(
        info["groups"],
        json!(["admin"]),
        "app_metadata merged at the top level"
    );
    assert_eq!(info["theme"], "dark", "user_metadata merged too");
    assert!(info.get("https://mia-platform.eu/app_metadata").is_none());
    assert_eq!(
        gw.call("GET", "/users/me", &[("cookie", &cookie)], None)
            .json(),
        info
    );
    assert_eq!(
        gw.emulator_calls("/userinfo"),
        0,
        "Auth0's rate-limited /userinfo is never called"
    );

    let api = gw.call(
        "GET",
        "/protected/orders",
        &[("cookie", &cookie), ("accept", "application/json")],
        None,
    );
    assert_eq!(api.status, 200, "{}", api.body);
    let echo = api.json();
    assert_eq!(echo_header(&echo, "x-auth0-user-id"), vec![ALICE_ID]);
    assert_eq!(echo_header(&echo, "x-auth0-user-groups"), vec!["admin"]);
    assert_eq!(echo_header(&echo, "x-auth0-client-type"), vec!["website"]);

    assert_eq!(
        gw.call("GET", "/logout", &[WEB_KEY, ("cookie", &cookie)], None)
            .status,
        302
    );
    gw.call("GET", "/userinfo", &[("cookie", &cookie)], None)
        .assert_error(401);
    // Logout also ends the cookie's access to protected routes, before the token expires.
    gw.call(
        "GET",
        "/protected/orders",
        &[("cookie", &cookie), ("accept", "application/json")],
        None,
    )
    .assert_error(401);
    // The JSON client gets the redirect in the body.
    let started = authorize(&gw, APP_KEY, "?redirect=/app", "alice");
    let tokens = redeem(&gw, APP_KEY, &started.code, &started.state, &started.cookie);
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.json()["redirect"], "/app");
    let bearer = format!("Bearer {}", tokens.json()["accessToken"].as_str().unwrap());
    assert_eq!(
        gw.call("GET", "/userinfo", &[("authorization", &bearer)], None)
            .json()["sub"],
        ALICE_ID
    );
}

#[test]
fn logins_are_redeemed_once_by_their_client_in_their_browser_and_expire() {
    // 2 s, not 1: expiry has whole-second resolution, so a 1 s login can lapse before its
    // first redeem when authorize and redeem straddle a second boundary under load.
    let gw = Gateway::start("id_states", json!({"loginStateTtlSeconds": 2}));
    let s = authorize(&gw, WEB_KEY, "", "alice");
    let login = redeem(&gw, WEB_KEY, &s.code, &s.state, &s.cookie);
    assert_eq!(login.status, 200);
    let cleared = format!("{}=;", s.cookie.split_once('=').unwrap().0);
    assert!(login
        .headers
        .iter()
        .any(|(n, v)| n == "set-cookie" && v.starts_with(&cleared)));
    let calls = gw.emulator_calls("/oauth/token");
    // The browser no longer has the cookie: a replay is refused before Auth0.
    redeem(&gw, WEB_KEY, &s.code, &s.state, "").assert_error(400);
    // Another client, or a state the cookie was not made for.
    let s = authorize(&gw, WEB_KEY, "", "alice");
    redeem(&gw, APP_KEY, &s.code, &s.state, &s.cookie).assert_error(400);
    redeem(&gw, WEB_KEY, &s.code, "never-issued", &s.cookie).assert_error(400);
    // An expired login.
    let s = authorize(&gw, WEB_KEY, "", "alice");
    std::thread::sleep(std::time::Duration::from_millis(3_100));
    redeem(&gw, WEB_KEY, &s.code, &s.state, &s.cookie).assert_error(400);
    assert_eq!(
        gw.emulator_calls("/oauth/token"),
        calls,
        "no refused login reaches Auth0"
    );
    // Bad /authorize input.
    gw.call("GET", "/authorize?redirect=//evil.com", &[WEB_KEY], None)
        .assert_error(400);
    gw.call("GET", "/authorize?connection=evil", &[WEB_KEY], None)
        .assert_error(400);
    gw.call("GET", "/authorize?prompt=always", &[WEB_KEY], None)
        .assert_error(400);
    gw.call("GET", "/authorize", &[("secret", "nope")], None)
        .assert_error(401);
}

#[test]
fn a_required_state_is_the_callers_and_must_be_given() {
    let mut clients = harness::base_clients();
    clients["website"]["authorizeStateRequired"] = true.into();
    let gw = Gateway::start("id_state_required", json!({"clients": clients}));
    gw.call("GET", "/authorize", &[WEB_KEY], None)
        .assert_error(400);
    gw.call("GET", "/authorize?state=short", &[WEB_KEY], None)
        .assert_error(400);
    let start = gw.call(
        "GET",
        "/authorize?state=my-own-state-1234567",
        &[WEB_KEY],
        None,
    );
    assert_eq!(
        query_of(start.header("location").unwrap())["state"],
        "my-own-state-1234567"
    );
    // A state given again by someone else cannot take the first login over: each browser's
    // cookie holds its own redirect and verifier.
    let first_cookie = start
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let second = gw.call(
        "GET",
        "/authorize?state=my-own-state-1234567&redirect=/evil",
        &[WEB_KEY],
        None,
    );
    assert_eq!(second.status, 302);
    let second_cookie = second
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let at_auth0 = start.header("location").unwrap();
    let callback = request("GET", &format!("{at_auth0}&login_hint=alice"), &[], None);
    let code = query_of(callback.header("location").unwrap())["code"].clone();
    let state = "my-own-state-1234567";
    let login = redeem(&gw, WEB_KEY, &code, state, &first_cookie);
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(
        login.header("location"),
        None,
        "not the second caller's redirect"
    );
    redeem(&gw, WEB_KEY, &code, state, &second_cookie).assert_error(403);
}

#[test]
fn a_code_redeemed_with_another_logins_verifier_fails_pkce() {
    let gw = Gateway::start("id_pkce", json!({}));
    // Two logins: the code of the first redeemed with the state (and verifier) of the second.
    let a = authorize(&gw, WEB_KEY, "", "alice");
    let b = authorize(&gw, WEB_KEY, "", "alice");
    let r = redeem(&gw, WEB_KEY, &a.code, &b.state, &b.cookie);
    r.assert_error(403);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("code verifier"),
        "{}",
        r.body
    );
}

fn emulator_key(gw: &Gateway) -> RS256KeyPair {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/it/emulator-key.pem"
    ))
    .unwrap();
    let kid = request(
        "GET",
        &format!("{}/.well-known/jwks.json", gw.auth0_base),
        &[],
        None,
    )
    .json()["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_string();
    RS256KeyPair::from_pem(&pem).unwrap().with_key_id(&kid)
}

fn claims(gw: &Gateway, audience: &str, valid: u64) -> jwt_simple::prelude::JWTClaims<Value> {
    let custom = json!({"azp": "app-client-id", "scope": "openid"});
    jwt_simple::prelude::Claims::with_custom_claims(custom, Duration::from_secs(valid))
        .with_issuer(format!("{}/", gw.auth0_base))
        .with_subject(ALICE_ID)
        .with_audience(audience)
}

#[test]
fn forged_expired_and_confused_tokens_are_refused() {
    let gw = Gateway::start("id_forged", json!({"tokenLeewaySeconds": 0}));
    let real = emulator_key(&gw);
    let api = "https://api.example.org";
    let good = real.sign(claims(&gw, api, 600)).unwrap();
    let stranger = RS256KeyPair::generate(2048)
        .unwrap()
        .with_key_id("stranger");
    let unknown_key = stranger.sign(claims(&gw, api, 600)).unwrap();
    let mut expired_claims = claims(&gw, api, 1);
    expired_claims.expires_at = Some(jwt_simple::prelude::UnixTimeStamp::from_secs(1_000));
    expired_claims.issued_at = Some(jwt_simple::prelude::UnixTimeStamp::from_secs(900));
    expired_claims.invalid_before = None;
    let expired = real.sign(expired_claims).unwrap();
    let wrong_audience = real
        .sign(claims(&gw, "https://other.example.org", 600))
        .unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = good.split('.').nth(1).unwrap();
    let none = format!("{}.{payload}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#));
    let public_pem = real.public_key().to_pem().unwrap();
    let confused = HS256Key::from_bytes(public_pem.as_bytes())
        .with_key_id(real.key_id().as_deref().unwrap())
        .authenticate(claims(&gw, api, 600))
        .unwrap();
    let get = |token: &str| {
        gw.call(
            "GET",
            "/protected/x",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("accept", "application/json"),
            ],
            None,
        )
    };
    assert_eq!(get(&good).status, 200, "the control token passes");
    // While the filter waits for keys (an unknown kid), the request body must not go upstream.
    let posted = gw.call(
        "POST",
        "/protected/x",
        &[
            ("authorization", &format!("Bearer {unknown_key}")),
            ("accept", "application/json"),
            ("content-type", "text/plain"),
        ],
        Some(&vec![b'x'; 64 * 1024]),
    );
    assert_eq!(posted.status, 401, "{}", posted.body);
    assert!(
        posted.json().get("upstream").is_none(),
        "the upstream saw an unverified request"
    );
    for (name, token) in [
        ("unknown key", &unknown_key),
        ("expired", &expired),
        ("wrong audience", &wrong_audience),
        ("alg none", &none),
        ("HS256 confusion", &confused),
    ] {
        let r = get(token);
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        assert_eq!(r.json()["statusCode"], 401, "{name}");
    }
}

#[test]
fn rotated_signing_keys_are_picked_up() {
    let gw = Gateway::start("id_rotation", json!({}));
    let login = |gw: &Gateway| {
        let r = gw.post_form("/oauth/token", &[APP_KEY], harness::ALICE);
        format!("Bearer {}", r.json()["accessToken"].as_str().unwrap())
    };
    let before = login(&gw);
    let get = |bearer: &str| {
        gw.call(
            "GET",
            "/protected/x",
            &[("authorization", bearer), ("accept", "application/json")],
            None,
        )
        .status
    };
    assert_eq!(get(&before), 200);
    let rotated = request(
        "POST",
        &format!("{}/__emulator/rotate-keys", gw.auth0_base),
        &[],
        Some(b"{}"),
    );
    assert_eq!(rotated.status, 200);
    let after = login(&gw);
    assert_eq!(
        get(&after),
        200,
        "an unknown kid makes the filter refetch the JWKS"
    );
    assert_eq!(get(&before), 200, "the previous key is still published");
    assert!(gw.emulator_calls("/.well-known/jwks.json") >= 2);
}

#[test]
fn an_expired_access_token_is_refreshed_transparently() {
    let gw = Gateway::start("id_refresh", json!({"tokenLeewaySeconds": 0}));
    gw.fault(json!({"userTokenLifetimeSeconds": 2}));
    let login = gw.post_form("/oauth/token", &[WEB_KEY], harness::ALICE);
    let old = format!("sid={}", login.sid());
    assert_eq!(
        gw.call("GET", "/userinfo", &[("cookie", &old)], None)
            .status,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(3_100));
    gw.fault(json!({"userTokenLifetimeSeconds": 3600}));
    let refreshed = gw.call("GET", "/userinfo", &[("cookie", &old)], None);
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(refreshed.json()["sub"], ALICE_ID);
    let new = format!("sid={}", refreshed.sid());
    assert_ne!(new, old, "a website client gets a new sid");
    gw.call("GET", "/userinfo", &[("cookie", &old)], None)
        .assert_error(401);
    assert_eq!(
        gw.call("GET", "/userinfo", &[("cookie", &new)], None)
            .status,
        200
    );
    // Without a refresh token (no offline_access) an expired session is 401.
    let mut clients = harness::base_clients();
    clients["app"]["scopes"] = json!(["profile", "email"]);
    drop(gw);
    let gw = Gateway::start(
        "id_refresh_none",
        json!({"tokenLeewaySeconds": 0, "clients": clients}),
    );
    gw.fault(json!({"userTokenLifetimeSeconds": 1}));
    let tokens = gw
        .post_form("/oauth/token", &[APP_KEY], harness::ALICE)
        .json();
    let bearer = format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    gw.call("GET", "/userinfo", &[("authorization", &bearer)], None)
        .assert_error(401);
}

#[test]
fn identity_headers_cannot_be_forged() {
    let gw = Gateway::start("id_headers", json!({}));
    let tokens = gw
        .post_form("/oauth/token", &[APP_KEY], harness::ALICE)
        .json();
    let bearer = format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    let forged = [
        ("x-auth0-user-id", "auth0|attacker"),
        ("x-auth0-user-groups", "admin"),
        ("x-auth0-client-type", "website"),
        ("x_auth0_user_id", "auth0|attacker"),
    ];
    let mut headers = vec![
        ("authorization", bearer.as_str()),
        ("accept", "application/json"),
    ];
    headers.extend_from_slice(&forged);
    let echo = gw.call("GET", "/protected/x", &headers, None).json();
    assert_eq!(echo_header(&echo, "x-auth0-user-id"), vec![ALICE_ID]);
    assert_eq!(echo_header(&echo, "x-auth0-client-type"), vec!["app"]);
    // On paths the filter does not own, forged copies never reach the upstream either.
    for path in ["/through-filter/x", "/anything/else"] {
        let echo = gw.call("GET", path, &forged, None).json();
        for (name, _) in forged {
            assert!(
                echo_header(&echo, name).is_empty(),
                "{path}: {name} passed through"
            );
        }
    }
}

#[test]
fn api_callers_get_401_and_browsers_a_login_redirect() {
    let gw = Gateway::start("id_401_302", json!({}));
    let r = gw.call(
        "GET",
        "/protected/page?x=1",
        &[("accept", "text/html,application/xhtml+xml")],
        None,
    );
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("/authorize?redirect=%2Fprotected%2Fpage%3Fx%3D1")
    );
    gw.call(
        "GET",
        "/protected/page",
        &[("accept", "application/json")],
        None,
    )
    .assert_error(401);
    gw.call(
        "GET",
        "/protected/page",
        &[
            ("accept", "text/html"),
            ("x-requested-with", "XMLHttpRequest"),
        ],
        None,
    )
    .assert_error(401);
    gw.call(
        "GET",
        "/protected/page",
        &[("accept", "text/html"), ("authorization", "Bearer junk")],
        None,
    );
    drop(gw);
    let gw = Gateway::start(
        "id_401_only",
        json!({"protectedRoutes": {"prefixes": ["/protected/"]}}),
    );
    gw.call("GET", "/protected/page", &[("accept", "text/html")], None)
        .assert_error(401);
}
