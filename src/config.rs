//! Plugin configuration: the original service's `config.json` plus the original's environment
//! variables and the gateway-specific fields, parsed and validated once in `on_configure`.
//!
//! Every error names the field it is about (`clients.cms.sameSite: ...`) so the one log line
//! Envoy shows when it refuses the plugin is enough to fix the config.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::routes::{RouteKind, RouteTable};

pub const DEFAULT_SESSION_DURATION_SECONDS: u64 = 86_400;
pub const DEFAULT_CALLOUT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;
pub const DEFAULT_SWEEP_INTERVAL_SECONDS: u64 = 30;
pub const DEFAULT_PROTOCOL_HEADER: &str = "x-forwarded-proto";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending field, e.g. `clients.cms.defaultConnection`.
    pub field: String,
    pub problem: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid plugin configuration: {}: {}",
            self.field, self.problem
        )
    }
}

/// A secret string (client secret, API key) whose `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written (serde), then the validated form below.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    clients: BTreeMap<String, RawClient>,
    #[serde(default)]
    default_client: Option<String>,
    #[serde(default)]
    custom_claims_namespaces: Vec<String>,
    management_client: RawManagementClient,
    #[serde(default)]
    auth0_tenant_url: Option<String>,
    // The original's environment variables.
    #[serde(default)]
    session_duration_seconds: Option<u64>,
    #[serde(default)]
    logout_client_id_enabled: bool,
    #[serde(default)]
    service_prefix: Option<String>,
    #[serde(default)]
    original_protocol_header: Option<String>,
    #[serde(default)]
    session_scope: Option<String>,
    // Gateway-specific.
    auth0_clusters: BTreeMap<String, String>,
    #[serde(default)]
    callout_timeout_ms: Option<u64>,
    #[serde(default)]
    api_keys: Vec<RawApiKey>,
    #[serde(default)]
    trust_client_type_header: bool,
    #[serde(default)]
    allowed_redirect_hosts: Vec<String>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    #[serde(default)]
    sweep_interval_seconds: Option<u64>,
    #[serde(default)]
    paths: RawPaths,
    /// Opens the user-management routes; absent means closed.
    #[serde(default)]
    management_access: Option<RawManagementAccess>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawManagementAccess {
    #[serde(default)]
    client_types: Vec<String>,
    #[serde(default)]
    api_keys: Vec<Secret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawClient {
    auth0_url: String,
    client_id: String,
    client_secret: Secret,
    redirect_url: String,
    scopes: Vec<String>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    supported_connections: Vec<String>,
    #[serde(default)]
    default_connection: Option<String>,
    #[serde(default)]
    same_site: Option<SameSite>,
    #[serde(default)]
    authorize_state_required: bool,
    #[serde(default)]
    supported_signing_algs: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawManagementClient {
    auth0_url: String,
    client_id: String,
    client_secret: Secret,
    // Deprecated form.
    #[serde(default)]
    supported_connections: Option<Vec<String>>,
    #[serde(default)]
    default_create_user_connection: Option<String>,
    // Current form.
    #[serde(default)]
    default_management_connection_name: Option<String>,
    #[serde(default)]
    supported_connections_map: Option<BTreeMap<String, RawConnectionRef>>,
    /// The original's own documentation examples put this flag here although its schema only
    /// allows it on a client; it is accepted so those files load unchanged, and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    authorize_state_required: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConnectionRef {
    connection_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawApiKey {
    key: Secret,
    client_type: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPaths {
    #[serde(default)]
    token: Option<Vec<String>>,
    #[serde(default)]
    refresh_token: Option<Vec<String>>,
    #[serde(default)]
    logout: Option<Vec<String>>,
    #[serde(default)]
    users: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// The validated configuration the rest of the crate uses.

#[derive(Debug, Clone)]
pub struct Config {
    pub clients: BTreeMap<String, Client>,
    pub default_client: Option<String>,
    pub custom_claims_namespaces: Vec<String>,
    pub management: ManagementClient,
    pub auth0_tenant_url: Option<String>,
    pub session_duration_seconds: u64,
    pub logout_client_id_enabled: bool,
    /// Lower-case header name that carries the original protocol.
    pub original_protocol_header: String,
    /// Prefix of every shared-data key, so deployments sharing a store don't collide.
    pub session_scope: String,
    pub callout_timeout_ms: u64,
    pub api_keys: Vec<ApiKey>,
    pub trust_client_type_header: bool,
    /// Lower-case hosts allowed in logout `returnTo`; empty means any host.
    pub allowed_redirect_hosts: Vec<String>,
    pub max_body_bytes: usize,
    pub sweep_interval_seconds: u64,
    pub routes: RouteTable,
    /// Who may call the user-management routes; `None` means they are closed.
    pub management_access: Option<ManagementAccess>,
}

/// Callers allowed on the management routes: a selected client of one of `client_types`, or
/// a caller presenting one of `api_key_digests`. Both empty: any selected client.
#[derive(Debug, Clone, Default)]
pub struct ManagementAccess {
    pub client_types: Vec<String>,
    pub api_key_digests: Vec<[u8; 32]>,
}

/// Where an Auth0 tenant is, and which Envoy cluster reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth0Endpoint {
    /// `https` or `http`.
    pub scheme: String,
    /// `host[:port]`, sent as `:authority`.
    pub authority: String,
    /// Path prefix of the tenant URL without trailing slash (usually empty).
    pub base_path: String,
    pub cluster: String,
}

impl Auth0Endpoint {
    /// Path of an Auth0 API route, e.g. `path("/oauth/token")`.
    pub fn path(&self, route: &str) -> String {
        format!("{}{}", self.base_path, route)
    }

    /// Public URL of an Auth0 route, for browser redirects.
    pub fn public_url(&self, route: &str) -> String {
        format!(
            "{}://{}{}{}",
            self.scheme, self.authority, self.base_path, route
        )
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    pub name: String,
    pub auth0: Auth0Endpoint,
    pub client_id: String,
    pub client_secret: Secret,
    pub redirect_url: String,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub supported_connections: Vec<String>,
    pub default_connection: Option<String>,
    pub same_site: Option<SameSite>,
    pub authorize_state_required: bool,
    pub supported_signing_algs: Vec<String>,
}

impl Client {
    /// The `website` pseudo-scope turns token answers into a `sid` session cookie.
    pub fn is_website(&self) -> bool {
        self.scopes.iter().any(|s| s == "website")
    }

    /// Scope sent to Auth0: `openid` first, then the configured scopes without `website`,
    /// each once.
    pub fn auth0_scope(&self) -> String {
        let mut scopes: Vec<&str> = vec!["openid"];
        for scope in self.scopes.iter().flat_map(|s| s.split_whitespace()) {
            if scope != "website" && !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes.join(" ")
    }
}

#[derive(Debug, Clone)]
pub struct ManagementClient {
    pub auth0: Auth0Endpoint,
    pub client_id: String,
    pub client_secret: Secret,
    pub supported_connections: Vec<String>,
    pub default_create_user_connection: Option<String>,
    pub default_management_connection_name: Option<String>,
    /// Connection name → Auth0 connection id (`con_…`).
    pub supported_connections_map: BTreeMap<String, String>,
}

impl ManagementClient {
    /// The connections the management routes may use: the keys of `supportedConnectionsMap`,
    /// or the deprecated `supportedConnections`.
    pub fn connections(&self) -> Vec<String> {
        if self.supported_connections_map.is_empty() {
            self.supported_connections.clone()
        } else {
            self.supported_connections_map.keys().cloned().collect()
        }
    }

    /// The connection `POST /users` uses when the body names none.
    pub fn default_create_connection(&self) -> Option<&str> {
        self.default_management_connection_name
            .as_deref()
            .or(self.default_create_user_connection.as_deref())
    }
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    /// SHA-256 of the key: compared in constant time, and the key itself is not kept.
    pub digest: [u8; 32],
    pub client_type: String,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Parses and validates the plugin configuration JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "(root)".to_string()
            } else {
                path
            };
            // serde quotes the offending value ("invalid type: integer `123`"): never for a
            // secret, which would then land in Envoy's log.
            let secret = field.ends_with("clientSecret") || field.ends_with(".key");
            let problem = if secret {
                "must be a non-empty string".to_string()
            } else {
                e.inner().to_string()
            };
            ConfigError::new(field, problem)
        })?;
        Self::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let clusters = validate_clusters(&raw.auth0_clusters)?;
        if raw.clients.is_empty() {
            return Err(ConfigError::new(
                "clients",
                "at least one client is required",
            ));
        }
        let mut clients = BTreeMap::new();
        for (name, raw_client) in raw.clients {
            let client = validate_client(&name, raw_client, &clusters)?;
            clients.insert(name, client);
        }
        let default_client = non_empty(raw.default_client);
        if let Some(name) = &default_client {
            if !clients.contains_key(name) {
                return Err(ConfigError::new(
                    "defaultClient",
                    format!("`{name}` is not a key of clients"),
                ));
            }
        }
        let management = validate_management(raw.management_client, &clusters)?;

        let session_duration_seconds = raw
            .session_duration_seconds
            .unwrap_or(DEFAULT_SESSION_DURATION_SECONDS);
        if session_duration_seconds == 0 {
            return Err(ConfigError::new(
                "sessionDurationSeconds",
                "must be greater than 0",
            ));
        }
        let original_protocol_header = raw
            .original_protocol_header
            .map(|h| h.trim().to_ascii_lowercase())
            .unwrap_or_else(|| DEFAULT_PROTOCOL_HEADER.to_string());
        if original_protocol_header.is_empty()
            || !original_protocol_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::new(
                "originalProtocolHeader",
                "must be a header name",
            ));
        }
        let callout_timeout_ms = raw.callout_timeout_ms.unwrap_or(DEFAULT_CALLOUT_TIMEOUT_MS);
        if !(1..=60_000).contains(&callout_timeout_ms) {
            return Err(ConfigError::new(
                "calloutTimeoutMs",
                "must be between 1 and 60000",
            ));
        }
        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if !(256..=1024 * 1024).contains(&max_body_bytes) {
            return Err(ConfigError::new(
                "maxBodyBytes",
                "must be between 256 and 1048576",
            ));
        }
        let sweep_interval_seconds = raw
            .sweep_interval_seconds
            .unwrap_or(DEFAULT_SWEEP_INTERVAL_SECONDS);
        if !(1..=3600).contains(&sweep_interval_seconds) {
            return Err(ConfigError::new(
                "sweepIntervalSeconds",
                "must be between 1 and 3600",
            ));
        }

        let mut api_keys = Vec::new();
        for (index, key) in raw.api_keys.into_iter().enumerate() {
            if key.key.expose().is_empty() {
                return Err(ConfigError::new(
                    format!("apiKeys[{index}].key"),
                    "must not be empty",
                ));
            }
            if !clients.contains_key(&key.client_type) {
                return Err(ConfigError::new(
                    format!("apiKeys[{index}].clientType"),
                    format!("`{}` is not a key of clients", key.client_type),
                ));
            }
            api_keys.push(ApiKey {
                digest: hmac_sha256::Hash::hash(key.key.expose().as_bytes()),
                client_type: key.client_type,
            });
        }

        let mut allowed_redirect_hosts = Vec::new();
        for (index, host) in raw.allowed_redirect_hosts.into_iter().enumerate() {
            let host = host.trim().to_ascii_lowercase();
            if host.is_empty() || !crate::redirect::is_valid_host(&host) {
                return Err(ConfigError::new(
                    format!("allowedRedirectHosts[{index}]"),
                    "must be a host name, optionally with :port",
                ));
            }
            allowed_redirect_hosts.push(host);
        }

        let management_access = match raw.management_access {
            None => None,
            Some(access) => Some(validate_management_access(access, &clients)?),
        };
        let service_prefix = validate_prefix(raw.service_prefix)?;
        let routes = RouteTable::new(
            &service_prefix,
            &[
                (
                    RouteKind::Token,
                    "paths.token",
                    raw.paths.token,
                    &["/oauth/token"],
                ),
                (
                    RouteKind::RefreshToken,
                    "paths.refreshToken",
                    raw.paths.refresh_token,
                    &["/refreshtoken"],
                ),
                (
                    RouteKind::Logout,
                    "paths.logout",
                    raw.paths.logout,
                    &["/logout"],
                ),
            ],
            management_access
                .is_some()
                .then_some(("paths.users", raw.paths.users)),
        )?;

        let session_scope = raw.session_scope.unwrap_or_default();
        if !session_scope.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new(
                "sessionScope",
                "must be printable ASCII without spaces",
            ));
        }

        Ok(Config {
            clients,
            default_client,
            custom_claims_namespaces: raw.custom_claims_namespaces,
            management,
            auth0_tenant_url: non_empty(raw.auth0_tenant_url),
            session_duration_seconds,
            logout_client_id_enabled: raw.logout_client_id_enabled,
            original_protocol_header,
            session_scope,
            callout_timeout_ms,
            api_keys,
            trust_client_type_header: raw.trust_client_type_header,
            allowed_redirect_hosts,
            max_body_bytes,
            sweep_interval_seconds,
            routes,
            management_access,
        })
    }
}

