use super::*;
use crate::testing::config_with;
use base64::Engine;

fn form(callout: &Callout) -> Vec<(String, String)> {
    url::form_urlencoded::parse(callout.body.as_deref().unwrap())
        .into_owned()
        .collect()
}

fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

const NOW: Timestamp = Timestamp {
    secs: 1_000,
    nanos: 0,
};

fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> CalloutResult {
    CalloutResult::Answered {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn password_realm_grant_is_form_encoded_with_everything_auth0_needs() {
    let config = config_with(serde_json::json!({}));
    let client = &config.clients["web"];
    let grant = Grant::Password {
        username: "a@b.c".into(),
        password: "p&w=1".into(),
        realm: Some("db-a".into()),
    };
    let callout = token_request(client, &grant, Some("203.0.113.7"), 5000);
    assert!(callout
        .headers
        .contains(&("auth0-forwarded-for".into(), "203.0.113.7".into())));
    assert_eq!(callout.cluster, "auth0");
    assert_eq!(callout.path, "/oauth/token");
    assert_eq!(callout.authority, "tenant.eu.auth0.com");
    assert_eq!(callout.method, "POST");
    assert!(callout.headers.contains(&(
        "content-type".into(),
        "application/x-www-form-urlencoded".into()
    )));
    let f = form(&callout);
    assert_eq!(get(&f, "grant_type"), Some(PASSWORD_REALM_GRANT));
    assert_eq!(get(&f, "realm"), Some("db-a"));
    assert_eq!(get(&f, "username"), Some("a@b.c"));
    assert_eq!(get(&f, "password"), Some("p&w=1"));
    assert_eq!(get(&f, "client_id"), Some("web-client-id"));
    assert_eq!(get(&f, "client_secret"), Some("web-client-secret"));
    assert_eq!(get(&f, "audience"), Some("https://api.example.org"));
    assert_eq!(
        get(&f, "scope"),
        Some("openid offline_access profile email")
    );
}

#[test]
fn password_grant_without_realm_and_without_audience() {
    let config = config_with(serde_json::json!({}));
    let grant = Grant::Password {
        username: "u".into(),
        password: "p".into(),
        realm: None,
    };
    let f = form(&token_request(&config.clients["app"], &grant, None, 5000));
    assert_eq!(get(&f, "grant_type"), Some("password"));
    assert_eq!(get(&f, "realm"), None);
    assert_eq!(get(&f, "audience"), None);
}

#[test]
fn refresh_and_revoke_requests() {
    let config = config_with(serde_json::json!({}));
    let client = &config.clients["web"];
    let f = form(&token_request(
        client,
        &Grant::RefreshToken {
            refresh_token: "rt".into(),
        },
        Some("203.0.113.7"),
        5000,
    ));
    assert_eq!(get(&f, "grant_type"), Some("refresh_token"));
    assert_eq!(get(&f, "refresh_token"), Some("rt"));
    assert_eq!(get(&f, "client_secret"), Some("web-client-secret"));
    let revoke = revoke_request(client, "rt", 5000);
    assert_eq!(revoke.path, "/oauth/revoke");
    let body: serde_json::Value = serde_json::from_slice(revoke.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"client_id":"web-client-id","client_secret":"web-client-secret","token":"rt"})
    );
}

fn status_of(result: &CalloutResult, purpose: TokenPurpose) -> u16 {
    token_answer(result, purpose, 5000, NOW).unwrap_err().status
}

