//! `GET /documentation/json` through a real Envoy: the OpenAPI description the filter serves
//! is openapi.yaml's content, and the switch turns it off. Run through `make test`.

mod harness;

use harness::Gateway;
use serde_json::json;

/// openapi.yaml as a JSON value, converted by the PyYAML of the project's .venv (the one next
/// to ENVOY_BIN), so the test needs no YAML crate.
fn openapi_yaml() -> serde_json::Value {
    let envoy = std::env::var("ENVOY_BIN").expect("ENVOY_BIN");
    let python = std::path::Path::new(&envoy).with_file_name("python");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open('openapi.yaml')), sys.stdout)",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the .venv python (make build installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("openapi.yaml as JSON")
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
