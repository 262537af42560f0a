//! Bad input, hostile redirects, pass-through, Auth0 faults, configuration refusals and log
//! hygiene, checked over HTTP against a real Envoy running the built `.wasm`. Run through
//! `make test`.

use harness::{base_clients, Gateway, ALICE, APP_KEY, WEB_KEY};
use serde_json::json;

#[test]
fn bad_input_gets_a_clear_4xx_json_error() {
    let gw = Gateway::start("bad_input", json!({"maxBodyBytes": 4096}));
    let form = ("content-type", "application/x-www-form-urlencoded");
    let post = |headers: &[(&str, &str)], body: &[u8]| {
        gw.call("POST", "/oauth/token", headers, Some(body))
    };
    post(&[APP_KEY, form], b"grant_type=password&username").assert_error(400);
    post(
        &[APP_KEY, form],
        b"grant_type=password&username=a&username=b&password=c",
    )
    .assert_error(400);
    post(
        &[APP_KEY, form],
        b"grant_type=password&username=%FF&password=x",
    )
    .assert_error(400);
    post(&[APP_KEY, form], b"grant_type=password&username=alice").assert_error(400);
    post(&[APP_KEY, form], b"grant_type=authorization_code&code=x").assert_error(400);
    post(
        &[APP_KEY, ("content-type", "text/plain")],
        b"grant_type=password",
    )
    .assert_error(415);
    post(&[APP_KEY], b"grant_type=password").assert_error(415);
    post(
        &[APP_KEY, ("content-type", "application/json")],
        b"{\"grant_type\": \"password\"",
    )
    .assert_error(400);
    post(
        &[APP_KEY, ("content-type", "application/json")],
        b"[\"password\"]",
    )
    .assert_error(400);
    post(
        &[APP_KEY, ("content-type", "application/json")],
        br#"{"grant_type":"password","username":1,"password":"x"}"#,
    )
    .assert_error(400);
    post(&[APP_KEY, form], &vec![b'a'; 10_000]).assert_error(413);
    gw.call(
        "POST",
        "/refreshtoken",
        &[APP_KEY, ("content-type", "application/xml")],
        Some(b"<x/>"),
    )
    .assert_error(415);
    assert_eq!(
        gw.emulator_calls("/oauth/token"),
        0,
        "no bad input reaches Auth0"
    );
}

#[test]
fn logout_return_to_is_built_and_validated() {
    // Any host (an empty allow-list): the shipped configuration lists its own.
    let gw = Gateway::start("logout_redirects", json!({"allowedRedirectHosts": []}));
    let fwd = [
        WEB_KEY,
        ("x-forwarded-host", "app.example.org"),
        ("x-forwarded-proto", "https"),
    ];
    let r = gw.call("GET", "/logout?redirect=/web-login?redirect=/x", &fwd, None);
    assert_eq!(r.status, 302);
    // The edge Envoy (`use_remote_address`) sets X-Forwarded-Proto from the connection, plain
    // HTTP here: a client's own claim is not believed.
    let expected = format!(
        "{}/v2/logout?returnTo=http%3A%2F%2Fapp.example.org%2Fweb-login%3Fredirect%3D%2Fx",
        gw.auth0_base
    );
    assert_eq!(r.header("location"), Some(expected.as_str()));
    // Without X-Forwarded-*, the request's own scheme and authority.
    let r = gw.call("GET", "/logout?redirect=/logout-page", &[WEB_KEY], None);
    let host = gw.base.trim_start_matches("http://");
    let want = format!(
        "returnTo=http%3A%2F%2F{}%2Flogout-page",
        host.replace(':', "%3A")
    );
    assert!(
        r.header("location").unwrap().ends_with(&want),
        "{:?}",
        r.header("location")
    );
    for bad in [
        "//evil.com",
        "/\\evil.com",
        "/%5Cevil.com",
        "https://evil.com",
        "%2F%2Fevil.com",
        "/a%0D%0ASet-Cookie:%20x=y",
        "javascript:alert(1)",
        "/%00",
    ] {
        let r = gw.call("GET", &format!("/logout?redirect={bad}"), &fwd, None);
        r.assert_error(400);
        assert!(r.header("location").is_none(), "{bad}");
    }
    drop(gw);
    let gw = Gateway::start(
        "logout_allowlist",
        json!({"allowedRedirectHosts": ["app.example.org"], "logoutClientIdEnabled": true}),
    );
    let ok = gw.call(
        "GET",
        "/logout?redirect=/bye",
        &[WEB_KEY, ("x-forwarded-host", "app.example.org")],
        None,
    );
    assert!(ok
        .header("location")
        .unwrap()
        .ends_with("returnTo=http%3A%2F%2Fapp.example.org%2Fbye&client_id=website-client-id"));
    let no_redirect = gw.call("GET", "/logout", &[WEB_KEY], None);
    assert!(no_redirect
        .header("location")
        .unwrap()
        .ends_with("/v2/logout?client_id=website-client-id"));
    gw.call(
        "GET",
        "/logout?redirect=/bye",
        &[WEB_KEY, ("x-forwarded-host", "evil.com")],
        None,
    )
    .assert_error(400);
}

