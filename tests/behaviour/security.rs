//! The adversarial suite: what an attacker tries against the shipped Envoy configuration and
//! filter configuration, through a real Envoy. Every test here is an attack that must be
//! refused (docs/security.md lists the threat model); attacks on the gateway's resources are in
//! `tests/behaviour/security_limits.rs`. Run through `make test`, on shared data
//! and again on Redis.

use std::collections::HashMap;
use std::time::Duration;

use harness::{request, Gateway, ALICE, APP_KEY, WEB_KEY};
use serde_json::{json, Value};

const ADMIN: (&str, &str) = ("secret", "admin-api-key");
const ALICE_ID: &str = "auth0|0000000000000000000000a1";

/// Every spelling of the three identity headers an upstream could read as one of them.
fn identity_spellings() -> Vec<String> {
    let mut names = Vec::new();
    for base in [
        "x-auth0-user-id",
        "x-auth0-user-groups",
        "x-auth0-client-type",
    ] {
        let parts: Vec<&str> = base.split('-').collect();
        for mask in 0..(1u32 << (parts.len() - 1)) {
            let mut name = parts[0].to_string();
            for (i, part) in parts[1..].iter().enumerate() {
                name.push(if mask & (1 << i) == 0 { '-' } else { '_' });
                name.push_str(part);
            }
            names.push(name);
        }
    }
    names
}

fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// `/authorize` in a browser, then the emulator's login as alice: the login cookie the browser
/// got, and the callback's code and state.
fn browser_login_started(gw: &Gateway) -> (String, String, String) {
    let start = gw.call("GET", "/authorize?redirect=/home", &[WEB_KEY], None);
    assert_eq!(start.status, 302, "{}", start.body);
    let cookie = start
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a login cookie")
        .to_string();
    let at_auth0 = start.header("location").unwrap().to_string();
    let callback = request("GET", &format!("{at_auth0}&login_hint=alice"), &[], None);
    assert_eq!(callback.status, 302, "{}", callback.body);
    let params = query_of(callback.header("location").unwrap());
    (cookie, params["code"].clone(), params["state"].clone())
}

fn redeem(gw: &Gateway, cookie: Option<&str>, code: &str, state: &str) -> harness::Response {
    let mut headers = vec![WEB_KEY];
    if let Some(cookie) = cookie {
        headers.push(("cookie", cookie));
    }
    gw.post_json(
        "/oauth/token",
        &headers,
        json!({"code": code, "state": state}),
    )
}

fn envoy_allocated_bytes(gw: &Gateway) -> u64 {
    let url = format!("http://127.0.0.1:{}/memory", gw.admin_port);
    let memory = request("GET", &url, &[], None).json();
    memory["allocated"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("allocated bytes")
}

#[test]
fn an_authorize_flood_keeps_nothing_on_the_gateway() {
    let gw = Gateway::start("sec_authorize_flood", json!({}));
    let redirect = format!("/{}", "a".repeat(2_000));
    // Warm both workers and the allocator first.
    for _ in 0..50 {
        gw.call("GET", &format!("/authorize?redirect={redirect}"), &[], None);
    }
    let before = envoy_allocated_bytes(&gw);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    for i in 0..3_000 {
        let url = format!("{}/authorize?redirect={redirect}{i}", gw.base);
        let answer = agent.get(&url).call().expect("302");
        assert_eq!(answer.status(), 302);
    }
    let after = envoy_allocated_bytes(&gw);
    // 3,000 logins of 2 KB redirects would hold 6 MB if kept; the bound is Envoy's own noise.
    assert!(
        after < before + 2 * 1024 * 1024,
        "Envoy's heap grew from {before} to {after} bytes"
    );
    // A redirect longer than a login cookie can carry is refused, not kept.
    let long = format!("/authorize?redirect=/{}", "a".repeat(10_000));
    gw.call("GET", &long, &[], None).assert_error(400);
    // And whatever anonymous callers sent, a user's login still starts and completes.
    let (cookie, code, state) = browser_login_started(&gw);
    assert_eq!(redeem(&gw, Some(&cookie), &code, &state).status, 200);
}

#[test]
fn a_code_and_state_redeemed_in_another_browser_fail() {
    let gw = Gateway::start("sec_login_csrf", json!({}));
    // The attacker starts a login and logs in as themselves, keeping the code and state.
    let (attacker_cookie, code, state) = browser_login_started(&gw);
    let calls = gw.emulator_calls("/oauth/token");
    // The victim's browser posts them: it has no such cookie, or another login's.
    let (victim_cookie, _, _) = browser_login_started(&gw);
    let renamed = format!(
        "{}={}",
        attacker_cookie.split_once('=').unwrap().0,
        victim_cookie.split_once('=').unwrap().1
    );
    for cookie in [None, Some(victim_cookie.as_str()), Some(renamed.as_str())] {
        let refused = redeem(&gw, cookie, &code, &state);
        refused.assert_error(400);
        assert!(refused.header("set-cookie").is_none(), "{cookie:?}");
    }
    // A forged or tampered cookie value under the right name.
    let (name, value) = attacker_cookie.split_once('=').unwrap();
    let tampered = format!("{name}={}x", value);
    redeem(&gw, Some(&tampered), &code, &state).assert_error(400);
    assert_eq!(
        gw.emulator_calls("/oauth/token"),
        calls,
        "no refused login reaches Auth0"
    );
    // In the browser that started it, it works, and the answer clears the login cookie.
    let login = redeem(&gw, Some(&attacker_cookie), &code, &state);
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.header("location"), Some("/home"));
    let cleared = login
        .headers
        .iter()
        .any(|(n, v)| n == "set-cookie" && v.starts_with(&format!("{name}=;")));
    assert!(cleared, "{:?}", login.headers);
    assert!(!login.sid().is_empty());
}

