//! Plugin configuration: the original service's `config.json` plus the original's environment
//! variables and the gateway-specific fields, parsed and validated once in `on_configure`.
//!
//! Every error names the field it is about (`clients.cms.sameSite: ...`) so the one log line
//! Envoy shows when it refuses the plugin is enough to fix the config.

use crate::small_map::SmallMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

pub mod clients;
mod parts;
mod plugin;
mod raw;
pub mod redis;
pub mod routes;
mod routes_config;
#[cfg(feature = "schema")]
mod schema;

pub use crate::http::cookie::SameSite;
use parts::{
    validate_client, validate_clusters, validate_management, validate_management_access,
    validate_prefix, validate_protected, validate_store,
};
pub use plugin::{BodyReading, Plugin};
use raw::RawConfig;
use routes_config::route_table;

use crate::config::routes::RouteTable;

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

// ---------------------------------------------------------------------------------------------
// The validated configuration the rest of the crate uses.

#[derive(Debug, Clone)]
pub struct Config {
    pub clients: SmallMap<Client>,
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
    /// Prefix of the filter's Envoy stats (see `metrics`).
    pub stat_prefix: String,
    pub api_keys: Vec<ApiKey>,
    pub trust_client_type_header: bool,
    /// Lower-case hosts allowed in logout `returnTo`; empty means any host.
    pub allowed_redirect_hosts: Vec<String>,
    pub max_body_bytes: usize,
    pub sweep_interval_seconds: u64,
    pub routes: RouteTable,
    /// Who may call the user-management routes; `None` means they are closed.
    pub management_access: Option<ManagementAccess>,
    pub protected: Option<ProtectedRoutes>,
    pub jwks_refresh_seconds: u64,
    /// How long a `/authorize` state can be redeemed (the original: 10 minutes).
    pub login_state_ttl_seconds: u64,
    /// Redis (through Webdis) for sessions, states and the management token; `None`: shared data.
    pub redis: Option<crate::config::redis::RedisConfig>,
    pub body_reading: BodyReading,
}

/// Route prefixes the filter guards with local token verification.
#[derive(Debug, Clone)]
pub struct ProtectedRoutes {
    /// Full prefixes (service prefix included).
    pub prefixes: Vec<String>,
    /// Browser navigations without a valid token get a 302 to `/authorize` instead of 401.
    pub redirect_to_login: bool,
    /// Lower-case header names for the user id, groups and client type sent upstream.
    /// Shared: every request forwarded from a protected route names them.
    pub user_id_header: Arc<str>,
    pub groups_header: Arc<str>,
    pub client_type_header: Arc<str>,
    /// How long a worker may answer a Bearer token from what it last read of the token's
    /// session (0: read it on every request): the longest a logout elsewhere goes unseen.
    pub session_recheck_seconds: u64,
}

impl ProtectedRoutes {
    /// Whether a path (query ignored) is under a protected prefix, in any case.
    pub fn covers(&self, path: &str) -> bool {
        let path = crate::http::split_path(path).0;
        self.prefixes
            .iter()
            .any(|p| crate::http::path::starts_with_ignoring_case(path, p))
    }

    /// Whether a request header is one of the identity headers, in either spelling: with `_`
    /// for `-` (`x_auth0_user_id`), which CGI, WSGI and PHP upstreams read as the same header,
    /// so a client must not be able to send either. Runs over every header of every request
    /// the filter sees: no allocation.
    pub fn is_identity_header(&self, name: &str) -> bool {
        let same = |a: u8, b: u8| {
            a.eq_ignore_ascii_case(&b) || (matches!(a, b'-' | b'_') && matches!(b, b'-' | b'_'))
        };
        [
            &self.user_id_header,
            &self.groups_header,
            &self.client_type_header,
        ]
        .iter()
        .any(|h| h.len() == name.len() && h.bytes().zip(name.bytes()).all(|(a, b)| same(a, b)))
    }
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
    /// What this client's access tokens must satisfy, built once: every protected request
    /// checks a token against it. This is where `audience`, `supportedSigningAlgs` and the
    /// config's `tokenLeewaySeconds` take effect for verification. `Arc`, not `Rc`: a `Config`
    /// may live in a static (fuzz targets); on wasm without threads the count is a plain
    /// integer all the same.
    pub access_expectation: std::sync::Arc<crate::jwt::Expectation>,
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
    pub supported_connections_map: SmallMap<String>,
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

pub(crate) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The JSON Schema (draft 2020-12) of a plugin configuration, from the types the loader
/// reads it into: for tools/config-schema, with the `schema` feature.
#[cfg(feature = "schema")]
pub fn plugin_config_schema() -> serde_json::Value {
    schema::plugin_config_schema::<raw::RawConfig, plugin::RawHold>()
}

impl Config {
    /// The configured client with this Auth0 `client_id`.
    pub fn client_by_id(&self, client_id: &str) -> Option<&Client> {
        self.clients.values().find(|c| c.client_id == client_id)
    }

    /// The configured client a token was issued to, from its (unverified) `azp`; verification
    /// then checks the signature, issuer and audience for that client.
    pub fn client_of_token(&self, token: &str) -> Option<&Client> {
        // Only `azp` is read: the other claims are skipped, not built into a JSON tree.
        #[derive(Deserialize)]
        struct AuthorizedParty {
            azp: String,
        }
        let claims: AuthorizedParty = crate::jwt::unverified_payload(token)?;
        self.client_by_id(&claims.azp)
    }

    /// Parses and validates the plugin configuration JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." || path.is_empty() {
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
        let token_leeway_seconds = raw.token_leeway_seconds.unwrap_or(60);
        if token_leeway_seconds > 300 {
            return Err(ConfigError::new(
                "tokenLeewaySeconds",
                "must be at most 300",
            ));
        }
        let mut clients = SmallMap::new();
        for (name, raw_client) in raw.clients {
            let client = validate_client(&name, raw_client, &clusters, token_leeway_seconds)?;
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
            if host.is_empty() || !crate::http::host::is_valid_host(&host) {
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
        let protected = match raw.protected_routes {
            None => None,
            Some(p) => Some(validate_protected(p, &service_prefix)?),
        };
        let login_state_ttl_seconds = raw.login_state_ttl_seconds.unwrap_or(600);
        if !(1..=3_600).contains(&login_state_ttl_seconds) {
            return Err(ConfigError::new(
                "loginStateTtlSeconds",
                "must be between 1 and 3600",
            ));
        }
        let redis = match raw.session_store {
            None => None,
            Some(store) => validate_store(store, &raw.session_scope, callout_timeout_ms)?,
        };
        let jwks_refresh_seconds = raw.jwks_refresh_seconds.unwrap_or(600);
        if !(10..=86_400).contains(&jwks_refresh_seconds) {
            return Err(ConfigError::new(
                "jwksRefreshSeconds",
                "must be between 10 and 86400",
            ));
        }
        let routes = route_table(
            &service_prefix,
            raw.paths,
            management_access.is_some(),
            raw.serve_documentation.unwrap_or(true),
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
            stat_prefix: parts::validate_stat_prefix(raw.stat_prefix)?,
            api_keys,
            trust_client_type_header: raw.trust_client_type_header,
            allowed_redirect_hosts,
            max_body_bytes,
            sweep_interval_seconds,
            routes,
            management_access,
            protected,
            jwks_refresh_seconds,
            login_state_ttl_seconds,
            redis,
            body_reading: raw.body_reading.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests;
