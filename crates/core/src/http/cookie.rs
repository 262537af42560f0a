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
mod tests {
    use super::*;

    fn head(cookies: &[&str]) -> RequestHead {
        let mut head = RequestHead::default();
        for cookie in cookies {
            head.push_header("cookie", cookie);
        }
        head
    }

    #[test]
    fn finds_sid_by_exact_name_across_headers() {
        assert_eq!(
            find_cookie(&head(&["a=1; xsid=no; sid=yes"]), "sid"),
            Some("yes")
        );
        assert_eq!(find_cookie(&head(&["a=1", "sid=two"]), "sid"), Some("two"));
        assert_eq!(find_cookie(&head(&["sidx=1"]), "sid"), None);
        assert_eq!(find_cookie(&head(&["sid="]), "sid"), None);
        assert_eq!(find_cookie(&head(&["sid=\"q.1\""]), "sid"), Some("q.1"));
    }

    #[test]
    fn values_that_are_not_cookie_octets_count_as_absent() {
        // Found by fuzzing: `sid=" = = "` gave ` = = ` (quotes and spaces trimmed in turn).
        for bad in [
            "sid=\" = = \"",
            "sid=\"\"abc\"\"",
            "sid=\"abc",
            "sid=a b",
            "sid=\"\"",
        ] {
            assert_eq!(find_cookie(&head(&[bad]), "sid"), None, "{bad:?}");
        }
    }

    #[test]
    fn set_cookie_has_the_original_attributes() {
        assert_eq!(
            session_cookie("abc.def-ghi_", 86400, Some(SameSite::Strict)).unwrap(),
            "sid=abc.def-ghi_; Path=/; HttpOnly; Secure; Max-Age=86400; SameSite=Strict"
        );
        assert_eq!(
            session_cookie("abc", 10, None).unwrap(),
            "sid=abc; Path=/; HttpOnly; Secure; Max-Age=10"
        );
    }

    #[test]
    fn values_that_could_inject_attributes_are_refused() {
        for bad in ["a;b", "a b", "a\r\nSet-Cookie: x", "", "a,b", "\"a\""] {
            assert!(session_cookie(bad, 1, None).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn clearing_uses_expires_and_never_max_age() {
        let cleared = clear_session_cookie(Some(SameSite::Lax));
        assert!(cleared.starts_with("sid=; Path=/;"));
        assert!(cleared.contains("Expires=Thu, 01 Jan 1970 00:00:00 GMT"));
        assert!(!cleared.contains("Max-Age"));
        assert!(cleared.ends_with("SameSite=Lax"));
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