#[test]
fn the_login_sites_same_origin_fetch_flow_works_with_the_cookie() {
    // The login site's callback page runs `fetch('/oauth/token', {method: 'POST', body})`
    // on the gateway's origin: the browser sends the login cookie with it, as here.
    let gw = Gateway::start("sec_login_fetch", json!({}));
    let (cookie, code, state) = browser_login_started(&gw);
    let login = gw.call(
        "POST",
        "/oauth/token",
        &[
            WEB_KEY,
            ("content-type", "application/json"),
            ("cookie", &format!("theme=dark; {cookie}; other=1")),
            ("origin", &gw.base),
        ],
        Some(json!({"code": code, "state": state}).to_string().as_bytes()),
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let userinfo = gw.call(
        "GET",
        "/userinfo",
        &[WEB_KEY, ("cookie", &format!("sid={}", login.sid()))],
        None,
    );
    assert_eq!(userinfo.json()["sub"], ALICE_ID);
}

#[test]
fn no_encoding_of_a_protected_path_reaches_the_upstream_unchecked() {
    let gw = Gateway::start("sec_paths", json!({}));
    let forged = [
        ("x-auth0_user-id", "auth0|victim"),
        ("x-auth0-user_groups", "admin"),
        ("accept", "application/json"),
    ];
    for target in [
        "/protected%2Fx",
        "/protected%2fx",
        "/%2Fprotected/x",
        "/protected%5Cx",
        "/protected\\x",
        "/protected;x/y",
        "/protected;jsessionid=1/y",
        "//protected/x",
        "/a/../protected/x",
        "/a/%2e%2e/protected/x",
        "/./protected/x",
        "/%70rotected/x",
        "/PROTECTED/x",
        "/Protected/x",
        "/protected/x%zz",
        "/protected/%00",
    ] {
        let answer = gw.raw("GET", target, &forged);
        assert!(
            matches!(answer.status, 400 | 401),
            "{target}: {} {}",
            answer.status,
            answer.body
        );
    }
    assert!(
        gw.upstream_received().is_empty(),
        "{:?}",
        gw.upstream_received()
    );
    // With a valid token, the same spellings are served, with the filter's identity.
    let tokens = gw.post_form("/oauth/token", &[APP_KEY], ALICE).json();
    let bearer = format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    for target in ["/protected;jsessionid=1/y", "//protected/x", "/PROTECTED/x"] {
        let mut headers = forged.to_vec();
        headers.push(("authorization", &bearer));
        let answer = gw.raw("GET", target, &headers);
        assert_eq!(answer.status, 200, "{target}: {}", answer.body);
        let wsgi = &serde_json::from_str::<Value>(&answer.body).unwrap()["wsgi"];
        assert_eq!(wsgi["HTTP_X_AUTH0_USER_ID"], ALICE_ID, "{target}");
        assert_eq!(wsgi["HTTP_X_AUTH0_USER_GROUPS"], "admin", "{target}");
    }
}

#[test]
fn no_spelling_of_an_identity_header_reaches_any_upstream() {
    let gw = Gateway::start("sec_identity_headers", json!({}));
    let tokens = gw.post_form("/oauth/token", &[APP_KEY], ALICE).json();
    let bearer = format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    let spellings = identity_spellings();
    assert_eq!(spellings.len(), 24);
    let mut forged: Vec<(String, String)> = Vec::new();
    for name in &spellings {
        forged.push((name.clone(), "forged".into()));
        forged.push((name.to_ascii_uppercase(), "forged".into()));
    }
    // Filter off (catch-all), filter on but not owned, and a protected route.
    for (path, token) in [
        ("/public/x", None),
        ("/through-filter/x", None),
        ("/protected/x", Some(bearer.as_str())),
    ] {
        let mut headers: Vec<(&str, &str)> = forged
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        headers.push(("acl_rows", r#"{"groups":"kept"}"#));
        if let Some(token) = token {
            headers.push(("authorization", token));
        }
        let answer = gw.call("GET", path, &headers, None);
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        let echo = answer.json();
        let wsgi = echo["wsgi"].as_object().unwrap();
        for (name, value) in wsgi {
            assert!(
                !value.as_str().unwrap().contains("forged"),
                "{path}: {name}"
            );
        }
        let user = wsgi.get("HTTP_X_AUTH0_USER_ID").and_then(Value::as_str);
        match token {
            Some(_) => assert_eq!(user, Some(ALICE_ID), "{path}"),
            None => assert_eq!(user, None, "{path}"),
        }
        // Other headers with underscores still pass: `acl_rows` works.
        assert_eq!(wsgi["HTTP_ACL_ROWS"], r#"{"groups":"kept"}"#, "{path}");
    }
}

#[test]
fn a_client_sent_x_forwarded_for_is_not_the_ip_auth0_sees() {
    let gw = Gateway::start("sec_forwarded_for", json!({}));
    let wrong = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "wrong"),
    ];
    for xff in ["7.7.7.7", "7.7.7.7, 8.8.8.8", "garbage"] {
        let answer = gw.post_form("/oauth/token", &[APP_KEY, ("x-forwarded-for", xff)], &wrong);
        answer.assert_error(403);
        let url = format!(
            "{}/__emulator/last-headers?path=/oauth/token",
            gw.auth0_base
        );
        let headers = request("GET", &url, &[], None).json();
        assert_eq!(
            headers["auth0-forwarded-for"], "127.0.0.1",
            "{xff}: {headers}"
        );
    }
}

/// A website login, then its token used as a Bearer token, then logout with the cookie.
fn logged_out_bearer(gw: &Gateway) -> (String, String) {
    let sid = gw.post_form("/oauth/token", &[WEB_KEY], ALICE).sid();
    let bearer = format!("Bearer {sid}");
    let json_accept = ("accept", "application/json");
    let before = gw.call(
        "GET",
        "/protected/x",
        &[("authorization", &bearer), json_accept],
        None,
    );
    assert_eq!(before.status, 200, "{}", before.body);
    let cookie = format!("sid={sid}");
    let logout = gw.call("GET", "/logout", &[WEB_KEY, ("cookie", &cookie)], None);
    assert_eq!(logout.status, 302);
    (bearer, cookie)
}

#[test]
fn logout_ends_the_token_wherever_the_filter_accepts_it() {
    // Read on every request: refused at once on every worker.
    let gw = Gateway::start(
        "sec_logout_bearer",
        json!({"protectedRoutes": {"prefixes": ["/protected/"], "sessionRecheckSeconds": 0}}),
    );
    let (bearer, cookie) = logged_out_bearer(&gw);
    let json_accept = ("accept", "application/json");
    // Several times: Envoy's two workers both refuse it.
    for _ in 0..4 {
        for (path, headers) in [
            (
                "/protected/x",
                vec![("authorization", bearer.as_str()), json_accept],
            ),
            (
                "/protected/x",
                vec![("cookie", cookie.as_str()), json_accept],
            ),
            (
                "/userinfo",
                vec![WEB_KEY, ("authorization", bearer.as_str())],
            ),
            ("/userinfo", vec![WEB_KEY, ("cookie", cookie.as_str())]),
        ] {
            gw.call("GET", path, &headers, None).assert_error(401);
        }
        gw.call(
            "POST",
            "/refreshtoken",
            &[WEB_KEY, ("authorization", &bearer)],
            None,
        )
        .assert_error(401);
    }
    assert_eq!(
        gw.upstream_received().len(),
        1,
        "only the request before the logout"
    );
}

#[test]
fn logout_reaches_every_worker_within_the_documented_recheck_bound() {
    // The shipped default: a worker may answer a Bearer token from its session read of the
    // last 5 s.
    let gw = Gateway::start("sec_logout_bound", json!({}));
    let (bearer, _) = logged_out_bearer(&gw);
    std::thread::sleep(Duration::from_millis(6_100));
    for _ in 0..4 {
        gw.call(
            "GET",
            "/protected/x",
            &[("authorization", &bearer), ("accept", "application/json")],
            None,
        )
        .assert_error(401);
    }
}

#[test]
fn duplicate_fields_and_headers_are_refused() {
    let gw = Gateway::start("sec_duplicates", json!({}));
    let json_type = ("content-type", "application/json");
    let body = br#"{"grant_type":"password","username":"bob","password":"Bob-Passw0rd!","username":"alice"}"#;
    gw.call("POST", "/oauth/token", &[APP_KEY, json_type], Some(body))
        .assert_error(400);
    let nested = br#"{"email":"x@example.org","password":"Str0ng-Passw0rd!","app_metadata":{"groups":["users"],"groups":["admin"]}}"#;
    gw.call("POST", "/users", &[ADMIN, json_type], Some(nested))
        .assert_error(400);
    assert_eq!(
        gw.emulator_calls("/oauth/token"),
        0,
        "nothing reached Auth0"
    );
    // Repeated headers, sent as they are (an HTTP client library would merge them).
    let twice = gw.raw(
        "GET",
        "/users",
        &[
            ADMIN,
            ("acl_rows", r#"{"groups":"users"}"#),
            ("acl_rows", r#"{"groups":"admin"}"#),
        ],
    );
    assert_eq!(twice.status, 400, "{}", twice.body);
    gw.call(
        "GET",
        "/users",
        &[
            ADMIN,
            ("acl_rows", r#"{"groups":"users","groups":"admin"}"#),
        ],
        None,
    )
    .assert_error(400);
    let two_keys = gw.raw(
        "GET",
        "/authorize",
        &[("secret", "app-api-key"), ("secret", "website-api-key")],
    );
    assert_eq!(two_keys.status, 400, "{}", two_keys.body);
    assert_eq!(gw.emulator_calls("/api/v2/users"), 0);
    assert!(gw.upstream_received().is_empty());
}

#[test]
fn userinfo_never_takes_groups_from_user_metadata() {
    let gw = Gateway::start("sec_user_metadata", json!({}));
    let created = gw.post_json(
        "/users",
        &[ADMIN],
        json!({
            "email": "mallory@example.org",
            "password": "Mallory-Passw0rd!",
            "connection": "Username-Password-Authentication",
            "user_metadata": {"groups": ["admin"]}
        }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let login = [
        ("grant_type", "password"),
        ("username", "mallory@example.org"),
        ("password", "Mallory-Passw0rd!"),
    ];
    let sid = gw.post_form("/oauth/token", &[WEB_KEY], &login).sid();
    let cookie = format!("sid={sid}");
    let userinfo = gw.call("GET", "/userinfo", &[WEB_KEY, ("cookie", &cookie)], None);
    assert_eq!(userinfo.status, 200, "{}", userinfo.body);
    assert!(userinfo.json().get("groups").is_none(), "{}", userinfo.body);
    let echo = gw
        .call(
            "GET",
            "/protected/x",
            &[("cookie", &cookie), ("accept", "application/json")],
            None,
        )
        .json();
    assert_eq!(echo["wsgi"]["HTTP_X_AUTH0_USER_GROUPS"], "");
}

#[test]
fn logout_redirects_go_only_to_listed_well_formed_hosts() {
    let gw = Gateway::start("sec_return_to", json!({}));
    for host in [
        "evil.com",
        "[evil_com]:x:y",
        "localhost:8080@evil.com",
        "evil.com\\@x",
    ] {
        gw.call(
            "GET",
            "/logout?redirect=/bye",
            &[WEB_KEY, ("x-forwarded-host", host)],
            None,
        )
        .assert_error(400);
    }
    drop(gw);
    // Even with any host allowed, a malformed one is refused.
    let gw = Gateway::start("sec_return_to_any", json!({"allowedRedirectHosts": []}));
    gw.call(
        "GET",
        "/logout?redirect=/bye",
        &[WEB_KEY, ("x-forwarded-host", "[evil_com]:x:y")],
        None,
    )
    .assert_error(400);
}

#[test]
fn the_documentation_carries_no_credentials() {
    // Envoy serves the description embedded in the filter, which the unit test
    // `openapi::tests::the_served_document_shows_no_demo_credential` checks for every demo
    // credential of the tenant and the shipped configuration.
    let gw = Gateway::start("sec_documentation", json!({}));
    let documentation = gw.call("GET", "/documentation/json", &[], None);
    assert_eq!(documentation.status, 200);
    let embedded: Value =
        serde_json::from_str(include_str!("../../crates/core/src/flows/openapi.json"))
            .expect("the embedded description");
    assert_eq!(documentation.json(), embedded);
    assert!(!documentation.body.contains("Passw0rd"));
}
