//! The plugin configuration as written: serde structs that refuse unknown keys.

use crate::small_map::SmallMap;

use serde::Deserialize;

use super::{SameSite, Secret};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawConfig {
    pub(super) clients: SmallMap<RawClient>,
    #[serde(default)]
    pub(super) default_client: Option<String>,
    #[serde(default)]
    pub(super) custom_claims_namespaces: Vec<String>,
    pub(super) management_client: RawManagementClient,
    #[serde(default)]
    pub(super) auth0_tenant_url: Option<String>,
    // The original's environment variables.
    #[serde(default)]
    pub(super) session_duration_seconds: Option<u64>,
    #[serde(default)]
    pub(super) logout_client_id_enabled: bool,
    #[serde(default)]
    pub(super) service_prefix: Option<String>,
    #[serde(default)]
    pub(super) original_protocol_header: Option<String>,
    #[serde(default)]
    pub(super) session_scope: Option<String>,
    // Gateway-specific.
    pub(super) auth0_clusters: SmallMap<String>,
    #[serde(default)]
    pub(super) callout_timeout_ms: Option<u64>,
    /// Prefix of the filter's Envoy stats.
    #[serde(default)]
    pub(super) stat_prefix: Option<String>,
    #[serde(default)]
    pub(super) api_keys: Vec<RawApiKey>,
    #[serde(default)]
    pub(super) trust_client_type_header: bool,
    #[serde(default)]
    pub(super) allowed_redirect_hosts: Vec<String>,
    #[serde(default)]
    pub(super) max_body_bytes: Option<usize>,
    #[serde(default)]
    pub(super) sweep_interval_seconds: Option<u64>,
    #[serde(default)]
    pub(super) paths: RawPaths,
    /// Opens the user-management routes; absent means closed.
    #[serde(default)]
    pub(super) management_access: Option<RawManagementAccess>,
    /// Route prefixes that need a verified token; absent means none.
    #[serde(default)]
    pub(super) protected_routes: Option<RawProtectedRoutes>,
    #[serde(default)]
    pub(super) jwks_refresh_seconds: Option<u64>,
    #[serde(default)]
    pub(super) login_state_ttl_seconds: Option<u64>,
    /// Where sessions, login states and the management token live; shared data by default.
    #[serde(default)]
    pub(super) session_store: Option<RawSessionStore>,
    #[serde(default)]
    pub(super) token_leeway_seconds: Option<u64>,
    /// Answers `GET <prefix>/documentation/json` with the OpenAPI description; on by default.
    #[serde(default)]
    pub(super) serve_documentation: Option<bool>,
    /// How the filter reads the body of the requests it answers (see `BodyReading`).
    #[serde(default)]
    pub(super) body_reading: Option<super::BodyReading>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSessionStore {
    pub(super) backend: String,
    #[serde(default)]
    pub(super) webdis_cluster: Option<String>,
    #[serde(default)]
    pub(super) webdis_authority: Option<String>,
    #[serde(default)]
    pub(super) key_prefix: Option<String>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) password: Option<super::Secret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawProtectedRoutes {
    pub(super) prefixes: Vec<String>,
    #[serde(default)]
    pub(super) redirect_to_login: bool,
    #[serde(default)]
    pub(super) identity_headers: RawIdentityHeaders,
    #[serde(default)]
    pub(super) session_recheck_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawIdentityHeaders {
    #[serde(default = "default_user_id_header")]
    pub(super) user_id: String,
    #[serde(default = "default_groups_header")]
    pub(super) groups: String,
    #[serde(default = "default_client_type_header")]
    pub(super) client_type: String,
}

fn default_user_id_header() -> String {
    "x-auth0-user-id".into()
}
fn default_groups_header() -> String {
    "x-auth0-user-groups".into()
}
fn default_client_type_header() -> String {
    "x-auth0-client-type".into()
}

impl Default for RawIdentityHeaders {
    fn default() -> Self {
        RawIdentityHeaders {
            user_id: default_user_id_header(),
            groups: default_groups_header(),
            client_type: default_client_type_header(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawManagementAccess {
    #[serde(default)]
    pub(super) client_types: Vec<String>,
    #[serde(default)]
    pub(super) api_keys: Vec<Secret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawClient {
    pub(super) auth0_url: String,
    pub(super) client_id: String,
    pub(super) client_secret: Secret,
    pub(super) redirect_url: String,
    pub(super) scopes: Vec<String>,
    #[serde(default)]
    pub(super) audience: Option<String>,
    #[serde(default)]
    pub(super) supported_connections: Vec<String>,
    #[serde(default)]
    pub(super) default_connection: Option<String>,
    #[serde(default)]
    pub(super) same_site: Option<SameSite>,
    #[serde(default)]
    pub(super) authorize_state_required: bool,
    #[serde(default)]
    pub(super) supported_signing_algs: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawManagementClient {
    pub(super) auth0_url: String,
    pub(super) client_id: String,
    pub(super) client_secret: Secret,
    // Deprecated form.
    #[serde(default)]
    pub(super) supported_connections: Option<Vec<String>>,
    #[serde(default)]
    pub(super) default_create_user_connection: Option<String>,
    // Current form.
    #[serde(default)]
    pub(super) default_management_connection_name: Option<String>,
    #[serde(default)]
    pub(super) supported_connections_map: Option<SmallMap<RawConnectionRef>>,
    /// The original's own documentation examples put this flag here although its schema only
    /// allows it on a client; it is accepted so those files load unchanged, and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) authorize_state_required: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawConnectionRef {
    pub(super) connection_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawApiKey {
    pub(super) key: Secret,
    pub(super) client_type: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawPaths {
    #[serde(default)]
    pub(super) token: Option<Vec<String>>,
    #[serde(default)]
    pub(super) refresh_token: Option<Vec<String>>,
    #[serde(default)]
    pub(super) logout: Option<Vec<String>>,
    #[serde(default)]
    pub(super) users: Option<Vec<String>>,
    #[serde(default)]
    pub(super) authorize: Option<Vec<String>>,
    #[serde(default)]
    pub(super) userinfo: Option<Vec<String>>,
    #[serde(default)]
    pub(super) documentation: Option<Vec<String>>,
}
