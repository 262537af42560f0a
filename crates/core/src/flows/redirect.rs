//! Logout redirects: the `redirect` query parameter, its validation, and the Auth0
//! `/v2/logout` location built from it.

use crate::config::{Client, Config};
use crate::http::error::FilterError;
use crate::http::host::is_valid_host;
use crate::http::RequestHead;

/// The `redirect` parameter of a raw query string. Everything after `redirect=` is the path,
/// so a nested, unencoded query survives: `redirect=/web-login?redirect=/x` gives
/// `/web-login?redirect=/x`. The value is %-decoded once.
pub fn redirect_param(query: &str) -> Result<Option<String>, FilterError> {
    let start = if query.starts_with("redirect=") {
        Some(0)
    } else {
        query.find("&redirect=").map(|i| i + 1)
    };
    let Some(start) = start else {
        return Ok(None);
    };
    let raw = query.get(start + "redirect=".len()..).unwrap_or_default();
    if raw.is_empty() {
        return Ok(None);
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| FilterError::bad_request("`redirect` is not valid UTF-8"))?;
    Ok(Some(decoded.into_owned()))
}

/// A redirect must be a path on the same site: it starts with a single `/`, has no
/// backslash, no scheme and no control characters.
pub fn validate_relative_path(path: &str) -> Result<(), FilterError> {
    let refuse = || FilterError::bad_request("`redirect` must be a relative path such as `/home`");
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(refuse());
    }
    // A path-absolute reference (one leading `/`, no backslash, which browsers read as `/`)
    // cannot change the origin it is resolved against (RFC 3986 §5.2, WHATWG URL).
    if path.contains('\\') || path.chars().any(|c| c.is_control()) {
        return Err(refuse());
    }
    // Dot segments could resolve to a network-path reference: `/.//evil.com` is the path
    // `//evil.com`, which a login site or application reusing it would send off-site.
    let path_part = path.split(['?', '#']).next().unwrap_or_default();
    if path_part
        .split('/')
        .any(|segment| matches!(segment, "." | ".."))
    {
        return Err(refuse());
    }
    Ok(())
}

/// The protocol the client used: the configured protocol header, else the request scheme.
fn original_proto(config: &Config, head: &RequestHead) -> Result<String, FilterError> {
    let forwarded = head
        .header(&config.original_protocol_header)
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let proto = match forwarded {
        Some(p) if !p.is_empty() => p,
        _ => head.scheme.to_ascii_lowercase(),
    };
    match proto.as_str() {
        "https" | "http" => Ok(proto),
        _ => Err(FilterError::bad_request(format!(
            "`{}` must be http or https",
            config.original_protocol_header
        ))),
    }
}

/// The host the client used: `X-Forwarded-Host` (first value), else `:authority`.
fn original_host(config: &Config, head: &RequestHead) -> Result<String, FilterError> {
    let forwarded = head
        .header("x-forwarded-host")
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let host = forwarded
        .unwrap_or(head.authority.as_str())
        .to_ascii_lowercase();
    if !is_valid_host(&host) {
        return Err(FilterError::bad_request(
            "the request host is not a valid host name",
        ));
    }
    if !config.allowed_redirect_hosts.is_empty() && !config.allowed_redirect_hosts.contains(&host) {
        return Err(FilterError::bad_request(
            "the request host is not an allowed redirect host",
        ));
    }
    Ok(host)
}

