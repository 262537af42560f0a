//! Request bodies the filter reads: `application/x-www-form-urlencoded` (as the original's curl
//! examples send) or `application/json`, with single-valued string fields.

use crate::small_map::SmallMap;

use crate::http::error::{sanitize, FilterError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Form,
    Json,
}

/// The format named by a `Content-Type` header; anything else is 415.
pub fn body_format(content_type: Option<&str>) -> Result<BodyFormat, FilterError> {
    let media_type = content_type
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media_type.as_str() {
        "application/x-www-form-urlencoded" => Ok(BodyFormat::Form),
        "application/json" => Ok(BodyFormat::Json),
        "" => Err(FilterError::unsupported_media_type(
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        )),
        _ => Err(FilterError::unsupported_media_type(format!(
            "Content-Type `{}` is not supported: use application/x-www-form-urlencoded or application/json",
            sanitize(&media_type)
        ))),
    }
}

/// Most fields (or query parameters) a request may carry to a route the filter answers. The
/// routes read a handful of names; a cap keeps the work per request bounded whatever a caller
/// sends (fields are kept in a list, where each new name is compared with the ones before).
pub const MAX_FIELDS: usize = 64;

/// The 400 for a request with more than [`MAX_FIELDS`] fields or parameters.
pub fn too_many(what: &str) -> FilterError {
    FilterError::bad_request(format!("at most {MAX_FIELDS} {what} are accepted"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Text(String),
    /// A JSON value that is not a string (number, object, ...).
    NotText,
}

/// The fields of a parsed body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(SmallMap<Field>);

impl Fields {
    pub fn parse(format: BodyFormat, body: &[u8]) -> Result<Fields, FilterError> {
        match format {
            BodyFormat::Form => parse_form(body),
            BodyFormat::Json => parse_json(body),
        }
    }

    /// A text field; empty strings count as absent. A non-string JSON value is 400.
    pub fn text(&self, name: &str) -> Result<Option<&str>, FilterError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Field::Text(v)) if v.is_empty() => Ok(None),
            Some(Field::Text(v)) => Ok(Some(v.as_str())),
            Some(Field::NotText) => Err(FilterError::bad_request(format!(
                "`{name}` must be a string"
            ))),
        }
    }

    pub fn required(&self, name: &str) -> Result<&str, FilterError> {
        self.text(name)?
            .ok_or_else(|| FilterError::bad_request(format!("`{name}` is required")))
    }
}

fn parse_form(body: &[u8]) -> Result<Fields, FilterError> {
    let malformed = |why: &str| FilterError::bad_request(format!("malformed form body: {why}"));
    if std::str::from_utf8(body).is_err() {
        return Err(malformed("not UTF-8"));
    }
    let mut fields = SmallMap::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        if !pair.contains(&b'=') {
            return Err(malformed("every field needs `name=value`"));
        }
        if pair.iter().any(|b| !is_form_byte(*b)) {
            return Err(malformed("unencoded control or space character"));
        }
        // The `url` crate decodes `+` and `%XX`; a decoded value that is not UTF-8 would come
        // back with U+FFFD, so look for escapes that are not valid UTF-8 first.
        if percent_encoding::percent_decode(pair)
            .decode_utf8()
            .is_err()
        {
            return Err(malformed("a %-escape is not UTF-8"));
        }
        for (name, value) in url::form_urlencoded::parse(pair) {
            if fields
                .insert(name.to_string(), Field::Text(value.into_owned()))
                .is_some()
            {
                return Err(malformed(&format!(
                    "`{}` is given more than once",
                    sanitize(&name)
                )));
            }
            if fields.len() > MAX_FIELDS {
                return Err(too_many("fields"));
            }
        }
    }
    Ok(Fields(fields))
}

fn is_form_byte(b: u8) -> bool {
    b > 0x20 && b != 0x7f
}

fn parse_json(body: &[u8]) -> Result<Fields, FilterError> {
    let value = crate::http::strict_json::parse(body, "malformed JSON body")?;
    let object = value
        .as_object()
        .ok_or_else(|| FilterError::bad_request("JSON body must be an object"))?;
    if object.len() > MAX_FIELDS {
        return Err(too_many("fields"));
    }
    let fields = object
        .iter()
        .map(|(k, v)| {
            let field = match v {
                serde_json::Value::String(s) => Field::Text(s.clone()),
                _ => Field::NotText,
            };
            (k.clone(), field)
        })
        .collect();
    Ok(Fields(fields))
}

#[cfg(test)]
mod tests;
