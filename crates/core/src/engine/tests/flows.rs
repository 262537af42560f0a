//! Flows driven end to end with an in-memory session store and scripted Auth0 answers.

use super::driver::{json, jwt, token_answer, Driver, FORM, LOGIN, NOW};
use super::*;

fn error_answer(status: u16, error: &str) -> CalloutResult {
    let body = serde_json::json!({"error": error, "error_description": "nope"});
    CalloutResult::Answered {
        status,
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn password_login_answers_token_json_and_stores_a_session() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "a1");
    d.answers.push_back(token_answer(&access, Some("rt-1")));
    let reply = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "app-key"), FORM],
            LOGIN,
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    let body = json(&reply);
    assert_eq!(body["accessToken"], access.as_str());
    assert_eq!(body["refreshToken"], "rt-1");
    assert_eq!(body["idToken"], jwt("auth0|u1", "id").as_str());
    assert_eq!(body["expireAt"], "2023-11-14T23:13:20Z");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    // `app` supports exactly one connection and has no default: that one is used.
    let form = d.form(0);
    assert_eq!(
        field(&form, "grant_type"),
        Some(crate::auth0::PASSWORD_REALM_GRANT)
    );
    assert_eq!(field(&form, "realm"), Some("db-a"));
    // Auth0's brute-force protection sees the end user's address, not the gateway's.
    assert!(d.callouts[0]
        .headers
        .contains(&("auth0-forwarded-for".into(), "198.51.100.23".into())));
    let session = d.session(&access).unwrap();
    assert_eq!(
        (session.user_id.as_str(), session.client.as_str()),
        ("auth0|u1", "app")
    );
    assert_eq!(session.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(session.expires_at, NOW.secs + 86_400);
}

#[test]
fn website_login_sets_the_sid_cookie_with_an_empty_body() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "w1");
    d.answers.push_back(token_answer(&access, Some("rt-w")));
    let body =
        br#"{"grant_type":"password","username":"alice","password":"pw","connection":"db-b"}"#;
    let reply = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), ("content-type", "application/json")],
            body,
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(
        reply.header("set-cookie").unwrap(),
        format!("sid={access}; Path=/; HttpOnly; Secure; Max-Age=86400; SameSite=Lax")
    );
    assert_eq!(field(&d.form(0), "realm"), Some("db-b"));
    assert_eq!(d.session(&access).unwrap().client, "web");
}

#[test]
fn login_input_errors_never_reach_auth0() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [u8], u16);
    let cases: &[Case] = &[
        (
            &[("secret", "web-key"), FORM],
            b"grant_type=password&username=a&password=b&connection=other",
            400,
        ),
        (
            &[("secret", "web-key"), FORM],
            b"grant_type=client_credentials",
            400,
        ),
        (
            &[("secret", "web-key"), FORM],
            b"grant_type=password&username=a",
            400,
        ),
        (
            &[("secret", "web-key"), FORM],
            b"grant_type=password&username=a&username=b&password=c",
            400,
        ),
        (
            &[("secret", "web-key"), ("content-type", "text/plain")],
            b"grant_type=password",
            415,
        ),
        (
            &[("secret", "web-key"), ("content-type", "application/json")],
            b"{\"grant_type\":",
            400,
        ),
        (&[("secret", "wrong-key"), FORM], LOGIN, 401),
        (&[("secret", "web-key"), FORM], &[b'a'; 20_000], 413),
    ];
    for (headers, body, status) in cases {
        let mut d = Driver::new(serde_json::json!({}));
        let reply = d.request("POST", "/oauth/token", headers, body).unwrap();
        assert_eq!(
            reply.status,
            *status,
            "{headers:?} {}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        assert_eq!(json(&reply)["statusCode"], *status);
        assert!(d.callouts.is_empty());
    }
}

#[test]
fn wrong_credentials_are_403_and_nothing_is_stored() {
    let mut d = Driver::new(serde_json::json!({}));
    d.answers.push_back(error_answer(403, "invalid_grant"));
    let reply = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "app-key"), FORM],
            LOGIN,
        )
        .unwrap();
    assert_eq!(reply.status, 403);
    assert!(d.kv.data.borrow().keys().all(|k| !k.contains("s/")));
}

#[test]
fn website_login_needs_the_store() {
    let mut d = Driver::new(serde_json::json!({}));
    d.store_down = true;
    d.answers
        .push_back(token_answer(&jwt("auth0|u1", "x"), None));
    let reply = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), FORM],
            LOGIN,
        )
        .unwrap();
    assert_eq!(reply.status, 503);
}

