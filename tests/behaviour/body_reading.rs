//! The two ways the filter reads the body of a request it answers, each in a real Envoy: the
//! flag mode (`allow_on_headers_stop_iteration`) and the hold mode (`bodyReading: holdFilter`
//! with a hold instance after the filter, for Istio's WasmPlugin and Envoy Gateway). In both,
//! every body route is answered, oversized, slow and aborted bodies behave alike, and no part
//! of an answered request reaches the upstream. The behavioural suites also run whole in the
//! hold mode (`AUTH0_FILTER_BODY=hold`, see the Makefile).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use harness::{multipart, render_template_in, Gateway, ALICE, APP_KEY, MULTIPART};
use serde_json::{json, Value};

const ADMIN: (&str, &str) = ("secret", "admin-api-key");
const JSON: (&str, &str) = ("content-type", "application/json");
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const MODES: [(&str, bool); 2] = [("flag", false), ("hold", true)];

fn start(name: &str, hold: bool, overrides: Value) -> Gateway {
    Gateway::start_rendered(name, overrides, &move |ports, config| {
        render_template_in(ports, "", config, hold)
    })
}

fn alice_form() -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(ALICE)
        .finish()
}

/// Sends a request whose body arrives in pieces `pause` apart, and returns the answer's
/// status line and body.
fn send_in_pieces(gw: &Gateway, head: &str, pieces: &[&[u8]], pause: Duration) -> String {
    let address = gw.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    stream.write_all(head.as_bytes()).expect("head");
    for piece in pieces {
        std::thread::sleep(pause);
        stream.write_all(piece).expect("piece");
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn multipart_import() -> Vec<u8> {
    let users = json!([{"email": "held.import@corp.example"}]).to_string();
    multipart(&[("users", Some("users.json"), users.as_bytes())])
}

#[test]
fn every_body_route_is_answered_and_nothing_of_it_reaches_the_upstream() {
    for (mode, hold) in MODES {
        let gw = start(
            &format!("body_routes_{mode}"),
            hold,
            json!({"maxBodyBytes": 4096}),
        );
        // Login and refresh.
        let login = gw.post_form("/oauth/token", &[APP_KEY], ALICE);
        assert_eq!(login.status, 200, "{mode}: {}", login.body);
        let refresh = login.json()["refreshToken"].clone();
        let r = gw.post_json(
            "/refreshtoken",
            &[APP_KEY],
            json!({"refresh_token": refresh}),
        );
        assert_eq!(r.status, 200, "{mode}: {}", r.body);
        // User management: create, patch, import.
        let email = format!("held.{mode}@corp.example");
        let r = gw.post_json(
            "/users",
            &[ADMIN],
            json!({"email": email, "password": "Held-Passw0rd!"}),
        );
        assert_eq!(r.status, 201, "{mode}: {}", r.body);
        let id = r.json()["user_id"].as_str().unwrap_or_default().to_string();
        let path = format!("/users/{}", id.replace('|', "%7C"));
        let r = gw.call("PATCH", &path, &[ADMIN, JSON], Some(br#"{"name":"Held"}"#));
        assert_eq!(r.status, 200, "{mode}: {}", r.body);
        let r = gw.call(
            "POST",
            "/users/import",
            &[ADMIN, MULTIPART],
            Some(&multipart_import()),
        );
        assert_eq!(r.status, 201, "{mode}: {}", r.body);
        // A body over maxBodyBytes: 413, as a JSON error.
        gw.call(
            "POST",
            "/oauth/token",
            &[APP_KEY, FORM],
            Some(&[b'a'; 10_000]),
        )
        .assert_error(413);
        // A body that arrives slowly, in three pieces, is still read whole and answered.
        let form = alice_form();
        let bytes = form.as_bytes();
        let (a, rest) = bytes.split_at(bytes.len() / 3);
        let (b, c) = rest.split_at(rest.len() / 2);
        let head = format!(
            "POST /oauth/token HTTP/1.1\r\nhost: gw\r\nsecret: {}\r\n\
             content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n",
            APP_KEY.1,
            bytes.len()
        );
        let answer = send_in_pieces(&gw, &head, &[a, b, c], Duration::from_millis(300));
        assert!(answer.starts_with("HTTP/1.1 200"), "{mode}: {answer}");
        assert!(answer.contains("accessToken"), "{mode}: {answer}");
        // A client that hangs up mid-body: nothing is answered or forwarded, and the gateway
        // keeps serving.
        let address = gw.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connect");
        let head = format!(
            "POST /oauth/token HTTP/1.1\r\nhost: gw\r\nsecret: {}\r\n\
             content-type: application/x-www-form-urlencoded\r\ncontent-length: 500\r\n\r\n\
             grant_type=pass",
            APP_KEY.1
        );
        stream.write_all(head.as_bytes()).expect("half a request");
        drop(stream);
        std::thread::sleep(Duration::from_millis(200));
        let r = gw.post_form("/oauth/token", &[APP_KEY], ALICE);
        assert_eq!(r.status, 200, "{mode}: {}", r.body);
        assert_eq!(
            gw.upstream_received(),
            Vec::<String>::new(),
            "{mode}: the upstream got a request the filter answered"
        );
        // Envoy's own count of requests to the upstream cluster, as a second witness.
        assert_eq!(
            upstream_requests(&gw),
            0,
            "{mode}: Envoy sent a request upstream"
        );
    }
}

/// Requests Envoy sent to the `upstream` cluster, headers alone included.
fn upstream_requests(gw: &Gateway) -> u64 {
    let stats = gw.stats("^cluster\\.upstream\\.upstream_rq_total$");
    stats
        .split_once(": ")
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no upstream_rq_total in {stats:?}"))
}

#[test]
fn a_hold_instance_lets_every_request_the_filter_does_not_answer_through_whole() {
    let gw = start("hold_passes_the_rest", true, json!({}));
    let body = vec![b'x'; 200_000];
    let r = gw.call("POST", "/through-filter/upload", &[JSON], Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["upstream"], "echo");
    assert_eq!(r.json()["body"].as_str().map(str::len), Some(body.len()));
    let r = gw.call("GET", "/through-filter/x", &[], None);
    assert_eq!(r.status, 200, "{}", r.body);
    // A protected route: the filter pauses in the request headers while it verifies, which
    // needs no flag, and the request then goes on through the hold instance.
    let login = gw.post_form("/oauth/token", &[APP_KEY], ALICE).json();
    let bearer = format!(
        "Bearer {}",
        login["accessToken"].as_str().unwrap_or_default()
    );
    let r = gw.call(
        "POST",
        "/protected/orders",
        &[("authorization", &bearer), JSON],
        Some(br#"{"order":1}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["body"], r#"{"order":1}"#);
    assert_eq!(
        gw.upstream_received(),
        vec![
            "POST /through-filter/upload",
            "GET /through-filter/x",
            "POST /protected/orders"
        ]
    );
    assert_eq!(upstream_requests(&gw), 3);
}

#[test]
fn the_hold_mode_without_a_hold_instance_refuses_body_requests() {
    // The flag-mode chain has no hold instance: a misconfiguration the filter must catch.
    let gw = start("hold_missing", false, json!({"bodyReading": "holdFilter"}));
    // The body comes half a second after the headers, so the router has time to forward them.
    let form = alice_form();
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nhost: gw\r\nsecret: {}\r\ncookie: sid=x\r\n\
         authorization: Bearer x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        APP_KEY.1,
        form.len()
    );
    let answer = send_in_pieces(&gw, &head, &[form.as_bytes()], Duration::from_millis(500));
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    assert!(!answer.contains("Alice-Passw0rd"), "{answer}");
    assert_eq!(
        gw.emulator_calls("/oauth/token"),
        0,
        "Auth0 is never called"
    );
    let stats = gw.stats_once("hold_missing", |s| s.contains("hold_missing: 1"));
    assert!(stats.contains("hold_missing: 1"), "{stats}");
    assert!(
        gw.envoy_log().contains("no hold instance"),
        "the log names the cause"
    );
    // The headers went upstream before the filter could tell, without the caller's
    // credentials; the body never did.
    let received = gw.upstream_received_headers();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].0, "POST /oauth/token");
    for credential in ["secret", "authorization", "cookie"] {
        assert!(
            !received[0].1.iter().any(|n| n == credential),
            "{received:?}"
        );
    }
    // Requests without a body need no hold and are served.
    assert_eq!(gw.call("GET", "/userinfo", &[APP_KEY], None).status, 401);
}
