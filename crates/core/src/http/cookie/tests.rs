use super::*;

fn head(cookies: &[&str]) -> RequestHead {
    let mut head = RequestHead::default();
    for cookie in cookies {
        head.push_header("cookie", cookie);
    }
    head
}

#[test]
fn finds_sid_by_exact_name_across_headers() {
    assert_eq!(
        find_cookie(&head(&["a=1; xsid=no; sid=yes"]), "sid"),
        Some("yes")
    );
    assert_eq!(find_cookie(&head(&["a=1", "sid=two"]), "sid"), Some("two"));
    assert_eq!(find_cookie(&head(&["sidx=1"]), "sid"), None);
    assert_eq!(find_cookie(&head(&["sid="]), "sid"), None);
    assert_eq!(find_cookie(&head(&["sid=\"q.1\""]), "sid"), Some("q.1"));
}

#[test]
fn values_that_are_not_cookie_octets_count_as_absent() {
    // Found by fuzzing: `sid=" = = "` gave ` = = ` (quotes and spaces trimmed in turn).
    for bad in [
        "sid=\" = = \"",
        "sid=\"\"abc\"\"",
        "sid=\"abc",
        "sid=a b",
        "sid=\"\"",
    ] {
        assert_eq!(find_cookie(&head(&[bad]), "sid"), None, "{bad:?}");
    }
}

#[test]
fn set_cookie_has_the_original_attributes() {
    assert_eq!(
        session_cookie("abc.def-ghi_", 86400, Some(SameSite::Strict)).unwrap(),
        "sid=abc.def-ghi_; Path=/; HttpOnly; Secure; Max-Age=86400; SameSite=Strict"
    );
    assert_eq!(
        session_cookie("abc", 10, None).unwrap(),
        "sid=abc; Path=/; HttpOnly; Secure; Max-Age=10"
    );
}

#[test]
fn values_that_could_inject_attributes_are_refused() {
    for bad in ["a;b", "a b", "a\r\nSet-Cookie: x", "", "a,b", "\"a\""] {
        assert!(session_cookie(bad, 1, None).is_none(), "{bad:?}");
    }
}

#[test]
fn clearing_uses_expires_and_never_max_age() {
    let cleared = clear_session_cookie(Some(SameSite::Lax));
    assert!(cleared.starts_with("sid=; Path=/;"));
    assert!(cleared.contains("Expires=Thu, 01 Jan 1970 00:00:00 GMT"));
    assert!(!cleared.contains("Max-Age"));
    assert!(cleared.ends_with("SameSite=Lax"));
}
