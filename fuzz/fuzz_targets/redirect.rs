//! Logout and authorize redirects: `redirect_param`, `validate_relative_path` and the whole
//! `logout_location` with forwarded host/proto headers.
//!
//! Invariants: an accepted redirect is a path-absolute reference (one leading `/`, no `\`,
//! no control characters), and the `returnTo` Auth0 gets always resolves, with a WHATWG URL
//! parser, to the request's own (allow-listed) origin.
#![no_main]

use std::sync::OnceLock;

use auth0_filter_core::config::Config;
use auth0_filter_core::http::host::is_valid_host;
use auth0_filter_core::http::RequestHead;
use auth0_filter_core::flows::redirect::{
    logout_location, redirect_param, validate_relative_path,
};
use auth0_filter_fuzz::{fields, optional, tenant_config, text};
use libfuzzer_sys::fuzz_target;

struct Input<'a> {
    /// The query string of `/logout?…` (or `/authorize?…`).
    query: &'a str,
    /// A redirect path put into the query %-encoded, so decoded bytes reach the checks.
    redirect: Option<&'a str>,
    forwarded_host: Option<&'a str>,
    forwarded_proto: Option<&'a str>,
    authority: &'a str,
    allow_list: bool,
}

/// `flags 0xFF query 0xFF redirect 0xFF x-forwarded-host 0xFF x-forwarded-proto 0xFF authority`;
/// `a` in the flags turns the redirect-host allow list on; empty headers are absent.
fn input(data: &[u8]) -> Option<Input<'_>> {
    let [flags, query, redirect, host, proto, authority] = fields(data);
    Some(Input {
        query: text(query)?,
        redirect: optional(redirect)?,
        forwarded_host: optional(host)?,
        forwarded_proto: optional(proto)?,
        authority: text(authority)?,
        allow_list: flags.contains(&b'a'),
    })
}

const ALLOWED_HOST: &str = "app.example.org";

fn config(allow_list: bool) -> &'static Config {
    static OPEN: OnceLock<Config> = OnceLock::new();
    static LISTED: OnceLock<Config> = OnceLock::new();
    let cell = if allow_list { &LISTED } else { &OPEN };
    cell.get_or_init(|| {
        let mut json = tenant_config();
        json["managementClient"]["supportedConnections"] = serde_json::json!(["db-a"]);
        json["logoutClientIdEnabled"] = true.into();
        if allow_list {
            json["allowedRedirectHosts"] = serde_json::json!([ALLOWED_HOST]);
        }
        Config::from_json(json.to_string().as_bytes()).expect("the fuzz config is valid")
    })
}

fn check_accepted_path(path: &str) {
    assert!(path.starts_with('/'), "{path:?}");
    assert!(!path.starts_with("//"), "{path:?}");
    assert!(!path.contains('\\'), "{path:?}");
    assert!(!path.chars().any(char::is_control), "{path:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = input(data) else {
        return;
    };
    let mut query = input.query.to_string();
    if let Some(redirect) = input.redirect {
        let encoded: String = url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect();
        query = format!("redirect={encoded}&{query}");
        // The authorize flow checks the decoded value with the same function.
        if validate_relative_path(redirect).is_ok() {
            check_accepted_path(redirect);
        }
    }
    let param = redirect_param(&query);
    if let Ok(Some(path)) = &param {
        if validate_relative_path(path).is_ok() {
            check_accepted_path(path);
        }
    }

    let mut head = RequestHead::default();
    if let Some(host) = input.forwarded_host {
        head.push_header("x-forwarded-host", host);
    }
    if let Some(proto) = input.forwarded_proto {
        head.push_header("x-forwarded-proto", proto);
    }
    head.method = "GET".into();
    head.path = format!("/logout?{query}");
    head.scheme = "https".into();
    head.authority = input.authority.to_string();
    let config = config(input.allow_list);
    let Some(client) = config.clients.get("web") else {
        return;
    };
    let Ok(location) = logout_location(config, client, &head) else {
        return;
    };
    let location = url::Url::parse(&location).expect("the logout location is a URL");
    assert_eq!(location.host_str(), Some("tenant.eu.auth0.com"));
    assert_eq!(location.path(), "/v2/logout");
    let Some(return_to) = location
        .query_pairs()
        .find(|(k, _)| k == "returnTo")
        .map(|(_, v)| v.into_owned())
    else {
        return;
    };
    let Ok(Some(path)) = param else {
        panic!("returnTo without an accepted redirect: {return_to:?}");
    };
    check_accepted_path(&path);
    let host = input
        .forwarded_host
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(input.authority)
        .to_ascii_lowercase();
    assert!(is_valid_host(&host), "{host:?}");
    if input.allow_list {
        assert_eq!(host, ALLOWED_HOST);
    }
    assert!(return_to.starts_with("http://") || return_to.starts_with("https://"));
    // Whatever the path, a URL parser lands on the request's host.
    if let Ok(target) = url::Url::parse(&return_to) {
        let expected = url::Url::parse(&format!("{}://{host}/", target.scheme())).ok();
        if let Some(expected) = expected {
            assert_eq!(target.host(), expected.host(), "{return_to:?}");
            assert_eq!(target.port(), expected.port(), "{return_to:?}");
        }
    } else {
        // Only a host the URL parser itself refuses (e.g. `a:b:c`) may make it unparsable.
        assert!(
            url::Url::parse(&format!("http://{host}/")).is_err(),
            "{return_to:?}"
        );
    }
});
