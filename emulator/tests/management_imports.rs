//! User-import jobs: multipart upload, asynchronous completion, summary and per-user errors.

mod common;

use std::time::{Duration, Instant};

use common::{q, Emulator, MGMT, READONLY};
use serde_json::{json, Value};

const BOUNDARY: &str = "----emulator-test-boundary";

/// A multipart/form-data body: text fields, then the `users` file part.
fn multipart(fields: &[(&str, &str)], users: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if let Some(users) = users {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"users\"; filename=\"users.json\"\r\nContent-Type: application/json\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(users);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn import(emu: &Emulator, token: &str, body: &[u8]) -> common::Answer {
    emu.send(
        "POST",
        "/api/v2/jobs/users-imports",
        Some(token),
        Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
        Some(body),
    )
}

/// Polls the job until it completes (at most 5 s).
fn wait(emu: &Emulator, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let job = emu.get(&format!("/api/v2/jobs/{id}"), token);
        assert_eq!(job.status, 200, "{}", job.text);
        if job.json["status"] == "completed" {
            return job.json;
        }
        assert!(
            Instant::now() < deadline,
            "job did not complete: {}",
            job.text
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn import_with_one_invalid_user() {
    let emu = Emulator::start();
    let t = emu.token(MGMT);
    let users = json!([
        {"email": "imported1@example.org", "email_verified": true, "app_metadata": {"groups": ["imported"]}},
        {"email": "not-an-email", "name": "Broken"},
        {"email": "imported2@example.org", "user_id": "imp2",
         "password_hash": "$2b$10$C9ZjTOnOCZpl1fZQ3VXDkuHcM3Zm4lJJWs1pEGHkY2xrvIYVp9dHW"}
    ]);
    let created = import(
        &emu,
        &t,
        &multipart(
            &[
                ("connection_id", "con_0000000000000001"),
                ("external_id", "ext-1"),
                ("send_completion_email", "false"),
            ],
            Some(users.to_string().as_bytes()),
        ),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("job_") && id.len() == 20, "{id}");
    assert!(id[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(created.json["status"], "pending");
    assert_eq!(created.json["type"], "users_import");
    assert_eq!(created.json["connection_id"], "con_0000000000000001");
    assert_eq!(
        created.json["connection"],
        "Username-Password-Authentication"
    );
    assert_eq!(created.json["external_id"], "ext-1");
    assert_eq!(created.json["upsert"], false);
    assert_eq!(created.json["send_completion_email"], false);
    assert!(created.json["created_at"].as_str().unwrap().ends_with('Z'));

    let job = wait(&emu, &t, &id);
    assert_eq!(
        job["summary"],
        json!({"failed": 1, "updated": 0, "inserted": 2, "total": 3})
    );
    assert_eq!(job["percentage_done"], 100);
    assert_eq!(job["time_left_seconds"], 0);
    let errors = emu.get(&format!("/api/v2/jobs/{id}/errors"), &t);
    assert_eq!(errors.status, 200);
    assert_eq!(
        errors.json,
        json!([{"user": {"email": "not-an-email", "name": "Broken"}, "errors": [{
            "code": "INVALID_FORMAT",
            "message": "Error in email property - Object didn't pass validation for format email: not-an-email",
            "path": "email"}]}])
    );
    let found = emu.get(
        &format!("/api/v2/users?{}", q("app_metadata.groups:imported")),
        &t,
    );
    assert_eq!(found.json.as_array().unwrap().len(), 1);
    assert_eq!(found.json[0]["email"], "imported1@example.org");
    assert_eq!(found.json[0]["email_verified"], true);
    let second = emu.get("/api/v2/users/auth0%7Cimp2", &t);
    assert_eq!(second.json["email"], "imported2@example.org");
    // read:users is enough to poll a job.
    let readonly = emu.token(READONLY);
    assert_eq!(
        emu.get(&format!("/api/v2/jobs/{id}"), &readonly).status,
        200
    );
}

#[test]
fn duplicates_upsert_and_empty_errors() {
    let emu = Emulator::start();
    let t = emu.token(MGMT);
    let users = json!([
        {"email": "alice@example.org", "app_metadata": {"groups": ["upserted"]}},
        {"name": "No email"},
        {"email": "bob@example.org", "password_hash": "md5:abc"}
    ]);
    let file = users.to_string();
    let body = multipart(
        &[("connection_id", "con_0000000000000001")],
        Some(file.as_bytes()),
    );
    let id = import(&emu, &t, &body).json["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = wait(&emu, &t, &id);
    assert_eq!(
        job["summary"],
        json!({"failed": 3, "updated": 0, "inserted": 0, "total": 3})
    );
    let errors = emu.get(&format!("/api/v2/jobs/{id}/errors"), &t).json;
    let codes: Vec<(&str, &str)> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["errors"][0]["code"].as_str().unwrap(),
                e["errors"][0]["path"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("DUPLICATED_USER", ""),
            ("OBJECT_REQUIRED", "email"),
            ("INVALID_FORMAT", "password_hash")
        ]
    );

    let upsert = json!([{"email": "alice@example.org", "app_metadata": {"groups": ["upserted"]}}])
        .to_string();
    let body = multipart(
        &[
            ("connection_id", "con_0000000000000001"),
            ("upsert", "true"),
        ],
        Some(upsert.as_bytes()),
    );
    let created = import(&emu, &t, &body);
    assert_eq!(created.json["upsert"], true);
    assert_eq!(created.json["send_completion_email"], true);
    let id = created.json["id"].as_str().unwrap().to_string();
    let job = wait(&emu, &t, &id);
    assert_eq!(
        job["summary"],
        json!({"failed": 0, "updated": 1, "inserted": 0, "total": 1})
    );
    let none = emu.get(&format!("/api/v2/jobs/{id}/errors"), &t);
    assert_eq!((none.status, none.text.as_str()), (204, ""));
    let alice = emu.get("/api/v2/users/auth0%7C0000000000000000000000a1", &t);
    assert_eq!(alice.json["app_metadata"], json!({"groups": ["upserted"]}));
}

#[test]
fn import_request_errors() {
    let emu = Emulator::start();
    let t = emu.token(MGMT);
    let big = format!(
        "[{}]",
        vec![r#"{"email":"x@example.org"}"#; 22_000].join(",")
    );
    assert!(big.len() > 512_000);
    let too_large = import(
        &emu,
        &t,
        &multipart(
            &[("connection_id", "con_0000000000000001")],
            Some(big.as_bytes()),
        ),
    );
    assert_eq!(too_large.status, 413);
    assert_eq!(
        too_large.json,
        json!({"statusCode": 413, "error": "Request Entity Too Large",
               "message": "Payload content length greater than maximum allowed: 512000", "errorCode": "too_large"})
    );
    let bad_connection = import(
        &emu,
        &t,
        &multipart(&[("connection_id", "con_0000000000000009")], Some(b"[]")),
    );
    assert_eq!(
        bad_connection.json,
        json!({"statusCode": 400, "error": "Bad Request", "message": "The connection does not exist.", "errorCode": "inexistent_connection"})
    );
    let no_users = import(
        &emu,
        &t,
        &multipart(&[("connection_id", "con_0000000000000001")], None),
    );
    assert_eq!(
        (no_users.status, &no_users.json["errorCode"]),
        (400, &json!("invalid_body"))
    );
    let no_connection = import(&emu, &t, &multipart(&[], Some(b"[]")));
    assert_eq!(
        (no_connection.status, &no_connection.json["errorCode"]),
        (400, &json!("invalid_body"))
    );
    let malformed = import(&emu, &t, b"--nope\r\ngarbage");
    assert_eq!(
        (malformed.status, &malformed.json["errorCode"]),
        (400, &json!("invalid_body"))
    );
    let not_array = import(
        &emu,
        &t,
        &multipart(&[("connection_id", "con_0000000000000001")], Some(b"{}")),
    );
    assert_eq!(not_array.status, 400);
    let unknown = emu.get("/api/v2/jobs/job_0000000000000000", &t);
    assert_eq!(
        unknown.json,
        json!({"statusCode": 404, "error": "Not Found", "message": "The job does not exist.", "errorCode": "inexistent_job"})
    );
    assert_eq!(
        emu.get("/api/v2/jobs/job_0000000000000000/errors", &t)
            .status,
        404
    );
    let readonly = emu.token(READONLY);
    let forbidden = import(
        &emu,
        &readonly,
        &multipart(&[("connection_id", "con_0000000000000001")], Some(b"[]")),
    );
    assert_eq!(forbidden.status, 403);
}
