use super::*;

#[test]
fn error_body_has_the_one_shape() {
    let reply = FilterError::bad_request("connection `x` is not supported").to_reply();
    assert_eq!(reply.status, 400);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"statusCode":400,"error":"Bad Request","message":"connection `x` is not supported"})
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[test]
fn rate_limit_carries_retry_after() {
    let reply = FilterError::too_many_requests(7).to_reply();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("7"));
}
