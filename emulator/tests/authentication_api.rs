//! The emulator answers as Auth0 documents: request formats, token shapes, error bodies and
//! status codes. Each test starts the binary on a free loopback port and stops it after.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

mod common;

use common::Emulator;

/// Status, headers and body as plain values, for these Authentication API checks.
trait Raw {
    fn raw_call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Vec<(String, String)>, String);
    fn raw_form(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, Value);
}

impl Raw for Emulator {
    fn raw_call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Vec<(String, String)>, String) {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(Duration::from_secs(10))
            .build();
        let mut req = agent.request(method, &format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            req = req.set("content-type", ct);
        }
        let result = match body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .map(|n| (n.clone(), response.header(&n).unwrap_or("").to_string()))
            .collect();
        (status, headers, response.into_string().unwrap_or_default())
    }

    fn raw_form(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let (status, _, text) = self.raw_call(
            "POST",
            path,
            Some("application/x-www-form-urlencoded"),
            Some(&body),
        );
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

const APP: [(&str, &str); 2] = [
    ("client_id", "app-client-id"),
    ("client_secret", "app-client-secret-0123456789"),
];

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn header(jwt: &str) -> Value {
    let head = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(head)
            .unwrap(),
    )
    .unwrap()
}

fn login(emu: &Emulator, scope: &str) -> Value {
    let mut pairs = vec![
        (
            "grant_type",
            "http://auth0.com/oauth/grant-type/password-realm",
        ),
        ("realm", "Username-Password-Authentication"),
        ("username", "alice"),
        ("password", "Alice-Passw0rd!"),
        ("scope", scope),
        ("audience", "https://api.example.org"),
    ];
    pairs.extend(APP);
    let (status, body) = emu.raw_form("/oauth/token", &pairs);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn password_realm_issues_rs256_tokens_verifiable_with_the_jwks() {
    let emu = Emulator::start();
    let tokens = login(&emu, "openid profile email offline_access");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 86400);
    let access = tokens["access_token"].as_str().unwrap();
    let id = tokens["id_token"].as_str().unwrap();
    assert!(tokens["refresh_token"].is_string());
    let (_, _, jwks) = emu.raw_call("GET", "/.well-known/jwks.json", None, None);
    let jwks: Value = serde_json::from_str(&jwks).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    for token in [access, id] {
        assert_eq!(header(token)["alg"], "RS256");
        assert_eq!(header(token)["kid"], key["kid"]);
        let c = claims(token);
        assert_eq!(c["iss"], format!("{}/", emu.base));
        assert_eq!(c["sub"], "auth0|0000000000000000000000a1");
    }
    assert_eq!(claims(id)["aud"], "app-client-id");
    assert_eq!(
        claims(id)["https://mia-platform.eu/app_metadata"],
        json!({"groups": ["admin"]})
    );
    // `aud` is a set (RFC 7519 §4.1.3); jwt-simple does not keep its order.
    let mut audiences: Vec<String> = serde_json::from_value(claims(access)["aud"].clone()).unwrap();
    audiences.sort();
    assert_eq!(
        audiences,
        vec![
            format!("{}/userinfo", emu.base),
            "https://api.example.org".to_string()
        ]
    );
    // Signature check with the published key.
    use jwt_simple::prelude::*;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key["n"].as_str().unwrap())
        .unwrap();
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key["e"].as_str().unwrap())
        .unwrap();
    let public = RS256PublicKey::from_components(&n, &e).unwrap();
    assert!(public.verify_token::<NoCustomClaims>(id, None).is_ok());
    // No offline_access: no refresh token; no openid: no ID token.
    let plain = login(&emu, "profile");
    assert!(plain.get("refresh_token").is_none() && plain.get("id_token").is_none());
}

