use super::wsgi_environ;

#[test]
fn every_spelling_is_one_wsgi_name() {
    let headers = [
        ("x-auth0_user-id".to_string(), "a".to_string()),
        ("X_AUTH0_USER_ID".to_string(), "b".to_string()),
        ("acl_rows".to_string(), "{}".to_string()),
    ];
    let environ = wsgi_environ(&headers);
    assert_eq!(environ["HTTP_X_AUTH0_USER_ID"], "a,b");
    assert_eq!(environ["HTTP_ACL_ROWS"], "{}");
}
