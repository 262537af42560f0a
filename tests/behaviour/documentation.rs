//! `GET /documentation/json` through a real Envoy: the OpenAPI description the filter serves
//! is openapi.yaml's content, and the switch turns it off. Run through `make test`.

use harness::Gateway;
use serde_json::json;

/// openapi.yaml as a JSON value.
fn openapi_yaml() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml");
    // The spec shares operations with YAML merge keys (`<<: *refresh`), as PyYAML reads them.
    let mut value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).expect("openapi.yaml parses");
    value.apply_merge().expect("merge keys resolve");
    serde_json::to_value(value).expect("openapi.yaml as JSON")
}

#[test]
fn serves_openapi_yaml_as_json() {
    let gw = Gateway::start("documentation", json!({}));
    let r = gw.call("GET", "/documentation/json", &[], None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), openapi_yaml());
    // Only GET is the filter's; anything else passes through to the upstream.
    let post = gw.call("POST", "/documentation/json", &[], Some(b"{}"));
    assert!(post.body.find("\"openapi\"").is_none(), "{}", post.body);
}

#[test]
fn switched_off_the_route_passes_through() {
    let gw = Gateway::start("documentation_off", json!({"serveDocumentation": false}));
    let r = gw.call("GET", "/documentation/json", &[], None);
    assert!(r.body.find("\"openapi\"").is_none(), "{}", r.body);
}
