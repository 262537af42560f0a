//! The user-management routes under every fault of the Management API token fetch and of the
//! call itself.

use super::*;

fn management(
    method: &'static str,
    path: String,
    auth0_path: String,
    body: Option<Value>,
) -> Prepared {
    prepared(auth0_path, move |gw: &Gateway| match &body {
        Some(body) => {
            let bytes = body.to_string();
            let headers = [ADMIN, ("content-type", "application/json")];
            gw.call(method, &path, &headers, Some(bytes.as_bytes()))
        }
        None => gw.call(method, &path, &[ADMIN], None),
    })
}

fn import() -> Prepared {
    prepared("/api/v2/jobs/users-imports", |gw: &Gateway| {
        let users = json!([{"email": "imported@corp.example"}]).to_string();
        let mut body = b"--XbOuNdArY\r\nContent-Disposition: form-data; name=\"users\"; filename=\"u.json\"\r\nContent-Type: application/json\r\n\r\n".to_vec();
        body.extend_from_slice(users.as_bytes());
        body.extend_from_slice(b"\r\n--XbOuNdArY--\r\n");
        let multipart = ("content-type", "multipart/form-data; boundary=XbOuNdArY");
        gw.call("POST", "/users/import", &[ADMIN, multipart], Some(&body))
    })
}

fn created_user(gw: &Gateway, n: &mut u32) -> String {
    *n += 1;
    let email = format!("fault.{n}@corp.example");
    let user = json!({"email": email, "password": "Fault-Pass-w0rd!"});
    let r = gw.post_json("/users", &[ADMIN], user);
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["user_id"].as_str().unwrap_or_default().to_string();
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// Every management route: GET/POST /users, PATCH/DELETE /users/{id}, the import and its
/// status and errors, each as a list of prepared calls (one per fault and a recovery).
fn management_routes(gw: &Gateway, job: &str, users: &mut u32) -> Vec<(String, Vec<Prepared>)> {
    let mut routes = Vec::new();
    let search = || {
        management(
            "GET",
            "/users?email=alice*".into(),
            "/api/v2/users".into(),
            None,
        )
    };
    routes.push(("search".to_string(), each_case(search)));
    let mut created = 0;
    let create = || {
        created += 1;
        let user = json!({"email": format!("new.{created}.{}@corp.example", now_secs()),
                          "password": "New-Pass-w0rd!"});
        management("POST", "/users".into(), "/api/v2/users".into(), Some(user))
    };
    routes.push(("create".to_string(), each_case(create)));
    let patch = || {
        let body = json!({"user_metadata": {"faults": true}});
        let path = format!("/users/{ALICE_PATH}");
        management(
            "PATCH",
            path,
            format!("/api/v2/users/{ALICE_PATH}"),
            Some(body),
        )
    };
    routes.push(("patch".to_string(), each_case(patch)));
    let delete = || match job.is_empty() {
        // Before any token exists the call never reaches Auth0: any id will do.
        true => management(
            "DELETE",
            "/users/auth0%7Cnobody".into(),
            "/api/v2/users/auth0%7Cnobody".into(),
            None,
        ),
        false => {
            let id = created_user(gw, users);
            management(
                "DELETE",
                format!("/users/{id}"),
                format!("/api/v2/users/{id}"),
                None,
            )
        }
    };
    routes.push(("delete".to_string(), each_case(delete)));
    routes.push(("import".to_string(), each_case(import)));
    let job_id = if job.is_empty() { "job_none" } else { job };
    for (route, suffix) in [("import status", ""), ("import errors", "/errors")] {
        let status = || {
            let path = format!("/users/import/status/{job_id}{suffix}");
            management("GET", path, format!("/api/v2/jobs/{job_id}{suffix}"), None)
        };
        routes.push((route.to_string(), each_case(status)));
    }
    routes
}

fn active_users() -> Prepared {
    prepared("", |gw: &Gateway| {
        gw.call("GET", "/users/active", &[ADMIN], None)
    })
}

#[test]
fn management_routes_answer_every_fault_of_the_token_fetch_and_the_call() {
    let mut gw = Gateway::start("faults_mgmt", json!({"calloutTimeoutMs": TIMEOUT_MS}));
    let before = wasm_stats(&gw);
    let here = active_users();
    let mut users = 0;
    // No token is cached yet and every fetch fails, so each call starts with the token fetch.
    for (route, mut calls) in management_routes(&gw, "", &mut users) {
        for call in &mut calls {
            call.auth0_path = "/oauth/token".into();
        }
        let calls: Vec<Prepared> = calls.into_iter().take(FAULTS.len()).collect();
        for (fault, call) in FAULTS.iter().zip(&calls) {
            arm(&gw, "/oauth/token", *fault);
            let (answer, elapsed) = timed(&gw, call);
            clear_faults(&gw);
            check(
                &format!("{route}: token fetch {fault:?}"),
                &answer,
                elapsed,
                documented(*fault),
                BOUND,
            );
        }
    }
    // Now with a cached token, the Management API call itself fails.
    let job = (import().call)(&gw);
    assert!(job.status < 300, "{}", job.body);
    let job = job.json()["id"].as_str().unwrap_or_default().to_string();
    // The slow token fetches above still end at the emulator, late: let them be counted.
    std::thread::sleep(Duration::from_millis(TIMEOUT_MS * 3));
    let grants = gw.emulator_calls("grant:client_credentials");
    // Auth0's JSON answers pass through whatever their shape; other bodies are 502.
    let expect = |fault: Fault| match fault {
        Fault::MissingFields => 200,
        other => documented(other),
    };
    for (route, calls) in &management_routes(&gw, &job, &mut users) {
        run_matrix(&gw, route, calls, &expect, BOUND, &here, 200);
    }
    let after = gw.emulator_calls("grant:client_credentials");
    assert_eq!(after, grants, "the cached token served every call");
    // Refused connections to the Management API.
    let refused = management_routes(&gw, &job, &mut users);
    gw.stop_emulator();
    for (route, calls) in &refused {
        let (answer, elapsed) = timed(&gw, &calls[0]);
        check(&format!("{route}, refused"), &answer, elapsed, 502, BOUND);
    }
    still_serving(&gw, &here, 200);
    assert_vms_alive(&gw, &before);
}

#[test]
fn with_auth0_refusing_connections_from_the_start_every_route_is_502() {
    let mut gw = Gateway::start("faults_dead", json!({"calloutTimeoutMs": TIMEOUT_MS}));
    gw.stop_emulator();
    let before = wasm_stats(&gw);
    let mut calls = vec![
        ("password login".to_string(), password_login(APP_KEY)),
        (
            "website password login".to_string(),
            password_login(WEB_KEY),
        ),
        ("code exchange".to_string(), code_exchange(&gw, false)),
        ("refresh".to_string(), body_refresh("never-issued".into())),
    ];
    // The Management API token cannot be fetched.
    let mut users = 0;
    for (route, mut each) in management_routes(&gw, "", &mut users) {
        calls.push((format!("{route} (token fetch)"), each.remove(0)));
    }
    for (route, call) in &calls {
        let (answer, elapsed) = timed(&gw, call);
        check(&format!("{route}, refused"), &answer, elapsed, 502, BOUND);
    }
    still_serving(&gw, &active_users(), 200);
    still_serving(&gw, &logout_without_session(), 302);
    assert_vms_alive(&gw, &before);
}
