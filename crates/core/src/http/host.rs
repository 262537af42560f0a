//! Host names as a browser reads them: what a forwarded host or a configured authority may be.

/// `host` or `host:port`, where the host is a DNS name, an IPv4 literal or a bracketed IPv6
/// literal and the port is 1 to 65535 in digits. Anything else (`@`, `\`, `/`, `_`, a second
/// `:`, spaces, non-ASCII, control characters, an empty label) is refused, so a forwarded host
/// can neither smuggle a path or credentials into `returnTo` nor be read as another host by a
/// browser's URL parser.
pub fn is_valid_host(value: &str) -> bool {
    if let Some(rest) = value.strip_prefix('[') {
        let Some((literal, after)) = rest.split_once(']') else {
            return false;
        };
        return literal.parse::<std::net::Ipv6Addr>().is_ok() && optional_port(after);
    }
    let (host, port) = match value.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (value, None),
    };
    (is_ipv4(host) || is_dns_name(host)) && port.is_none_or(is_port)
}

/// Nothing, or `:` and a port.
fn optional_port(after_host: &str) -> bool {
    after_host.is_empty() || after_host.strip_prefix(':').is_some_and(is_port)
}

/// 1 to 65535, digits only (no sign, no spaces).
fn is_port(port: &str) -> bool {
    !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// Four decimal octets (std refuses leading zeros, which some parsers read as octal).
fn is_ipv4(host: &str) -> bool {
    host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Letters, digits and `-` in dot-separated labels of 1 to 63 characters that neither start
/// nor end with `-`, 253 characters at most. A name whose last label is a number (`1.2.3`,
/// `0x7f`) is refused: a browser reads it as an IPv4 address, not the name checked here.
fn is_dns_name(host: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let numeric = |label: &str| {
        label.bytes().all(|b| b.is_ascii_digit())
            || label.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x"))
    };
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(label_ok)
        && !host.rsplit('.').next().is_some_and(numeric)
}
