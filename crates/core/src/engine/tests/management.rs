//! The management routes driven end to end with the flow tests' driver.

use super::driver::{json, Driver, NOW};
use super::*;
use crate::store::TokenGrant;

fn admin() -> Driver {
    Driver::new(
        serde_json::json!({"managementAccess": {"apiKeys": ["admin-key"], "clientTypes": ["app"]}}),
    )
}

fn answered(status: u16, body: &str) -> CalloutResult {
    CalloutResult::Answered {
        status,
        headers: vec![(
            "content-type".into(),
            "application/json; charset=utf-8".into(),
        )],
        body: body.as_bytes().to_vec(),
    }
}

fn token(value: &str) -> CalloutResult {
    answered(
        200,
        &format!(r#"{{"access_token":"{value}","expires_in":86400,"token_type":"Bearer"}}"#),
    )
}

const ADMIN: (&str, &str) = ("secret", "admin-key");

#[test]
fn closed_management_routes_pass_through() {
    let mut d = Driver::new(serde_json::json!({}));
    for (method, path) in [
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/users/active"),
        ("DELETE", "/users/x"),
    ] {
        assert!(
            d.request(method, path, &[ADMIN], b"").is_none(),
            "{method} {path}"
        );
    }
}

#[test]
fn search_fetches_one_token_then_reuses_it_and_passes_the_answer_through() {
    let mut d = admin();
    d.answers.push_back(token("mgmt-1"));
    d.answers
        .push_back(answered(200, r#"[{"user_id":"auth0|1"}]"#));
    let reply = d
        .request(
            "GET",
            "/users?email=alice%40example.org&_l=10&_sk=20",
            &[ADMIN],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, br#"[{"user_id":"auth0|1"}]"#);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let fetch = d.form(0);
    let get = |n: &str| fetch.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(get("grant_type"), Some("client_credentials"));
    assert_eq!(get("client_id"), Some("mgmt-id"));
    assert_eq!(get("client_secret"), Some("mgmt-secret"));
    assert_eq!(get("audience"), Some("https://tenant.eu.auth0.com/api/v2/"));
    let search = &d.callouts[1];
    assert_eq!(search.method, "GET");
    assert!(search.path.starts_with("/api/v2/users?q=%28email%3Aalice%40example.org%29+AND+%28identities.connection%3A%22db-a%22%29&search_engine=v3&per_page=10&page=2"), "{}", search.path);
    assert!(search
        .headers
        .contains(&("authorization".into(), "Bearer mgmt-1".into())));
    // The next call reuses the cached token: one callout, no fetch.
    d.answers.push_back(answered(200, "[]"));
    assert_eq!(
        d.request("GET", "/users", &[ADMIN], b"").unwrap().status,
        200
    );
    assert_eq!(d.callouts.len(), 3);
    assert!(d.callouts[2]
        .headers
        .contains(&("authorization".into(), "Bearer mgmt-1".into())));
}

#[test]
fn a_request_waits_while_another_worker_holds_the_lease() {
    let mut d = admin();
    // Another worker is fetching the token.
    assert_eq!(d.lease().acquire(NOW, 60_000).unwrap(), TokenGrant::FetchIt);
    d.token_from_elsewhere = Some("shared".into());
    d.answers.push_back(answered(200, "[]"));
    assert_eq!(
        d.request("GET", "/users", &[ADMIN], b"").unwrap().status,
        200
    );
    assert_eq!(d.waits, 1);
    assert_eq!(d.callouts.len(), 1, "no token fetch of its own");
    assert!(d.callouts[0]
        .headers
        .contains(&("authorization".into(), "Bearer shared".into())));
}

#[test]
fn a_refused_token_is_refetched_and_the_call_retried_once() {
    let mut d = admin();
    d.lease().save("stale", NOW.secs + 3_600).unwrap();
    d.answers.push_back(answered(
        401,
        r#"{"statusCode":401,"error":"Unauthorized","message":"Invalid token"}"#,
    ));
    d.answers.push_back(token("fresh"));
    d.answers.push_back(answered(200, "[]"));
    assert_eq!(
        d.request("GET", "/users", &[ADMIN], b"").unwrap().status,
        200
    );
    assert_eq!(d.callouts.len(), 3);
    assert!(d.callouts[2]
        .headers
        .contains(&("authorization".into(), "Bearer fresh".into())));
    // Refused again after the retry: 502, no loop.
    d.answers.push_back(answered(401, "{}"));
    d.answers.push_back(token("fresher"));
    d.answers.push_back(answered(401, "{}"));
    assert_eq!(
        d.request("GET", "/users", &[ADMIN], b"").unwrap().status,
        502
    );
}

#[test]
fn a_failed_token_fetch_releases_the_lease() {
    let mut d = admin();
    d.answers.push_back(answered(
        401,
        r#"{"error":"access_denied","error_description":"Unauthorized"}"#,
    ));
    assert_eq!(
        d.request("GET", "/users", &[ADMIN], b"").unwrap().status,
        502
    );
    assert_eq!(d.lease().acquire(NOW, 1).unwrap(), TokenGrant::FetchIt);
}

#[test]
fn access_is_limited_to_listed_keys_and_client_types() {
    let mut d = admin();
    assert_eq!(
        d.request("GET", "/users", &[("secret", "web-key")], b"")
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        d.request("GET", "/users", &[("secret", "nope")], b"")
            .unwrap()
            .status,
        401
    );
    d.answers.push_back(token("t"));
    d.answers.push_back(answered(200, "[]"));
    assert_eq!(
        d.request("GET", "/users", &[("secret", "app-key")], b"")
            .unwrap()
            .status,
        200
    );
}

#[test]
fn ids_are_validated_and_encoded() {
    let mut d = admin();
    d.lease().save("t", NOW.secs + 3_600).unwrap();
    d.answers.push_back(answered(204, ""));
    let reply = d
        .request("DELETE", "/users/auth0%7Cabc", &[ADMIN], b"")
        .unwrap();
    assert_eq!(reply.status, 204);
    assert_eq!(
        (d.callouts[0].method.as_str(), d.callouts[0].path.as_str()),
        ("DELETE", "/api/v2/users/auth0%7Cabc")
    );
    d.answers.push_back(answered(200, "{}"));
    d.request("GET", "/users/import/status/job_abc", &[ADMIN], b"")
        .unwrap();
    assert_eq!(d.callouts[1].path, "/api/v2/jobs/job_abc");
    d.answers.push_back(answered(200, "[]"));
    d.request("GET", "/users/import/status/job_abc/errors", &[ADMIN], b"")
        .unwrap();
    assert_eq!(d.callouts[2].path, "/api/v2/jobs/job_abc/errors");
    for bad in [
        "/users/a%2Fb",
        "/users/a/b",
        "/users/a%00b",
        "/users/%FF",
        "/users/a%5Cb",
    ] {
        assert_eq!(
            d.request("DELETE", bad, &[ADMIN], b"").unwrap().status,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        d.request("GET", "/users/import/status/..%2Fusers", &[ADMIN], b"")
            .unwrap()
            .status,
        400
    );
    // `/users/..` is the path `/`, which the filter does not own.
    assert!(d.request("DELETE", "/users/..", &[ADMIN], b"").is_none());
    assert_eq!(d.callouts.len(), 3);
}

#[test]
fn create_defaults_the_connection_and_patch_passes_the_body() {
    let mut d = admin();
    d.lease().save("t", NOW.secs + 3_600).unwrap();
    let json_type = ("content-type", "application/json");
    d.answers
        .push_back(answered(201, r#"{"user_id":"auth0|new"}"#));
    let reply = d
        .request(
            "POST",
            "/users",
            &[ADMIN, json_type],
            br#"{"email":"n@x.org","password":"P4ss!word"}"#,
        )
        .unwrap();
    assert_eq!(reply.status, 201);
    let sent: serde_json::Value =
        serde_json::from_slice(d.callouts[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(sent["connection"], "db-a");
    assert_eq!(sent["email"], "n@x.org");
    d.answers.push_back(answered(
        409,
        r#"{"statusCode":409,"error":"Conflict","message":"The user already exists."}"#,
    ));
    assert_eq!(
        d.request(
            "POST",
            "/users",
            &[ADMIN, json_type],
            br#"{"email":"n@x.org"}"#
        )
        .unwrap()
        .status,
        409
    );
    for (body, status) in [
        (&br#"{"email":"n@x.org","connection":"evil"}"#[..], 400),
        (b"[1]", 400),
        (b"{", 400),
    ] {
        assert_eq!(
            d.request("POST", "/users", &[ADMIN, json_type], body)
                .unwrap()
                .status,
            status
        );
    }
    assert_eq!(
        d.request(
            "POST",
            "/users",
            &[ADMIN, ("content-type", "text/plain")],
            b"{}"
        )
        .unwrap()
        .status,
        415
    );
    d.answers.push_back(answered(200, "{}"));
    let patch = br#"{"app_metadata":{"groups":null}}"#;
    assert_eq!(
        d.request("PATCH", "/users/auth0%7Cabc", &[ADMIN, json_type], patch)
            .unwrap()
            .status,
        200
    );
    let sent = &d.callouts[2];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("PATCH", "/api/v2/users/auth0%7Cabc")
    );
    assert_eq!(sent.body.as_deref(), Some(&patch[..]));
}

#[test]
fn user_bodies_with_a_repeated_member_are_400_and_never_sent() {
    let mut d = admin();
    d.lease().save("t", NOW.secs + 3_600).unwrap();
    let json_type = ("content-type", "application/json");
    for (method, path, body, key) in [
        (
            "POST",
            "/users",
            &br#"{"email":"n@x.org","connection":"db-a","connection":"evil"}"#[..],
            "connection",
        ),
        (
            "PATCH",
            "/users/auth0%7Cabc",
            br#"{"app_metadata":{"groups":["users"],"groups":["admin"]}}"#,
            "groups",
        ),
        (
            "PATCH",
            "/users/auth0%7Cabc",
            br#"{"blocked":false,"blocked":true}"#,
            "blocked",
        ),
    ] {
        let reply = d.request(method, path, &[ADMIN, json_type], body).unwrap();
        assert_eq!(reply.status, 400, "{method} {path}");
        assert_eq!(
            json(&reply)["message"],
            format!("`{key}` is given more than once")
        );
    }
    assert!(d.callouts.is_empty());
}

#[test]
fn a_repeated_acl_rows_header_is_400() {
    let mut d = admin();
    d.lease().save("t", NOW.secs + 3_600).unwrap();
    let wide = ("acl_rows", r#"{"app_metadata.tenant":"a"}"#);
    let reply = d
        .request(
            "GET",
            "/users",
            &[ADMIN, wide, ("acl_rows", r#"{"app_metadata.tenant":"b"}"#)],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(
        json(&reply)["message"],
        "the `acl_rows` header is given more than once"
    );
    // A repeated member inside one header is refused too.
    let twice = (
        "acl_rows",
        r#"{"app_metadata.tenant":"a","app_metadata.tenant":"b"}"#,
    );
    let reply = d.request("GET", "/users", &[ADMIN, twice], b"").unwrap();
    assert_eq!(reply.status, 400);
    assert!(d.callouts.is_empty());
    // One header is taken as before.
    d.answers.push_back(answered(200, "[]"));
    let reply = d.request("GET", "/users", &[ADMIN, wide], b"").unwrap();
    assert_eq!(reply.status, 200);
    assert!(
        d.callouts[0].path.contains("app_metadata.tenant"),
        "{}",
        d.callouts[0].path
    );
}

fn multipart_body(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        body.extend_from_slice(b"--B0undary\r\nContent-Disposition: form-data; name=\"");
        body.extend_from_slice(name.as_bytes());
        body.push(b'"');
        if let Some(f) = filename {
            body.extend_from_slice(
                format!("; filename=\"{f}\"\r\nContent-Type: application/json").as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--B0undary--\r\n");
    body
}

#[test]
fn import_rewrites_the_multipart_body_for_auth0() {
    let mut d = admin();
    d.lease().save("t", NOW.secs + 3_600).unwrap();
    let multipart = ("content-type", "multipart/form-data; boundary=B0undary");
    let users = br#"[{"email":"a@b.c"}]"#;
    let body = multipart_body(&[
        ("users", Some("u.json"), users),
        ("upsert", None, b"true"),
        ("external_id", None, b"ext-1"),
    ]);
    d.answers
        .push_back(answered(201, r#"{"id":"job_1","status":"pending"}"#));
    assert_eq!(
        d.request("POST", "/users/import", &[ADMIN, multipart], &body)
            .unwrap()
            .status,
        201
    );
    let sent = &d.callouts[0];
    assert_eq!(sent.path, "/api/v2/jobs/users-imports");
    let content_type = sent
        .headers
        .iter()
        .find(|(n, _)| n == "content-type")
        .unwrap()
        .1
        .clone();
    let boundary = crate::http::multipart::boundary_of(Some(&content_type)).unwrap();
    let parts = crate::http::multipart::parse(sent.body.as_deref().unwrap(), &boundary).unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["users", "connection_id", "upsert", "external_id"]);
    assert_eq!(parts[0].data, users);
    assert_eq!(parts[1].data, b"con_0000000000000001");
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            multipart_body(&[
                ("users", Some("u.json"), users),
                ("connection_id", None, b"con_x"),
            ]),
            400,
        ),
        (
            multipart_body(&[
                ("users", Some("u.json"), users),
                ("connection", None, b"evil"),
            ]),
            400,
        ),
        (multipart_body(&[("upsert", None, b"true")]), 400),
        (
            multipart_body(&[("users", Some("u.json"), users), ("upsert", None, b"maybe")]),
            400,
        ),
        (
            multipart_body(&[("users", Some("u.json"), &vec![b' '; 510 * 1024])]),
            413,
        ),
        (
            b"--B0undary\r\nContent-Disposition: form-data; name=\"users\"\r\n\r\n[]".to_vec(),
            400,
        ),
        (vec![b'x'; 600 * 1024], 413),
    ];
    for (body, status) in cases {
        assert_eq!(
            d.request("POST", "/users/import", &[ADMIN, multipart], &body)
                .unwrap()
                .status,
            status
        );
    }
    assert_eq!(
        d.request(
            "POST",
            "/users/import",
            &[ADMIN, ("content-type", "application/json")],
            b"{}"
        )
        .unwrap()
        .status,
        415
    );
    assert_eq!(d.callouts.len(), 1);
}

#[test]
fn import_needs_the_connections_map() {
    let mut d = Driver::new(serde_json::json!({
        "managementAccess": {},
        "managementClient": {"auth0Url": "https://tenant.eu.auth0.com", "clientId": "m", "clientSecret": "s", "supportedConnections": ["db-a"], "defaultCreateUserConnection": "db-a"}
    }));
    let reply = d
        .request(
            "POST",
            "/users/import",
            &[
                ("secret", "app-key"),
                ("content-type", "multipart/form-data; boundary=x"),
            ],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 400);
    assert!(json(&reply)["message"]
        .as_str()
        .unwrap()
        .contains("supportedConnectionsMap"));
}

#[test]
fn active_users_come_from_live_sessions() {
    let mut d = admin();
    for (i, user) in ["auth0|b", "auth0|a", "auth0|b"].iter().enumerate() {
        d.sessions()
            .put(
                &crate::digest::SessionKey::for_token(&format!("t{i}")),
                &crate::store::SessionRecord {
                    user_id: user.to_string(),
                    client: "web".into(),
                    refresh_token: None,
                    profile: None,
                    expires_at: NOW.secs + 10,
                    ended: false,
                },
            )
            .unwrap();
    }
    let reply = d.request("GET", "/users/active", &[ADMIN], b"").unwrap();
    assert_eq!(
        json(&reply),
        serde_json::json!([{"userId": "auth0|a"}, {"userId": "auth0|b"}])
    );
}
