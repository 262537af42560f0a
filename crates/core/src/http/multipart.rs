//! `multipart/form-data` (RFC 7578) for `POST /users/import`: a strict parser and a builder.
//! Maintained multipart crates are built around async streams (`multer`) or are unmaintained;
//! the body is already buffered here, so a small parser with tests (and a fuzz target later)
//! fits better and keeps the `.wasm` small.

use crate::http::error::FilterError;

const MAX_PARTS: usize = 16;
const MAX_HEADER_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

fn malformed(why: &str) -> FilterError {
    FilterError::bad_request(format!("malformed multipart body: {why}"))
}

/// The boundary of a `multipart/form-data` content type; any other type is 415.
pub fn boundary_of(content_type: Option<&str>) -> Result<String, FilterError> {
    let content_type = content_type.unwrap_or("");
    let mut params = content_type.split(';');
    let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
    if media != "multipart/form-data" {
        return Err(FilterError::unsupported_media_type(
            "Content-Type must be multipart/form-data",
        ));
    }
    let boundary = params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .ok_or_else(|| malformed("no boundary in Content-Type"))?;
    // RFC 2046 §5.1.1: 1 to 70 characters from a restricted set.
    let valid = !boundary.is_empty()
        && boundary.len() <= 70
        && boundary
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b))
        && !boundary.ends_with(' ');
    if !valid {
        return Err(malformed("invalid boundary"));
    }
    Ok(boundary)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// `form-data; name="users"; filename="users.json"` → (name, filename).
fn disposition(value: &str) -> Result<(String, Option<String>), FilterError> {
    let mut params = value.split(';');
    if !params
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("form-data")
    {
        return Err(malformed("a part is not form-data"));
    }
    let mut name = None;
    let mut filename = None;
    for param in params {
        let Some((key, raw)) = param.split_once('=') else {
            continue;
        };
        let value = raw.trim().trim_matches('"').to_string();
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(value),
            "filename" => filename = Some(value),
            _ => {}
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| malformed("a part has no name"))?;
    Ok((name, filename))
}

fn part_headers(block: &[u8]) -> Result<(String, Option<String>, Option<String>), FilterError> {
    let text = std::str::from_utf8(block).map_err(|_| malformed("part headers are not UTF-8"))?;
    let mut found = None;
    let mut content_type = None;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed("a part header has no `:`"))?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => found = Some(disposition(value)?),
            "content-type" => content_type = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let (name, filename) = found.ok_or_else(|| malformed("a part has no Content-Disposition"))?;
    Ok((name, filename, content_type))
}

/// Parses a whole buffered body.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, FilterError> {
    let delimiter = format!("--{boundary}").into_bytes();
    let next_delimiter = format!("\r\n--{boundary}").into_bytes();
    // The preamble before the first delimiter is ignored (RFC 2046).
    let mut at = find(body, &delimiter, 0).ok_or_else(|| malformed("no boundary in the body"))?
        + delimiter.len();
    let mut parts = Vec::new();
    loop {
        match body.get(at..at + 2) {
            Some(b"--") => return Ok(parts),
            Some(b"\r\n") => at += 2,
            _ => return Err(malformed("truncated or garbled after a boundary")),
        }
        if parts.len() == MAX_PARTS {
            return Err(malformed("too many parts"));
        }
        let headers_end = find(body, b"\r\n\r\n", at)
            .filter(|end| end - at <= MAX_HEADER_BYTES)
            .ok_or_else(|| malformed("truncated part headers"))?;
        let (name, filename, content_type) =
            part_headers(body.get(at..headers_end).unwrap_or_default())?;
        let data_start = headers_end + 4;
        let data_end =
            find(body, &next_delimiter, data_start).ok_or_else(|| malformed("truncated part"))?;
        parts.push(Part {
            name,
            filename,
            content_type,
            data: body.get(data_start..data_end).unwrap_or_default().to_vec(),
        });
        at = data_end + next_delimiter.len();
    }
}

fn quoted(value: &str) -> String {
    value.replace(['"', '\r', '\n'], "_")
}

/// Serialises parts with a boundary that appears in none of them.
pub fn build(parts: &[Part], seed: &[u8]) -> (Vec<u8>, String) {
    let digest = hmac_sha256::Hash::hash(seed);
    // 13 + 32 characters: well under RFC 2046's 70, with 128 bits of the body's digest.
    let hex = crate::digest::hex(digest.get(..16).unwrap_or_default());
    let mut boundary = format!("auth0-filter-{hex}");
    while boundary.len() < 70
        && parts
            .iter()
            .any(|p| find(&p.data, boundary.as_bytes(), 0).is_some())
    {
        boundary.push('x');
    }
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!(
            "Content-Disposition: form-data; name=\"{}\"",
            quoted(&part.name)
        );
        if let Some(filename) = &part.filename {
            disposition.push_str(&format!("; filename=\"{}\"", quoted(filename)));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = &part.content_type {
            body.extend_from_slice(
                format!("Content-Type: {}\r\n", quoted(content_type)).as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (body, boundary)
}

#[cfg(test)]
mod tests;
