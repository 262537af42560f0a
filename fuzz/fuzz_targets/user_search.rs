//! `GET /users`: the query string and the `acl_rows` header translated to Auth0's Lucene `q`.
//!
//! Beyond "no panic", the output must keep its shape whatever the values: quotes and
//! parentheses balanced, no dangling escape, clauses joined only by ` AND ` / ` OR `, and no
//! unescaped Lucene operator character outside a quoted phrase. A value that broke one of
//! these could add a clause or widen the search.
#![no_main]

use auth0_filter_core::auth0::lucene::{user_search, MAX_PAGE_SIZE};
use auth0_filter_fuzz::{fields, optional};
use libfuzzer_sys::fuzz_target;

/// Characters that are Lucene syntax when they stand unescaped outside a phrase. `(`, `)`,
/// `:`, `"`, `*`, space and `\` are the translation's own structure, checked separately.
const OPERATORS: &[char] = &[
    '+', '-', '&', '|', '!', '{', '}', '[', ']', '^', '~', '?', '/', '=', '<', '>',
];

/// Checks the shape of `q`; returns a description of the first problem.
fn shape_problem(q: &str) -> Option<String> {
    let mut in_phrase = false;
    let mut escaped = false;
    let mut depth: i64 = 0;
    let mut token = String::new();
    let mut tokens: Vec<String> = Vec::new();
    // Whether the previous unescaped character outside a phrase was `:` or the start of a
    // clause: field names may hold `-`, values never unescaped.
    for c in q.chars() {
        if escaped {
            escaped = false;
            token.push(c);
            continue;
        }
        if c == '\\' {
            escaped = true;
            token.push(c);
            continue;
        }
        if in_phrase {
            if c == '"' {
                in_phrase = false;
            }
            token.push(c);
            continue;
        }
        match c {
            '"' => in_phrase = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Some("unbalanced `)`".into());
                }
            }
            ' ' => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            c if c.is_whitespace() || c.is_control() => {
                return Some(format!("unescaped {c:?} outside a phrase"))
            }
            _ => {}
        }
        token.push(c);
    }
    tokens.push(token);
    if escaped {
        return Some("dangling escape".into());
    }
    if in_phrase {
        return Some("unterminated phrase".into());
    }
    if depth != 0 {
        return Some("unbalanced `(`".into());
    }
    if q.is_empty() {
        return None;
    }
    for (i, token) in tokens.iter().enumerate() {
        if i % 2 == 1 {
            if token != "AND" && token != "OR" {
                return Some(format!("`{token}` where AND/OR belongs"));
            }
            continue;
        }
        let clause = token.trim_start_matches('(');
        // A clause is `field:value`; the field is a dotted name of [A-Za-z0-9_-].
        let Some((field, value)) = clause.split_once(':') else {
            return Some(format!("clause `{token}` has no field"));
        };
        if field.is_empty()
            || field.starts_with(['-', '+'])
            || !field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Some(format!("bad field in `{token}`"));
        }
        // Outside phrases, every operator character in the value must be escaped.
        let mut escaped = false;
        let mut in_phrase = false;
        for c in value.chars() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_phrase = !in_phrase;
            } else if !in_phrase && (OPERATORS.contains(&c) || c == ':') {
                return Some(format!("unescaped `{c}` in `{token}`"));
            }
        }
    }
    None
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

// Input: `query 0xFF acl_rows 0xFF email`. `email` is put into the query %-encoded, so every
// character reaches the escaping (a raw query rarely decodes to Lucene specials).
fuzz_target!(|data: &[u8]| {
    let [query, acl_rows, email] = fields(data);
    let (Some(raw_query), Some(acl_rows), Some(email)) =
        (optional(query), optional(acl_rows), optional(email))
    else {
        return;
    };
    let connections = vec!["db-a".to_string(), "db \"b\"".to_string()];
    let mut query = raw_query.unwrap_or("").to_string();
    if let Some(email) = email {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("email=");
        query.push_str(&encode(email));
    }
    let query = (raw_query.is_some() || email.is_some()).then_some(query.as_str());
    let Ok(search) = user_search(query, acl_rows, &connections) else {
        return;
    };
    assert!((1..=MAX_PAGE_SIZE).contains(&search.per_page));
    if let Some(problem) = shape_problem(&search.q) {
        panic!("q {:?}: {problem}", search.q);
    }
    // The Auth0 URL carries `q` unchanged.
    let url = format!("https://t{}", search.auth0_path_and_query());
    let parsed = url::Url::parse(&url).expect("the Auth0 URL parses");
    let q = parsed
        .query_pairs()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    assert_eq!(q, search.q);
});
