//! The Authentication API: `/oauth/token` (password, password-realm, refresh_token with
//! rotation, client_credentials, authorization_code with PKCE), `/oauth/revoke`, `/v2/logout`,
//! `/userinfo` and `/.well-known/jwks.json`, with Auth0's error bodies. `/authorize` and the
//! hosted login page are in `login`; requests under `/api/v2/` go to the Management API (`mgmt`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::faults::Faults;
use crate::jobs::Jobs;
use crate::server::{Request, Response};
use crate::store::Users;
use crate::tenant::{Client, Tenant, User};
use crate::tokens::{random_token, s256, Signer};

pub const PASSWORD_REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";

/// What a refresh token or authorization code stands for.
#[derive(Clone)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) user_id: String,
    pub(crate) scope: String,
    pub(crate) audience: Option<String>,
    /// Refresh tokens descending from one login share a family; reuse of a rotated token
    /// revokes the whole family (Auth0's reuse detection).
    pub(crate) family: String,
}

pub(crate) struct Code {
    pub(crate) grant: Grant,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: Option<String>,
}

#[derive(Default)]
struct State {
    refresh_tokens: HashMap<String, Grant>,
    rotated: HashMap<String, String>,
    codes: HashMap<String, Code>,
    /// Tenant sessions of the hosted login (`login`): session cookie value → user id.
    sessions: HashMap<String, String>,
}

pub struct Emulator {
    pub(crate) tenant: Tenant,
    pub(crate) signer: Signer,
    state: Mutex<State>,
    pub(crate) faults: Faults,
    /// The tenant's users, shared with the Management API and its import jobs.
    pub(crate) users: Arc<Users>,
    pub(crate) jobs: Arc<Jobs>,
}

type Answer = Result<Response, Response>;

fn missing(name: &str) -> Response {
    Response::auth_error(
        400,
        "invalid_request",
        &format!("Missing required parameter: {name}"),
    )
}

fn required<'a>(fields: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, Response> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing(name))
}

fn unauthorized_client() -> Response {
    Response::auth_error(401, "access_denied", "Unauthorized")
}

fn invalid_refresh_token() -> Response {
    Response::auth_error(403, "invalid_grant", "Unknown or invalid refresh token.")
}

/// Logout URL match as Auth0 does it: the query string is not taken into account.
fn logout_url_allowed(allowed: &[String], return_to: &str) -> bool {
    let strip = |u: &str| {
        u.split('?')
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string()
    };
    allowed.iter().any(|a| strip(a) == strip(return_to))
}

impl Emulator {
    pub fn new(tenant: Tenant, signer: Signer) -> Emulator {
        let users = Arc::new(Users::new(tenant.users.clone()));
        Emulator {
            tenant,
            signer,
            state: Mutex::new(State::default()),
            faults: Faults::default(),
            users,
            jobs: Arc::new(Jobs::default()),
        }
    }

