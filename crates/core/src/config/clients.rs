//! Which configured client a request uses, as Mia's gateway resolves it:
//! 1. an API key in the `secret` or `client-key` header, mapped to a client type;
//! 2. otherwise the `client-type` header, only when `trustClientTypeHeader` says an earlier
//!    filter sets it;
//! 3. otherwise `defaultClient`;
//! 4. otherwise 401.

use crate::config::{Client, Config};
use crate::http::error::FilterError;
use crate::http::RequestHead;

pub const API_KEY_HEADERS: [&str; 2] = ["secret", "client-key"];
pub const CLIENT_TYPE_HEADER: &str = "client-type";

pub fn select_client<'a>(
    config: &'a Config,
    head: &RequestHead,
) -> Result<&'a Client, FilterError> {
    let unknown = || FilterError::unauthorized("unknown or missing client");
    if !config.api_keys.is_empty() {
        if let Some(key) = presented_api_key(head)? {
            // A key that is present but wrong must not fall back to the default client.
            let client_type = client_type_for_key(config, key).ok_or_else(unknown)?;
            return config.clients.get(client_type).ok_or_else(unknown);
        }
    }
    if config.trust_client_type_header {
        if let Some(client_type) = head.header(CLIENT_TYPE_HEADER) {
            return config.clients.get(client_type.trim()).ok_or_else(unknown);
        }
    }
    config
        .default_client
        .as_ref()
        .and_then(|name| config.clients.get(name))
        .ok_or_else(unknown)
}

/// The API key a request presents: `secret`, else `client-key`. Either header repeated is
/// 400 (even the one not read), so the key checked here is the only one an upstream can see in that header.
fn presented_api_key(head: &RequestHead) -> Result<Option<&str>, FilterError> {
    let [secret, client_key] = API_KEY_HEADERS.map(|name| head.single_header(name));
    Ok(secret?.or(client_key?))
}

/// Whether a caller may use the user-management routes (open only with `managementAccess`):
/// a presented key listed in `managementAccess.apiKeys`, or a selected client listed in
/// `managementAccess.clientTypes`; with both lists empty, any selected client.
pub fn check_management_access(config: &Config, head: &RequestHead) -> Result<(), FilterError> {
    let access = config
        .management_access
        .as_ref()
        .ok_or_else(|| FilterError::forbidden("the management routes are closed"))?;
    if let Some(key) = presented_api_key(head)? {
        let presented = hmac_sha256::Hash::hash(key.trim().as_bytes());
        let mut allowed = false;
        for digest in &access.api_key_digests {
            allowed |= constant_time_eq(digest, &presented);
        }
        if allowed {
            return Ok(());
        }
    }
    let client = select_client(config, head)?;
    let open_to_all = access.client_types.is_empty() && access.api_key_digests.is_empty();
    if open_to_all || access.client_types.contains(&client.name) {
        Ok(())
    } else {
        Err(FilterError::forbidden(
            "this caller may not use the management routes",
        ))
    }
}

/// Looks a presented key up among the configured ones. Every configured key is compared, in
/// constant time over their SHA-256 digests, so timing tells nothing about which bytes matched.
fn client_type_for_key<'a>(config: &'a Config, key: &str) -> Option<&'a str> {
    let presented = hmac_sha256::Hash::hash(key.trim().as_bytes());
    let mut found = None;
    for api_key in &config.api_keys {
        if constant_time_eq(&api_key.digest, &presented) {
            found = Some(api_key.client_type.as_str());
        }
    }
    found
}

pub fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
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
}
