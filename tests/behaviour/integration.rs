//! Every point of the foundation, checked over HTTP against a real Envoy running the built
//! `.wasm`, with the Auth0 emulator behind it. Run through `make test`.

use harness::{base_clients, request, Gateway, ALICE, APP_KEY, WEB_KEY};
use serde_json::json;

fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[test]
fn seed_password_login_answers_the_token_json() {
    let gw = Gateway::start("token_json", json!({}));
    let r = gw.post_form("/oauth/token", &[APP_KEY], ALICE);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["accessToken", "expireAt", "idToken", "refreshToken"]);
    assert_eq!(
        jwt_claims(body["accessToken"].as_str().unwrap())["sub"],
        "auth0|0000000000000000000000a1"
    );
    assert_eq!(
        jwt_claims(body["idToken"].as_str().unwrap())["aud"],
        "app-client-id"
    );
    // The scope sent to Auth0: openid + scopes, no `website`.
    assert_eq!(
        jwt_claims(body["accessToken"].as_str().unwrap())["scope"],
        "openid offline_access profile email"
    );
    let expire_at = body["expireAt"].as_str().unwrap();
    assert!(
        expire_at.ends_with('Z') && expire_at.len() >= 20 && &expire_at[10..11] == "T",
        "{expire_at}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // JSON bodies are accepted too, and `client-key` is the other API-key header.
    let r = gw.post_json(
        "/oauth/token",
        &[("client-key", "app-api-key")],
        json!({"grant_type": "password", "username": "alice@example.org", "password": "Alice-Passw0rd!"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Wrong credentials: 403 as in the original since 3.0.1.
    let r = gw.post_form(
        "/oauth/token",
        &[APP_KEY],
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "nope"),
        ],
    );
    r.assert_error(403);
}

#[test]
fn website_session_from_login_to_refresh_to_logout() {
    let gw = Gateway::start("website_session", json!({}));
    let login = gw.post_form("/oauth/token", &[WEB_KEY], ALICE);
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.is_empty());
    let cookie = login.header("set-cookie").unwrap();
    let sid = login.sid();
    assert_eq!(
        cookie,
        format!("sid={sid}; Path=/; HttpOnly; Secure; Max-Age=86400; SameSite=Lax")
    );
    assert_eq!(jwt_claims(&sid)["sub"], "auth0|0000000000000000000000a1");

    // Refresh from the cookie: a new sid, the old session dropped.
    let sid_cookie = format!("sid={sid}");
    let refreshed = gw.call(
        "POST",
        "/refreshtoken",
        &[WEB_KEY, ("cookie", &sid_cookie)],
        None,
    );
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let new_sid = refreshed.sid();
    assert_ne!(new_sid, sid);
    gw.call(
        "POST",
        "/refreshtoken",
        &[WEB_KEY, ("cookie", &sid_cookie)],
        None,
    )
    .assert_error(401);
    // The rotated refresh token stored in the session works again.
    let new_cookie = format!("sid={new_sid}");
    let again = gw.call(
        "POST",
        "/oauth/refreshtoken",
        &[WEB_KEY, ("cookie", &new_cookie)],
        None,
    );
    assert_eq!(again.status, 200, "{}", again.body);
    let current = format!("sid={}", again.sid());

    // Logout: 302 to Auth0, cookie cleared without Max-Age, session gone, refresh token revoked.
    let revokes_before = gw.emulator_calls("/oauth/revoke");
    let out = gw.call("GET", "/logout", &[WEB_KEY, ("cookie", &current)], None);
    assert_eq!(out.status, 302, "{}", out.body);
    assert_eq!(
        out.header("location"),
        Some(format!("{}/v2/logout", gw.auth0_base).as_str())
    );
    let cleared = out.header("set-cookie").unwrap();
    assert_eq!(
        cleared,
        "sid=; Path=/; HttpOnly; Secure; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax"
    );
    assert_eq!(gw.emulator_calls("/oauth/revoke"), revokes_before + 1);
    gw.call(
        "POST",
        "/refreshtoken",
        &[WEB_KEY, ("cookie", &current)],
        None,
    )
    .assert_error(401);
}

