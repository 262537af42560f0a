//! The path routes and protected prefixes are matched on (`auth0_filter_core::http::path::normalized`).
//!
//! Invariants: a normalised path starts with `/`, has no empty, `.` or `..` segment, no `;`,
//! `\`, control character or encoded `/`; normalising it again changes nothing; and whatever
//! the input, no panic.
#![no_main]

use auth0_filter_core::http::path::normalized;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = normalized(raw) else {
        return;
    };
    assert!(path.starts_with('/'), "{raw:?} -> {path:?}");
    let inner = path.trim_end_matches('/');
    if !inner.is_empty() {
        for segment in inner.split('/').skip(1) {
            assert!(!matches!(segment, "" | "." | ".."), "{raw:?} -> {path:?}");
        }
    }
    assert!(
        !path.contains([';', '\\']) && !path.bytes().any(|b| b < 0x20 || b == 0x7f),
        "{raw:?} -> {path:?}"
    );
    let upper = path.to_ascii_uppercase();
    assert!(!upper.contains("%2F") && !upper.contains("%5C"), "{raw:?}");
    assert_eq!(normalized(&path).ok().as_deref(), Some(&*path), "{raw:?}");
});
