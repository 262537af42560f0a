//! The `sid` session cookie: reading it from `Cookie` headers and writing `Set-Cookie`.

use crate::http::RequestHead;
use serde::Deserialize;

pub const SESSION_COOKIE: &str = "sid";

/// The value of a cookie by exact name, from every `Cookie` header of the request. A value
/// that is not RFC 6265 `cookie-value` (octets, optionally in one pair of quotes) counts as
/// absent: the filter never sets one, and `sid=" a b "` must not give ` a b `.
pub fn find_cookie<'a>(head: &'a RequestHead, name: &str) -> Option<&'a str> {
    cookie_pairs(head)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        })
        .filter(|v| is_cookie_value(v))
}

/// Every `name=value` of every `Cookie` header, name trimmed, value as sent.
pub fn cookie_pairs(head: &RequestHead) -> impl Iterator<Item = (&str, &str)> {
    head.header_values("cookie")
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.trim(), value))
}

/// RFC 6265 `cookie-octet`: what may stand in a cookie value unquoted.
pub fn is_cookie_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e))
}

/// `sid=<value>; Path=/; HttpOnly; Secure; Max-Age=<n>[; SameSite=<v>]`, or `None` when the
/// value cannot be a cookie value.
pub fn session_cookie(value: &str, max_age: u64, same_site: Option<SameSite>) -> Option<String> {
    if !is_cookie_value(value) {
        return None;
    }
    let mut cookie =
        format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; Secure; Max-Age={max_age}");
    if let Some(same_site) = same_site {
        cookie.push_str("; SameSite=");
        cookie.push_str(same_site.as_str());
    }
    Some(cookie)
}

/// Clears `sid` with an `Expires` in the past and no `Max-Age` (the original's 2.0.0 fix).
pub fn clear_session_cookie(same_site: Option<SameSite>) -> String {
    let mut cookie = format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    );
    if let Some(same_site) = same_site {
        cookie.push_str("; SameSite=");
        cookie.push_str(same_site.as_str());
    }
    cookie
}

#[cfg(test)]
mod tests;

/// The `SameSite` attribute of the `sid` cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum SameSite {
    /// Sent on same-site requests and on top-level navigations from other sites.
    Lax,
    /// Sent on same-site requests only.
    Strict,
    /// Sent on cross-site requests too.
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
