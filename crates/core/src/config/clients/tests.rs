use super::*;
use crate::testing::config_with;

fn head(headers: &[(&str, &str)]) -> RequestHead {
    RequestHead::from_headers(headers)
}

#[test]
fn api_key_selects_its_client_from_either_header() {
    let config = config_with(serde_json::json!({
        "apiKeys": [{"key": "web-key", "clientType": "web"}, {"key": "app-key", "clientType": "app"}],
        "defaultClient": "app"
    }));
    assert_eq!(
        select_client(&config, &head(&[("secret", "web-key")]))
            .unwrap()
            .name,
        "web"
    );
    assert_eq!(
        select_client(&config, &head(&[("client-key", "web-key")]))
            .unwrap()
            .name,
        "web"
    );
    assert_eq!(select_client(&config, &head(&[])).unwrap().name, "app");
}

#[test]
fn wrong_api_key_is_401_not_the_default_client() {
    let config = config_with(serde_json::json!({
        "apiKeys": [{"key": "web-key", "clientType": "web"}],
        "defaultClient": "app"
    }));
    let err = select_client(&config, &head(&[("secret", "nope")])).unwrap_err();
    assert_eq!(err.status, 401);
}

#[test]
fn client_type_header_is_ignored_unless_trusted() {
    let untrusted = config_with(serde_json::json!({}));
    assert_eq!(
        select_client(&untrusted, &head(&[("client-type", "web")]))
            .unwrap_err()
            .status,
        401
    );
    let trusted = config_with(serde_json::json!({"trustClientTypeHeader": true}));
    assert_eq!(
        select_client(&trusted, &head(&[("client-type", "web")]))
            .unwrap()
            .name,
        "web"
    );
    assert_eq!(
        select_client(&trusted, &head(&[("client-type", "nope")]))
            .unwrap_err()
            .status,
        401
    );
}

#[test]
fn a_repeated_api_key_header_is_400_even_when_one_copy_is_right() {
    let config = config_with(serde_json::json!({
        "apiKeys": [{"key": "web-key", "clientType": "web"}],
        "defaultClient": "app",
        "managementAccess": {"apiKeys": ["admin-key"]}
    }));
    for headers in [
        &[("secret", "web-key"), ("secret", "other")][..],
        &[("client-key", "web-key"), ("Client-Key", "web-key")],
        &[
            ("secret", "web-key"),
            ("client-key", "a"),
            ("client-key", "b"),
        ],
    ] {
        let err = select_client(&config, &head(headers)).unwrap_err();
        assert_eq!(err.status, 400, "{headers:?}");
        assert!(!err.message.contains("web-key"), "{}", err.message);
    }
    let admin = head(&[("secret", "admin-key"), ("secret", "admin-key")]);
    assert_eq!(
        check_management_access(&config, &admin).unwrap_err().status,
        400
    );
    // One of each header: `secret` is the one read, as before.
    let both = head(&[("client-key", "nope"), ("secret", "web-key")]);
    assert_eq!(select_client(&config, &both).unwrap().name, "web");
    assert!(check_management_access(&config, &head(&[("secret", "admin-key")])).is_ok());
}

#[test]
fn no_client_and_no_default_is_401() {
    let config = config_with(serde_json::json!({}));
    assert_eq!(select_client(&config, &head(&[])).unwrap_err().status, 401);
}

#[test]
fn constant_time_eq_compares_whole_digest() {
    let a = [7u8; 32];
    let mut b = a;
    assert!(constant_time_eq(&a, &b));
    b[31] ^= 1;
    assert!(!constant_time_eq(&a, &b));
}