#[test]
fn refresh_as_the_seed_curl_sends_it_with_rotation_and_revocation() {
    let gw = Gateway::start("refresh_seed", json!({}));
    let login = gw.post_form("/oauth/token", &[APP_KEY], ALICE).json();
    let (access, refresh) = (
        login["accessToken"].as_str().unwrap(),
        login["refreshToken"].as_str().unwrap(),
    );
    let bearer = format!("Bearer {access}");
    let r = gw.post_json(
        "/oauth/refreshtoken",
        &[APP_KEY, ("authorization", &bearer)],
        json!({"refresh_token": refresh}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_ne!(body["accessToken"], login["accessToken"]);
    let rotated = body["refreshToken"].as_str().unwrap().to_string();
    assert_ne!(rotated, refresh, "Auth0 rotates refresh tokens");
    // The old refresh token fails after use: Auth0 refuses → 401.
    gw.post_json(
        "/refreshtoken",
        &[APP_KEY],
        json!({"refresh_token": refresh}),
    )
    .assert_error(401);
    // Body only, at the original's own path.
    // (Reuse of a rotated token revoked the family at Auth0, so log in again first.)
    let login = gw.post_form("/oauth/token", &[APP_KEY], ALICE).json();
    let r = gw.post_json(
        "/refreshtoken",
        &[APP_KEY],
        json!({"refresh_token": login["refreshToken"]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // No refresh token anywhere → 400; logout with the Bearer token revokes the stored one.
    gw.call("POST", "/refreshtoken", &[APP_KEY], None)
        .assert_error(400);
    let current = r.json();
    let bearer = format!("Bearer {}", current["accessToken"].as_str().unwrap());
    assert_eq!(
        gw.call(
            "GET",
            "/logout",
            &[APP_KEY, ("authorization", &bearer)],
            None
        )
        .status,
        302
    );
    gw.post_json(
        "/refreshtoken",
        &[APP_KEY],
        json!({"refresh_token": current["refreshToken"]}),
    )
    .assert_error(401);
}

#[test]
fn static_refresh_tokens_keep_working_without_rotation() {
    let mut clients = base_clients();
    clients["static"] = clients["app"].clone();
    clients["static"]["clientId"] = "static-client-id".into();
    clients["static"]["clientSecret"] = "static-client-secret-0123456789".into();
    let gw = Gateway::start(
        "static_refresh",
        json!({"clients": clients, "apiKeys": [{"key": "k-static", "clientType": "static"}]}),
    );
    let login = gw.post_form("/oauth/token", &[("secret", "k-static")], ALICE);
    assert_eq!(login.status, 200, "{}", login.body);
    let refresh = login.json()["refreshToken"].clone();
    for _ in 0..2 {
        let r = gw.post_json(
            "/refreshtoken",
            &[("secret", "k-static")],
            json!({"refresh_token": refresh}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.json()["refreshToken"],
            refresh,
            "no rotation: the token in use is answered"
        );
    }
}

#[test]
fn connection_selection_follows_supported_connections() {
    let gw = Gateway::start("connections", json!({}));
    // The website client supports two connections; carol lives in the non-default one.
    let carol = [
        ("grant_type", "password"),
        ("username", "carol@partner.example"),
        ("password", "Carol-Passw0rd!"),
    ];
    let mut with_conn = carol.to_vec();
    with_conn.push(("connection", "partners-db"));
    assert_eq!(
        gw.post_form("/oauth/token", &[WEB_KEY], &with_conn).status,
        200
    );
    // Without a connection the default one is used, where carol does not exist.
    gw.post_form("/oauth/token", &[WEB_KEY], &carol)
        .assert_error(403);
    // A connection outside supportedConnections is 400, before Auth0 is called.
    let calls = gw.emulator_calls("/oauth/token");
    let mut bad = ALICE.to_vec();
    bad.push(("connection", "evil-db"));
    gw.post_form("/oauth/token", &[WEB_KEY], &bad)
        .assert_error(400);
    assert_eq!(gw.emulator_calls("/oauth/token"), calls);
    // Without supported connections at all, the plain password grant uses the tenant default.
    let mut clients = base_clients();
    clients["app"]["supportedConnections"] = json!([]);
    drop(gw);
    let gw = Gateway::start("connections_none", json!({"clients": clients}));
    assert_eq!(gw.post_form("/oauth/token", &[APP_KEY], ALICE).status, 200);
}

#[test]
fn client_selection_by_key_trusted_header_default_or_401() {
    let gw = Gateway::start("client_selection", json!({}));
    // No key: the default client (app) answers JSON.
    assert!(gw.post_form("/oauth/token", &[], ALICE).json()["idToken"].is_string());
    // The website key selects the website client: a cookie.
    assert!(gw
        .post_form("/oauth/token", &[WEB_KEY], ALICE)
        .header("set-cookie")
        .is_some());
    // An unknown key is 401, never the default client; `client-type` is not trusted.
    gw.post_form("/oauth/token", &[("secret", "wrong")], ALICE)
        .assert_error(401);
    let r = gw.post_form("/oauth/token", &[("client-type", "website")], ALICE);
    assert!(
        r.header("set-cookie").is_none(),
        "client-type must be ignored by default"
    );
    drop(gw);
    let gw = Gateway::start(
        "client_type_trusted",
        json!({"trustClientTypeHeader": true, "defaultClient": null, "apiKeys": []}),
    );
    assert!(gw
        .post_form("/oauth/token", &[("client-type", "website")], ALICE)
        .header("set-cookie")
        .is_some());
    gw.post_form("/oauth/token", &[("client-type", "nope")], ALICE)
        .assert_error(401);
    gw.post_form("/oauth/token", &[], ALICE).assert_error(401);
}

#[test]
fn sessions_expire_and_are_swept() {
    let gw = Gateway::start(
        "sweep",
        json!({"sessionDurationSeconds": 2, "sweepIntervalSeconds": 1}),
    );
    let login = gw.post_form("/oauth/token", &[WEB_KEY], ALICE);
    assert!(login.header("set-cookie").unwrap().contains("Max-Age=2;"));
    let cookie = format!("sid={}", login.sid());
    std::thread::sleep(std::time::Duration::from_millis(3200));
    gw.call(
        "POST",
        "/refreshtoken",
        &[WEB_KEY, ("cookie", &cookie)],
        None,
    )
    .assert_error(401);
    if gw.on_redis() {
        return; // Redis expires sessions itself (SETEX): there is no sweeper to watch.
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !gw.envoy_log().contains("swept 1 expired sessions") {
        assert!(
            std::time::Instant::now() < deadline,
            "no sweep logged:\n{}",
            gw.envoy_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The curl tour (tests/curl/tour.sh: README's tour, what `make run` prints) against a gateway,
/// in this run's session store and body-reading mode: every step's status, headers and body.
#[test]
fn the_curl_tour_passes() {
    let gw = Gateway::start("curl_tour", json!({}));
    let tour = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/curl/tour.sh");
    let out = std::process::Command::new("bash")
        .arg(tour)
        .arg(&gw.base)
        .arg(format!("http://127.0.0.1:{}", gw.admin_port))
        .output()
        .expect("bash, curl and jq");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_end_user_ip_reaches_auth0_on_password_logins() {
    let gw = Gateway::start("forwarded_for", json!({}));
    assert_eq!(gw.post_form("/oauth/token", &[APP_KEY], ALICE).status, 200);
    let url = format!(
        "{}/__emulator/last-headers?path=/oauth/token",
        gw.auth0_base
    );
    let headers = request("GET", &url, &[], None).json();
    assert_eq!(headers["auth0-forwarded-for"], "127.0.0.1", "{headers}");
    assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
}
