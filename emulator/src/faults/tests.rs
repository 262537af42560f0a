use super::*;

fn request(method: &str, path: &str, body: &str) -> Request {
    Request {
        method: method.into(),
        url: path.into(),
        path: path.into(),
        query: BTreeMap::new(),
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

fn arm(faults: &Faults, spec: serde_json::Value) {
    let answer = faults
        .control(&request("POST", "/__emulator/faults", &spec.to_string()))
        .unwrap();
    assert_eq!(answer.status, 200);
}

#[test]
fn a_json_failure_is_used_count_times_on_its_path_only() {
    let faults = Faults::default();
    arm(
        &faults,
        serde_json::json!({"fail": {"path": "/oauth/token", "status": 429, "count": 2,
            "headers": {"x-ratelimit-reset": "123"}, "body": {"error": "too_many_requests"}}}),
    );
    assert!(faults.before(&request("GET", "/userinfo", "")).is_none());
    for _ in 0..2 {
        let answer = faults.before(&request("POST", "/oauth/token", "")).unwrap();
        assert_eq!(answer.status, 429);
        assert_eq!(answer.body, br#"{"error":"too_many_requests"}"#);
        assert!(answer
            .headers
            .contains(&("x-ratelimit-reset".into(), "123".into())));
        assert_eq!(answer.truncate_to, None);
    }
    assert!(faults
        .before(&request("POST", "/oauth/token", ""))
        .is_none());
}

#[test]
fn a_raw_failure_answers_its_text_with_its_content_type() {
    let faults = Faults::default();
    arm(
        &faults,
        serde_json::json!({"fail": {"path": "/oauth/token", "status": 200, "raw": "<html>oops"}}),
    );
    let answer = faults.before(&request("POST", "/oauth/token", "")).unwrap();
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (200, &b"<html>oops"[..])
    );
    assert!(answer
        .headers
        .contains(&("content-type".into(), "text/html; charset=utf-8".into())));
    arm(
        &faults,
        serde_json::json!({"fail": {"path": "/x", "status": 200, "raw": "{not json",
            "contentType": "application/json"}}),
    );
    let answer = faults.before(&request("GET", "/x", "")).unwrap();
    assert!(answer
        .headers
        .contains(&("content-type".into(), "application/json".into())));
}

#[test]
fn a_truncating_failure_keeps_the_whole_body_and_marks_what_is_sent() {
    let faults = Faults::default();
    arm(
        &faults,
        serde_json::json!({"fail": {"path": "/oauth/token", "status": 200,
            "body": {"access_token": "abc"}, "truncate": 5}}),
    );
    let answer = faults.before(&request("POST", "/oauth/token", "")).unwrap();
    assert_eq!(answer.body, br#"{"access_token":"abc"}"#);
    assert_eq!(answer.truncate_to, Some(5));
}

#[test]
fn clearing_drops_armed_failures() {
    let faults = Faults::default();
    arm(
        &faults,
        serde_json::json!({"fail": {"path": "/oauth/token", "status": 500, "count": 5}}),
    );
    let cleared = faults.control(&request("DELETE", "/__emulator/faults", ""));
    assert_eq!(cleared.map(|c| c.status), Some(200));
    assert!(faults
        .before(&request("POST", "/oauth/token", ""))
        .is_none());
}
