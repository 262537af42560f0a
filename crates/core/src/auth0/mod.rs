//! Requests to the Auth0 Authentication API and the translation of its answers.
//!
//! Bodies follow Auth0's documentation: `/oauth/token` takes
//! `application/x-www-form-urlencoded`, `/oauth/revoke` takes `application/json`.

pub mod lucene;

use serde::Deserialize;

use crate::config::{Client, ManagementClient};
use crate::http::error::FilterError;
use crate::http::{Callout, CalloutResult, Reply};
use crate::time::Timestamp;

pub const PASSWORD_REALM_GRANT: &str = "http://auth0.com/oauth/grant-type/password-realm";

/// A grant the filter exchanges at `/oauth/token` on behalf of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Resource-owner password; with a realm (connection) it uses Auth0's password-realm grant.
    Password {
        username: String,
        password: String,
        realm: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
    },
    /// The browser login's code, with the `redirect_uri` it was issued for and the PKCE
    /// verifier of its state.
    AuthorizationCode {
        code: String,
        redirect_uri: String,
        code_verifier: String,
    },
}

fn post(
    client: &Client,
    route: &str,
    content_type: &str,
    body: Vec<u8>,
    timeout_ms: u64,
) -> Callout {
    Callout {
        cluster: client.auth0.cluster.clone(),
        method: "POST".into(),
        path: client.auth0.path(route),
        authority: client.auth0.authority.clone(),
        headers: vec![
            ("content-type".into(), content_type.into()),
            ("accept".into(), "application/json".into()),
        ],
        body: Some(body),
        timeout_ms,
    }
}

/// `POST /oauth/token` for a grant, with the client's credentials, audience and scope.
/// `end_user_ip` goes in `auth0-forwarded-for` on password grants, so Auth0's brute-force
/// protection counts the user's address rather than the gateway's (Auth0 honours it when the
/// application has "Trust Token Endpoint IP Header" on).
pub fn token_request(
    client: &Client,
    grant: &Grant,
    end_user_ip: Option<&str>,
    timeout_ms: u64,
) -> Callout {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    match grant {
        Grant::Password {
            username,
            password,
            realm,
        } => {
            match realm {
                Some(realm) => {
                    form.append_pair("grant_type", PASSWORD_REALM_GRANT);
                    form.append_pair("realm", realm);
                }
                None => {
                    form.append_pair("grant_type", "password");
                }
            }
            form.append_pair("username", username);
            form.append_pair("password", password);
            form.append_pair("scope", &client.auth0_scope());
            if let Some(audience) = &client.audience {
                form.append_pair("audience", audience);
            }
        }
        Grant::RefreshToken { refresh_token } => {
            form.append_pair("grant_type", "refresh_token");
            form.append_pair("refresh_token", refresh_token);
        }
        Grant::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            form.append_pair("grant_type", "authorization_code");
            form.append_pair("code", code);
            form.append_pair("redirect_uri", redirect_uri);
            form.append_pair("code_verifier", code_verifier);
        }
    }
    form.append_pair("client_id", &client.client_id);
    form.append_pair("client_secret", client.client_secret.expose());
    let body = form.finish().into_bytes();
    let mut callout = post(
        client,
        "/oauth/token",
        "application/x-www-form-urlencoded",
        body,
        timeout_ms,
    );
    if let (Grant::Password { .. }, Some(ip)) = (grant, end_user_ip) {
        callout
            .headers
            .push(("auth0-forwarded-for".into(), ip.to_string()));
    }
    callout
}

/// `POST /oauth/token` with `client_credentials` for a Management API token.
pub fn management_token_request(management: &ManagementClient, timeout_ms: u64) -> Callout {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    form.append_pair("client_id", &management.client_id);
    form.append_pair("client_secret", management.client_secret.expose());
    form.append_pair("audience", &management.auth0.public_url("/api/v2/"));
    Callout {
        cluster: management.auth0.cluster.clone(),
        method: "POST".into(),
        path: management.auth0.path("/oauth/token"),
        authority: management.auth0.authority.clone(),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("accept".into(), "application/json".into()),
        ],
        body: Some(form.finish().into_bytes()),
        timeout_ms,
    }
}

