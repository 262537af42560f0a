use super::*;

#[test]
fn plain_paths_are_borrowed_as_they_are() {
    for path in [
        "/",
        "/protected/x",
        "/a.b/c-d_e~f",
        "/users/auth0|abc",
        "/ünï/cödé",
    ] {
        let normal = normalized(path).unwrap();
        assert!(matches!(normal, Cow::Borrowed(_)), "{path}");
        assert_eq!(normal, path);
    }
    assert_eq!(normalized("/a/b?x=%2F&y=..").unwrap(), "/a/b");
}

#[test]
fn every_spelling_of_a_path_reads_as_one() {
    for (raw, expected) in [
        ("//protected/x", "/protected/x"),
        ("/protected//x", "/protected/x"),
        ("/a/../protected/x", "/protected/x"),
        ("/./protected/./x", "/protected/x"),
        ("/%2e%2e/protected/x", "/protected/x"),
        ("/a/%2E%2E/protected/x", "/protected/x"),
        ("/%70rotected/x", "/protected/x"),
        ("/protected;x/y", "/protected/y"),
        ("/protected;a=b;c/y;jsessionid=1", "/protected/y"),
        ("/;x/protected/y", "/protected/y"),
        ("/protected/x/..", "/protected/"),
        ("/protected/.", "/protected/"),
        ("/protected/..", "/"),
        ("/../../..", "/"),
        ("/users/auth0%7cabc", "/users/auth0%7Cabc"),
        ("/caf%C3%A9/x", "/caf%C3%A9/x"),
        ("/ünï/../x;p", "/x"),
        ("/ü%41/x", "/üA/x"),
    ] {
        assert_eq!(normalized(raw).unwrap(), expected, "{raw}");
    }
}

#[test]
fn paths_without_one_reading_are_refused() {
    for raw in [
        "/protected%2Fx",
        "/protected%2fx",
        "/%2Fprotected/x",
        "/protected%5Cx",
        "/protected%5cx",
        "/protected\\x",
        "/protected/%00",
        "/protected/%0d%0a",
        "/protected/x%",
        "/protected/x%4",
        "/protected/x%zz",
        "/ü%2F",
        "/ü\\",
        "/p\u{1}",
        "protected/x",
        "",
        "*",
    ] {
        assert!(normalized(raw).is_err(), "{raw:?}");
    }
}

#[test]
fn prefixes_match_in_any_case() {
    assert!(starts_with_ignoring_case("/PROTECTED/x", "/protected/"));
    assert!(starts_with_ignoring_case("/protected/", "/protected/"));
    assert!(!starts_with_ignoring_case("/protected", "/protected/"));
    assert!(!starts_with_ignoring_case("/public/x", "/protected/"));
}
