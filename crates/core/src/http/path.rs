//! The request path in the one form routes and protected prefixes are matched on.
//!
//! An upstream may read a path differently from its raw bytes: it decodes `%2e`, resolves
//! `/a/../b`, merges `//`, and servlet containers drop `;jsessionid=…` parameters. A prefix
//! compared with the raw path would let `/protected%2Fx`, `/x/../protected/y` or
//! `/protected;p/y` past it. So the filter matches on the path as such an upstream would read
//! it, and refuses (400) what no single reading exists for: encoded `/` or `\`, a literal `\`,
//! control characters and broken `%`-escapes.

use std::borrow::Cow;

/// Why a path was refused.
pub type PathRefusal = &'static str;

/// The path (query dropped) with unreserved `%`-escapes decoded, `;` parameters dropped from
/// every segment, empty and `.` segments removed and `..` resolved; a trailing `/` is kept.
/// Borrowed when the path is already in that form, which is nearly always.
pub fn normalized(raw: &str) -> Result<Cow<'_, str>, PathRefusal> {
    let path = crate::http::split_path(raw).0;
    if !path.starts_with('/') {
        return Err("the path must start with `/`");
    }
    if is_plain(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path)?;
    Ok(Cow::Owned(resolve_segments(&decoded)))
}

/// No byte or sequence that normalisation would change or refuse.
fn is_plain(path: &str) -> bool {
    let bytes = path.as_bytes();
    let odd_byte = bytes
        .iter()
        .any(|&b| matches!(b, b'%' | b';' | b'\\') || b < 0x20 || b == 0x7f);
    !odd_byte
        && !path.contains("//")
        && !path.contains("/./")
        && !path.contains("/../")
        && !path.ends_with("/.")
        && !path.ends_with("/..")
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes the escapes of unreserved characters (RFC 3986 6.2.2.2) and upper-cases the others;
/// refuses what would make the path read differently by different upstreams. Other bytes,
/// non-ASCII included, are copied as they are, so the result stays UTF-8.
fn decode_unreserved(path: &str) -> Result<String, PathRefusal> {
    let mut out = Vec::with_capacity(path.len());
    let mut bytes = path.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let high = bytes.next().and_then(hex_value);
                let low = bytes.next().and_then(hex_value);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err("the path has a malformed %-escape");
                };
                let decoded = high * 16 + low;
                match decoded {
                    b'/' | b'\\' => return Err("the path has an encoded `/` or `\\`"),
                    0..=0x1f | 0x7f => return Err("the path has an encoded control character"),
                    _ if is_unreserved(decoded) => out.push(decoded),
                    _ => out.extend_from_slice(format!("%{decoded:02X}").as_bytes()),
                }
            }
            b'\\' => return Err("the path has a `\\`"),
            0..=0x1f | 0x7f => return Err("the path has a control character"),
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| "the path is not UTF-8")
}

/// Drops `;` parameters and empty or `.` segments, resolves `..` (never above the root).
fn resolve_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split('/').skip(1) {
        let segment = segment.split(';').next().unwrap_or_default();
        trailing_slash = matches!(segment, "" | "." | "..");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    out
}

/// Whether `path` starts with `prefix`, ignoring ASCII case: an upstream that serves
/// `/Protected/x` as `/protected/x` must not be reached without the check.
pub fn starts_with_ignoring_case(path: &str, prefix: &str) -> bool {
    path.len() >= prefix.len()
        && path
            .as_bytes()
            .iter()
            .zip(prefix.as_bytes())
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

#[cfg(test)]
mod tests;
