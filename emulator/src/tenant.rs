//! The emulated tenant, loaded from a JSON file: clients, connections, APIs and users.

use serde::Deserialize;

/// `created_at`/`updated_at` of users from the tenant file that do not set them.
pub const TENANT_EPOCH: &str = "2024-01-01T00:00:00.000Z";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    /// Connection used by the plain `password` grant (Auth0's "Default Directory").
    #[serde(default)]
    pub default_directory: Option<String>,
    /// Tenant-level Allowed Logout URLs.
    #[serde(default)]
    pub allowed_logout_urls: Vec<String>,
    #[serde(default = "default_access_lifetime")]
    pub access_token_lifetime_seconds: u64,
    #[serde(default = "default_id_lifetime")]
    pub id_token_lifetime_seconds: u64,
    /// Namespace an Action uses to put `app_metadata`/`user_metadata` into ID tokens.
    #[serde(default)]
    pub custom_claims_namespace: Option<String>,
    pub connections: Vec<Connection>,
    #[serde(default)]
    pub apis: Vec<Api>,
    pub clients: Vec<Client>,
    pub users: Vec<User>,
}

fn default_access_lifetime() -> u64 {
    86_400
}
fn default_id_lifetime() -> u64 {
    36_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connection {
    pub id: String,
    pub name: String,
    #[serde(default = "default_strategy")]
    pub strategy: String,
}

fn default_strategy() -> String {
    "auth0".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Api {
    pub identifier: String,
    #[serde(default)]
    #[allow(dead_code)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Client {
    #[allow(dead_code)]
    pub name: String,
    pub client_id: String,
    pub client_secret: String,
    pub grant_types: Vec<String>,
    /// Names of the connections enabled for this application.
    #[serde(default)]
    pub connections: Vec<String>,
    #[serde(default)]
    pub callbacks: Vec<String>,
    #[serde(default)]
    pub allowed_logout_urls: Vec<String>,
    #[serde(default)]
    pub refresh_token_rotation: bool,
    /// Client grants for client_credentials: audience → scopes.
    #[serde(default)]
    pub client_grants: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    pub user_id: String,
    pub connection: String,
    pub email: String,
    #[serde(default)]
    pub username: Option<String>,
    /// The login password; empty for users imported with a `password_hash` (they cannot log
    /// in with the password grant, as the emulator does not verify bcrypt hashes).
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub picture: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub app_metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub user_metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub blocked: bool,
    #[serde(default)]
    pub logins_count: u64,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl Tenant {
    pub fn load(path: &str) -> Result<Tenant, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("bad tenant file {path}: {e}"))
    }

    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// A connection by its `con_…` id.
    pub fn connection_by_id(&self, id: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.id == id)
    }
}

impl User {
    /// OIDC profile claims for the granted scopes.
    pub fn profile_claims(&self, scopes: &[&str]) -> serde_json::Map<String, serde_json::Value> {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), self.user_id.clone().into());
        if scopes.contains(&"profile") {
            let name = self.name.clone().unwrap_or_else(|| self.email.clone());
            let nickname = self
                .nickname
                .clone()
                .unwrap_or_else(|| self.email.split('@').next().unwrap_or_default().to_string());
            claims.insert("name".into(), name.into());
            claims.insert("nickname".into(), nickname.into());
            for (key, value) in [
                ("given_name", &self.given_name),
                ("family_name", &self.family_name),
                ("picture", &self.picture),
            ] {
                if let Some(value) = value {
                    claims.insert(key.into(), value.clone().into());
                }
            }
            claims.insert(
                "updated_at".into(),
                self.updated_at
                    .clone()
                    .unwrap_or_else(|| TENANT_EPOCH.into())
                    .into(),
            );
        }
        if scopes.contains(&"email") {
            claims.insert("email".into(), self.email.clone().into());
            claims.insert("email_verified".into(), self.email_verified.into());
        }
        claims
    }
}
