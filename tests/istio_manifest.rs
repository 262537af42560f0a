//! `istio/wasmplugin.yaml` and its replacement `istio/envoyfilter.yaml`: every document
//! parses, has the kinds and API versions Istio expects, and the filter configuration is
//! accepted by the filter's own config parser (so a renamed config field breaks this test) and
//! reaches Auth0 through the cluster Istio generates for the ServiceEntry. The EnvoyFilter must
//! set `allow_on_headers_stop_iteration` and stay the same deployment as the WasmPlugin.

use std::collections::BTreeSet;
use std::path::Path;

use auth0_filter::config::Config;
use serde::Deserialize;
use serde_json::Value;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// All YAML documents of a YAML file, as JSON values.
fn yaml_documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).expect("a YAML document"))
        .collect()
}

/// The documents of `istio/wasmplugin.yaml`.
fn wasm_plugin_file_documents() -> Vec<Value> {
    yaml_documents(&repo_file("istio/wasmplugin.yaml"))
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

/// Each document's `kind` and `apiVersion`, in file order.
fn kinds_and_versions(documents: &[Value]) -> Vec<(&str, &str)> {
    documents
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default(),
                d["apiVersion"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn the_manifest_has_the_three_resources_with_their_api_versions() {
    let documents = wasm_plugin_file_documents();
    let kinds = kinds_and_versions(&documents);
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
    let documents = wasm_plugin_file_documents();
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
    let documents = wasm_plugin_file_documents();
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
    let documents = wasm_plugin_file_documents();
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
    let documents = wasm_plugin_file_documents();
    let store = &document(&documents, "WasmPlugin")["spec"]["pluginConfig"]["sessionStore"];
    let authority = store["webdisAuthority"].as_str().expect("webdisAuthority");
    assert!(authority.ends_with(".svc.cluster.local"), "{authority}");
    assert_eq!(
        store["webdisCluster"].as_str(),
        Some(format!("outbound|7379||{authority}").as_str())
    );
}

// ---- istio/envoyfilter.yaml: the WasmPlugin's replacement that can set the pause flag ----

const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const RBAC_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";

/// The documents of `istio/envoyfilter.yaml`.
fn envoy_filter_file_documents() -> Vec<Value> {
    yaml_documents(&repo_file("istio/envoyfilter.yaml"))
}

/// The EnvoyFilter's two patches: the ECDS extension it adds and the HTTP filter it inserts.
fn extension_and_http_filter_patches(documents: &[Value]) -> (Value, Value) {
    let patches = document(documents, "EnvoyFilter")["spec"]["configPatches"]
        .as_array()
        .expect("configPatches")
        .clone();
    assert_eq!(patches.len(), 2, "{patches:?}");
    (patches[0].clone(), patches[1].clone())
}

/// The wasm `PluginConfig` (`envoy.extensions.wasm.v3.PluginConfig`) the EnvoyFilter serves.
fn served_plugin_config(documents: &[Value]) -> Value {
    let (extension, _) = extension_and_http_filter_patches(documents);
    let typed_config = &extension["patch"]["value"]["typed_config"];
    assert_eq!(typed_config["@type"], WASM_FILTER_TYPE);
    typed_config["config"].clone()
}

/// The wasm filter config of `envoy/envoy.template.yaml`, the one the integration tests run.
fn local_plugin_config() -> Value {
    let mut text = repo_file("envoy/envoy.template.yaml");
    for (placeholder, value) in [
        ("{{FILTER_CONFIG}}", "{}"),
        ("{{WASM_PATH}}", "/filter.wasm"),
        ("{{PREFIX}}", ""),
        ("{{ADMIN_PORT}}", "1"),
        ("{{LISTEN_PORT}}", "2"),
        ("{{AUTH0_PORT}}", "3"),
        ("{{WEBDIS_PORT}}", "4"),
        ("{{UPSTREAM_PORT}}", "5"),
    ] {
        text = text.replace(placeholder, value);
    }
    let unknown_placeholder = text
        .split("{{")
        .skip(1)
        .any(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()));
    assert!(
        !unknown_placeholder,
        "a template placeholder this test does not fill"
    );
    let envoy = yaml_documents(&text).remove(0);
    let http_filters = &envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"];
    let wasm = http_filters
        .as_array()
        .expect("http_filters")
        .iter()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("the wasm filter");
    wasm["typed_config"]["config"].clone()
}

#[test]
fn the_envoy_filter_manifest_carries_the_same_egress_resources_as_the_wasm_plugin_one() {
    let documents = envoy_filter_file_documents();
    let kinds = kinds_and_versions(&documents);
    assert_eq!(
        kinds,
        [
            ("ServiceEntry", "networking.istio.io/v1"),
            ("DestinationRule", "networking.istio.io/v1"),
            ("EnvoyFilter", "networking.istio.io/v1alpha3"),
        ]
    );
    for d in &documents {
        assert_eq!(d["metadata"]["namespace"], "istio-system", "{d}");
    }
    // Each file is complete on its own; the Auth0 egress must not drift between them.
    let wasm_plugin_documents = wasm_plugin_file_documents();
    for kind in ["ServiceEntry", "DestinationRule"] {
        assert_eq!(
            document(&documents, kind),
            document(&wasm_plugin_documents, kind),
            "{kind}"
        );
    }
}

#[test]
fn the_envoy_filter_selects_the_wasm_plugins_gateway_and_names_one_extension() {
    let documents = envoy_filter_file_documents();
    let wasm_plugin_documents = wasm_plugin_file_documents();
    let wasm_plugin = document(&wasm_plugin_documents, "WasmPlugin");
    let envoy_filter = document(&documents, "EnvoyFilter");
    assert_eq!(envoy_filter["metadata"], wasm_plugin["metadata"]);
    assert_eq!(
        envoy_filter["spec"]["workloadSelector"]["labels"],
        wasm_plugin["spec"]["selector"]["matchLabels"]
    );

    let (extension, http_filter) = extension_and_http_filter_patches(&documents);
    // Istio serves EXTENSION_CONFIG patches only with operation ADD (MERGE is skipped).
    assert_eq!(extension["applyTo"], "EXTENSION_CONFIG");
    assert_eq!(extension["patch"]["operation"], "ADD");
    assert_eq!(extension["match"]["context"], "GATEWAY");
    let name = format!(
        "{}.{}",
        envoy_filter["metadata"]["namespace"]
            .as_str()
            .expect("namespace"),
        envoy_filter["metadata"]["name"].as_str().expect("name")
    );
    assert_eq!(extension["patch"]["value"]["name"], name.as_str());

    // The HTTP filter goes before the router of every gateway HTTP connection manager and
    // loads the extension above by name, over ADS, waiting for it (no unfiltered window).
    assert_eq!(http_filter["applyTo"], "HTTP_FILTER");
    assert_eq!(http_filter["match"]["context"], "GATEWAY");
    let filter_match = &http_filter["match"]["listener"]["filterChain"]["filter"];
    assert_eq!(
        filter_match["name"],
        "envoy.filters.network.http_connection_manager"
    );
    assert_eq!(
        filter_match["subFilter"]["name"],
        "envoy.filters.http.router"
    );
    assert_eq!(http_filter["patch"]["operation"], "INSERT_BEFORE");
    let value = &http_filter["patch"]["value"];
    assert_eq!(value["name"], name.as_str());
    assert!(
        value.get("typed_config").is_none(),
        "inline config: {value}"
    );
    let discovery = &value["config_discovery"];
    assert!(discovery["config_source"]["ads"].is_object(), "{discovery}");
    assert_eq!(discovery["config_source"]["resource_api_version"], "V3");
    assert_eq!(discovery["config_source"]["initial_fetch_timeout"], "0s");
    // The Istio agent replaces a module it cannot fetch with an RBAC filter of the same name.
    assert_eq!(
        discovery["type_urls"],
        serde_json::json!([WASM_FILTER_TYPE, RBAC_FILTER_TYPE])
    );
}

#[test]
fn the_served_wasm_config_lets_the_filter_pause_for_the_body() {
    let documents = envoy_filter_file_documents();
    let config = served_plugin_config(&documents);
    // The reason the file exists.
    assert_eq!(config["allow_on_headers_stop_iteration"], true);
    assert_eq!(config["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
    // Same plugin identity as the local Envoy config the integration tests run.
    let local = local_plugin_config();
    for field in ["name", "root_id", "allow_on_headers_stop_iteration"] {
        assert_eq!(config[field], local[field], "{field}");
    }
    for field in ["vm_id", "runtime"] {
        assert_eq!(
            config["vm_config"][field], local["vm_config"][field],
            "{field}"
        );
    }
}

#[test]
fn the_served_wasm_config_is_the_wasm_plugin_translated() {
    let documents = envoy_filter_file_documents();
    let config = served_plugin_config(&documents);
    let wasm_plugin_documents = wasm_plugin_file_documents();
    let spec = &document(&wasm_plugin_documents, "WasmPlugin")["spec"];

    assert_eq!(config["root_id"], spec["pluginName"]);
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    assert_eq!(config["failure_policy"], "FAIL_CLOSED");
    assert_eq!(
        config["vm_config"]["environment_variables"]["key_values"]
            ["ISTIO_META_WASM_IMAGE_PULL_POLICY"],
        spec["imagePullPolicy"]
    );

    // The module: the WasmPlugin's image, fetched by the Istio agent (`_` is never dialled),
    // checked against a digest the user fills in.
    let remote = &config["vm_config"]["code"]["remote"];
    assert_eq!(remote["http_uri"]["uri"], spec["url"]);
    assert_eq!(remote["http_uri"]["cluster"], "_");
    assert_eq!(remote["http_uri"]["timeout"], "30s");
    let sha256 = remote["sha256"].as_str().expect("sha256");
    let is_digest = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    let is_placeholder = sha256.starts_with('<') && sha256.ends_with('>');
    assert!(is_digest || is_placeholder, "{sha256}");
    assert!(config["vm_config"]["code"].get("local").is_none());
}

#[test]
fn the_served_filter_configuration_is_the_wasm_plugins_plugin_config() {
    let documents = envoy_filter_file_documents();
    let configuration = &served_plugin_config(&documents)["configuration"];
    assert_eq!(
        configuration["@type"],
        "type.googleapis.com/google.protobuf.StringValue"
    );
    let json = configuration["value"].as_str().expect("a JSON string");
    // What Envoy hands on_configure: the filter's own parser must accept it.
    Config::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let served: Value = serde_json::from_str(json).expect("JSON");
    let wasm_plugin_documents = wasm_plugin_file_documents();
    assert_eq!(
        served,
        document(&wasm_plugin_documents, "WasmPlugin")["spec"]["pluginConfig"]
    );
}
