use super::*;

fn written(response: &Response) -> String {
    let mut out = Vec::new();
    write_response(&mut out, response, false, false).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn a_whole_answer_announces_its_length() {
    let text = written(&Response::text(200, "text/plain", "hello"));
    assert!(text.contains("content-length: 5\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nhello"), "{text}");
}

#[test]
fn a_truncated_answer_announces_more_than_it_sends() {
    let mut response = Response::json(200, serde_json::json!({"access_token": "x"}));
    response.truncate_to = Some(4);
    let text = written(&response);
    assert!(text.contains("content-length: 20\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n{\"ac"), "{text}");
}
