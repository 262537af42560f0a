//! Input framing shared by the fuzz targets.
//!
//! A target that needs several inputs (a query and a header, a content type and a body) reads
//! them from one byte string split at `0xFF`, a byte that never occurs in UTF-8. Seed files in
//! `corpus/<target>/` stay readable and easy to write by hand (`printf 'a\xffb'`), unlike
//! `arbitrary`'s encoding. The last field takes the rest, `0xFF` bytes included.

pub const SEPARATOR: u8 = 0xFF;

/// The first `N` fields of `data`; missing ones are empty.
pub fn fields<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out: [&[u8]; N] = [&[]; N];
    for (slot, field) in out.iter_mut().zip(data.splitn(N, |b| *b == SEPARATOR)) {
        *slot = field;
    }
    out
}

/// Every field of `data`.
pub fn all_fields(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == SEPARATOR).collect()
}

/// A field as text, or `None` when it is not UTF-8.
pub fn text(field: &[u8]) -> Option<&str> {
    std::str::from_utf8(field).ok()
}

/// A field as optional text: empty means absent.
pub fn optional(field: &[u8]) -> Option<Option<&str>> {
    text(field).map(|t| (!t.is_empty()).then_some(t))
}

/// The plugin configuration the targets share: a `web` client and a management client on one
/// tenant. Targets add the management connections and whatever else they fuzz against.
pub fn tenant_config() -> serde_json::Value {
    serde_json::json!({
        "clients": {"web": {
            "auth0Url": "https://tenant.eu.auth0.com/",
            "clientId": "web-client-id",
            "clientSecret": "web-client-secret",
            "redirectUrl": "https://app.example.org/callback",
            "scopes": ["openid", "offline_access"],
            "supportedConnections": ["db-a"]
        }},
        "managementClient": {
            "auth0Url": "https://tenant.eu.auth0.com/",
            "clientId": "mgmt-id",
            "clientSecret": "mgmt-secret"
        },
        "auth0Clusters": {"tenant.eu.auth0.com": "auth0"}
    })
}
