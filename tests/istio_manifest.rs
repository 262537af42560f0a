//! `istio/wasmplugin.yaml`: every document parses, has the kinds and API versions Istio
//! expects, and the WasmPlugin's `pluginConfig` is accepted by the filter's own config parser
//! (so a renamed config field breaks this test) and reaches Auth0 through the cluster Istio
//! generates for the ServiceEntry.

use std::collections::BTreeSet;
use std::path::Path;

use auth0_filter::config::Config;
use serde::Deserialize;
use serde_json::Value;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// All YAML documents of the manifest, as JSON values.
fn documents() -> Vec<Value> {
    let text = repo_file("istio/wasmplugin.yaml");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("a YAML document"))
        .collect()
}

fn document<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = documents.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .host_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_manifest_has_the_three_resources_with_their_api_versions() {
    let documents = documents();
    let kinds: Vec<(&str, &str)> = documents
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default(),
                d["apiVersion"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("ServiceEntry", "networking.istio.io/v1"),
            ("DestinationRule", "networking.istio.io/v1"),
            ("WasmPlugin", "extensions.istio.io/v1alpha1"),
        ]
    );
    for d in &documents {
        assert!(d["metadata"]["name"].is_string(), "{d}");
        assert_eq!(d["metadata"]["namespace"], "istio-system", "{d}");
    }
}

#[test]
fn the_wasm_plugin_runs_on_the_ingress_gateway_in_the_authn_phase() {
    let documents = documents();
    let spec = &document(&documents, "WasmPlugin")["spec"];
    assert_eq!(spec["selector"]["matchLabels"]["istio"], "ingressgateway");
    assert_eq!(spec["phase"], "AUTHN");
    assert_eq!(spec["type"], "HTTP");
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    assert!(
        ["IfNotPresent", "Always"].contains(&spec["imagePullPolicy"].as_str().unwrap_or("")),
        "{}",
        spec["imagePullPolicy"]
    );
    let url = spec["url"].as_str().expect("url");
    assert!(url.starts_with("oci://") && url.contains(':'), "{url}");
    assert!(spec["pluginConfig"].is_object());
}

#[test]
fn the_plugin_config_is_accepted_by_the_filter() {
    let documents = documents();
    let plugin_config = &document(&documents, "WasmPlugin")["spec"]["pluginConfig"];
    // Istio hands pluginConfig to the filter as JSON: the same parser Envoy's on_configure runs.
    let config =
        Config::from_json(plugin_config.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.clients.contains_key("website"));
    // The same fields as the local-run config (plus the production-only ones).
    let local: Value = serde_json::from_str(&repo_file("envoy/filter-config.json")).expect("json");
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let missing: Vec<String> = keys(&local)
        .difference(&keys(plugin_config))
        .cloned()
        .collect();
    assert!(missing.is_empty(), "pluginConfig lacks {missing:?}");
    assert_eq!(keys(&local["clients"]), keys(&plugin_config["clients"]));
}

#[test]
fn auth0_is_one_host_reached_through_istios_cluster_with_tls() {
    let documents = documents();
    let service_entry = &document(&documents, "ServiceEntry")["spec"];
    let destination_rule = &document(&documents, "DestinationRule")["spec"];
    let plugin_config = &document(&documents, "WasmPlugin")["spec"]["pluginConfig"];

    let hosts = service_entry["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 1);
    let host = hosts[0].as_str().expect("host");
    assert!(host.ends_with(".auth0.com"), "{host}");
    assert_eq!(service_entry["location"], "MESH_EXTERNAL");
    assert_eq!(service_entry["resolution"], "DNS");
    let ports = service_entry["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["number"], 443);

    // The DestinationRule originates TLS to the same host, with SNI, on that port.
    assert_eq!(destination_rule["host"], host);
    let settings = destination_rule["trafficPolicy"]["portLevelSettings"]
        .as_array()
        .expect("portLevelSettings");
    assert_eq!(settings.len(), 1);
    assert_eq!(settings[0]["port"]["number"], 443);
    assert_eq!(settings[0]["tls"]["mode"], "SIMPLE");
    assert_eq!(settings[0]["tls"]["sni"], host);

    // Every Auth0 URL of the filter config names that host, and its callout cluster is the
    // one Istio generates for the ServiceEntry.
    let mut urls = vec![plugin_config["managementClient"]["auth0Url"].clone()];
    for client in plugin_config["clients"]
        .as_object()
        .expect("clients")
        .values()
    {
        urls.push(client["auth0Url"].clone());
    }
    for url in urls {
        assert_eq!(host_of(url.as_str().expect("auth0Url")), host, "{url}");
    }
    let clusters = plugin_config["auth0Clusters"]
        .as_object()
        .expect("clusters");
    assert_eq!(clusters.len(), 1);
    assert_eq!(
        clusters.get(host).and_then(Value::as_str),
        Some(format!("outbound|443||{host}").as_str())
    );
}

#[test]
fn the_session_store_cluster_follows_istios_naming_too() {
    let documents = documents();
    let store = &document(&documents, "WasmPlugin")["spec"]["pluginConfig"]["sessionStore"];
    let authority = store["webdisAuthority"].as_str().expect("webdisAuthority");
    assert!(authority.ends_with(".svc.cluster.local"), "{authority}");
    assert_eq!(
        store["webdisCluster"].as_str(),
        Some(format!("outbound|7379||{authority}").as_str())
    );
}
