//! Validation of the parts of the configuration: Auth0 endpoints, clients, the management
//! client and its access, the route prefix.

use crate::small_map::SmallMap;

use super::raw::{
    RawClient, RawManagementAccess, RawManagementClient, RawProtectedRoutes, RawSessionStore,
};
use super::{
    non_empty, Auth0Endpoint, Client, ConfigError, ManagementAccess, ManagementClient,
    ProtectedRoutes,
};
use std::sync::Arc;

pub(super) fn validate_clusters(raw: &SmallMap<String>) -> Result<SmallMap<String>, ConfigError> {
    let mut clusters = SmallMap::new();
    for (authority, cluster) in raw {
        let field = format!("auth0Clusters.{authority}");
        if !crate::http::host::is_valid_host(authority) {
            return Err(ConfigError::new(
                field,
                "key must be an Auth0 host, optionally with :port",
            ));
        }
        if cluster.trim().is_empty() {
            return Err(ConfigError::new(field, "cluster name must not be empty"));
        }
        clusters.insert(authority.to_ascii_lowercase(), cluster.clone());
    }
    Ok(clusters)
}

/// Splits an Auth0 tenant URL into scheme, authority and path. Tenant URLs are plain ASCII
/// `scheme://host[:port][/path]`; anything else (credentials, query, fragment, IDN that is not
/// punycode) is refused. `url::Url` would do this too, but it brings ~150 KB of IDNA tables
/// into the `.wasm` for hosts that are always ASCII here.
pub(super) fn endpoint(
    field: &str,
    raw_url: &str,
    clusters: &SmallMap<String>,
) -> Result<Auth0Endpoint, ConfigError> {
    let raw = raw_url.trim();
    let (scheme, rest) = raw.split_once("://").ok_or_else(|| {
        ConfigError::new(
            field,
            "must be an absolute URL such as https://tenant.eu.auth0.com/",
        )
    })?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(ConfigError::new(
            field,
            "must be an https:// (or http://) URL",
        ));
    }
    if rest.contains(['?', '#', '@', '\\'])
        || rest.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ConfigError::new(
            field,
            "must not carry a query, fragment, credentials or spaces",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority
        .strip_suffix(default_port)
        .unwrap_or(&authority)
        .to_string();
    if !crate::http::host::is_valid_host(&authority) || authority.starts_with(':') {
        return Err(ConfigError::new(field, "has no valid host"));
    }
    if let Some((_, port)) = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
    {
        if port.parse::<u16>().is_err() {
            return Err(ConfigError::new(field, "has an invalid port"));
        }
    }
    let cluster = clusters.get(&authority).cloned().ok_or_else(|| {
        ConfigError::new(
            field,
            format!(
                "no entry for `{authority}` in auth0Clusters (which Envoy cluster reaches it?)"
            ),
        )
    })?;
    Ok(Auth0Endpoint {
        scheme,
        authority,
        base_path: path.trim_end_matches('/').to_string(),
        cluster,
    })
}

fn require(field: String, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(ConfigError::new(field, "is required and must not be empty"))
    } else {
        Ok(())
    }
}

pub(super) fn validate_client(
    name: &str,
    raw: RawClient,
    clusters: &SmallMap<String>,
    token_leeway_seconds: u64,
) -> Result<Client, ConfigError> {
    let field = |f: &str| format!("clients.{name}.{f}");
    if name.is_empty() {
        return Err(ConfigError::new(
            "clients",
            "client names must not be empty",
        ));
    }
    let auth0 = endpoint(&field("auth0Url"), &raw.auth0_url, clusters)?;
    require(field("clientId"), &raw.client_id)?;
    require(field("clientSecret"), raw.client_secret.expose())?;
    require(field("redirectUrl"), &raw.redirect_url)?;
    for (i, scope) in raw.scopes.iter().enumerate() {
        if scope.trim().is_empty() || !scope.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(ConfigError::new(
                field(&format!("scopes[{i}]")),
                "must be a scope name",
            ));
        }
    }
    for (i, connection) in raw.supported_connections.iter().enumerate() {
        require(field(&format!("supportedConnections[{i}]")), connection)?;
    }
    let default_connection = non_empty(raw.default_connection);
    if let Some(default) = &default_connection {
        if !raw.supported_connections.contains(default) {
            return Err(ConfigError::new(
                field("defaultConnection"),
                format!("`{default}` must be one of supportedConnections"),
            ));
        }
    }
    for (i, alg) in raw.supported_signing_algs.iter().enumerate() {
        if !crate::jwt::LISTED_ALGORITHMS.contains(&alg.as_str()) {
            return Err(ConfigError::new(
                field(&format!("supportedSigningAlgs[{i}]")),
                format!("unsupported algorithm `{alg}`"),
            ));
        }
    }
    // The list may name algorithms the filter never verifies (HS256, ES*, RS384, …: they are
    // refused on tokens), but not only those: every token of the client would be refused.
    let verified = &crate::jwt::RSA_ALGORITHMS;
    if !raw.supported_signing_algs.is_empty()
        && !raw
            .supported_signing_algs
            .iter()
            .any(|alg| verified.contains(&alg.as_str()))
    {
        return Err(ConfigError::new(
            field("supportedSigningAlgs"),
            format!(
                "names no algorithm tokens are verified with ({})",
                verified.join(", ")
            ),
        ));
    }
    let audience = non_empty(raw.audience);
    let access_expectation = access_token_expectation(
        &auth0,
        audience.as_deref(),
        &raw.supported_signing_algs,
        token_leeway_seconds,
    );
    Ok(Client {
        name: name.to_string(),
        auth0,
        client_id: raw.client_id,
        client_secret: raw.client_secret,
        redirect_url: raw.redirect_url,
        scopes: raw.scopes,
        audience,
        supported_connections: raw.supported_connections,
        default_connection,
        same_site: raw.same_site,
        authorize_state_required: raw.authorize_state_required,
        supported_signing_algs: raw.supported_signing_algs,
        access_expectation: std::sync::Arc::new(access_expectation),
    })
}

