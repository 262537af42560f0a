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
mod tests;
