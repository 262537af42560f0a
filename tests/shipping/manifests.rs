//! Every plugin configuration in the shipped Kubernetes manifests (every YAML file under
//! `istio/` and `envoy-gateway/`, found by walking the folders) must be accepted by the
//! filter's own parser, `auth0_filter_core::config::Plugin::from_json`: the CRDs take any JSON
//! there, so only this catches a misspelt or mistyped filter setting before a gateway does.
//! Where the configurations are:
//! - Istio `WasmPlugin`: `spec.pluginConfig`;
//! - Envoy Gateway `EnvoyExtensionPolicy`: `spec.wasm[].config`;
//! - anywhere in any document (EnvoyFilter patches, EnvoyPatchPolicy JSON patches, nested in
//!   an ExtensionWithMatcher or composite action): a `typed_config` of type
//!   `envoy.extensions.filters.http.wasm.v3.Wasm`, whose `config.configuration` is a
//!   `google.protobuf.StringValue` holding the JSON.
//!
//! The schema side (each manifest against its CRD) is `tests/check_manifests.py`. The
//! fixtures under `tests/fixtures/manifests/` prove both checks reject what they must.

use std::path::{Path, PathBuf};

use auth0_filter_core::config::Plugin;
use serde::Deserialize;
use serde_json::Value;

const MANIFEST_DIRS: [&str; 2] = ["istio", "envoy-gateway"];
const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `*.yaml`/`*.yml` file below `dir`, sorted; none if `dir` does not exist.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
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

/// A plugin configuration's JSON bytes, or why a manifest has none where it must.
type Json = Result<Vec<u8>, String>;

/// One plugin configuration found in a manifest: where it is, and its JSON.
struct Found {
    place: String,
    json: Json,
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|e| panic!("{path:?}: not YAML: {e}"))
        })
        .filter(|document| !document.is_null())
        .collect()
}

fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serialises")
}

/// The plugin configurations of every document of a file.
fn plugin_configurations(path: &Path) -> Vec<Found> {
    let file = path
        .strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string();
    let mut found = Vec::new();
    for (index, document) in documents(path).iter().enumerate() {
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

/// Each configuration of the files, with the filter's verdict.
fn verdicts(files: &[PathBuf]) -> Vec<(String, Result<Plugin, String>)> {
    files
        .iter()
        .flat_map(|path| plugin_configurations(path))
        .map(|found| {
            let verdict = found
                .json
                .and_then(|json| Plugin::from_json(&json).map_err(|e| e.to_string()));
            (found.place, verdict)
        })
        .collect()
}

fn shipped_files() -> Vec<PathBuf> {
    MANIFEST_DIRS
        .iter()
        .flat_map(|dir| yaml_files(&repo().join(dir)))
        .collect()
}

fn fixture_files(folder: &str) -> Vec<PathBuf> {
    let files = yaml_files(&repo().join("tests/fixtures/manifests").join(folder));
    assert!(!files.is_empty(), "no fixture in {folder}");
    files
}

#[test]
fn every_shipped_plugin_configuration_is_accepted_by_the_filter() {
    let files = shipped_files();
    assert!(!files.is_empty(), "no manifest under {MANIFEST_DIRS:?}");
    let verdicts = verdicts(&files);
    assert!(!verdicts.is_empty(), "no plugin configuration in {files:?}");
    let mut rejected = Vec::new();
    for (place, verdict) in &verdicts {
        match verdict {
            Ok(Plugin::Filter(_)) => eprintln!("ok {place} (filter)"),
            Ok(Plugin::Hold) => eprintln!("ok {place} (hold instance)"),
            Err(e) => rejected.push(format!("{place}: {e}")),
        }
    }
    assert!(
        rejected.is_empty(),
        "plugin configurations the filter rejects:\n{}",
        rejected.join("\n")
    );
}

/// The discovery finds every place a configuration can sit: the good fixtures hold a filter
/// and a hold instance in an EnvoyExtensionPolicy, in two WasmPlugins and in an EnvoyFilter.
#[test]
fn the_good_fixtures_configurations_are_found_and_accepted() {
    let verdicts = verdicts(&fixture_files("schema-good"));
    let places: Vec<&str> = verdicts.iter().map(|(p, _)| p.as_str()).collect();
    for expected in [
        "envoy-gateway.yaml#10 auth0-filter: spec.wasm[0].config",
        "envoy-gateway.yaml#10 auth0-filter: spec.wasm[1].config",
        "istio-waypoint.yaml#2 auth0-filter: spec.pluginConfig",
        "istio-waypoint.yaml#3 auth0-filter-hold: spec.pluginConfig",
        "istio-waypoint.yaml#4 auth0-filter: .spec.configPatches[0].patch.value.typed_config.config.configuration.value",
    ] {
        assert!(
            places.iter().any(|p| p.ends_with(expected)),
            "{expected} not found in {places:#?}"
        );
    }
    assert_eq!(verdicts.len(), 5, "{places:#?}");
    let holds = verdicts
        .iter()
        .filter(|(_, v)| matches!(v, Ok(Plugin::Hold)))
        .count();
    let filters = verdicts
        .iter()
        .filter(|(_, v)| matches!(v, Ok(Plugin::Filter(_))))
        .count();
    let errors: Vec<String> = verdicts
        .iter()
        .filter_map(|(p, v)| v.as_ref().err().map(|e| format!("{p}: {e}")))
        .collect();
    assert_eq!((filters, holds), (2, 3), "{errors:#?}");
}

/// Each config-bad fixture passes the CRD schema check (`make check-manifests` self-test)
/// and must fail here, with errors naming every `# expect:` line of the file.
#[test]
fn a_manifest_whose_plugin_configuration_the_filter_rejects_fails() {
    for path in fixture_files("config-bad") {
        let text = std::fs::read_to_string(&path).expect("fixture");
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# expect: "))
            .collect();
        assert!(!expected.is_empty(), "{path:?}: no `# expect:` line");
        let errors: Vec<String> = verdicts(std::slice::from_ref(&path))
            .into_iter()
            .filter_map(|(place, verdict)| verdict.err().map(|e| format!("{place}: {e}")))
            .collect();
        assert!(!errors.is_empty(), "{path:?}: accepted, must be rejected");
        for text in expected {
            assert!(
                errors.iter().any(|e| e.contains(text)),
                "{path:?}: no error mentions {text:?}: {errors:#?}"
            );
        }
    }
}

/// A configuration must be where the filter reads it: a WasmPlugin without pluginConfig or
/// an EnvoyFilter Wasm config without a StringValue configuration is an error, not a pass.
#[test]
fn a_missing_or_misplaced_configuration_is_an_error() {
    let dir = std::env::temp_dir().join(format!("auth0-manifests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("missing.yaml");
    std::fs::write(
        &path,
        format!(
            "kind: WasmPlugin\nmetadata: {{name: a}}\nspec: {{url: oci://x/y}}\n---\n\
             kind: EnvoyFilter\nmetadata: {{name: b}}\nspec:\n  configPatches:\n  - patch:\n      \
             value:\n        typed_config:\n          '@type': {WASM_TYPE}\n          config:\n            \
             configuration: {{'@type': type.googleapis.com/google.protobuf.Struct, value: {{}}}}\n"
        ),
    )
    .expect("write");
    let errors: Vec<String> = verdicts(std::slice::from_ref(&path))
        .into_iter()
        .map(|(_, v)| v.err().unwrap_or_default())
        .collect();
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("without pluginConfig"), "{errors:?}");
    assert!(
        errors[1].contains("not a type.googleapis.com/google.protobuf.StringValue"),
        "{errors:?}"
    );
}
