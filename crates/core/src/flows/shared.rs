//! Pieces several flows use: reading bodies, finding the presented session token, and
//! answering with tokens or the `sid` cookie.

use crate::auth0::TokenSet;
use crate::config::{Client, Config};
use crate::digest::SessionKey;
use crate::http::body::{body_format, Fields};
use crate::http::cookie::{find_cookie, session_cookie, SESSION_COOKIE};
use crate::http::error::FilterError;
use crate::http::{Reply, RequestHead};
use crate::store::SessionRecord;
use crate::time::Timestamp;

/// Parses a body with the request's content type. An empty body has no fields and needs none.
pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Fields, FilterError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Fields::default());
    }
    Fields::parse(body_format(content_type)?, body)
}

/// The token a caller presents for its session: the `sid` cookie, else the Bearer token.
pub fn presented_token(head: &RequestHead) -> Option<String> {
    presented_token_and_source(head).map(|(token, _)| token.to_string())
}

/// The presented token, and whether it came in the `sid` cookie (which wins over a Bearer
/// token): flows that treat the two differently learn it from the same lookup.
pub fn presented_token_and_source(head: &RequestHead) -> Option<(&str, bool)> {
    match find_cookie(head, SESSION_COOKIE) {
        Some(token) => Some((token, true)),
        None => head.bearer_token().map(|token| (token, false)),
    }
}

/// Which connection a login uses: the requested one if the client supports it (else 400), or
/// the client's default, or its only supported connection.
pub fn resolve_connection(
    client: &Client,
    requested: Option<&str>,
) -> Result<Option<String>, FilterError> {
    match requested {
        Some(connection) if client.supported_connections.iter().any(|c| c == connection) => {
            Ok(Some(connection.to_string()))
        }
        Some(connection) => Err(FilterError::bad_request(format!(
            "connection `{}` is not supported by this client",
            crate::http::error::sanitize(connection)
        ))),
        None => Ok(client.default_connection.clone().or_else(|| {
            match client.supported_connections.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            }
        })),
    }
}

/// The session to store for a token set, keyed by the access token.
pub fn session_for(
    config: &Config,
    client: &Client,
    tokens: &TokenSet,
    refresh_token: Option<&str>,
    now: Timestamp,
) -> Option<(SessionKey, SessionRecord)> {
    let user_id = tokens.subject()?;
    let record = SessionRecord {
        user_id,
        client: client.name.clone(),
        refresh_token: refresh_token.map(str::to_string),
        profile: tokens
            .id_token
            .as_deref()
            .and_then(super::identity::unverified_claims)
            .map(|claims| super::identity::profile_claims(config, claims)),
        expires_at: now.secs.saturating_add(config.session_duration_seconds),
        ended: false,
    };
    Some((SessionKey::for_token(&tokens.access_token), record))
}

/// The answer to a successful login or refresh: the `sid` cookie and an empty body for a
/// `website` client, the token JSON otherwise.
pub fn token_reply(
    config: &Config,
    client: &Client,
    tokens: &TokenSet,
    refresh_token: Option<&str>,
    now: Timestamp,
) -> Result<Reply, FilterError> {
    let mut reply = if client.is_website() {
        let cookie = session_cookie(
            &tokens.access_token,
            config.session_duration_seconds,
            client.same_site,
        )
        .ok_or_else(|| {
            FilterError::bad_gateway("Auth0's access token cannot be used as a cookie value")
        })?;
        let mut reply = Reply::new(200);
        reply.push_header("set-cookie", &cookie);
        reply
    } else {
        let expire_at = now.plus_secs(tokens.expires_in.unwrap_or(0)).to_rfc3339();
        Reply::json(
            200,
            &serde_json::json!({
                "refreshToken": refresh_token.unwrap_or_default(),
                "accessToken": tokens.access_token,
                "idToken": tokens.id_token.as_deref().unwrap_or_default(),
                "expireAt": expire_at,
            }),
        )
    };
    // Token responses must not be cached (RFC 6749 §5.1).
    reply.push_header("cache-control", "no-store");
    reply.push_header("pragma", "no-cache");
    Ok(reply)
}

/// The configured client a flow was started for (or a session names).
pub fn configured_client<'a>(config: &'a Config, name: &str) -> Result<&'a Client, FilterError> {
    config
        .clients
        .get(name)
        .ok_or_else(|| FilterError::internal("the client is no longer configured"))
}

/// Auth0's longest access-token lifetime (30 days): no marker needs to outlive it.
const MAX_TOKEN_LIFETIME_SECS: u64 = 2_592_000;

/// Until when an ended session's marker stays (unix secs): while its access token could still
/// be presented (its `exp`), and at least a session's lifetime.
pub fn ended_until(config: &Config, token: Option<&str>, now: Timestamp) -> u64 {
    #[derive(serde::Deserialize)]
    struct Expiry {
        exp: u64,
    }
    let session_end = now.secs.saturating_add(config.session_duration_seconds);
    let token_end = token
        .and_then(crate::jwt::unverified_payload::<Expiry>)
        .map(|e| e.exp.min(now.secs.saturating_add(MAX_TOKEN_LIFETIME_SECS)))
        .unwrap_or(0);
    session_end.max(token_end)
}

/// The first step of a flow that needs the request body.
pub fn read_body(config: &Config) -> crate::flows::Action {
    crate::flows::Action::ReadBody {
        max_bytes: config.max_body_bytes,
    }
}

#[cfg(test)]
mod tests;