pub(super) fn logged_in(d: &mut Driver, key: &str, access: &str, refresh: &str) {
    d.answers.push_back(token_answer(access, Some(refresh)));
    let reply = d
        .request("POST", "/oauth/token", &[("secret", key), FORM], LOGIN)
        .unwrap();
    assert_eq!(reply.status, 200);
}

#[test]
fn refresh_through_the_cookie_rotates_the_session() {
    let mut d = Driver::new(serde_json::json!({}));
    let (old, new) = (jwt("auth0|u1", "old"), jwt("auth0|u1", "new"));
    logged_in(&mut d, "web-key", &old, "rt-old");
    d.answers.push_back(token_answer(&new, Some("rt-new")));
    let cookie = format!("other=1; sid={old}");
    let reply = d
        .request(
            "POST",
            "/refreshtoken",
            &[("secret", "web-key"), ("cookie", &cookie)],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("set-cookie")
        .unwrap()
        .starts_with(&format!("sid={new};")));
    let form = d.form(1);
    assert_eq!(field(&form, "grant_type"), Some("refresh_token"));
    assert_eq!(field(&form, "refresh_token"), Some("rt-old"));
    assert!(d.session(&old).is_none(), "the old session is dropped");
    assert_eq!(
        d.session(&new).unwrap().refresh_token.as_deref(),
        Some("rt-new")
    );
    // The old cookie no longer finds a session.
    let again = d
        .request(
            "POST",
            "/refreshtoken",
            &[("secret", "web-key"), ("cookie", &cookie)],
            b"",
        )
        .unwrap();
    assert_eq!(again.status, 401);
}

#[test]
fn refresh_from_the_body_with_a_bearer_token_as_the_seed_curl_does() {
    let mut d = Driver::new(serde_json::json!({}));
    let (old, new) = (jwt("auth0|u1", "o"), jwt("auth0|u1", "n"));
    logged_in(&mut d, "app-key", &old, "rt-1");
    d.answers.push_back(token_answer(&new, None));
    let bearer = format!("Bearer {old}");
    let reply = d
        .request(
            "POST",
            "/refreshtoken",
            &[
                ("secret", "app-key"),
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            br#"{"refresh_token":"rt-1"}"#,
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    let body = json(&reply);
    assert_eq!(body["accessToken"], new.as_str());
    // No rotation at Auth0: the refresh token in use stays the answer and the stored one.
    assert_eq!(body["refreshToken"], "rt-1");
    assert_eq!(
        d.session(&new).unwrap().refresh_token.as_deref(),
        Some("rt-1")
    );
    assert!(d.session(&old).is_none());
}

#[test]
fn refresh_errors() {
    let mut d = Driver::new(serde_json::json!({}));
    assert_eq!(
        d.request("POST", "/refreshtoken", &[("secret", "app-key")], b"")
            .unwrap()
            .status,
        400
    );
    d.answers.push_back(error_answer(403, "invalid_grant"));
    let refused = d
        .request(
            "POST",
            "/refreshtoken",
            &[("secret", "app-key"), ("content-type", "application/json")],
            br#"{"refresh_token":"bad"}"#,
        )
        .unwrap();
    assert_eq!(refused.status, 401);
    // A session of another client cannot be refreshed with this client's key.
    let access = jwt("auth0|u1", "x");
    logged_in(&mut d, "web-key", &access, "rt");
    let cookie = format!("sid={access}");
    let other = d
        .request(
            "POST",
            "/refreshtoken",
            &[("secret", "app-key"), ("cookie", &cookie)],
            b"",
        )
        .unwrap();
    assert_eq!(other.status, 401);
}

#[test]
fn logout_deletes_the_session_revokes_and_redirects() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "l");
    logged_in(&mut d, "web-key", &access, "rt-l");
    d.answers.push_back(CalloutResult::Answered {
        status: 200,
        headers: vec![],
        body: vec![],
    });
    let cookie = format!("sid={access}");
    let reply = d
        .request(
            "GET",
            "/logout?redirect=/bye",
            &[
                ("secret", "web-key"),
                ("cookie", &cookie),
                ("x-forwarded-host", "app.example.org"),
                ("x-forwarded-proto", "https"),
            ],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 302);
    assert_eq!(
        reply.header("location"),
        Some("https://tenant.eu.auth0.com/v2/logout?returnTo=https%3A%2F%2Fapp.example.org%2Fbye")
    );
    assert!(reply
        .header("set-cookie")
        .unwrap()
        .contains("Expires=Thu, 01 Jan 1970"));
    assert!(d.session(&access).is_none());
    let revoke = &d.callouts[1];
    assert_eq!(revoke.path, "/oauth/revoke");
    assert!(String::from_utf8_lossy(revoke.body.as_deref().unwrap()).contains("\"token\":\"rt-l\""));
}

