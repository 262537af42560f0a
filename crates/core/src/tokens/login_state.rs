//! Browser logins in progress, carried by the browser that started them.
//!
//! `/authorize` keeps nothing on the gateway: it sets a short-lived, signed, `HttpOnly`
//! `__Host-` cookie holding the client, the requested redirect, a random nonce and the expiry,
//! named after the login's `state`. `/oauth/token` redeems `{code, state}` only with that
//! cookie, so a code and state taken to another browser (login CSRF) fail, and anonymous
//! callers cannot fill any store or capacity on the gateway. The PKCE verifier is derived from
//! the nonce with a key the browser never sees, so the cookie alone does not reveal it.
//!
//! The key is derived from the client's secret: every worker and replica with the same
//! configuration agrees on it, and nothing else has to be shared.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::config::{Client, SameSite};
use crate::time::Timestamp;

/// Names every login cookie; the rest of the name comes from the state.
pub const COOKIE_PREFIX: &str = "__Host-auth0-login-";
/// The longest `redirect` a login may carry (it travels in the cookie, whose whole size
/// browsers cap at 4 KB).
pub const MAX_REDIRECT_BYTES: usize = 2_048;
/// Login cookies a request may carry that the filter looks at (a browser with logins started
/// in several tabs has one per login).
pub const MAX_LOGIN_COOKIES: usize = 16;

/// What a login cookie says, signed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    #[serde(rename = "c")]
    pub client: String,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// Random, base64url: the PKCE verifier is derived from it.
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "e")]
    pub expires_at: u64,
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState")
            .field("client", &self.client)
            .field("redirect", &self.redirect)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A `state` or nonce from 16 random bytes (128 bits), URL-safe.
pub fn random_token(random: &[u8]) -> String {
    b64(random.get(..16).unwrap_or(random))
}

/// The key that signs a client's login cookies and derives its PKCE verifiers.
fn client_key(client: &Client) -> [u8; 32] {
    hmac_sha256::HMAC::mac(
        b"auth0-filter login state",
        client.client_secret.expose().as_bytes(),
    )
}

/// The PKCE verifier of a login (RFC 7636: 43 characters, 256 bits) and its S256 challenge.
pub fn pkce(client: &Client, nonce: &str) -> (String, String) {
    let mut input = b"pkce ".to_vec();
    input.extend_from_slice(nonce.as_bytes());
    let verifier = b64(&hmac_sha256::HMAC::mac(&input, client_key(client)));
    let challenge = b64(&hmac_sha256::Hash::hash(verifier.as_bytes()));
    (verifier, challenge)
}

/// The cookie name of the login with this state.
pub fn cookie_name(state: &str) -> String {
    let digest = hmac_sha256::Hash::hash(state.as_bytes());
    let mut name = String::from(COOKIE_PREFIX);
    name.push_str(&crate::digest::hex(digest.get(..8).unwrap_or(&digest)));
    name
}

fn signature(client: &Client, state: &str, payload: &str) -> [u8; 32] {
    let mut input = Vec::with_capacity(state.len() + payload.len() + 1);
    input.extend_from_slice(state.as_bytes());
    input.push(b'.');
    input.extend_from_slice(payload.as_bytes());
    hmac_sha256::HMAC::mac(&input, client_key(client))
}

/// The cookie value: the record and a signature over the state and the record.
pub fn seal(client: &Client, state: &str, login: &LoginState) -> Option<String> {
    let payload = b64(&serde_json::to_vec(login).ok()?);
    let mac = b64(&signature(client, state, &payload));
    Some(format!("{payload}.{mac}"))
}

/// The login a cookie holds, if it was signed for this client and state and is still live.
pub fn open(
    client: &Client,
    state: &str,
    value: &str,
    now: Timestamp,
) -> Result<LoginState, &'static str> {
    let refused = "the login was not started in this browser, has expired or is already used";
    let (payload, mac) = value.split_once('.').ok_or(refused)?;
    let presented: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(mac)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(refused)?;
    if !crate::config::clients::constant_time_eq(&signature(client, state, payload), &presented) {
        return Err(refused);
    }
    let login: LoginState = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(refused)?;
    if login.client != client.name {
        return Err("the login was started for another client");
    }
    if login.expires_at <= now.secs {
        return Err(refused);
    }
    Ok(login)
}

/// `Set-Cookie` for a login cookie. `__Host-` makes browsers require `Secure`, `Path=/` and no
/// `Domain`, so no other site or subdomain can plant one. `SameSite=Lax` (unless the client
/// sets another): sent on the top-level return from Auth0 and the login site's same-origin
/// `fetch`, not on cross-site posts.
pub fn set_cookie(name: &str, value: &str, max_age: u64, same_site: Option<SameSite>) -> String {
    let same_site = same_site.unwrap_or(SameSite::Lax).as_str();
    format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite={same_site}; Max-Age={max_age}")
}

/// `Set-Cookie` that removes a login cookie once it is redeemed.
pub fn clear_cookie(name: &str, same_site: Option<SameSite>) -> String {
    set_cookie(name, "", 0, same_site)
}

/// The login cookies of a request, by name, at most [`MAX_LOGIN_COOKIES`].
pub fn login_cookies(head: &crate::http::RequestHead) -> Vec<(String, String)> {
    crate::http::cookie::cookie_pairs(head)
        .filter(|(name, value)| name.starts_with(COOKIE_PREFIX) && !value.is_empty())
        .take(MAX_LOGIN_COOKIES)
        .map(|(name, value)| (name.to_string(), value.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests;
