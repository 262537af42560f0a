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
mod tests;
