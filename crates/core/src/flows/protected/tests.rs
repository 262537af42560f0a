use super::contains_ignoring_case;

#[test]
fn contains_ignoring_case_matches_any_case_anywhere() {
    assert!(contains_ignoring_case(
        "Text/HTML,application/xhtml+xml",
        "text/html"
    ));
    assert!(contains_ignoring_case(
        "*/*; q=0.8, APPLICATION/JSON",
        "application/json"
    ));
    assert!(!contains_ignoring_case("text/htm", "text/html"));
    assert!(!contains_ignoring_case("", "text/html"));
    assert!(contains_ignoring_case("anything", ""));
}
