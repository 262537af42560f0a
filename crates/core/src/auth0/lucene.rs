//! `GET /users` query strings and `acl_rows` headers translated into Auth0's user-search
//! Lucene (search engine v3).
//!
//! Every user-supplied value is escaped, so no value can add a clause or widen the query:
//! - `email`, `nickname`, `username`: a term with every Lucene special character escaped
//!   except `*`, which stays a wildcard (as in the original since 3.1.0);
//! - everything else is a quoted phrase with `"` and `\` escaped.
//!
//! Field names (`app_metadata.<path>`, `acl_rows` keys) are checked against a strict charset.
//! The final query is the original's: `(acl) AND (filters) AND (connection clause)`.

use serde_json::Value;

use crate::http::error::FilterError;

pub const DEFAULT_PAGE_SIZE: u32 = 25;
pub const MAX_PAGE_SIZE: u32 = 100;
const MAX_ACL_DEPTH: usize = 8;
const MAX_IN_VALUES: usize = 100;
const WILDCARD_FIELDS: [&str; 3] = ["email", "nickname", "username"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSearch {
    pub q: String,
    pub per_page: u32,
    pub page: u32,
}

impl UserSearch {
    /// Path and query of Auth0's `GET /api/v2/users` for this search.
    pub fn auth0_path_and_query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if !self.q.is_empty() {
            query.append_pair("q", &self.q);
        }
        query.append_pair("search_engine", "v3");
        query.append_pair("per_page", &self.per_page.to_string());
        query.append_pair("page", &self.page.to_string());
        format!("/api/v2/users?{}", query.finish())
    }
}

fn bad(message: impl Into<String>) -> FilterError {
    FilterError::bad_request(message)
}

