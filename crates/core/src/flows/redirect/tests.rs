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
    assert!(with_redirect.ends_with("?returnTo=http%3A%2F%2Fa.org%2Fbye&client_id=web-client-id"));
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