fn validate_clusters(
    raw: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut clusters = BTreeMap::new();
    for (authority, cluster) in raw {
        let field = format!("auth0Clusters.{authority}");
        if !crate::redirect::is_valid_host(authority) {
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
fn endpoint(
    field: &str,
    raw_url: &str,
    clusters: &BTreeMap<String, String>,
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
    if !crate::redirect::is_valid_host(&authority) || authority.starts_with(':') {
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

fn validate_client(
    name: &str,
    raw: RawClient,
    clusters: &BTreeMap<String, String>,
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
        if !matches!(
            alg.as_str(),
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384" | "HS256"
        ) {
            return Err(ConfigError::new(
                field(&format!("supportedSigningAlgs[{i}]")),
                format!("unsupported algorithm `{alg}`"),
            ));
        }
    }
    Ok(Client {
        name: name.to_string(),
        auth0,
        client_id: raw.client_id,
        client_secret: raw.client_secret,
        redirect_url: raw.redirect_url,
        scopes: raw.scopes,
        audience: non_empty(raw.audience),
        supported_connections: raw.supported_connections,
        default_connection,
        same_site: raw.same_site,
        authorize_state_required: raw.authorize_state_required,
        supported_signing_algs: raw.supported_signing_algs,
    })
}

fn validate_management(
    raw: RawManagementClient,
    clusters: &BTreeMap<String, String>,
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
    let mut map = BTreeMap::new();
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

fn validate_management_access(
    raw: RawManagementAccess,
    clients: &BTreeMap<String, Client>,
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

fn validate_prefix(prefix: Option<String>) -> Result<String, ConfigError> {
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

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

#[cfg(test)]
pub mod tests_support {
    //! A valid base configuration for unit tests, with top-level overrides.
    use super::Config;

    pub fn base_json() -> serde_json::Value {
        serde_json::json!({
            "clients": {
                "web": {
                    "auth0Url": "https://tenant.eu.auth0.com/",
                    "clientId": "web-client-id",
                    "clientSecret": "web-client-secret",
                    "redirectUrl": "https://app.example.org/web-login/callback",
                    "scopes": ["offline_access", "profile", "email", "website"],
                    "audience": "https://api.example.org",
                    "supportedConnections": ["db-a", "db-b"],
                    "defaultConnection": "db-a",
                    "sameSite": "Lax"
                },
                "app": {
                    "auth0Url": "https://tenant.eu.auth0.com",
                    "clientId": "app-client-id",
                    "clientSecret": "app-client-secret",
                    "redirectUrl": "https://app.example.org/callback",
                    "scopes": ["openid", "offline_access", "profile"],
                    "supportedConnections": ["db-a"]
                }
            },
            "managementClient": {
                "auth0Url": "https://tenant.eu.auth0.com/",
                "clientId": "mgmt-id",
                "clientSecret": "mgmt-secret",
                "supportedConnectionsMap": {"db-a": {"connectionId": "con_0000000000000001"}},
                "defaultManagementConnectionName": "db-a"
            },
            "auth0Clusters": {"tenant.eu.auth0.com": "auth0"}
        })
    }

    pub fn config_with(overrides: serde_json::Value) -> Config {
        let mut json = base_json();
        if let (Some(base), Some(extra)) = (json.as_object_mut(), overrides.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        Config::from_json(json.to_string().as_bytes()).unwrap()
    }
}
