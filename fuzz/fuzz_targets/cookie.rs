//! `Cookie` headers: `find_cookie` (the `sid` lookup) across several headers, and the
//! `Set-Cookie` builder fed with what was found.
#![no_main]

use auth0_filter_core::config::SameSite;
use auth0_filter_core::http::cookie::{find_cookie, is_cookie_value, session_cookie, SESSION_COOKIE};
use auth0_filter_core::http::RequestHead;
use auth0_filter_fuzz::{all_fields, text};
use libfuzzer_sys::fuzz_target;

// Input: `name 0xFF header 0xFF header …`; an empty name means `sid`.
fuzz_target!(|data: &[u8]| {
    let Some(fields) = all_fields(data)
        .into_iter()
        .map(text)
        .collect::<Option<Vec<&str>>>()
    else {
        return;
    };
    let Some((name, headers)) = fields.split_first() else {
        return;
    };
    let mut head = RequestHead::default();
    for value in headers {
        head.push_header("cookie", value);
    }
    let name = if name.is_empty() {
        SESSION_COOKIE
    } else {
        name
    };
    let Some(value) = find_cookie(&head, name) else {
        return;
    };
    // Only RFC 6265 cookie octets: no `;`, `,`, `"`, spaces or control characters.
    assert!(is_cookie_value(value), "{value:?}");
    assert!(!value.contains(';'), "{value:?}");
    // It came from one of the headers, whole.
    assert!(headers.iter().any(|h| h.contains(value)));

    let same_site = match headers.len() % 4 {
        0 => None,
        1 => Some(SameSite::Strict),
        2 => Some(SameSite::Lax),
        _ => Some(SameSite::None),
    };
    match session_cookie(value, 86_400, same_site) {
        Some(cookie) => {
            let (first, attributes) = cookie.split_once("; ").expect("attributes");
            assert_eq!(first, format!("{SESSION_COOKIE}={value}"));
            assert!(!cookie.contains(['\r', '\n', ',']));
            assert_eq!(
                attributes.split("; ").take(4).collect::<Vec<_>>(),
                ["Path=/", "HttpOnly", "Secure", "Max-Age=86400"]
            );
        }
        None => panic!("a found value could not be set again: {value:?}"),
    }
});