#[test]
fn failed_revoke_is_logged_and_still_logs_out() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "f");
    logged_in(&mut d, "app-key", &access, "rt-f");
    d.answers.push_back(CalloutResult::Failed { elapsed_ms: 1 });
    let bearer = format!("Bearer {access}");
    let reply = d
        .request(
            "GET",
            "/logout",
            &[("secret", "app-key"), ("authorization", &bearer)],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 302);
    assert!(d.session(&access).is_none());
    assert!(d
        .logs
        .iter()
        .any(|l| l.level == LogLevel::Warn && l.message.contains("revoking")));
}

#[test]
fn bad_logout_redirect_is_400_and_keeps_the_session() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "k");
    logged_in(&mut d, "web-key", &access, "rt");
    let cookie = format!("sid={access}");
    let reply = d
        .request(
            "GET",
            "/logout?redirect=//evil.com",
            &[("secret", "web-key"), ("cookie", &cookie)],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 400);
    assert!(d.session(&access).is_some());
}

#[test]
fn requests_the_filter_does_not_own_pass_through() {
    let mut d = Driver::new(serde_json::json!({}));
    assert!(d.request("GET", "/oauth/token", &[], b"").is_none());
    assert!(d.request("POST", "/api/things", &[], b"x").is_none());
    assert!(d.request("GET", "/logoutx", &[], b"").is_none());
}

#[test]
fn no_secret_password_or_token_in_any_reply_or_log() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "secretish");
    d.answers.push_back(error_answer(401, "access_denied"));
    d.answers.push_back(error_answer(500, "server_error"));
    d.answers
        .push_back(CalloutResult::Failed { elapsed_ms: 4_999 });
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(
            d.request(
                "POST",
                "/oauth/token",
                &[("secret", "app-key"), FORM],
                LOGIN,
            )
            .unwrap(),
        );
    }
    logged_in(&mut d, "app-key", &access, "rt-secret");
    d.answers.push_back(CalloutResult::Answered {
        status: 400,
        headers: vec![],
        body: vec![],
    });
    let bearer = format!("Bearer {access}");
    replies.push(
        d.request(
            "GET",
            "/logout",
            &[("secret", "app-key"), ("authorization", &bearer)],
            b"",
        )
        .unwrap(),
    );
    assert_eq!(
        replies.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![502, 502, 504, 302]
    );
    let mut text: Vec<String> = replies
        .iter()
        .map(|r| format!("{:?} {}", r.headers, String::from_utf8_lossy(&r.body)))
        .collect();
    text.extend(d.logs.iter().map(|l| l.message.clone()));
    for t in &text {
        for secret in [
            "app-client-secret",
            "s3cret-pw",
            "rt-secret",
            access.as_str(),
            "app-key",
        ] {
            assert!(!t.contains(secret), "{secret} leaked in {t}");
        }
    }
}

#[test]
fn refreshed_tokens_survive_a_store_that_cannot_write() {
    // Auth0 has rotated the refresh token by the time the store fails: a token client still
    // gets its new tokens; a website client cannot use a cookie without a session, so 503.
    for (key, status) in [("app-key", 200), ("web-key", 503)] {
        let mut d = Driver::new(serde_json::json!({}));
        let old = jwt("auth0|u1", key);
        logged_in(&mut d, key, &old, "rt-1");
        d.writes_down = true;
        d.answers
            .push_back(token_answer(&jwt("auth0|u1", "new"), Some("rt-2")));
        let bearer = format!("Bearer {old}");
        let reply = d
            .request(
                "POST",
                "/refreshtoken",
                &[("secret", key), ("authorization", &bearer)],
                b"",
            )
            .unwrap();
        assert_eq!(reply.status, status, "{key}");
        if status == 200 {
            assert_eq!(json(&reply)["refreshToken"], "rt-2");
        }
        assert!(
            d.logs.iter().any(|l| l.level == LogLevel::Warn),
            "{key}: the failure is logged"
        );
    }
}
