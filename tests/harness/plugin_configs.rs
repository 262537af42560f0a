//! Where the shipped files hold a plugin configuration, and the original auth0-client's
//! example filled as a deployment fills it: what `tests/shipping/manifests.rs` runs through
//! the filter's parser and `tests/shipping/config_schema.rs` through the JSON Schema.
//!
//! In a Kubernetes manifest or an Envoy config a configuration sits in:
//! - an Istio `WasmPlugin`: `spec.pluginConfig`;
//! - an Envoy Gateway `EnvoyExtensionPolicy`: `spec.wasm[].config`;
//! - anywhere in any document (EnvoyFilter patches, EnvoyPatchPolicy JSON patches, nested in
//!   an ExtensionWithMatcher or composite action, an Envoy bootstrap): a `typed_config` of type
//!   `envoy.extensions.filters.http.wasm.v3.Wasm`, whose `config.configuration` is a
//!   `google.protobuf.StringValue` holding the JSON.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

/// The folders of the shipped Kubernetes manifests.
pub const MANIFEST_DIRS: [&str; 2] = ["istio", "envoy-gateway"];
pub const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";

/// Every `*.yaml`/`*.yml` file below `dir`, sorted; none if `dir` does not exist.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every YAML file of the shipped manifests (`MANIFEST_DIRS`).
pub fn shipped_manifest_files() -> Vec<PathBuf> {
    MANIFEST_DIRS
        .iter()
        .flat_map(|dir| yaml_files(&super::repo().join(dir)))
        .collect()
}

/// A plugin configuration's JSON bytes, or why a file has none where it must.
pub type Json = Result<Vec<u8>, String>;

/// One plugin configuration found in a file: where it is, and its JSON.
pub struct Found {
    pub place: String,
    pub json: Json,
}

fn documents(file: &str, text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|e| panic!("{file}: not YAML: {e}"))
        })
        .filter(|document| !document.is_null())
        .collect()
}

fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serialises")
}

/// The plugin configurations of every document of a YAML file.
pub fn plugin_configurations(path: &Path) -> Vec<Found> {
    let file = path
        .strip_prefix(super::repo())
        .unwrap_or(path)
        .display()
        .to_string();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    plugin_configurations_in(&file, &text)
}

/// The plugin configurations of every document of YAML `text`, named `file` in their places.
pub fn plugin_configurations_in(file: &str, text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    for (index, document) in documents(file, text).iter().enumerate() {
        let name = document["metadata"]["name"].as_str().unwrap_or("?");
        let at = |what: &str| format!("{file}#{} {name}: {what}", index + 1);
        match document["kind"].as_str() {
            Some("WasmPlugin") => found.push(Found {
                place: at("spec.pluginConfig"),
                json: match &document["spec"]["pluginConfig"] {
                    Value::Null => Err("a WasmPlugin without pluginConfig".into()),
                    config => Ok(to_json(config)),
                },
            }),
            Some("EnvoyExtensionPolicy") => {
                let wasm = document["spec"]["wasm"].as_array().cloned();
                for (i, entry) in wasm.unwrap_or_default().iter().enumerate() {
                    found.push(Found {
                        place: at(&format!("spec.wasm[{i}].config")),
                        json: match &entry["config"] {
                            Value::Null => Err("a wasm entry without config".into()),
                            config => Ok(to_json(config)),
                        },
                    });
                }
            }
            _ => {}
        }
        wasm_typed_configs(document, "", &mut |place, json| {
            found.push(Found {
                place: at(place),
                json,
            })
        });
    }
    found
}

/// Calls `found` for every object below `value` whose `@type` is Envoy's Wasm HTTP filter,
/// with the JSON its `config.configuration` holds.
fn wasm_typed_configs(value: &Value, place: &str, found: &mut dyn FnMut(&str, Json)) {
    match value {
        Value::Object(map) => {
            if map.get("@type").and_then(Value::as_str) == Some(WASM_TYPE) {
                let configuration = &value["config"]["configuration"];
                let json = if configuration.is_null() {
                    Err("a Wasm filter config without config.configuration".into())
                } else if configuration["@type"] != STRING_VALUE_TYPE {
                    Err(format!(
                        "config.configuration is {}, not a {STRING_VALUE_TYPE}",
                        configuration["@type"]
                    ))
                } else {
                    configuration["value"]
                        .as_str()
                        .map(|s| s.as_bytes().to_vec())
                        .ok_or_else(|| "config.configuration.value is not a string".into())
                };
                found(&format!("{place}.config.configuration.value"), json);
            }
            for (key, child) in map {
                wasm_typed_configs(child, &format!("{place}.{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                wasm_typed_configs(child, &format!("{place}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// The Console interpolations of the original's example, with the emulator tenant's
/// credentials.
const INTERPOLATIONS: &[(&str, &str)] = &[
    ("{{AUTH0_CLIENT_ID}}", "website-client-id"),
    (
        "{{AUTH0_CLIENT_SECRET}}",
        "website-client-secret-0123456789",
    ),
    ("{{AUTH0_MANAGEMENT_CLIENT_ID}}", "management-client-id"),
    (
        "{{AUTH0_MANAGEMENT_CLIENT_SECRET}}",
        "management-client-secret-0123456789",
    ),
];

/// The original's documented example `config.json` (`tests/fixtures/original-config.json`)
/// with its placeholders filled: the Console interpolations, and the tenant URLs the
/// documentation elides as `…`. `{{AUTH0_PORT}}` is left for the harness.
pub fn filled_original_config() -> Value {
    let path = super::repo().join("tests/fixtures/original-config.json");
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    for (placeholder, value) in INTERPOLATIONS {
        assert!(
            text.contains(placeholder),
            "{placeholder} not in the fixture"
        );
        text = text.replace(placeholder, value);
    }
    let mut config: Value = serde_json::from_str(&text).expect("fixture JSON");
    let tenant = "http://127.0.0.1:{{AUTH0_PORT}}/";
    // The values the documentation elides as `…`.
    for (pointer, value) in [
        ("/clients/cms/auth0Url", tenant),
        (
            "/clients/cms/redirectUrl",
            "http://localhost:8080/web-login/callback",
        ),
        ("/clients/cms/audience", "https://api.example.org"),
        ("/managementClient/auth0Url", tenant),
    ] {
        let slot = config.pointer_mut(pointer).expect(pointer);
        assert_eq!(slot, "…", "{pointer} is no longer elided in the fixture");
        *slot = json!(value);
    }
    config
}

/// The gateway fields the original has no equivalent for: which Envoy cluster reaches the
/// tenant, and trusting the `client-type` header that Mia's API gateway sets in front of the
/// original (its example has `"defaultClient": ""`, so the client comes from that header).
pub fn original_gateway_fields() -> Value {
    json!({
        "auth0Clusters": {"127.0.0.1:{{AUTH0_PORT}}": "auth0"},
        "trustClientTypeHeader": true
    })
}