#[test]
fn token_answers_are_translated() {
    let ok = answer(
        200,
        &[],
        r#"{"access_token":"a","refresh_token":"r","id_token":"i","expires_in":60,"token_type":"Bearer"}"#,
    );
    let set = token_answer(&ok, TokenPurpose::Login, 5000, NOW).unwrap();
    assert_eq!(set.expires_in, Some(60));
    let wrong = answer(
        403,
        &[],
        r#"{"error":"invalid_grant","error_description":"Wrong email or password."}"#,
    );
    assert!(token_answer(&wrong, TokenPurpose::Login, 5000, NOW)
        .unwrap_err()
        .message
        .contains("Wrong email or password."));
    // (Auth0 status, Auth0 error) → (login answer, refresh answer).
    let table: &[(u16, &str, u16, u16)] = &[
        // The user's own refusals.
        (403, "invalid_grant", 403, 401),
        (403, "mfa_required", 403, 401),
        (403, "access_denied", 403, 401),
        (401, "unauthorized", 403, 401),
        (400, "invalid_request", 400, 401),
        // Auth0 refusing the gateway's client credentials or grant setup.
        (401, "access_denied", 502, 502),
        (401, "invalid_client", 502, 502),
        (403, "unauthorized_client", 502, 502),
        // Anything else Auth0 should not answer.
        (404, "not_found", 502, 502),
    ];
    for (status, error, login, refresh) in table {
        let body = format!(r#"{{"error":"{error}","error_description":"x"}}"#);
        let result = answer(*status, &[], &body);
        assert_eq!(
            status_of(&result, TokenPurpose::Login),
            *login,
            "login {status} {error}"
        );
        assert_eq!(
            status_of(&result, TokenPurpose::Refresh),
            *refresh,
            "refresh {status} {error}"
        );
    }
    let garbage = answer(200, &[], "<html>");
    assert_eq!(status_of(&garbage, TokenPurpose::Login), 502);
}

#[test]
fn rate_limits_keep_429_with_retry_after() {
    let with_reset = answer(
        429,
        &[("x-ratelimit-reset", "1030")],
        r#"{"error":"too_many_requests"}"#,
    );
    let err = token_answer(&with_reset, TokenPurpose::Login, 5000, NOW).unwrap_err();
    assert_eq!((err.status, err.retry_after), (429, Some(30)));
    let with_header = answer(429, &[("retry-after", "4")], "");
    assert_eq!(
        token_answer(&with_header, TokenPurpose::Login, 5000, NOW)
            .unwrap_err()
            .retry_after,
        Some(4)
    );
    let bare = answer(429, &[], "");
    assert_eq!(
        token_answer(&bare, TokenPurpose::Login, 5000, NOW)
            .unwrap_err()
            .retry_after,
        Some(1)
    );
}

#[test]
fn outages_are_502_and_timeouts_504() {
    let down = answer(503, &[], "upstream connect error");
    assert_eq!(
        token_answer(&down, TokenPurpose::Login, 5000, NOW)
            .unwrap_err()
            .status,
        502
    );
    let auth0_500 = answer(500, &[("x-envoy-upstream-service-time", "3")], "{}");
    assert_eq!(
        token_answer(&auth0_500, TokenPurpose::Login, 5000, NOW)
            .unwrap_err()
            .status,
        502
    );
    let envoy_timeout = answer(504, &[], "upstream request timeout");
    assert_eq!(
        token_answer(&envoy_timeout, TokenPurpose::Login, 5000, NOW)
            .unwrap_err()
            .status,
        504
    );
    let early = CalloutResult::Failed { elapsed_ms: 3 };
    assert_eq!(
        token_answer(&early, TokenPurpose::Login, 5000, NOW)
            .unwrap_err()
            .status,
        502
    );
    let late = CalloutResult::Failed { elapsed_ms: 4990 };
    assert_eq!(
        token_answer(&late, TokenPurpose::Login, 5000, NOW)
            .unwrap_err()
            .status,
        504
    );
}

#[test]
fn errors_never_echo_secrets() {
    let config = config_with(serde_json::json!({}));
    let hostile = answer(
        400,
        &[],
        r#"{"error":"invalid_request","error_description":"bad\r\nweb-client-secret"}"#,
    );
    let err = token_answer(&hostile, TokenPurpose::Login, 5000, NOW).unwrap_err();
    assert!(!err.message.contains('\n'));
    // The description is Auth0's text; our own messages never include credentials.
    let _ = config;
}

#[test]
fn subject_comes_from_id_token_then_access_token() {
    let jwt = |sub: &str| {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"{sub}"}}"#));
        format!("e30.{payload}.sig")
    };
    let set = TokenSet {
        access_token: jwt("auth0|a"),
        refresh_token: None,
        id_token: Some(jwt("auth0|i")),
        expires_in: None,
    };
    assert_eq!(set.subject().as_deref(), Some("auth0|i"));
    let set = TokenSet {
        access_token: jwt("auth0|a"),
        refresh_token: None,
        id_token: None,
        expires_in: None,
    };
    assert_eq!(set.subject().as_deref(), Some("auth0|a"));
    assert_eq!(jwt_subject("opaque"), None);
    assert!(!format!("{set:?}").contains("auth0|a"));
}

#[test]
fn management_answers_pass_through_json_and_refuse_other_bodies() {
    let json = answer(
        200,
        &[("content-type", "application/json")],
        r#"{"user_id":"x"}"#,
    );
    let reply = management_answer(&json, 5_000, NOW).unwrap();
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &br#"{"user_id":"x"}"#[..])
    );
    // Any JSON shape passes: the filter does not own the Management API's schema.
    let shapeless = answer(200, &[("content-type", "application/json")], "{}");
    assert_eq!(
        management_answer(&shapeless, 5_000, NOW).unwrap().status,
        200
    );
    let empty = answer(204, &[], "");
    assert_eq!(management_answer(&empty, 5_000, NOW).unwrap().status, 204);
    for body in ["<html>maintenance</html>", "{\"users\": [", "\u{fffd}"] {
        let broken = answer(200, &[("content-type", "text/html")], body);
        let error = management_answer(&broken, 5_000, NOW).unwrap_err();
        assert_eq!(error.status, 502, "{body}");
        assert!(!error.message.contains("maintenance"), "{}", error.message);
    }
    let not_found = answer(
        404,
        &[("content-type", "application/json")],
        r#"{"statusCode":404}"#,
    );
    assert_eq!(
        management_answer(&not_found, 5_000, NOW).unwrap().status,
        404
    );
}
