use super::*;

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode("auth0%7Cabc").as_deref(), Some("auth0|abc"));
    assert_eq!(percent_decode("auth0|abc").as_deref(), Some("auth0|abc"));
    assert_eq!(percent_decode("a%2").as_deref(), Some("a%2"));
    assert_eq!(percent_decode("%FF"), None);
}

#[test]
fn error_bodies() {
    let r = mgmt_error(409, "The user already exists.", "auth0_idp_error");
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    assert_eq!(
        body,
        json!({"statusCode": 409, "error": "Conflict", "message": "The user already exists.", "errorCode": "auth0_idp_error"})
    );
}