/// Access tokens must come from the client's tenant (`iss`, Auth0's tenant URL with its
/// trailing slash) and carry the client's API `audience`; a token the same client got for
/// another API (which also carries Auth0's `/userinfo` audience) does not pass. Without an
/// audience, only Auth0's `/userinfo` audience is accepted.
fn access_token_expectation(
    auth0: &Auth0Endpoint,
    audience: Option<&str>,
    algorithms: &[String],
    leeway_secs: u64,
) -> crate::jwt::Expectation {
    let issuer = auth0.public_url("/");
    let audiences = match audience {
        Some(audience) => vec![audience.to_string()],
        None => vec![format!("{issuer}userinfo")],
    };
    crate::jwt::Expectation {
        issuer,
        audiences,
        algorithms: algorithms.to_vec(),
        leeway_secs,
    }
}

pub(super) fn validate_management(
    raw: RawManagementClient,
    clusters: &SmallMap<String>,
) -> Result<ManagementClient, ConfigError> {
    let auth0 = endpoint("managementClient.auth0Url", &raw.auth0_url, clusters)?;
    require("managementClient.clientId".into(), &raw.client_id)?;
    require(
        "managementClient.clientSecret".into(),
        raw.client_secret.expose(),
    )?;
    let deprecated =
        raw.supported_connections.is_some() || raw.default_create_user_connection.is_some();
    let current =
        raw.supported_connections_map.is_some() || raw.default_management_connection_name.is_some();
    if deprecated && current {
        return Err(ConfigError::new(
            "managementClient",
            "use either supportedConnections/defaultCreateUserConnection (deprecated) or supportedConnectionsMap/defaultManagementConnectionName, not both",
        ));
    }
    let supported_connections = raw.supported_connections.unwrap_or_default();
    let default_create_user_connection = non_empty(raw.default_create_user_connection);
    if let Some(default) = &default_create_user_connection {
        if !supported_connections.contains(default) {
            return Err(ConfigError::new(
                "managementClient.defaultCreateUserConnection",
                format!("`{default}` must be one of managementClient.supportedConnections"),
            ));
        }
    }
    let mut map = SmallMap::new();
    for (name, reference) in raw.supported_connections_map.unwrap_or_default() {
        require(
            format!("managementClient.supportedConnectionsMap.{name}.connectionId"),
            &reference.connection_id,
        )?;
        map.insert(name, reference.connection_id);
    }
    let default_management_connection_name = non_empty(raw.default_management_connection_name);
    if let Some(default) = &default_management_connection_name {
        if !map.contains_key(default) {
            return Err(ConfigError::new(
                "managementClient.defaultManagementConnectionName",
                format!("`{default}` must be a key of managementClient.supportedConnectionsMap"),
            ));
        }
    }
    Ok(ManagementClient {
        auth0,
        client_id: raw.client_id,
        client_secret: raw.client_secret,
        supported_connections,
        default_create_user_connection,
        default_management_connection_name,
        supported_connections_map: map,
    })
}

pub(super) fn validate_management_access(
    raw: RawManagementAccess,
    clients: &SmallMap<Client>,
) -> Result<ManagementAccess, ConfigError> {
    for (index, client_type) in raw.client_types.iter().enumerate() {
        if !clients.contains_key(client_type) {
            return Err(ConfigError::new(
                format!("managementAccess.clientTypes[{index}]"),
                format!("`{client_type}` is not a key of clients"),
            ));
        }
    }
    let mut api_key_digests = Vec::new();
    for (index, key) in raw.api_keys.iter().enumerate() {
        if key.expose().is_empty() {
            return Err(ConfigError::new(
                format!("managementAccess.apiKeys[{index}]"),
                "must not be empty",
            ));
        }
        api_key_digests.push(hmac_sha256::Hash::hash(key.expose().as_bytes()));
    }
    Ok(ManagementAccess {
        client_types: raw.client_types,
        api_key_digests,
    })
}

