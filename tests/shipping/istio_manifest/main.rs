//! The Istio manifests (istio/gateway, istio/ambient, istio/envoyfilter) as files: every
//! document parses with the kinds and API versions Istio expects, every plugin configuration
//! passes the filter's own parser (`Plugin::from_json`, what `on_configure` runs, so a renamed
//! config field breaks this test), Auth0 is reached through the cluster Istio generates for the
//! ServiceEntry, the three shapes stay one deployment, and the EnvoyFilter shape's routes that
//! enable the filter cover every request the configuration owns. `tests/deploy_istio.rs` runs
//! them in Envoy.

use harness::manifest_named as one;

use std::collections::BTreeSet;
use std::path::Path;

use auth0_filter_core::config::{Config, ConfigError, Plugin};
use serde_json::{json, Value};

mod envoy_filter;

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const RBAC_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";
const FILTER_CONFIG_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";
/// The route name the EnvoyFilter enables the filter on.
const FILTER_ROUTE: &str = "auth0-filter";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every document of every file of `istio/<shape>`, as JSON values, in file-name order.
fn shape(shape: &str) -> Vec<Value> {
    harness::manifest_documents(&repo().join("istio").join(shape))
}

fn kinds(documents: &[Value]) -> Vec<(String, String, String)> {
    documents
        .iter()
        .map(|d| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                text(&d["kind"]),
                text(&d["apiVersion"]),
                text(&d["metadata"]["name"]),
            )
        })
        .collect()
}