#[test]
fn requests_the_filter_does_not_own_pass_through_untouched() {
    let gw = Gateway::start("pass_through", json!({}));
    let headers = [
        ("secret", "app-api-key"),
        ("cookie", "sid=abc"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-custom", "1"),
    ];
    for path in [
        "/through-filter/api/items?q=1&r=%2F",
        "/api/items?q=1",
        "/oauth/token/extra",
    ] {
        let r = gw.call(
            "POST",
            path,
            &headers,
            Some(b"grant_type=password&username=alice"),
        );
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let echo = r.json();
        assert_eq!(echo["upstream"], "echo");
        assert_eq!(echo["url"], path);
        assert_eq!(echo["body"], "grant_type=password&username=alice");
        let has = |n: &str, v: &str| {
            echo["headers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h[0] == n && h[1] == v)
        };
        assert!(
            has("secret", "app-api-key") && has("cookie", "sid=abc") && has("x-custom", "1"),
            "{echo}"
        );
    }
    // An owned path with another method is not owned either.
    let r = gw.call("GET", "/oauth/token", &[APP_KEY], None);
    assert_eq!(r.json()["upstream"], "echo");
    assert_eq!(gw.emulator_calls("/oauth/token"), 0);
}

#[test]
fn service_prefix_moves_every_route() {
    let gw = Gateway::try_start_with(
        "prefix",
        json!({"servicePrefix": "/through-filter/auth"}),
        "/through-filter/auth",
    )
    .unwrap();
    assert_eq!(
        gw.post_form("/through-filter/auth/oauth/token", &[APP_KEY], ALICE)
            .status,
        200
    );
    let r = gw.post_form("/through-filter/oauth/token", &[APP_KEY], ALICE);
    assert_eq!(r.json()["upstream"], "echo");
}

#[test]
fn auth0_faults_map_to_429_502_and_504() {
    let mut gw = Gateway::start("faults", json!({"calloutTimeoutMs": 800}));
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30;
    gw.fault(json!({"fail": {"path": "/oauth/token", "status": 429, "headers": {"x-ratelimit-reset": reset.to_string(), "x-ratelimit-limit": "10", "x-ratelimit-remaining": "0"}, "body": {"error": "too_many_requests", "error_description": "Global limit has been reached"}}}));
    let r = gw.post_form("/oauth/token", &[APP_KEY], ALICE);
    r.assert_error(429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((25..=30).contains(&retry), "{retry}");
    gw.fault(
        json!({"fail": {"path": "/oauth/token", "status": 500, "body": {"error": "server_error"}}}),
    );
    gw.post_form("/oauth/token", &[APP_KEY], ALICE)
        .assert_error(502);
    gw.fault(json!({"fail": {"path": "/oauth/token", "status": 401, "body": {"error": "access_denied", "error_description": "Unauthorized"}}}));
    gw.post_form("/oauth/token", &[APP_KEY], ALICE)
        .assert_error(502);
    gw.fault(json!({"delayMs": 2000}));
    let r = gw.post_form("/oauth/token", &[APP_KEY], ALICE);
    r.assert_error(504);
    gw.fault(json!({"delayMs": 0}));
    let login = gw.post_form("/oauth/token", &[APP_KEY], ALICE);
    assert_eq!(login.status, 200);
    let bearer = format!("Bearer {}", login.json()["accessToken"].as_str().unwrap());
    gw.stop_emulator();
    gw.post_form("/oauth/token", &[APP_KEY], ALICE)
        .assert_error(502);
    gw.post_json("/refreshtoken", &[APP_KEY], json!({"refresh_token": "x"}))
        .assert_error(502);
    // Logout still logs the user out when the revoke cannot reach Auth0, and says so in the log.
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
    assert!(
        gw.envoy_log()
            .contains("revoking the refresh token at Auth0 failed"),
        "{}",
        gw.envoy_log()
    );
    gw.post_json(
        "/refreshtoken",
        &[APP_KEY, ("authorization", &bearer)],
        json!({}),
    )
    .assert_error(401);
}

#[test]
fn invalid_configuration_is_refused_with_the_field_named() {
    let mut clients = base_clients();
    clients["website"]["sameSite"] = "lax".into();
    let log = Gateway::try_start("bad_config_samesite", json!({"clients": clients}))
        .err()
        .expect("Envoy must refuse");
    assert!(
        log.contains("invalid plugin configuration: clients.website.sameSite"),
        "{log}"
    );
    let mut clients = base_clients();
    clients["website"]["defaultConnection"] = "nope".into();
    let log = Gateway::try_start("bad_config_conn", json!({"clients": clients}))
        .err()
        .expect("Envoy must refuse");
    assert!(log.contains("clients.website.defaultConnection"), "{log}");
    let log = Gateway::try_start("bad_config_unknown", json!({"sessionDuration": 10}))
        .err()
        .expect("Envoy must refuse");
    assert!(log.contains("sessionDuration"), "{log}");
}

#[test]
fn logs_never_contain_secrets_passwords_or_tokens() {
    let mut gw = Gateway::start("log_hygiene", json!({"calloutTimeoutMs": 500}));
    let login = gw.post_form("/oauth/token", &[APP_KEY], ALICE).json();
    let web = gw.post_form("/oauth/token", &[WEB_KEY], ALICE);
    gw.post_form(
        "/oauth/token",
        &[APP_KEY],
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "Wrong-Passw0rd!"),
        ],
    );
    let bearer = format!("Bearer {}", login["accessToken"].as_str().unwrap());
    gw.stop_emulator();
    gw.call(
        "GET",
        "/logout",
        &[APP_KEY, ("authorization", &bearer)],
        None,
    );
    gw.post_form("/oauth/token", &[APP_KEY], ALICE);
    let log = gw.envoy_log();
    assert!(
        log.contains("auth0-filter"),
        "the filter logged nothing: {log}"
    );
    for secret in [
        "app-client-secret-0123456789",
        "website-client-secret-0123456789",
        "Alice-Passw0rd!",
        "Wrong-Passw0rd!",
        "app-api-key",
        "website-api-key",
        login["accessToken"].as_str().unwrap(),
        login["refreshToken"].as_str().unwrap(),
        &web.sid(),
    ] {
        assert!(!log.contains(secret), "leaked into the Envoy log: {secret}");
    }
}

/// Envoy accepts header bytes 0x80-0xFF; the proxy-wasm SDK's string header getters would
/// abort the VM on them. The filter must answer and keep serving.
#[test]
fn non_utf8_header_bytes_do_not_crash_the_filter() {
    use std::io::{Read, Write};
    let gw = Gateway::start("non_utf8", json!({}));
    let addr = gw.base.trim_start_matches("http://").to_string();
    // Owned routes, where the filter reads every header. (The echo upstream itself refuses such
    // bytes, so a pass-through path would only test tiny_http.)
    for (path, expected) in [
        ("/oauth/token", "HTTP/1.1 400"),
        ("/logout", "HTTP/1.1 302"),
    ] {
        let method = if path == "/oauth/token" {
            "POST"
        } else {
            "GET"
        };
        let mut raw =
            format!("{method} {path} HTTP/1.1\r\nHost: gw\r\nsecret: app-api-key\r\nx-odd: caf")
                .into_bytes();
        raw.extend_from_slice(b"\xe9\xff\r\ncookie: sid=\xc3\x28\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 3\r\nconnection: close\r\n\r\na=b");
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        stream.write_all(&raw).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with(expected), "{path}: {answer}");
    }
    // Still serving, on every worker.
    for _ in 0..6 {
        assert_eq!(gw.post_form("/oauth/token", &[APP_KEY], ALICE).status, 200);
        assert_eq!(gw.call("GET", "/through-filter/x", &[], None).status, 200);
    }
    assert!(!gw.envoy_log().contains("panicked"), "{}", gw.envoy_log());
}
