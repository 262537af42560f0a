//! User management through a real Envoy: every route, the Lucene semantics and injection
//! attempts (evaluated by the emulator's real Lucene evaluator), the shared Management API
//! token, and import jobs. Run through `make test`.

use std::collections::BTreeSet;

use harness::{multipart, Gateway, MULTIPART};
use serde_json::{json, Value};

const ADMIN: (&str, &str) = ("secret", "admin-api-key");
const JSON: (&str, &str) = ("content-type", "application/json");
const MAIN_DB: &str = "Username-Password-Authentication";

fn emails(answer: &harness::Response) -> BTreeSet<String> {
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
        .json()
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", answer.body))
        .iter()
        .map(|u| u["email"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn create(gw: &Gateway, user: Value) -> Value {
    let r = gw.post_json("/users", &[ADMIN], user);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

fn seed_search_users(gw: &Gateway) {
    for (email, groups, tenant) in [
        ("zed.one@corp.example", json!(["admin"]), "t1"),
        ("zed.two@corp.example", json!(["users"]), "t1"),
        ("zed.three@corp.example", json!(["admin", "ops"]), "t2"),
    ] {
        create(
            gw,
            json!({"email": email, "password": "Zed-Passw0rd!", "app_metadata": {"groups": groups, "tenant": tenant}}),
        );
    }
}

fn search(gw: &Gateway, query: &str) -> harness::Response {
    gw.call("GET", &format!("/users?{query}"), &[ADMIN], None)
}

fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[test]
fn management_routes_are_closed_unless_the_config_opens_them() {
    let gw = Gateway::start("mgmt_closed", json!({"managementAccess": null}));
    for (method, path) in [
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/users/active"),
        ("DELETE", "/users/auth0%7Cx"),
    ] {
        let r = gw.call(method, path, &[ADMIN], Some(b"{}"));
        assert_eq!(
            r.json()["upstream"],
            "echo",
            "{method} {path} must pass through"
        );
    }
    assert_eq!(gw.emulator_calls("/api/v2/users"), 0);
}

#[test]
fn management_access_is_limited_to_listed_keys_and_client_types() {
    let gw = Gateway::start(
        "mgmt_access",
        json!({"managementAccess": {"apiKeys": ["admin-api-key"], "clientTypes": ["website"]}}),
    );
    assert_eq!(gw.call("GET", "/users", &[ADMIN], None).status, 200);
    assert_eq!(
        gw.call("GET", "/users", &[("secret", "website-api-key")], None)
            .status,
        200
    );
    gw.call("GET", "/users", &[("secret", "app-api-key")], None)
        .assert_error(403);
    gw.call("GET", "/users", &[], None).assert_error(403);
    gw.call("GET", "/users", &[("secret", "wrong")], None)
        .assert_error(401);
}

#[test]
fn search_semantics_and_injection_attempts() {
    let gw = Gateway::start("mgmt_search", json!({}));
    seed_search_users(&gw);
    let zeds = set(&[
        "zed.one@corp.example",
        "zed.two@corp.example",
        "zed.three@corp.example",
    ]);
    assert_eq!(emails(&search(&gw, "email=zed*")), zeds, "a * wildcard");
    assert_eq!(
        emails(&search(&gw, "email=zed.two%40corp.example")),
        set(&["zed.two@corp.example"])
    );
    let admins = emails(&search(&gw, "email=zed*&app_metadata.groups=admin"));
    assert_eq!(
        admins,
        set(&["zed.one@corp.example", "zed.three@corp.example"])
    );
    let any_of = format!(
        "email=zed*&app_metadata.groups={}",
        enc(r#"{"$in":["ops","users"]}"#)
    );
    assert_eq!(
        emails(&search(&gw, &any_of)),
        set(&["zed.two@corp.example", "zed.three@corp.example"])
    );
    // acl_rows is ANDed in front of the filters.
    let acl = [
        ADMIN,
        (
            "acl_rows",
            r#"{"$or":[{"app_metadata.tenant":"t1"},{"app_metadata.groups":{"$in":["nobody"]}}]}"#,
        ),
    ];
    let r = gw.call("GET", "/users?email=zed*", &acl, None);
    assert_eq!(
        emails(&r),
        set(&["zed.one@corp.example", "zed.two@corp.example"])
    );
    // Injection attempts stay literal values: nothing outside the filter comes back.
    for attack in [
        r#"a") OR (b"#,
        r#"x" OR email:*"#,
        r#"*) OR (*"#,
        r#"zed*") OR (identities.connection:"partners-db"#,
    ] {
        for field in ["username", "email", "app_metadata.groups"] {
            let r = search(&gw, &format!("{field}={}", enc(attack)));
            assert!(emails(&r).is_empty(), "{field}={attack} listed {}", r.body);
        }
    }
    // `email=*` lists users with an email, but only in the management client's connections.
    let everyone = emails(&search(&gw, "email=*&_l=100"));
    assert!(everyone.is_superset(&zeds) && everyone.contains("alice@example.org"));
    assert!(
        !everyone.contains("carol@partner.example"),
        "partners-db is not a supported connection"
    );
    // The ACL still bounds a wildcard.
    let r = gw.call("GET", "/users?email=*", &acl, None);
    assert_eq!(
        emails(&r),
        set(&["zed.one@corp.example", "zed.two@corp.example"])
    );
    // Connections: only supported ones, repeatable.
    assert_eq!(
        emails(&search(
            &gw,
            &format!("email=zed*&connection={}", enc(MAIN_DB))
        )),
        zeds
    );
    search(&gw, "connection=partners-db").assert_error(400);
    // Paging: _sk is a skip, turned into page = _sk / _l.
    let page0 = emails(&search(&gw, "email=zed*&_l=2&_sk=0"));
    let page1 = emails(&search(&gw, "email=zed*&_l=2&_sk=2"));
    assert_eq!((page0.len(), page1.len()), (2, 1));
    assert!(page0.is_disjoint(&page1));
    for bad in [
        "_l=101",
        "_l=0",
        "_sk=-1",
        "unknown=1",
        "app_metadata.a%20b=x",
        "email=",
    ] {
        search(&gw, bad).assert_error(400);
    }
    let r = gw.call("GET", "/users", &[ADMIN, ("acl_rows", "{not json")], None);
    r.assert_error(400);
}

#[test]
fn create_patch_delete_and_errors_pass_through() {
    let gw = Gateway::start("mgmt_crud", json!({}));
    let user = create(
        &gw,
        json!({"email": "new.user@corp.example", "password": "New-Passw0rd!", "app_metadata": {"a": 1, "b": 2}}),
    );
    let id = user["user_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("auth0|"));
    assert_eq!(
        user["identities"][0]["connection"], MAIN_DB,
        "the default management connection"
    );
    // The user can log in through the gateway.
    let login = [
        ("grant_type", "password"),
        ("username", "new.user@corp.example"),
        ("password", "New-Passw0rd!"),
    ];
    assert_eq!(
        gw.post_form("/oauth/token", &[("secret", "app-api-key")], &login)
            .status,
        200
    );
    // Auth0's own errors pass through with their status.
    let dup = gw.post_json(
        "/users",
        &[ADMIN],
        json!({"email": "new.user@corp.example", "password": "x-Passw0rd!"}),
    );
    assert_eq!(dup.status, 409, "{}", dup.body);
    assert_eq!(dup.json()["statusCode"], 409);
    gw.post_json(
        "/users",
        &[ADMIN],
        json!({"email": "x@corp.example", "connection": "partners-db"}),
    )
    .assert_error(400);
    gw.call(
        "POST",
        "/users",
        &[ADMIN, ("content-type", "text/plain")],
        Some(b"{}"),
    )
    .assert_error(415);
    gw.call("POST", "/users", &[ADMIN, JSON], Some(b"{"))
        .assert_error(400);
    // PATCH: the id is %-encoded on the way to Auth0; metadata merges one level deep.
    let path = format!("/users/{}", enc(&id));
    let patched = gw.call(
        "PATCH",
        &path,
        &[ADMIN, JSON],
        Some(br#"{"app_metadata":{"b":null,"c":3},"name":"Renamed"}"#),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.json()["app_metadata"], json!({"a": 1, "c": 3}));
    assert_eq!(patched.json()["name"], "Renamed");
    let unknown = gw.call(
        "PATCH",
        "/users/auth0%7Cnobody",
        &[ADMIN, JSON],
        Some(b"{}"),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    gw.call("DELETE", "/users/x..y", &[ADMIN], None)
        .assert_error(400);
    // An encoded `/` or `\` is refused by Envoy itself (`path_with_escaped_slashes_action`).
    for bad in ["/users/a%2Fb", "/users/..%2Fadmin", "/users/a%5C..%5Cb"] {
        assert_eq!(gw.call("DELETE", bad, &[ADMIN], None).status, 400, "{bad}");
    }
    // With path normalisation on, Envoy itself refuses a %00 in the path before the filter
    // (whose own check is unit-tested): still a 400, and nothing reaches Auth0.
    let calls = gw.emulator_calls("/api/v2/users/a\u{0}b");
    assert_eq!(
        gw.call("DELETE", "/users/a%00b", &[ADMIN], None).status,
        400
    );
    assert_eq!(gw.emulator_calls("/api/v2/users/a\u{0}b"), calls);
    let deleted = gw.call("DELETE", &path, &[ADMIN], None);
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert!(deleted.body.is_empty());
    assert_eq!(
        gw.post_form("/oauth/token", &[("secret", "app-api-key")], &login)
            .status,
        403
    );
}

#[test]
fn concurrent_first_requests_share_one_management_token() {
    let gw = std::sync::Arc::new(Gateway::start("mgmt_stampede", json!({})));
    // Slow the token endpoint a little so the burst overlaps the fetch.
    gw.fault(json!({"delayMs": 300}));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let gw = std::sync::Arc::clone(&gw);
            std::thread::spawn(move || gw.call("GET", "/users?email=alice*", &[ADMIN], None).status)
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses, vec![200; 8]);
    assert_eq!(
        gw.emulator_calls("grant:client_credentials"),
        1,
        "one token for the whole burst"
    );
    gw.fault(json!({"delayMs": 0}));
    assert_eq!(gw.call("GET", "/users", &[ADMIN], None).status, 200);
    assert_eq!(gw.emulator_calls("grant:client_credentials"), 1);
}

#[test]
fn tokens_are_refetched_on_expiry_and_after_a_401() {
    let gw = Gateway::start("mgmt_expiry", json!({}));
    gw.fault(json!({"clientCredentialsLifetimeSeconds": 2}));
    assert_eq!(gw.call("GET", "/users", &[ADMIN], None).status, 200);
    assert_eq!(gw.call("GET", "/users", &[ADMIN], None).status, 200);
    assert_eq!(gw.emulator_calls("grant:client_credentials"), 1);
    std::thread::sleep(std::time::Duration::from_millis(2_300));
    assert_eq!(gw.call("GET", "/users", &[ADMIN], None).status, 200);
    assert_eq!(
        gw.emulator_calls("grant:client_credentials"),
        2,
        "refetched after expiry"
    );
    gw.fault(json!({"clientCredentialsLifetimeSeconds": 86400, "revokeManagementTokens": true}));
    let r = gw.call("GET", "/users", &[ADMIN], None);
    assert_eq!(
        r.status, 200,
        "the 401 is retried with a fresh token: {}",
        r.body
    );
    assert_eq!(gw.emulator_calls("grant:client_credentials"), 3);
}

#[test]
fn bulk_import_with_status_and_errors() {
    let gw = Gateway::start("mgmt_import", json!({"calloutTimeoutMs": 5000}));
    let users = json!([
        {"email": "imp.one@corp.example", "email_verified": true, "app_metadata": {"groups": ["imported"]}},
        {"email": "imp.two@corp.example"},
        {"email": "not-an-email"}
    ])
    .to_string();
    let body = multipart(&[
        ("users", Some("users.json"), users.as_bytes()),
        ("upsert", None, b"false"),
        ("external_id", None, b"batch-1"),
    ]);
    let r = gw.call("POST", "/users/import", &[ADMIN, MULTIPART], Some(&body));
    assert!(
        r.status == 201 || r.status == 202,
        "{} {}",
        r.status,
        r.body
    );
    let job = r.json();
    assert_eq!(job["connection_id"], "con_0000000000000001");
    assert_eq!(job["type"], "users_import");
    let id = job["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let status = loop {
        let status = gw.call("GET", &format!("/users/import/status/{id}"), &[ADMIN], None);
        assert_eq!(status.status, 200, "{}", status.body);
        if status.json()["status"] == "completed" {
            break status.json();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job not completed: {}",
            status.body
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status["summary"]["inserted"], 2, "{status}");
    assert_eq!(status["summary"]["failed"], 1, "{status}");
    let errors = gw.call(
        "GET",
        &format!("/users/import/status/{id}/errors"),
        &[ADMIN],
        None,
    );
    assert_eq!(errors.status, 200, "{}", errors.body);
    let errors = errors.json();
    assert_eq!(errors.as_array().unwrap().len(), 1);
    assert_eq!(errors[0]["user"]["email"], "not-an-email");
    assert_eq!(
        emails(&search(&gw, "app_metadata.groups=imported")),
        set(&["imp.one@corp.example"])
    );
    // Refusals, before anything reaches Auth0.
    let calls = gw.emulator_calls("/api/v2/jobs/users-imports");
    let file = ("users", Some("users.json"), users.as_bytes());
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            multipart(&[file, ("connection_id", None, b"con_0000000000000002")]),
            400,
        ),
        (
            multipart(&[file, ("connection", None, b"partners-db")]),
            400,
        ),
        (multipart(&[("upsert", None, b"true")]), 400),
        (
            multipart(&[("users", Some("u.json"), &vec![b' '; 501 * 1024])]),
            413,
        ),
        (
            b"--XbOuNdArY\r\nContent-Disposition: form-data; name=\"users\"\r\n\r\n[]".to_vec(),
            400,
        ),
    ];
    for (body, status) in cases {
        gw.call("POST", "/users/import", &[ADMIN, MULTIPART], Some(&body))
            .assert_error(status);
    }
    gw.call(
        "POST",
        "/users/import",
        &[ADMIN, ("content-type", "multipart/form-data")],
        Some(b"x"),
    )
    .assert_error(400);
    gw.call("POST", "/users/import", &[ADMIN, JSON], Some(b"{}"))
        .assert_error(415);
    assert_eq!(gw.emulator_calls("/api/v2/jobs/users-imports"), calls);
    // Job ids are validated like user ids; unknown ones are Auth0's 404.
    // An encoded `/` is refused by Envoy itself (`path_with_escaped_slashes_action`).
    let escaped = gw.call("GET", "/users/import/status/..%2Fusers", &[ADMIN], None);
    assert_eq!(escaped.status, 400);
    let unknown = gw.call(
        "GET",
        "/users/import/status/job_doesnotexist0000",
        &[ADMIN],
        None,
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}

#[test]
fn import_needs_the_new_style_connections_map() {
    let management = json!({
        "auth0Url": "http://127.0.0.1:{{AUTH0_PORT}}/", "clientId": "management-client-id",
        "clientSecret": "management-client-secret-0123456789",
        "supportedConnections": [MAIN_DB], "defaultCreateUserConnection": MAIN_DB
    });
    let gw = Gateway::start("mgmt_deprecated", json!({"managementClient": management}));
    let body = multipart(&[("users", Some("users.json"), b"[]")]);
    let r = gw.call("POST", "/users/import", &[ADMIN, MULTIPART], Some(&body));
    r.assert_error(400);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("supportedConnectionsMap"));
    // Creating users still works with the deprecated default.
    let user = create(
        &gw,
        json!({"email": "dep@corp.example", "password": "Dep-Passw0rd!"}),
    );
    assert_eq!(user["identities"][0]["connection"], MAIN_DB);
}

#[test]
fn active_users_follow_logins_and_logouts() {
    let gw = Gateway::start("mgmt_active", json!({}));
    let alice = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "Alice-Passw0rd!"),
    ];
    let bob = [
        ("grant_type", "password"),
        ("username", "bob"),
        ("password", "Bob-Passw0rd!"),
    ];
    let web = gw.post_form("/oauth/token", &[("secret", "website-api-key")], &alice);
    gw.post_form("/oauth/token", &[("secret", "website-api-key")], &alice);
    assert_eq!(
        gw.post_form("/oauth/token", &[("secret", "app-api-key")], &bob)
            .status,
        200
    );
    let active = gw.call("GET", "/users/active", &[ADMIN], None);
    assert_eq!(active.status, 200);
    assert_eq!(
        active.json(),
        json!([{"userId": "auth0|0000000000000000000000a1"}, {"userId": "auth0|0000000000000000000000b2"}])
    );
    // Alice logs out of one of her two sessions: still active. Then bob's token logs out.
    let cookie = format!("sid={}", web.sid());
    gw.call(
        "GET",
        "/logout",
        &[("secret", "website-api-key"), ("cookie", &cookie)],
        None,
    );
    let active = gw.call("GET", "/users/active", &[ADMIN], None).json();
    assert_eq!(active.as_array().unwrap().len(), 2);
}

/// Runs the management curl block of docs/user-management.md against a gateway, substituting
/// only the local address and the ids each step hands to the next.
#[test]
fn readme_management_curls_work_verbatim() {
    let gw = Gateway::start("mgmt_readme", json!({}));
    let commands = harness::doc_commands("docs/user-management.md", "management-curls");
    assert_eq!(commands.len(), 9, "{commands:?}");
    let run = |command: &str| harness::run_doc_command(&gw.base, command);
    let as_json = |text: &str| -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    let alice = as_json(&run(&commands[0]));
    assert_eq!(alice[0]["email"], "alice@example.org");
    let admins = as_json(&run(&commands[1]));
    assert!(
        admins
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["email"] == "alice@example.org"),
        "{admins}"
    );
    assert!(as_json(&run(&commands[2])).is_array());
    let created = as_json(&run(&commands[3]));
    let id = created["user_id"]
        .as_str()
        .unwrap()
        .trim_start_matches("auth0|")
        .to_string();
    let patched = as_json(&run(&commands[4].replace("your_user_id", &id)));
    assert_eq!(patched["app_metadata"]["groups"], json!(["admin"]));
    assert_eq!(run(&commands[5].replace("your_user_id", &id)), "");
    let job = as_json(&run(&commands[6]));
    let job_id = job["id"].as_str().unwrap();
    assert_eq!(
        as_json(&run(&commands[7].replace("your_job_id", job_id)))["id"],
        job_id
    );
    let errors = run(&commands[8].replace("your_job_id", job_id));
    // Empty (204, no errors), the errors array, or (still pending) the job itself.
    assert!(
        errors.is_empty() || as_json(&errors).is_array() || as_json(&errors)["id"] == job_id,
        "{errors}"
    );
}