    pub fn handle(&self, request: &Request) -> Response {
        if let Some(response) = self.faults.control(request) {
            return response;
        }
        if let Some(response) = self.faults.before(request) {
            return response;
        }
        if request.path.starts_with("/api/v2/") {
            return self.management(request);
        }
        let answer = match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/oauth/token") => self.token(request),
            ("POST", "/oauth/revoke") => self.revoke(request),
            ("GET", "/v2/logout") => self
                .logout(request)
                .map(|answer| self.end_session(request, answer)),
            ("GET", "/userinfo") => self.userinfo(request),
            ("GET", "/authorize") => self.authorize(request),
            ("POST", "/u/login") => self.login_form_posted(request),
            ("GET", "/.well-known/jwks.json") => Ok(Response::json(200, self.signer.jwks())),
            // Test control: sign with a new key from now on (both stay in the JWKS).
            ("POST", "/__emulator/rotate-keys") => self
                .signer
                .rotate()
                .map(|kid| Response::json(200, serde_json::json!({"kid": kid})))
                .map_err(|e| Response::json(500, serde_json::json!({"error": e}))),
            ("GET", "/-/healthz") => Ok(Response::json(200, serde_json::json!({"status": "OK"}))),
            _ => Err(Response::json(
                404,
                serde_json::json!({"statusCode": 404, "error": "Not Found", "message": "Not Found"}),
            )),
        };
        answer.unwrap_or_else(|e| e)
    }

    pub(crate) fn store_code(&self, code: String, entry: Code) {
        if let Ok(mut state) = self.state.lock() {
            state.codes.insert(code, entry);
        }
    }

    /// Runs `f` on the tenant sessions; `None` if the lock is poisoned.
    pub(crate) fn with_sessions<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, String>) -> T,
    ) -> Option<T> {
        self.state
            .lock()
            .ok()
            .map(|mut state| f(&mut state.sessions))
    }

    fn authenticate(&self, fields: &BTreeMap<String, String>) -> Result<&Client, Response> {
        let client_id = required(fields, "client_id")?;
        let client = self
            .tenant
            .client(client_id)
            .ok_or_else(unauthorized_client)?;
        let secret = fields
            .get("client_secret")
            .map(String::as_str)
            .unwrap_or("");
        if secret != client.client_secret {
            return Err(unauthorized_client());
        }
        Ok(client)
    }

    fn token(&self, request: &Request) -> Answer {
        let fields = request
            .fields()
            .map_err(|e| Response::auth_error(400, "invalid_request", &e))?;
        let grant_type = required(&fields, "grant_type")?.to_string();
        let client = self.authenticate(&fields)?;
        let known = [
            "password",
            PASSWORD_REALM,
            "refresh_token",
            "client_credentials",
            "authorization_code",
        ];
        if !known.contains(&grant_type.as_str()) {
            return Err(Response::auth_error(
                400,
                "unsupported_grant_type",
                &format!("Unsupported grant type: {grant_type}"),
            ));
        }
        let enabled = if grant_type == PASSWORD_REALM {
            "password"
        } else {
            grant_type.as_str()
        };
        if !client
            .grant_types
            .iter()
            .any(|g| g == enabled || g == &grant_type)
        {
            return Err(Response::auth_error(
                403,
                "unauthorized_client",
                &format!("Grant type '{grant_type}' not allowed for the client."),
            ));
        }
        match grant_type.as_str() {
            "password" | PASSWORD_REALM => {
                self.password_grant(client, &fields, grant_type == PASSWORD_REALM)
            }
            "refresh_token" => self.refresh_grant(client, &fields),
            "client_credentials" => self.client_credentials_grant(client, &fields),
            _ => self.code_grant(client, &fields),
        }
    }

    /// The Management API's identifier: `<issuer>api/v2/`.
    pub(crate) fn management_audience(&self) -> String {
        let issuer = self.signer.issuer.trim_end_matches('/');
        format!("{issuer}/api/v2/")
    }

    fn check_audience(&self, audience: Option<&str>) -> Result<(), Response> {
        match audience {
            Some(aud) if !self.tenant.apis.iter().any(|a| a.identifier == aud) => Err(
                Response::auth_error(403, "access_denied", &format!("Service not found: {aud}")),
            ),
            _ => Ok(()),
        }
    }

    fn password_grant(
        &self,
        client: &Client,
        fields: &BTreeMap<String, String>,
        realm_grant: bool,
    ) -> Answer {
        let username = required(fields, "username")?;
        let password = required(fields, "password")?;
        let connection = if realm_grant {
            required(fields, "realm")?.to_string()
        } else {
            self.tenant.default_directory.clone().ok_or_else(|| {
                Response::auth_error(
                    500,
                    "server_error",
                    "Authorization server not configured with default connection.",
                )
            })?
        };
        if !self.tenant.connections.iter().any(|c| c.name == connection) {
            return Err(Response::auth_error(
                400,
                "invalid_request",
                "connection not found",
            ));
        }
        if !client.connections.contains(&connection) {
            return Err(Response::auth_error(
                400,
                "invalid_request",
                "the connection is not enabled for this client",
            ));
        }
        let audience = fields.get("audience").filter(|a| !a.is_empty()).cloned();
        self.check_audience(audience.as_deref())?;
        let user = self
            .users
            .by_login(&connection, username)
            .filter(|u| !u.password.is_empty() && u.password == password)
            .ok_or_else(|| {
                Response::auth_error(403, "invalid_grant", "Wrong email or password.")
            })?;
        if user.blocked {
            return Err(Response::auth_error(401, "unauthorized", "user is blocked"));
        }
        self.users.with(|users| {
            if let Some(stored) = users.get_mut(&user.user_id) {
                stored.logins_count += 1;
            }
        });
        let scope = fields.get("scope").cloned().unwrap_or_default();
        let grant = Grant {
            client_id: client.client_id.clone(),
            user_id: user.user_id.clone(),
            scope,
            audience,
            family: random_token(9),
        };
        self.issue(client, &user, &grant, true)
    }

    fn refresh_grant(&self, client: &Client, fields: &BTreeMap<String, String>) -> Answer {
        let token = required(fields, "refresh_token")?;
        let mut state = self.state.lock().map_err(|_| unauthorized_client())?;
        if let Some(family) = state.rotated.get(token).cloned() {
            // Reuse of a rotated token: revoke the family.
            state.refresh_tokens.retain(|_, g| g.family != family);
            return Err(invalid_refresh_token());
        }
        let grant = state
            .refresh_tokens
            .get(token)
            .cloned()
            .ok_or_else(invalid_refresh_token)?;
        if grant.client_id != client.client_id {
            return Err(invalid_refresh_token());
        }
        if client.refresh_token_rotation {
            state.refresh_tokens.remove(token);
            state
                .rotated
                .insert(token.to_string(), grant.family.clone());
        }
        drop(state);
        let user = self
            .users
            .by_id(&grant.user_id)
            .ok_or_else(invalid_refresh_token)?;
        self.issue(client, &user, &grant, client.refresh_token_rotation)
    }

    fn client_credentials_grant(
        &self,
        client: &Client,
        fields: &BTreeMap<String, String>,
    ) -> Answer {
        let audience = required(fields, "audience")?;
        let management = audience == self.management_audience();
        if !management {
            self.check_audience(Some(audience))?;
        }
        let grant = match management {
            // tenant.json cannot know the port: `"management"` names the Management API.
            true => client
                .client_grants
                .get("management")
                .or_else(|| client.client_grants.get(audience)),
            false => client.client_grants.get(audience),
        };
        let scopes = grant.ok_or_else(|| {
            Response::auth_error(
                403,
                "access_denied",
                &format!("Client has not been granted scopes: {audience}"),
            )
        })?;
        let scope = scopes.join(" ");
        let mut claims = serde_json::Map::new();
        claims.insert("scope".into(), scope.clone().into());
        claims.insert("azp".into(), client.client_id.clone().into());
        claims.insert("gty".into(), "client-credentials".into());
        let subject = format!("{}@clients", client.client_id);
        let lifetime = self
            .faults
            .client_credentials_lifetime()
            .unwrap_or(self.tenant.access_token_lifetime_seconds);
        let jti = random_token(12);
        let access_token = self
            .signer
            .sign_with_id(&subject, &[audience.to_string()], lifetime, claims, &jti)
            .map_err(server_error)?;
        if management {
            self.faults.management_token_issued(&jti);
        }
        self.faults.count("grant:client_credentials");
        Ok(Response::json(
            200,
            serde_json::json!({"access_token": access_token, "scope": scope, "expires_in": lifetime, "token_type": "Bearer"}),
        ))
    }

    fn code_grant(&self, client: &Client, fields: &BTreeMap<String, String>) -> Answer {
        let code = required(fields, "code")?;
        let invalid = || Response::auth_error(403, "invalid_grant", "Invalid authorization code");
        let entry = self
            .state
            .lock()
            .map_err(|_| invalid())?
            .codes
            .remove(code)
            .ok_or_else(invalid)?;
        if entry.grant.client_id != client.client_id {
            return Err(invalid());
        }
        if fields.get("redirect_uri").map(String::as_str) != Some(entry.redirect_uri.as_str()) {
            return Err(Response::auth_error(
                403,
                "invalid_grant",
                "Invalid redirect_uri",
            ));
        }
        if let Some(challenge) = &entry.code_challenge {
            let verifier = fields
                .get("code_verifier")
                .map(String::as_str)
                .unwrap_or("");
            if s256(verifier) != *challenge {
                return Err(Response::auth_error(
                    403,
                    "invalid_grant",
                    "Failed to verify code verifier",
                ));
            }
        }
        let user = self.users.by_id(&entry.grant.user_id).ok_or_else(invalid)?;
        self.issue(client, &user, &entry.grant, true)
    }

    /// Signs the token set for a grant; a new refresh token when asked for and allowed.
    fn issue(
        &self,
        client: &Client,
        user: &User,
        grant: &Grant,
        new_refresh_token: bool,
    ) -> Answer {
        let scopes: Vec<&str> = grant.scope.split_whitespace().collect();
        let issuer = self.signer.issuer.clone();
        let mut audiences = vec![format!("{issuer}userinfo")];
        if let Some(aud) = &grant.audience {
            audiences.insert(0, aud.clone());
        }
        let mut access_claims = serde_json::Map::new();
        access_claims.insert("azp".into(), client.client_id.clone().into());
        access_claims.insert("scope".into(), grant.scope.clone().into());
        let lifetime = self
            .faults
            .user_token_lifetime()
            .unwrap_or(self.tenant.access_token_lifetime_seconds);
        let access_token = self
            .signer
            .sign(&user.user_id, &audiences, lifetime, access_claims)
            .map_err(server_error)?;
        let mut body = serde_json::json!({
            "access_token": access_token, "expires_in": lifetime, "token_type": "Bearer", "scope": grant.scope,
        });
        if scopes.contains(&"openid") {
            let mut id_claims = user.profile_claims(&scopes);
            id_claims.remove("sub");
            if let Some(ns) = &self.tenant.custom_claims_namespace {
                id_claims.insert(
                    format!("{ns}app_metadata"),
                    user.app_metadata.clone().into(),
                );
                id_claims.insert(
                    format!("{ns}user_metadata"),
                    user.user_metadata.clone().into(),
                );
            }
            let id_token = self
                .signer
                .sign(
                    &user.user_id,
                    std::slice::from_ref(&client.client_id),
                    self.tenant.id_token_lifetime_seconds,
                    id_claims,
                )
                .map_err(server_error)?;
            body["id_token"] = id_token.into();
        }
        if new_refresh_token && scopes.contains(&"offline_access") {
            let refresh_token = random_token(32);
            if let Ok(mut state) = self.state.lock() {
                state
                    .refresh_tokens
                    .insert(refresh_token.clone(), grant.clone());
            }
            body["refresh_token"] = refresh_token.into();
        }
        Ok(Response::json(200, body)
            .with_header("cache-control", "no-store")
            .with_header("pragma", "no-cache"))
    }

    fn revoke(&self, request: &Request) -> Answer {
        let fields = request
            .fields()
            .map_err(|e| Response::auth_error(400, "invalid_request", &e))?;
        let client_id = required(&fields, "client_id")?;
        let client = self
            .tenant
            .client(client_id)
            .filter(|c| fields.get("client_secret") == Some(&c.client_secret))
            .ok_or_else(|| {
                Response::auth_error(401, "invalid_client", "Client authentication failed.")
            })?;
        let token = required(&fields, "token")?;
        let mut state = self.state.lock().map_err(|_| unauthorized_client())?;
        // Revoking a refresh token ends its whole family; an unknown token is not an error
        // (RFC 7009 §2.2).
        if let Some(grant) = state.refresh_tokens.get(token).cloned() {
            if grant.client_id == client.client_id {
                state.refresh_tokens.retain(|_, g| g.family != grant.family);
            }
        }
        Ok(Response::text(200, "text/plain; charset=utf-8", ""))
    }

    fn logout(&self, request: &Request) -> Answer {
        let client = match request.query.get("client_id") {
            Some(id) => Some(
                self.tenant
                    .client(id)
                    .ok_or_else(|| logout_error("invalid client_id"))?,
            ),
            None => None,
        };
        let allowed = client.map_or(&self.tenant.allowed_logout_urls, |c| &c.allowed_logout_urls);
        match request.query.get("returnTo") {
            Some(return_to) if logout_url_allowed(allowed, return_to) => {
                Ok(Response::redirect(return_to))
            }
            Some(_) => Err(logout_error("returnTo is not in the Allowed Logout URLs")),
            None => match allowed.first() {
                Some(first) => Ok(Response::redirect(first)),
                None => Ok(Response::text(200, "text/plain; charset=utf-8", "OK")),
            },
        }
    }

    fn userinfo(&self, request: &Request) -> Answer {
        let unauthorized = || Response::text(401, "text/plain; charset=utf-8", "Unauthorized");
        let token = request
            .header("authorization")
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or_else(unauthorized)?;
        let claims = self.signer.verify(token.trim()).ok_or_else(unauthorized)?;
        let user = claims
            .subject
            .as_deref()
            .and_then(|s| self.users.by_id(s))
            .ok_or_else(unauthorized)?;
        let scope = claims
            .custom
            .get("scope")
            .and_then(|s| s.as_str())
            .unwrap_or("");
        let scopes: Vec<&str> = scope.split_whitespace().collect();
        Ok(Response::json(
            200,
            serde_json::Value::Object(user.profile_claims(&scopes)),
        ))
    }
}

fn logout_error(message: &str) -> Response {
    Response::text(
        400,
        "text/html; charset=utf-8",
        &format!("<h1>Oops!, something went wrong</h1><p>{message}</p>"),
    )
}

fn server_error(message: String) -> Response {
    Response::auth_error(500, "server_error", &message)
}
