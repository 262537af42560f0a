use super::*;
use crate::testing::{config_with, FakeHost, MemKv};
use crate::time::Timestamp;

/// The filter's answer to `GET path`; `None` when the request goes upstream.
fn get(config: &crate::config::Config, path: &str) -> Option<Reply> {
    let headers = [(":method", "GET"), (":path", path)];
    let mut host = FakeHost::with_request(MemKv::default(), Timestamp::from_secs(0), &headers);
    let config = std::rc::Rc::new(config.clone());
    let mut runner = crate::engine::Runner::new(Some(config), Default::default());
    runner.on_request_headers(&mut host, true);
    host.reply
}

#[test]
fn the_document_is_an_openapi_description_of_the_routes() {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0."));
    for path in [
        "/oauth/token",
        "/logout",
        "/users/{userID}",
        "/documentation/json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}

#[test]
fn served_by_default_under_the_prefix_without_a_client() {
    let config = config_with(serde_json::json!({"servicePrefix": "/auth"}));
    let Some(reply) = get(&config, "/auth/documentation/json?x=1") else {
        panic!("not answered");
    };
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let served: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let embedded: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
    assert_eq!(served, embedded);
    assert!(get(&config, "/documentation/json").is_none());
}

/// Every string under a credential-named member (`password`, `clientSecret`, `key`,
/// `apiKeys`, ...), at any depth.
fn credentials(value: &serde_json::Value, named: bool, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if named => out.push(s.clone()),
        serde_json::Value::Array(items) => {
            items.iter().for_each(|v| credentials(v, named, out));
        }
        serde_json::Value::Object(members) => {
            for (name, v) in members {
                let name = name.to_ascii_lowercase();
                let credential = name.contains("password")
                    || name.contains("secret")
                    || name.ends_with("key")
                    || name.ends_with("keys");
                credentials(v, credential, out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_served_document_shows_no_demo_credential() {
    let mut demo = Vec::new();
    for file in [
        include_str!("../../../../../emulator/tenant.json"),
        include_str!("../../../../../envoy/filter-config.json"),
    ] {
        let parsed: serde_json::Value = serde_json::from_str(file).unwrap();
        credentials(&parsed, false, &mut demo);
    }
    // What the walk must find, so a renamed member cannot make this test vacuous.
    for expected in [
        "Alice-Passw0rd!",
        "website-client-secret-0123456789",
        "management-client-secret-0123456789",
        "app-api-key",
        "admin-api-key",
    ] {
        assert!(demo.iter().any(|d| d == expected), "{expected}");
    }
    let config = config_with(serde_json::json!({}));
    let Some(reply) = get(&config, "/documentation/json") else {
        panic!("not answered");
    };
    let served = String::from_utf8(reply.body).unwrap();
    for credential in demo.iter().filter(|d| d.len() >= 8) {
        assert!(!served.contains(credential.as_str()), "{credential}");
    }
    // Nor anything shaped like the demo passwords (`Grace-Passw0rd!` is in docs/user-management.md).
    assert!(!served.contains("Passw0rd"));
}

#[test]
fn switched_off_it_passes_through() {
    let config = config_with(serde_json::json!({"serveDocumentation": false}));
    assert!(get(&config, "/documentation/json").is_none());
}

#[test]
fn its_path_can_be_changed_and_is_validated() {
    let config = config_with(serde_json::json!({"paths": {"documentation": ["/api-docs"]}}));
    assert!(get(&config, "/api-docs").is_some());
    assert!(get(&config, "/documentation/json").is_none());
    let mut json = crate::testing::base_json();
    json["paths"] = serde_json::json!({"documentation": ["/logout"]});
    let err = crate::config::Config::from_json(json.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "paths.documentation[0]");
    json["paths"] = serde_json::json!({"documentation": ["docs"]});
    let err = crate::config::Config::from_json(json.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "paths.documentation[0]");
    json["paths"] = serde_json::json!({});
    json["serveDocumentation"] = serde_json::json!("yes");
    let err = crate::config::Config::from_json(json.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "serveDocumentation");
}
