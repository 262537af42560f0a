//! Every plugin configuration in the shipped Kubernetes manifests (every YAML file under
//! `istio/` and `envoy-gateway/`, found by walking the folders) must be accepted by the
//! filter's own parser, `auth0_filter_core::config::Plugin::from_json`: the CRDs take any JSON
//! there, so only this catches a misspelt or mistyped filter setting before a gateway does.
//! Where the configurations are: `harness::plugin_configurations`.
//!
//! The schema side (each manifest against its CRD) is `tests/check_manifests.py`. The
//! fixtures under `tests/fixtures/manifests/` prove both checks reject what they must.

use std::path::PathBuf;

use auth0_filter_core::config::Plugin;
use harness::{
    plugin_configurations, repo, shipped_manifest_files, yaml_files, MANIFEST_DIRS, WASM_TYPE,
};

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

fn fixture_files(folder: &str) -> Vec<PathBuf> {
    let files = yaml_files(&repo().join("tests/fixtures/manifests").join(folder));
    assert!(!files.is_empty(), "no fixture in {folder}");
    files
}

#[test]
fn every_shipped_plugin_configuration_is_accepted_by_the_filter() {
    let files = shipped_manifest_files();
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