#[test]
fn auth0_error_bodies_and_statuses() {
    let emu = Emulator::start();
    let (s, b) = emu.raw_form(
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "bad"),
            APP[0],
            APP[1],
        ],
    );
    assert_eq!(
        (s, &b),
        (
            403,
            &json!({"error": "invalid_grant", "error_description": "Wrong email or password."})
        )
    );
    let (s, b) = emu.raw_form(
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "x"),
            APP[0],
            ("client_secret", "wrong"),
        ],
    );
    assert_eq!((s, &b["error"]), (401, &json!("access_denied")));
    let (s, b) = emu.raw_form(
        "/oauth/token",
        &[("grant_type", "password"), APP[0], APP[1]],
    );
    assert_eq!(
        (s, &b["error_description"]),
        (400, &json!("Missing required parameter: username"))
    );
    let (s, b) = emu.raw_form("/oauth/token", &[("grant_type", "magic"), APP[0], APP[1]]);
    assert_eq!((s, &b["error"]), (400, &json!("unsupported_grant_type")));
    let (s, b) = emu.raw_form(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("audience", "https://api.example.org"),
            APP[0],
            APP[1],
        ],
    );
    assert_eq!((s, &b["error"]), (403, &json!("unauthorized_client")));
    let (s, _, _) = emu.raw_call(
        "POST",
        "/oauth/token",
        Some("text/plain"),
        Some("grant_type=password"),
    );
    assert_eq!(s, 400);
}

#[test]
fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let emu = Emulator::start();
    let first = login(&emu, "openid offline_access")["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, second) = emu.raw_form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first),
            APP[0],
            APP[1],
        ],
    );
    assert_eq!(s, 200);
    let second = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    let (s, b) = emu.raw_form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first),
            APP[0],
            APP[1],
        ],
    );
    assert_eq!(
        (s, &b),
        (
            403,
            &json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
        )
    );
    // The reuse revoked the descendants too.
    let (s, _) = emu.raw_form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &second),
            APP[0],
            APP[1],
        ],
    );
    assert_eq!(s, 403);
}

#[test]
fn revoke_takes_json_and_ends_the_refresh_token() {
    let emu = Emulator::start();
    let refresh = login(&emu, "openid offline_access")["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"client_id": "app-client-id", "client_secret": "app-client-secret-0123456789", "token": refresh}).to_string();
    let (s, _, _) = emu.raw_call(
        "POST",
        "/oauth/revoke",
        Some("application/json"),
        Some(&body),
    );
    assert_eq!(s, 200);
    let (s, _) = emu.raw_form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            APP[0],
            APP[1],
        ],
    );
    assert_eq!(s, 403);
    let bad =
        json!({"client_id": "app-client-id", "client_secret": "nope", "token": "x"}).to_string();
    let (s, _, b) = emu.raw_call(
        "POST",
        "/oauth/revoke",
        Some("application/json"),
        Some(&bad),
    );
    assert_eq!(
        (
            s,
            serde_json::from_str::<Value>(&b).unwrap()["error"].clone()
        ),
        (401, json!("invalid_client"))
    );
}

#[test]
fn client_credentials_for_the_management_api() {
    let emu = Emulator::start();
    let (s, b) = emu.raw_form(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "management-client-id"),
            ("client_secret", "management-client-secret-0123456789"),
            ("audience", &format!("{}/api/v2/", emu.base)),
        ],
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(
        claims(b["access_token"].as_str().unwrap())["sub"],
        "management-client-id@clients"
    );
    assert!(b["scope"].as_str().unwrap().contains("read:users"));
}