/// A Management API v2 call with the cached token.
pub fn management_request(
    management: &ManagementClient,
    request: &ManagementRequest,
    token: &str,
    timeout_ms: u64,
) -> Callout {
    let mut headers = vec![
        ("authorization".to_string(), format!("Bearer {token}")),
        ("accept".to_string(), "application/json".to_string()),
    ];
    if let Some(content_type) = &request.content_type {
        headers.push(("content-type".into(), content_type.clone()));
    }
    Callout {
        cluster: management.auth0.cluster.clone(),
        method: request.method.to_string(),
        path: management.auth0.path(&request.path_and_query),
        authority: management.auth0.authority.clone(),
        headers,
        body: request.body.clone(),
        timeout_ms,
    }
}

/// What a management route asks of the Management API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementRequest {
    pub method: &'static str,
    /// `/api/v2/...`, query string included, already encoded.
    pub path_and_query: String,
    pub content_type: Option<String>,
    pub body: Option<Vec<u8>>,
}

/// Auth0's answer to a management call, passed through as-is: status, content type and body.
/// Failures, 429 and 5xx are translated like every other Auth0 call. The Management API
/// answers JSON or nothing: a body that is not JSON (an HTML page from a proxy, a torn
/// answer) is a broken upstream, 502, rather than something to hand the caller as Auth0's.
pub fn management_answer(
    result: &CalloutResult,
    timeout_ms: u64,
    now: Timestamp,
) -> Result<Reply, FilterError> {
    let (status, body) = answered(result, timeout_ms, now)?;
    let blank = body.iter().all(u8::is_ascii_whitespace);
    if !blank && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        return Err(FilterError::bad_gateway(format!(
            "the Management API answered {status} with a body that is not JSON"
        )));
    }
    let mut reply = Reply::new(status);
    reply.push_header(
        "content-type",
        result.header("content-type").unwrap_or("application/json"),
    );
    reply.push_header("cache-control", "no-store");
    reply.body = body.to_vec();
    Ok(reply)
}

/// `POST /oauth/revoke` for a refresh token.
pub fn revoke_request(client: &Client, refresh_token: &str, timeout_ms: u64) -> Callout {
    let body = serde_json::json!({
        "client_id": client.client_id,
        "client_secret": client.client_secret.expose(),
        "token": refresh_token,
    });
    post(
        client,
        "/oauth/revoke",
        "application/json",
        body.to_string().into_bytes(),
        timeout_ms,
    )
}

/// A successful `/oauth/token` answer.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSet(***)")
    }
}

impl TokenSet {
    /// The user id: `sub` of the ID token, else of the access token (when it is a JWT).
    pub fn subject(&self) -> Option<String> {
        self.id_token
            .as_deref()
            .and_then(jwt_subject)
            .or_else(|| jwt_subject(&self.access_token))
    }
}

/// `sub` of a JWT's payload, without verifying the signature. Only used on tokens the filter
/// just received from Auth0 over its own callout, where the channel authenticates the issuer
/// (OIDC Core 3.1.3.7 allows this for the token endpoint).
pub fn jwt_subject(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Subject {
        sub: String,
    }
    crate::jwt::unverified_payload::<Subject>(token).map(|payload| payload.sub)
}

/// Why a token was asked for: it decides how Auth0's refusals are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Login,
    Refresh,
    /// The gateway's own Management API token: any refusal is a gateway problem.
    Management,
}