fn owned(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

/// The EnvoyFilter's patches: the extension, the identity-header filter, the filter on the
/// chain, the route patch.
/// The EnvoyFilter shape's patches: the extension, the identity-header filter (its own
/// resource, applied first), the filter on the chain, the route switch.
fn envoy_filter_parts(documents: &[Value]) -> [Value; 4] {
    let patches = |name: &str| {
        one(documents, "EnvoyFilter", name)["spec"]["configPatches"]
            .as_array()
            .expect("configPatches")
            .clone()
    };
    let (filter, headers) = (patches("auth0-filter"), patches("auth0-identity-headers"));
    assert_eq!(
        (filter.len(), headers.len()),
        (3, 1),
        "{filter:?} {headers:?}"
    );
    let identity = one(documents, "EnvoyFilter", "auth0-identity-headers");
    assert_eq!(
        identity["spec"]["priority"], -1,
        "applied before the filter"
    );
    [
        filter[0].clone(),
        headers[0].clone(),
        filter[1].clone(),
        filter[2].clone(),
    ]
}

/// The filter configuration the EnvoyFilter serves (a JSON string inside the Wasm config).
fn envoy_filter_config(documents: &[Value]) -> Value {
    let [extension, ..] = envoy_filter_parts(documents);
    let wasm = &extension["patch"]["value"]["typed_config"];
    assert_eq!(wasm["@type"], WASM_TYPE);
    let json = wasm["config"]["configuration"]["value"]
        .as_str()
        .expect("a JSON string");
    serde_json::from_str(json).expect("JSON")
}

/// Every plugin configuration of a shape, with where it comes from.
fn plugin_configs(documents: &[Value]) -> Vec<(String, Value)> {
    let mut configs: Vec<(String, Value)> = documents
        .iter()
        .filter(|d| d["kind"] == "WasmPlugin")
        .map(|d| {
            (
                d["metadata"]["name"].as_str().unwrap_or("?").to_string(),
                d["spec"]["pluginConfig"].clone(),
            )
        })
        .collect();
    if documents.iter().any(|d| d["kind"] == "EnvoyFilter") {
        configs.push(("EnvoyFilter".into(), envoy_filter_config(documents)));
    }
    configs
}

/// What `on_configure` does with a plugin configuration: the check every shipped one passes.
fn check(config: &Value) -> Result<Plugin, ConfigError> {
    Plugin::from_json(config.to_string().as_bytes())
}

fn filter_config(config: &Value) -> Config {
    match check(config) {
        Ok(Plugin::Filter(config)) => *config,
        Ok(Plugin::Hold) => panic!("a hold instance where the filter was expected"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn every_shape_has_its_resources_with_their_api_versions() {
    let tenant = [
        ("ServiceEntry", "networking.istio.io/v1", "auth0-tenant"),
        ("DestinationRule", "networking.istio.io/v1", "auth0-tenant"),
    ];
    let plugins = [
        (
            "WasmPlugin",
            "extensions.istio.io/v1alpha1",
            "auth0-filter-hold",
        ),
        ("WasmPlugin", "extensions.istio.io/v1alpha1", "auth0-filter"),
    ];
    let gateway: Vec<_> = tenant.iter().chain(&plugins).copied().collect();
    assert_eq!(kinds(&shape("gateway")), owned(&gateway));
    let waypoint = [("Gateway", "gateway.networking.k8s.io/v1", "auth0-waypoint")];
    let ambient: Vec<_> = waypoint
        .iter()
        .chain(&tenant)
        .chain(&plugins)
        .copied()
        .collect();
    assert_eq!(kinds(&shape("ambient")), owned(&ambient));
    let filter = [
        ("Gateway", "networking.istio.io/v1", "app"),
        ("VirtualService", "networking.istio.io/v1", "app"),
        (
            "EnvoyFilter",
            "networking.istio.io/v1alpha3",
            "auth0-identity-headers",
        ),
        (
            "EnvoyFilter",
            "networking.istio.io/v1alpha3",
            "auth0-filter",
        ),
    ];
    let envoy_filter: Vec<_> = tenant.iter().chain(&filter).copied().collect();
    assert_eq!(kinds(&shape("envoyfilter")), owned(&envoy_filter));
    for (name, namespace) in [
        ("gateway", "istio-system"),
        ("ambient", "my-app"),
        ("envoyfilter", "istio-system"),
    ] {
        for d in shape(name) {
            assert_eq!(d["metadata"]["namespace"], namespace, "{name}: {d}");
        }
    }
}

#[test]
fn every_plugin_configuration_passes_the_filters_parser() {
    for name in ["gateway", "ambient", "envoyfilter"] {
        let configs = plugin_configs(&shape(name));
        assert!(!configs.is_empty());
        for (source, config) in configs {
            let parsed = check(&config).unwrap_or_else(|e| panic!("{name} {source}: {e}"));
            let is_hold = matches!(parsed, Plugin::Hold);
            assert_eq!(is_hold, source == "auth0-filter-hold", "{name} {source}");
        }
    }
}

#[test]
fn a_manifest_whose_plugin_configuration_the_filter_refuses_is_caught() {
    let documents = shape("gateway");
    let good = one(&documents, "WasmPlugin", "auth0-filter")["spec"]["pluginConfig"].clone();
    let mut renamed = good.clone();
    renamed["clientz"] = renamed["clients"].take();
    renamed.as_object_mut().map(|o| o.remove("clients"));
    let mut bad_mode = good.clone();
    bad_mode["bodyReading"] = json!("buffer");
    for bad in [renamed, bad_mode, json!({"role": "holder"}), json!({})] {
        assert!(check(&bad).is_err(), "accepted: {bad}");
    }
}

#[test]
fn the_wasm_plugins_are_the_filter_then_its_hold_instance_failing_closed() {
    for name in ["gateway", "ambient"] {
        let documents = shape(name);
        let filter = &one(&documents, "WasmPlugin", "auth0-filter")["spec"];
        let hold = &one(&documents, "WasmPlugin", "auth0-filter-hold")["spec"];
        for spec in [filter, hold] {
            assert_eq!(spec["phase"], "AUTHN", "{name}");
            assert_eq!(spec["type"], "HTTP", "{name}");
            assert_eq!(spec["failStrategy"], "FAIL_CLOSE", "{name}");
            let url = spec["url"].as_str().expect("url");
            assert!(url.starts_with("oci://") && url.contains(':'), "{url}");
            assert!(
                ["IfNotPresent", "Always"]
                    .contains(&spec["imagePullPolicy"].as_str().unwrap_or("")),
                "{name}"
            );
        }
        // Same module, same workload; the filter first (Istio: higher priority first).
        for field in ["url", "imagePullPolicy", "selector", "targetRefs"] {
            assert_eq!(filter[field], hold[field], "{name} {field}");
        }
        assert!(
            filter["priority"].as_i64() > hold["priority"].as_i64(),
            "{name}"
        );
        assert_ne!(filter["pluginName"], hold["pluginName"], "{name}");
        assert_eq!(hold["pluginConfig"], json!({"role": "hold"}), "{name}");
        let config = filter_config(&filter["pluginConfig"]);
        assert_eq!(
            config.body_reading,
            auth0_filter_core::config::BodyReading::HoldFilter,
            "{name}: a WasmPlugin cannot set allow_on_headers_stop_iteration"
        );
    }
    let gateway = shape("gateway");
    let selector = &one(&gateway, "WasmPlugin", "auth0-filter")["spec"]["selector"];
    assert_eq!(selector["matchLabels"]["istio"], "ingressgateway");
}

#[test]
fn the_waypoint_takes_the_plugins_by_target_refs_to_the_applications_service() {
    let documents = shape("ambient");
    let waypoint = one(&documents, "Gateway", "auth0-waypoint");
    assert_eq!(waypoint["spec"]["gatewayClassName"], "istio-waypoint");
    assert_eq!(
        waypoint["spec"]["listeners"],
        json!([{"name": "mesh", "port": 15008, "protocol": "HBONE"}])
    );
    assert_eq!(
        waypoint["metadata"]["labels"]["istio.io/waypoint-for"],
        "service"
    );
    for plugin in ["auth0-filter", "auth0-filter-hold"] {
        let spec = &one(&documents, "WasmPlugin", plugin)["spec"];
        assert!(spec.get("selector").is_none(), "waypoints ignore selector");
        assert_eq!(
            spec["targetRefs"],
            json!([{"kind": "Service", "group": "", "name": "my-app"}])
        );
    }
    // The tenant's ServiceEntry is bound to the waypoint, which then has a cluster for it.
    let entry = one(&documents, "ServiceEntry", "auth0-tenant");
    assert_eq!(
        entry["metadata"]["labels"]["istio.io/use-waypoint"],
        waypoint["metadata"]["name"]
    );
}

/// The tenant host, after checking the ServiceEntry and DestinationRule of a shape.
fn tenant_host(documents: &[Value]) -> String {
    let entry = &one(documents, "ServiceEntry", "auth0-tenant")["spec"];
    let rule = &one(documents, "DestinationRule", "auth0-tenant")["spec"];
    let hosts = entry["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 1);
    let host = hosts[0].as_str().expect("host").to_string();
    assert!(host.ends_with(".auth0.com"), "{host}");
    assert_eq!(entry["location"], "MESH_EXTERNAL");
    assert_eq!(entry["resolution"], "DNS");
    assert_eq!(
        entry["ports"],
        json!([{"number": 443, "name": "http-tls-origination", "protocol": "HTTP"}])
    );
    // The DestinationRule originates TLS to the same host, with SNI, on that port.
    assert_eq!(rule["host"], host.as_str());
    assert_eq!(
        rule["trafficPolicy"]["portLevelSettings"],
        json!([{"port": {"number": 443}, "tls": {"mode": "SIMPLE", "sni": host}}])
    );
    host
}

fn host_of(url: &Value) -> String {
    let url = url.as_str().expect("a URL");
    url::Url::parse(url)
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .host_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn auth0_and_the_session_store_are_reached_through_the_clusters_istio_generates() {
    for (name, cluster, store_cluster) in [
        ("gateway", "outbound|443||{}", "outbound|7379||{}"),
        (
            "ambient",
            "inbound-vip|443|http|{}",
            "inbound-vip|7379|http|{}",
        ),
        ("envoyfilter", "outbound|443||{}", "outbound|7379||{}"),
    ] {
        let documents = shape(name);
        let host = tenant_host(&documents);
        for (source, config) in plugin_configs(&documents) {
            if config.get("role").is_some() {
                continue;
            }
            let mut urls = vec![&config["managementClient"]["auth0Url"]];
            urls.extend(
                config["clients"]
                    .as_object()
                    .expect("clients")
                    .values()
                    .map(|c| &c["auth0Url"]),
            );
            for url in urls {
                assert_eq!(host_of(url), host, "{name} {source}");
            }
            assert_eq!(
                config["auth0Clusters"],
                json!({ &host: cluster.replace("{}", &host) }),
                "{name} {source}"
            );
            let store = &config["sessionStore"];
            let authority = store["webdisAuthority"].as_str().expect("webdisAuthority");
            assert!(authority.ends_with(".svc.cluster.local"), "{authority}");
            assert_eq!(
                store["webdisCluster"],
                store_cluster.replace("{}", authority).as_str()
            );
        }
    }
}

#[test]
fn the_three_shapes_are_one_deployment() {
    let gateway = shape("gateway");
    let envoy_filter = shape("envoyfilter");
    let reference = one(&gateway, "WasmPlugin", "auth0-filter");
    let plugin_config = &reference["spec"]["pluginConfig"];

    // The same fields as the local-run config (plus the production-only ones).
    let local: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("envoy/filter-config.json")).expect("config"),
    )
    .expect("json");
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let missing: Vec<_> = keys(&local)
        .difference(&keys(plugin_config))
        .cloned()
        .collect();
    assert!(missing.is_empty(), "pluginConfig lacks {missing:?}");
    assert_eq!(keys(&local["clients"]), keys(&plugin_config["clients"]));

    // The EnvoyFilter: same egress, same gateway, same filter config but for the body mode.
    for kind in ["ServiceEntry", "DestinationRule"] {
        assert_eq!(
            one(&envoy_filter, kind, "auth0-tenant")["spec"],
            one(&gateway, kind, "auth0-tenant")["spec"],
            "{kind}"
        );
    }
    let filter = one(&envoy_filter, "EnvoyFilter", "auth0-filter");
    assert_eq!(filter["metadata"], reference["metadata"]);
    assert_eq!(
        filter["spec"]["workloadSelector"]["labels"],
        reference["spec"]["selector"]["matchLabels"]
    );
    let mut expected = plugin_config.clone();
    expected.as_object_mut().map(|o| o.remove("bodyReading"));
    assert_eq!(envoy_filter_config(&envoy_filter), expected);

    // The waypoint: the same filter config but for the waypoint's cluster names.
    let ambient = shape("ambient");
    let mut waypoint = one(&ambient, "WasmPlugin", "auth0-filter")["spec"]["pluginConfig"].clone();
    waypoint["auth0Clusters"] = plugin_config["auth0Clusters"].clone();
    waypoint["sessionStore"]["webdisCluster"] =
        plugin_config["sessionStore"]["webdisCluster"].clone();
    assert_eq!(&waypoint, plugin_config);
}