/// `Location` of the logout answer: `<auth0Url>/v2/logout[?returnTo=…][&client_id=…]`.
pub fn logout_location(
    config: &Config,
    client: &Client,
    head: &RequestHead,
) -> Result<String, FilterError> {
    let redirect = match head.query() {
        Some(query) => redirect_param(query)?,
        None => None,
    };
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    if let Some(path) = redirect {
        validate_relative_path(&path)?;
        let proto = original_proto(config, head)?;
        let host = original_host(config, head)?;
        params.append_pair("returnTo", &format!("{proto}://{host}{path}"));
    }
    if config.logout_client_id_enabled {
        params.append_pair("client_id", &client.client_id);
    }
    let query = params.finish();
    let base = client.auth0.public_url("/v2/logout");
    Ok(if query.is_empty() {
        base
    } else {
        format!("{base}?{query}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config_with;

    fn head(path: &str, headers: &[(&str, &str)]) -> RequestHead {
        let mut head = RequestHead::from_headers(headers);
        head.method = "GET".into();
        head.path = path.into();
        head.scheme = "http".into();
        head.authority = "internal:8080".into();
        head
    }

    fn location(config: &Config, h: &RequestHead) -> Result<String, FilterError> {
        logout_location(config, &config.clients["web"], h)
    }

    #[test]
    fn nested_query_survives_as_one_encoded_value() {
        let config = config_with(serde_json::json!({}));
        let h = head(
            "/logout?redirect=/web-login?redirect=/x",
            &[
                ("x-forwarded-host", "app.example.org"),
                ("x-forwarded-proto", "https"),
            ],
        );
        assert_eq!(
            location(&config, &h).unwrap(),
            "https://tenant.eu.auth0.com/v2/logout?returnTo=https%3A%2F%2Fapp.example.org%2Fweb-login%3Fredirect%3D%2Fx"
        );
    }

    #[test]
    fn no_redirect_means_no_return_to_and_client_id_follows_the_switch() {
        let config = config_with(serde_json::json!({}));
        assert_eq!(
            location(&config, &head("/logout", &[])).unwrap(),
            "https://tenant.eu.auth0.com/v2/logout"
        );
        let config = config_with(serde_json::json!({"logoutClientIdEnabled": true}));
        assert_eq!(
            location(&config, &head("/logout", &[])).unwrap(),
            "https://tenant.eu.auth0.com/v2/logout?client_id=web-client-id"
        );
        let with_redirect = location(
            &config,
            &head("/logout?redirect=/bye", &[("x-forwarded-host", "a.org")]),
        )
        .unwrap();
        assert!(
            with_redirect.ends_with("?returnTo=http%3A%2F%2Fa.org%2Fbye&client_id=web-client-id")
        );
    }

    #[test]
    fn host_and_proto_fall_back_to_authority_and_scheme() {
        let config = config_with(serde_json::json!({"originalProtocolHeader": "x-original-proto"}));
        let h = head(
            "/logout?redirect=/p",
            &[("x-original-proto", "https"), ("x-forwarded-proto", "http")],
        );
        assert!(location(&config, &h)
            .unwrap()
            .contains("returnTo=https%3A%2F%2Finternal%3A8080%2Fp"));
    }

    #[test]
    fn encoded_redirect_is_decoded_once() {
        let config = config_with(serde_json::json!({}));
        let h = head(
            "/logout?x=1&redirect=%2Fa%3Fb%3Dc",
            &[("x-forwarded-host", "a.org")],
        );
        assert!(location(&config, &h)
            .unwrap()
            .contains("returnTo=http%3A%2F%2Fa.org%2Fa%3Fb%3Dc"));
    }

    #[test]
    fn every_bad_redirect_form_is_400() {
        let config = config_with(serde_json::json!({}));
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "https://evil.com",
            "evil.com",
            "%2F%2Fevil.com",
            "/%5Cevil.com",
            "/a%0D%0ASet-Cookie:x=y",
            "/a%00",
            "javascript:alert(1)",
            "/\tx",
            "%E0%A4%A",
            "/%2F/evil.com",
            "/.//evil.com",
            "/a/..//evil.com",
            "/%2E/%2Fevil.com",
            "/..",
        ] {
            let h = head(
                &format!("/logout?redirect={bad}"),
                &[("x-forwarded-host", "a.org")],
            );
            let err = location(&config, &h);
            // `/%2F/evil.com` decodes to `///evil.com`, which is protocol-relative.
            assert_eq!(err.map_err(|e| e.status), Err(400), "{bad}");
        }
        // Dots inside names, and in the query, are not dot segments.
        for good in ["/a.b/c..d", "/x?next=/../y", "/.well-known/x"] {
            assert!(validate_relative_path(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn only_a_plain_host_and_port_is_a_valid_host() {
        let long_label = "a".repeat(63);
        let too_long_label = "a".repeat(64);
        let name_253 = format!("{l}.{l}.{l}.{m}", l = long_label, m = "a".repeat(61));
        let name_254 = format!("{name_253}a");
        let valid = [
            "a.org",
            "app.example.org",
            "App.Example.ORG",
            "localhost",
            "internal:8080",
            "a-b.c-d.org:1",
            "xn--bcher-kva.example:65535",
            "a.org:080",
            "1a.org",
            "127.0.0.1",
            "10.0.0.1:8443",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::1]:443",
            "[::ffff:192.0.2.1]",
            long_label.as_str(),
            name_253.as_str(),
        ];
        for host in valid {
            assert!(is_valid_host(host), "{host:?} should be valid");
        }
        let invalid = [
            "",
            ":80",
            "evil.com@good",
            "good.com\\@evil",
            "good.com/@evil",
            "good.com/path",
            "[evil_com]:x:y",
            "[evil.com]",
            "[::1",
            "::1",
            "[::1]x",
            "[::1]:",
            "[::1]:0",
            "[::1]:99999",
            "[fe80::1%25eth0]",
            "[fe80::1%eth0]",
            "a..b",
            ".a.com",
            "a.com.",
            "-a.com",
            "a-.com",
            "a.-b.com",
            "under_score.com",
            "good.com:",
            "good.com:0",
            "good.com:99999",
            "good.com:65536",
            "good.com:80:80",
            "good.com:+80",
            "good.com: 80",
            "good.com:8o",
            "g\u{f6}\u{f6}d.com",
            "good.com\u{ff0e}evil",
            "good.com\r\nx-injected: 1",
            "good.com\n",
            "good.com\0",
            "good .com",
            " good.com",
            "good.com,evil.com",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "127.1",
            "0x7f.0.0.1",
            "a.0x7f",
            "2130706433",
            too_long_label.as_str(),
            name_254.as_str(),
        ];
        for host in invalid {
            assert!(!is_valid_host(host), "{host:?} should be refused");
        }
    }

    #[test]
    fn a_bad_request_host_is_400_and_a_bad_allowed_host_is_a_config_error() {
        let config = config_with(serde_json::json!({}));
        for bad in [
            "[evil_com]:x:y",
            "evil.com@good",
            "good.com:0",
            "good.com:80:80",
            "a..b",
        ] {
            let h = head("/logout?redirect=/x", &[("x-forwarded-host", bad)]);
            let err = location(&config, &h).unwrap_err();
            assert_eq!(err.status, 400, "{bad}");
            assert!(!err.message.contains(bad), "{}", err.message);
            // As the authority too.
            let mut h = head("/logout?redirect=/x", &[]);
            h.authority = bad.into();
            assert_eq!(location(&config, &h).unwrap_err().status, 400, "{bad}");
        }
        // The first of several forwarded hosts is the one used (and checked).
        let h = head(
            "/logout?redirect=/x",
            &[("x-forwarded-host", "[::1]:8080, evil_com:x")],
        );
        assert!(location(&config, &h)
            .unwrap()
            .contains("returnTo=http%3A%2F%2F%5B%3A%3A1%5D%3A8080%2Fx"));
        let h = head(
            "/logout?redirect=/x",
            &[("x-forwarded-host", "evil_com:x, a.org")],
        );
        assert_eq!(location(&config, &h).unwrap_err().status, 400);
        for bad in ["[evil_com]:x:y", "a.org:0", "a_b.org", "a.org:1:2"] {
            let raw = crate::testing::base_json();
            let mut raw = raw;
            raw["allowedRedirectHosts"] = serde_json::json!([bad]);
            let err = crate::config::Config::from_json(raw.to_string().as_bytes()).unwrap_err();
            assert!(
                err.to_string().contains("allowedRedirectHosts[0]"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn hosts_are_checked_against_the_allow_list() {
        let config = config_with(serde_json::json!({"allowedRedirectHosts": ["app.example.org"]}));
        let ok = head(
            "/logout?redirect=/x",
            &[("x-forwarded-host", "APP.example.org")],
        );
        assert!(location(&config, &ok).is_ok());
        let bad = head("/logout?redirect=/x", &[("x-forwarded-host", "evil.com")]);
        assert_eq!(location(&config, &bad).unwrap_err().status, 400);
        let injected = head(
            "/logout?redirect=/x",
            &[("x-forwarded-host", "evil.com/@a")],
        );
        let open = config_with(serde_json::json!({}));
        assert_eq!(location(&open, &injected).unwrap_err().status, 400);
        let bad_proto = head(
            "/logout?redirect=/x",
            &[("x-forwarded-proto", "javascript")],
        );
        assert_eq!(location(&open, &bad_proto).unwrap_err().status, 400);
    }
}