#[derive(Deserialize, Default)]
struct AuthErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Translates a callout result into a token set or the error the caller gets.
pub fn token_answer(
    result: &CalloutResult,
    purpose: TokenPurpose,
    timeout_ms: u64,
    now: Timestamp,
) -> Result<TokenSet, FilterError> {
    let (status, body) = answered(result, timeout_ms, now)?;
    if status == 200 {
        return serde_json::from_slice::<TokenSet>(body)
            .ok()
            .filter(|t| !t.access_token.is_empty())
            .ok_or_else(|| {
                FilterError::bad_gateway("Auth0 answered with an unreadable token response")
            });
    }
    let auth0: AuthErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = auth0
        .error
        .as_deref()
        .map(crate::http::error::sanitize)
        .unwrap_or_default();
    let description = auth0
        .error_description
        .as_deref()
        .map(crate::http::error::sanitize)
        .unwrap_or_default();
    let detail = if code.is_empty() {
        format!("Auth0 answered {status}")
    } else {
        format!("Auth0 refused: {code}: {description}")
    };
    // Auth0 refusing the gateway's own client credentials or grant setup is a gateway
    // problem, whatever the route: the caller can do nothing about it.
    let gateway_refused = matches!(
        (status, code.as_str()),
        (
            401,
            "access_denied" | "invalid_client" | "unauthorized_client"
        ) | (403, "unauthorized_client")
    );
    if gateway_refused {
        return Err(FilterError::bad_gateway(detail));
    }
    match (purpose, status) {
        // Wrong credentials, MFA required, denied by a rule or Action: 403, as in the original
        // since 3.0.1. A blocked user is Auth0's 401 `unauthorized`.
        (TokenPurpose::Login, 403) | (TokenPurpose::Login, 401) => {
            Err(FilterError::forbidden(detail))
        }
        (TokenPurpose::Login, 400) => Err(FilterError::bad_request(detail)),
        // A refused refresh token means the caller must log in again.
        (TokenPurpose::Refresh, 400 | 401 | 403) => Err(FilterError::unauthorized(detail)),
        (TokenPurpose::Management, _) => Err(FilterError::bad_gateway(format!(
            "Management API token: {detail}"
        ))),
        _ => Err(FilterError::bad_gateway(detail)),
    }
}

/// The status and body of an answered callout; failures, 429 and 5xx become errors.
pub fn answered(
    result: &CalloutResult,
    timeout_ms: u64,
    now: Timestamp,
) -> Result<(u16, &[u8]), FilterError> {
    match result {
        CalloutResult::Failed { elapsed_ms } => Err(callout_failure(*elapsed_ms, timeout_ms)),
        CalloutResult::Answered { status, body, .. } => {
            if *status == 429 {
                return Err(FilterError::too_many_requests(retry_after(result, now)));
            }
            if *status >= 500 {
                // Envoy answers 504 itself when the callout timeout fires first.
                if *status == 504 && result.header("x-envoy-upstream-service-time").is_none() {
                    return Err(FilterError::gateway_timeout("Auth0 did not answer in time"));
                }
                return Err(FilterError::bad_gateway(format!(
                    "Auth0 is unavailable (status {status})"
                )));
            }
            Ok((*status, body.as_slice()))
        }
    }
}

/// No answer at all: a timeout if the callout ran for (about) its whole timeout, otherwise the
/// connection failed.
pub fn callout_failure(elapsed_ms: u64, timeout_ms: u64) -> FilterError {
    if elapsed_ms.saturating_mul(10) >= timeout_ms.saturating_mul(9) {
        FilterError::gateway_timeout("Auth0 did not answer in time")
    } else {
        FilterError::bad_gateway("Auth0 could not be reached")
    }
}

/// Seconds to wait after a 429: Auth0's `Retry-After`, else `X-RateLimit-Reset` (epoch seconds)
/// minus now, at least 1.
fn retry_after(result: &CalloutResult, now: Timestamp) -> u64 {
    if let Some(seconds) = result
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return seconds.max(1);
    }
    result
        .header("x-ratelimit-reset")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|reset| reset.saturating_sub(now.secs))
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests;
