//! The Management API subset answers as Auth0 documents: tokens, scopes, user search with
//! Lucene semantics, users CRUD, connections, and the fault controls that apply to it.

mod common;

use common::{claims, q, Emulator, MGMT, READONLY};
use serde_json::{json, Value};

fn ids(answer: &common::Answer) -> Vec<String> {
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap().to_string())
        .collect()
}

fn search(emu: &Emulator, token: &str, query: &str) -> Vec<String> {
    ids(&emu.get(&format!("/api/v2/users?{}", q(query)), token))
}

fn expect(list: &[&str]) -> Vec<String> {
    list.iter()
        .map(|s| format!("auth0|0000000000000000000000{s}"))
        .collect()
}

#[test]
fn client_credentials_token_for_the_management_api() {
    let emu = Emulator::start();
    let answer = emu.grant(MGMT, &emu.audience());
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["token_type"], "Bearer");
    assert_eq!(answer.json["expires_in"], 86400);
    assert_eq!(
        answer.json["scope"],
        "read:users create:users update:users delete:users read:connections"
    );
    let c = claims(answer.json["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], emu.audience());
    assert_eq!(c["iss"], format!("{}/", emu.base));
    assert_eq!(c["gty"], "client-credentials");
    assert_eq!(c["sub"], "management-client-id@clients");
    // The old port-less identifier is not an API of this tenant.
    let wrong = emu.grant(MGMT, "http://127.0.0.1/api/v2/");
    assert_eq!(wrong.status, 403, "{}", wrong.text);
    assert_eq!(wrong.json["error"], "access_denied");
}

#[test]
fn tokens_and_scopes_are_enforced() {
    let emu = Emulator::start();
    let missing = emu.send("GET", "/api/v2/users", None, None, None);
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.json,
        json!({"statusCode": 401, "error": "Unauthorized", "message": "Missing authentication", "errorCode": "invalid_token"})
    );
    let invalid = json!({"statusCode": 401, "error": "Unauthorized", "message": "Invalid token", "errorCode": "invalid_token"});
    let garbage = emu.get("/api/v2/users", "not.a.jwt");
    assert_eq!((garbage.status, &garbage.json), (401, &invalid));
    // A valid token of this tenant for another API.
    let user_token = emu.form(
        "/oauth/token",
        &[
            (
                "grant_type",
                "http://auth0.com/oauth/grant-type/password-realm",
            ),
            ("realm", "Username-Password-Authentication"),
            ("username", "alice"),
            ("password", "Alice-Passw0rd!"),
            ("audience", "https://api.example.org"),
            ("client_id", "website-client-id"),
            ("client_secret", "website-client-secret-0123456789"),
        ],
    );
    let other = emu.get(
        "/api/v2/users",
        user_token.json["access_token"].as_str().unwrap(),
    );
    assert_eq!((other.status, &other.json), (401, &invalid));
    let readonly = emu.token(READONLY);
    assert_eq!(emu.get("/api/v2/users", &readonly).status, 200);
    let create = emu.json("POST", "/api/v2/users", &readonly, &json!({}));
    assert_eq!(create.status, 403);
    assert_eq!(
        create.json,
        json!({"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope, expected any of: create:users", "errorCode": "insufficient_scope"})
    );
    let connections = emu.get("/api/v2/connections", &readonly);
    assert_eq!(connections.status, 403);
    assert_eq!(
        connections.json["message"],
        "Insufficient scope, expected any of: read:connections"
    );
    let delete = emu.send(
        "DELETE",
        "/api/v2/users/auth0%7C0000000000000000000000a1",
        Some(&readonly),
        None,
        None,
    );
    assert_eq!(delete.status, 403);
    let patch = emu.json(
        "PATCH",
        "/api/v2/users/auth0%7C0000000000000000000000a1",
        &readonly,
        &json!({}),
    );
    assert_eq!(patch.status, 403);
}

