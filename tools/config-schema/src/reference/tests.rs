use super::*;
use serde_json::json;

#[test]
fn an_unknown_keyword_is_an_error() {
    let schema = json!({"oneOf": [], "$defs": {"A": {"type": "object", "properties": {
        "x": {"type": "string", "format": "email"}}}}});
    let error = page(&schema).expect_err("format is not documented");
    assert!(error.contains("`format`"), "{error}");
}

#[test]
fn an_object_rule_must_be_said_in_words() {
    let schema = json!({"oneOf": [{"$ref": "#/$defs/A"}], "$defs": {"A": {
        "type": "object", "properties": {"x": {"type": "string"}}, "not": {"required": ["x"]}}}});
    let error = page(&schema).expect_err("not without x-rules");
    assert!(error.contains("x-rules"), "{error}");
}

#[test]
fn the_page_says_every_field_and_its_constraints() {
    let page = page(&crate::schema()).expect("page");
    for field in [
        "`calloutTimeoutMs`",
        "`webdisCluster`",
        "`connectionId`",
        "`role`",
    ] {
        assert!(page.contains(field), "{field} missing");
    }
    assert!(page.contains("from 1 to 60000"), "range missing");
    assert!(
        page.contains("At `clients.<name>`."),
        "a map's location missing"
    );
    assert!(
        page.contains("| `clients.<name>.auth0Url` |"),
        "load-time rule missing"
    );
}