pub(super) fn validate_prefix(prefix: Option<String>) -> Result<String, ConfigError> {
    let prefix = prefix.unwrap_or_default();
    let prefix = prefix.trim().trim_end_matches('/');
    if prefix.is_empty() {
        return Ok(String::new());
    }
    if !prefix.starts_with('/') || prefix.contains(['?', '#', ' ']) || prefix.contains("//") {
        return Err(ConfigError::new(
            "servicePrefix",
            "must be a path starting with `/`, e.g. `/auth`",
        ));
    }
    Ok(prefix.to_string())
}

/// The `sessionStore` block: `None` for shared data, the Webdis settings for Redis.
pub(super) fn validate_store(
    raw: RawSessionStore,
    session_scope: &Option<String>,
    timeout_ms: u64,
) -> Result<Option<crate::config::redis::RedisConfig>, ConfigError> {
    match raw.backend.as_str() {
        "shared" => Ok(None),
        "redis" => {
            let cluster = raw
                .webdis_cluster
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| {
                    ConfigError::new(
                        "sessionStore.webdisCluster",
                        "is required with the redis backend",
                    )
                })?;
            let authorization = match (raw.username, raw.password) {
                (Some(user), Some(password)) => {
                    use base64::Engine;
                    let pair = format!("{user}:{}", password.expose());
                    Some(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    ))
                }
                (None, None) => None,
                _ => {
                    return Err(ConfigError::new(
                        "sessionStore",
                        "give both username and password, or neither",
                    ))
                }
            };
            let key_prefix = raw
                .key_prefix
                .or_else(|| session_scope.clone())
                .unwrap_or_default();
            if !key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::new(
                    "sessionStore.keyPrefix",
                    "must be printable ASCII without spaces",
                ));
            }
            Ok(Some(crate::config::redis::RedisConfig {
                authority: raw.webdis_authority.unwrap_or_else(|| cluster.clone()),
                cluster,
                key_prefix,
                authorization,
                timeout_ms,
            }))
        }
        _ => Err(ConfigError::new(
            "sessionStore.backend",
            "must be shared or redis",
        )),
    }
}

/// The stats prefix: a name Envoy's Prometheus output keeps as is.
pub(super) fn validate_stat_prefix(prefix: Option<String>) -> Result<String, ConfigError> {
    let prefix = prefix.unwrap_or_else(|| "auth0_filter".to_string());
    let valid = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix.starts_with(|c: char| c.is_ascii_alphabetic())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(prefix)
    } else {
        Err(ConfigError::new(
            "statPrefix",
            "must be 1-64 letters, digits or `_`, starting with a letter",
        ))
    }
}

/// Headers an identity header may not be named after: the credentials and client selection the
/// filter reads, and what HTTP and Envoy route and frame a request by.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "keep-alive",
    "x-request-id",
];

pub(super) fn validate_protected(
    raw: RawProtectedRoutes,
    prefix: &str,
) -> Result<ProtectedRoutes, ConfigError> {
    if raw.prefixes.is_empty() {
        return Err(ConfigError::new(
            "protectedRoutes.prefixes",
            "list at least one path prefix",
        ));
    }
    let mut prefixes = Vec::new();
    for (index, p) in raw.prefixes.iter().enumerate() {
        if !p.starts_with('/') || p.contains(['?', '#', ' ']) {
            return Err(ConfigError::new(
                format!("protectedRoutes.prefixes[{index}]"),
                "must be a path prefix starting with `/`",
            ));
        }
        prefixes.push(format!("{prefix}{p}"));
    }
    let header = |field: &str, name: &str| -> Result<Arc<str>, ConfigError> {
        let name = name.trim().to_ascii_lowercase();
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !token || name.starts_with(':') {
            return Err(ConfigError::new(
                format!("protectedRoutes.identityHeaders.{field}"),
                "must be a header name",
            ));
        }
        // Every spelling of an identity header is removed from each request before the filter
        // reads it, so one of these names would take away the request's credentials or
        // framing, or hand the upstream the filter's value as one of them.
        let spelled = name.replace('_', "-");
        let spelled = spelled.as_str();
        let reserved = RESERVED_HEADERS.contains(&spelled)
            || super::clients::API_KEY_HEADERS.contains(&spelled)
            || spelled == super::clients::CLIENT_TYPE_HEADER;
        if reserved {
            return Err(ConfigError::new(
                format!("protectedRoutes.identityHeaders.{field}"),
                format!(
                    "`{name}` is a header the filter or HTTP itself reads; choose another name"
                ),
            ));
        }
        Ok(Arc::from(name))
    };
    let session_recheck_seconds = raw.session_recheck_seconds.unwrap_or(5);
    if session_recheck_seconds > 300 {
        return Err(ConfigError::new(
            "protectedRoutes.sessionRecheckSeconds",
            "must be between 0 and 300",
        ));
    }
    Ok(ProtectedRoutes {
        prefixes,
        redirect_to_login: raw.redirect_to_login,
        session_recheck_seconds,
        user_id_header: header("userId", &raw.identity_headers.user_id)?,
        groups_header: header("groups", &raw.identity_headers.groups)?,
        client_type_header: header("clientType", &raw.identity_headers.client_type)?,
    })
}