#[test]
fn revoked_and_short_lived_tokens() {
    let emu = Emulator::start();
    let first = emu.token(MGMT);
    assert_eq!(emu.get("/api/v2/users", &first).status, 200);
    emu.faults(r#"{"revokeManagementTokens": true}"#);
    let revoked = emu.get("/api/v2/users", &first);
    assert_eq!(revoked.status, 401);
    assert_eq!(revoked.json["errorCode"], "invalid_token");
    let second = emu.token(MGMT);
    assert_eq!(emu.get("/api/v2/users", &second).status, 200);

    emu.faults(r#"{"clientCredentialsLifetimeSeconds": 1}"#);
    let short = emu.grant(MGMT, &emu.audience());
    assert_eq!(short.json["expires_in"], 1);
    let token = short.json["access_token"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 1);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(emu.get("/api/v2/users", token).status, 401, "expired");
    assert_eq!(emu.get("/api/v2/users", &second).status, 200);

    let calls = emu.send("GET", "/__emulator/calls", None, None, None);
    assert_eq!(calls.json["grant:client_credentials"], 3);
    assert_eq!(calls.json["/api/v2/users"], 5);
    // Clearing the faults restores the tenant's lifetime.
    emu.send("DELETE", "/__emulator/faults", None, None, None);
    assert_eq!(emu.grant(MGMT, &emu.audience()).json["expires_in"], 86400);
}

#[test]
fn faults_apply_to_the_management_api() {
    let emu = Emulator::start();
    let token = emu.token(MGMT);
    emu.faults(r#"{"fail": {"path": "/api/v2/users", "status": 429, "headers": {"x-ratelimit-reset": "9"}}}"#);
    assert_eq!(emu.get("/api/v2/users", &token).status, 429);
    assert_eq!(emu.get("/api/v2/users", &token).status, 200);
}

#[test]
fn lucene_search_semantics() {
    let emu = Emulator::start();
    let t = emu.token(MGMT);
    assert_eq!(
        search(&emu, &t, "app_metadata.groups:admin"),
        expect(&["a1", "d4"])
    );
    assert_eq!(
        search(
            &emu,
            &t,
            "app_metadata.groups:admin AND app_metadata.groups:ops"
        ),
        expect(&["d4"])
    );
    assert_eq!(
        search(&emu, &t, "app_metadata.groups:ops OR username:bob"),
        expect(&["b2", "d4"])
    );
    assert_eq!(
        search(
            &emu,
            &t,
            "app_metadata.groups:users AND NOT identities.connection:partners-db"
        ),
        expect(&["b2", "e5"])
    );
    // AND binds tighter than OR; parentheses change it.
    assert_eq!(
        search(
            &emu,
            &t,
            "username:bob OR app_metadata.groups:admin AND app_metadata.groups:ops"
        ),
        expect(&["b2", "d4"])
    );
    assert_eq!(
        search(
            &emu,
            &t,
            "(username:bob OR app_metadata.groups:admin) AND NOT app_metadata.groups:ops"
        ),
        expect(&["a1", "b2"])
    );
    assert_eq!(
        search(&emu, &t, "app_metadata.subscription.plan:gold"),
        expect(&["d4"])
    );
    assert_eq!(
        search(&emu, &t, "app_metadata.subscription.seats:10"),
        expect(&["d4"])
    );
    assert_eq!(
        search(&emu, &t, "user_metadata.addresses.city:Rome"),
        expect(&["d4"])
    );
    assert_eq!(
        search(&emu, &t, "app_metadata.partner:true"),
        expect(&["f6"])
    );
    // Phrases, normalized (case-insensitive) and case-sensitive fields.
    assert_eq!(search(&emu, &t, r#"name:"frank partner""#), expect(&["f6"]));
    assert_eq!(search(&emu, &t, "email:ALICE@EXAMPLE.ORG"), expect(&["a1"]));
    assert_eq!(search(&emu, &t, "username:ALICE"), expect(&[]));
    assert_eq!(search(&emu, &t, "app_metadata.groups:Admin"), expect(&[]));
    // Wildcards, existence and escapes.
    assert_eq!(
        search(&emu, &t, "email:*@partner.example"),
        expect(&["c3", "f6"])
    );
    assert_eq!(
        search(&emu, &t, "app_metadata.subscription.plan:*"),
        expect(&["d4", "e5", "f6"])
    );
    assert_eq!(search(&emu, &t, r"username:o\'brien"), expect(&["e5"]));
    assert_eq!(
        search(&emu, &t, "email:erin+news@example.org"),
        expect(&["e5"])
    );
    assert_eq!(search(&emu, &t, r"email:erin\*"), expect(&[]));
    assert_eq!(search(&emu, &t, r#"email:"a\") OR (b""#), expect(&[]));
    assert_eq!(
        search(&emu, &t, "identities.connection:partners-db"),
        expect(&["c3", "f6"])
    );
    for bad in [
        "(app_metadata.groups:admin",
        "app_metadata.groups:admin)",
        "email:a@b.c AND",
        "OR email:a@b.c",
        "alice",
        "email:\"open",
    ] {
        let answer = emu.get(&format!("/api/v2/users?{}", q(bad)), &t);
        assert_eq!(answer.status, 400, "{bad}: {}", answer.text);
        assert_eq!(answer.json["errorCode"], "invalid_query_string");
        assert!(answer.json["message"]
            .as_str()
            .unwrap()
            .starts_with("Query validation error: "));
    }
}

#[test]
fn paging_and_totals() {
    let emu = Emulator::start();
    let t = emu.token(MGMT);
    let all = ids(&emu.get("/api/v2/users", &t));
    assert_eq!(all, expect(&["a1", "b2", "c3", "d4", "e5", "f6"]));
    let page = ids(&emu.get("/api/v2/users?per_page=2&page=1", &t));
    assert_eq!(page, expect(&["c3", "d4"]));
    let totals = emu.get("/api/v2/users?per_page=4&page=1&include_totals=true", &t);
    assert_eq!(totals.status, 200);
    assert_eq!(totals.json["start"], 4);
    assert_eq!(totals.json["limit"], 4);
    assert_eq!(totals.json["length"], 2);
    assert_eq!(totals.json["total"], 6);
    assert_eq!(totals.json["users"][0]["user_id"], expect(&["e5"])[0]);
    let too_many = emu.get("/api/v2/users?per_page=101", &t);
    assert_eq!(too_many.status, 400);
    assert_eq!(too_many.json["errorCode"], "invalid_query_string");
    assert!(too_many.json["message"].as_str().unwrap().starts_with(
        "Query validation error: 'Value must be less than or equal to 100' on property per_page"
    ));
    assert_eq!(emu.get("/api/v2/users?per_page=100", &t).status, 200);
    let alice = &emu
        .get(&format!("/api/v2/users?{}", q("username:alice")), &t)
        .json[0];
    assert_eq!(
        alice["identities"],
        json!([{"connection": "Username-Password-Authentication", "user_id": "0000000000000000000000a1", "provider": "auth0", "isSocial": false}])
    );
    assert_eq!(alice["app_metadata"], json!({"groups": ["admin"]}));
    assert!(alice.get("password").is_none());
}

#[test]
fn users_create_patch_delete() {
    let emu = Emulator::start();
    let t = emu.token(MGMT);
    let body = json!({"connection": "Username-Password-Authentication", "email": "new@example.org",
                      "password": "New-Passw0rd!", "app_metadata": {"groups": ["users"], "tier": 1},
                      "user_metadata": {"lang": "it"}, "given_name": "Newt"});
    let created = emu.json("POST", "/api/v2/users", &t, &body);
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["user_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("auth0|") && id.len() == 30, "{id}");
    assert!(created.json.get("password").is_none());
    assert_eq!(created.json["email_verified"], false);
    assert_eq!(
        emu.login(
            "Username-Password-Authentication",
            "new@example.org",
            "New-Passw0rd!"
        ),
        200
    );

    let duplicate = emu.json("POST", "/api/v2/users", &t, &body);
    assert_eq!(duplicate.status, 409);
    assert_eq!(
        duplicate.json,
        json!({"statusCode": 409, "error": "Conflict", "message": "The user already exists.", "errorCode": "auth0_idp_error"})
    );
    let no_connection = emu.json(
        "POST",
        "/api/v2/users",
        &t,
        &json!({"email": "x@example.org"}),
    );
    assert_eq!(no_connection.status, 400);
    assert_eq!(no_connection.json["errorCode"], "invalid_body");
    assert!(no_connection.json["message"]
        .as_str()
        .unwrap()
        .contains("connection"));
    let unknown = emu.json(
        "POST",
        "/api/v2/users",
        &t,
        &json!({"connection": "nope", "email": "x@example.org", "password": "p"}),
    );
    assert_eq!(
        unknown.json,
        json!({"statusCode": 400, "error": "Bad Request", "message": "The connection does not exist.", "errorCode": "inexistent_connection"})
    );
    let no_password = emu.json(
        "POST",
        "/api/v2/users",
        &t,
        &json!({"connection": "partners-db", "email": "x@example.org"}),
    );
    assert_eq!(
        (no_password.status, &no_password.json["errorCode"]),
        (400, &json!("invalid_body"))
    );

    let path = format!("/api/v2/users/{}", id.replace('|', "%7C"));
    let patched = emu.json(
        "PATCH",
        &path,
        &t,
        &json!({
        "app_metadata": {"tier": null, "plan": "gold"}, "user_metadata": {"lang": "en"},
        "given_name": null, "name": "New Name", "password": "Changed-Passw0rd!"}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        patched.json["app_metadata"],
        json!({"groups": ["users"], "plan": "gold"})
    );
    assert_eq!(patched.json["user_metadata"], json!({"lang": "en"}));
    assert!(patched.json.get("given_name").is_none());
    assert_eq!(patched.json["name"], "New Name");
    assert_eq!(
        emu.login(
            "Username-Password-Authentication",
            "new@example.org",
            "New-Passw0rd!"
        ),
        403
    );
    assert_eq!(
        emu.login(
            "Username-Password-Authentication",
            "new@example.org",
            "Changed-Passw0rd!"
        ),
        200
    );
    assert_eq!(search(&emu, &t, "app_metadata.plan:gold"), vec![id.clone()]);

    let deleted = emu.send("DELETE", &path, Some(&t), None, None);
    assert_eq!((deleted.status, deleted.text.as_str()), (204, ""));
    assert_eq!(
        emu.login(
            "Username-Password-Authentication",
            "new@example.org",
            "Changed-Passw0rd!"
        ),
        403
    );
    let gone = emu.json("PATCH", &path, &t, &json!({"name": "x"}));
    assert_eq!(
        gone.json,
        json!({"statusCode": 404, "error": "Not Found", "message": "The user does not exist.", "errorCode": "inexistent_user"})
    );
    assert_eq!(emu.get(&path, &t).status, 404);
    assert_eq!(
        search(&emu, &t, "app_metadata.plan:gold"),
        Vec::<String>::new()
    );
}

#[test]
fn connections_list() {
    let emu = Emulator::start();
    let t = emu.token(MGMT);
    let all = emu.get("/api/v2/connections", &t);
    assert_eq!(all.status, 200);
    let names: Vec<&str> = all
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Username-Password-Authentication", "partners-db"]);
    let one = emu.get("/api/v2/connections?name=partners-db", &t);
    assert_eq!(
        one.json,
        json!([{"id": "con_0000000000000002", "name": "partners-db", "strategy": "auth0",
                "display_name": "partners-db", "options": {}, "realms": ["partners-db"],
                "is_domain_connection": false, "enabled_clients": ["website-client-id"]}])
    );
    assert_eq!(
        emu.get("/api/v2/connections?name=none", &t).json,
        Value::Array(vec![])
    );
}