#[test]
fn authorization_code_with_pkce() {
    let emu = Emulator::start();
    let verifier = "a-verifier-of-at-least-43-characters-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(hmac_sha256::Hash::hash(verifier.as_bytes()));
    let authorize = format!(
        "/authorize?response_type=code&client_id=app-client-id&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcallback&scope=openid&state=xyz&code_challenge={challenge}&code_challenge_method=S256&login_hint=alice"
    );
    let (s, headers, _) = emu.raw_call("GET", &authorize, None, None);
    assert_eq!(s, 302);
    let location = headers
        .iter()
        .find(|(n, _)| n == "location")
        .unwrap()
        .1
        .clone();
    let url = url::Url::parse(&location).unwrap();
    let params: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "xyz");
    let code = params["code"].clone();
    let exchange = |verifier: &str| {
        emu.raw_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://localhost:8080/callback"),
                ("code_verifier", verifier),
                APP[0],
                APP[1],
            ],
        )
    };
    let (s, b) = exchange("wrong-verifier");
    assert_eq!(
        (s, &b["error_description"]),
        (403, &json!("Failed to verify code verifier"))
    );
    // The code was consumed by the failed attempt, as a single-use code should be.
    let (s, _) = exchange(verifier);
    assert_eq!(s, 403);
    let (_, headers, _) = emu.raw_call("GET", &authorize, None, None);
    let location = headers
        .iter()
        .find(|(n, _)| n == "location")
        .unwrap()
        .1
        .clone();
    let code2 = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let (s, b) = emu.raw_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code2),
            ("redirect_uri", "http://localhost:8080/callback"),
            ("code_verifier", verifier),
            APP[0],
            APP[1],
        ],
    );
    assert_eq!(s, 200, "{b}");
    let (s, _, _) = emu.raw_call("GET", "/authorize?response_type=code&client_id=app-client-id&redirect_uri=https%3A%2F%2Fevil.com%2F", None, None);
    assert_eq!(s, 400);
}

#[test]
fn userinfo_and_logout() {
    let emu = Emulator::start();
    let access = login(&emu, "openid profile email")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let agent = ureq::AgentBuilder::new().build();
    let text = agent
        .get(&format!("{}/userinfo", emu.base))
        .set("authorization", &format!("Bearer {access}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let info: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(info["sub"], "auth0|0000000000000000000000a1");
    assert_eq!(info["email"], "alice@example.org");
    let (s, _, _) = emu.raw_call("GET", "/userinfo", None, None);
    assert_eq!(s, 401);
    // Tenant-level list without client_id, application-level with it; query strings ignored.
    let (s, h, _) = emu.raw_call(
        "GET",
        "/v2/logout?returnTo=https%3A%2F%2Fapp.example.org%2Fweb-login%3Fredirect%3D%2Fx",
        None,
        None,
    );
    assert_eq!(s, 302);
    assert!(h
        .iter()
        .any(|(n, v)| n == "location" && v == "https://app.example.org/web-login?redirect=/x"));
    let (s, _, _) = emu.raw_call(
        "GET",
        "/v2/logout?returnTo=https%3A%2F%2Fevil.com%2F",
        None,
        None,
    );
    assert_eq!(s, 400);
    let (s, _, _) = emu.raw_call(
        "GET",
        "/v2/logout?client_id=website-client-id&returnTo=https%3A%2F%2Fapp.example.org%2Fweb-login",
        None,
        None,
    );
    assert_eq!(s, 400, "not in the application's list");
    let (s, h, _) = emu.raw_call("GET", "/v2/logout?client_id=website-client-id", None, None);
    assert_eq!(s, 302);
    assert!(h
        .iter()
        .any(|(n, v)| n == "location" && v == "http://localhost:8080/"));
}

#[test]
fn faults_delay_fail_and_count() {
    let emu = Emulator::start();
    let (s, _, _) = emu.raw_call(
        "POST",
        "/__emulator/faults",
        Some("application/json"),
        Some(
            r#"{"fail":{"path":"/oauth/token","status":429,"headers":{"x-ratelimit-reset":"99"}}}"#,
        ),
    );
    assert_eq!(s, 200);
    let (s, _) = emu.raw_form("/oauth/token", &[("grant_type", "password")]);
    assert_eq!(s, 429);
    let (s, _) = emu.raw_form("/oauth/token", &[("grant_type", "password")]);
    assert_eq!(s, 400, "one failure only");
    let (_, _, calls) = emu.raw_call("GET", "/__emulator/calls", None, None);
    assert_eq!(
        serde_json::from_str::<Value>(&calls).unwrap()["/oauth/token"],
        2
    );
}