/// A term with every Lucene special character escaped; `*` too unless it may wildcard.
fn escape_term(value: &str, keep_wildcard: bool) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        let special = matches!(
            c,
            '+' | '-'
                | '&'
                | '|'
                | '!'
                | '('
                | ')'
                | '{'
                | '}'
                | '['
                | ']'
                | '^'
                | '"'
                | '~'
                | '?'
                | ':'
                | '\\'
                | '/'
                | '='
                | '<'
                | '>'
        ) || c.is_whitespace()
            || (c == '*' && !keep_wildcard);
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A quoted phrase: only `"` and `\` need escaping inside quotes.
fn phrase(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn check_value(name: &str, value: &str) -> Result<(), FilterError> {
    if value.is_empty() {
        return Err(bad(format!("`{name}` must not be empty")));
    }
    if value.chars().any(char::is_control) {
        return Err(bad(format!("`{name}` must not contain control characters")));
    }
    Ok(())
}

/// A field path of letters, digits, `_` and `-` segments joined by dots. It must not start
/// with `-` (or `+`): at the start of a clause that is Lucene's NOT (MUST) operator.
fn valid_field(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
        && name.split('.').count() <= MAX_ACL_DEPTH + 1
        && name.split('.').all(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

fn scalar_phrase(field: &str, value: &Value) -> Result<String, FilterError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => {
            return Err(bad(format!(
                "the value for `{field}` must be a string, number or boolean"
            )))
        }
    };
    check_value(field, &text)?;
    Ok(format!("{field}:{}", phrase(&text)))
}

fn any_of(field: &str, values: &Value) -> Result<String, FilterError> {
    let values = values
        .as_array()
        .filter(|v| !v.is_empty() && v.len() <= MAX_IN_VALUES)
        .ok_or_else(|| {
            bad(format!(
                "`$in` for `{field}` must be a non-empty array of at most {MAX_IN_VALUES} values"
            ))
        })?;
    let terms = values
        .iter()
        .map(|v| scalar_phrase(field, v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("({})", terms.join(" OR ")))
}

/// One `app_metadata.<path>=<value>` filter; a JSON `{"$in": [...]}` value is an OR group.
fn metadata_filter(field: &str, value: &str) -> Result<String, FilterError> {
    if value.trim_start().starts_with('{') {
        let parsed = crate::http::strict_json::parse(
            value.as_bytes(),
            &format!("`{field}` is not valid JSON"),
        )?;
        let object = parsed.as_object().filter(|o| o.len() == 1);
        return match object.and_then(|o| o.get("$in")) {
            Some(values) => any_of(field, values),
            None => Err(bad(format!("`{field}` supports only {{\"$in\": [...]}}"))),
        };
    }
    check_value(field, value)?;
    Ok(format!("{field}:{}", phrase(value)))
}

/// Translates a Mongo-style ACL (`$and`, `$or`, `$in`, `$eq`, plain equality) into Lucene.
fn acl_clause(value: &Value, depth: usize) -> Result<String, FilterError> {
    if depth > MAX_ACL_DEPTH {
        return Err(bad("acl_rows is nested too deeply"));
    }
    let object = value
        .as_object()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| bad("acl_rows must be a non-empty JSON object"))?;
    let mut clauses = Vec::new();
    for (key, value) in object {
        let clause = match key.as_str() {
            "$and" | "$or" => {
                let items = value
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| bad(format!("acl_rows `{key}` must be a non-empty array")))?;
                let parts = items
                    .iter()
                    .map(|item| acl_clause(item, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                let operator = if key == "$and" { " AND " } else { " OR " };
                format!("({})", parts.join(operator))
            }
            field if valid_field(field) => match value {
                Value::Object(condition) => match condition.iter().next() {
                    Some((op, v)) if condition.len() == 1 && op == "$eq" => {
                        scalar_phrase(field, v)?
                    }
                    Some((op, v)) if condition.len() == 1 && op == "$in" => any_of(field, v)?,
                    _ => return Err(bad(format!("acl_rows `{field}` supports only $eq and $in"))),
                },
                scalar => scalar_phrase(field, scalar)?,
            },
            other => {
                return Err(bad(format!(
                    "acl_rows operator or field `{}` is not supported",
                    crate::http::error::sanitize(other)
                )))
            }
        };
        clauses.push(clause);
    }
    Ok(if clauses.len() == 1 {
        clauses.concat()
    } else {
        format!("({})", clauses.join(" AND "))
    })
}

fn parse_number(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, FilterError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            bad(format!(
                "`{name}` must be a whole number from {} to {}",
                range.start(),
                range.end()
            ))
        })
}

/// Builds the Auth0 search for a `GET /users` query string, an optional `acl_rows` header and
/// the management client's supported connections.
pub fn user_search(
    query: Option<&str>,
    acl_rows: Option<&str>,
    connections: &[String],
) -> Result<UserSearch, FilterError> {
    let mut per_page = DEFAULT_PAGE_SIZE;
    let mut skip = 0u32;
    let mut filters: Vec<String> = Vec::new();
    let mut requested: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let (name, value) = (name.into_owned(), value.into_owned());
        if name != "connection" {
            if seen.contains(&name) {
                return Err(bad(format!(
                    "`{}` is given more than once",
                    crate::http::error::sanitize(&name)
                )));
            }
            seen.push(name.clone());
        }
        match name.as_str() {
            "_l" => per_page = parse_number("_l", &value, 1..=MAX_PAGE_SIZE)?,
            "_sk" => skip = parse_number("_sk", &value, 0..=u32::MAX)?,
            field if WILDCARD_FIELDS.contains(&field) => {
                check_value(field, &value)?;
                filters.push(format!("{field}:{}", escape_term(&value, true)));
            }
            "connection" => {
                if !connections.contains(&value) {
                    return Err(bad(format!(
                        "connection `{}` is not supported by the management client",
                        crate::http::error::sanitize(&value)
                    )));
                }
                if !requested.contains(&value) {
                    requested.push(value);
                }
            }
            field if field.starts_with("app_metadata.") && valid_field(field) => {
                filters.push(metadata_filter(field, &value)?)
            }
            other => {
                return Err(bad(format!(
                    "query parameter `{}` is not supported",
                    crate::http::error::sanitize(other)
                )))
            }
        }
    }
    let mut groups: Vec<String> = Vec::new();
    if let Some(acl) = acl_rows.map(str::trim).filter(|a| !a.is_empty()) {
        let parsed = crate::http::strict_json::parse(acl.as_bytes(), "acl_rows is not valid JSON")?;
        groups.push(acl_clause(&parsed, 0)?);
    }
    if !filters.is_empty() {
        groups.push(filters.join(" AND "));
    }
    // With no connection asked for, every supported one; the clause always comes last.
    let scope = if requested.is_empty() {
        connections.to_vec()
    } else {
        requested
    };
    if !scope.is_empty() {
        let terms: Vec<String> = scope
            .iter()
            .map(|c| format!("identities.connection:{}", phrase(c)))
            .collect();
        groups.push(terms.join(" OR "));
    }
    let q = groups
        .iter()
        .map(|g| format!("({g})"))
        .collect::<Vec<_>>()
        .join(" AND ");
    Ok(UserSearch {
        q,
        per_page,
        page: skip / per_page,
    })
}

#[cfg(test)]
mod tests;
