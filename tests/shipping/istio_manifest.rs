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

#[test]
fn the_envoy_filter_serves_the_flagged_filter_through_ecds_enabled_per_route() {
    let documents = shape("envoyfilter");
    let [extension, headers, http_filter, route] = envoy_filter_parts(&documents);
    // 1. The extension: ADD only (istiod applies nothing else to EXTENSION_CONFIG), named
    //    <namespace>.<name>, a plain Wasm filter: the agent fetches its module.
    assert_eq!(extension["applyTo"], "EXTENSION_CONFIG");
    assert_eq!(extension["match"]["context"], "GATEWAY");
    assert_eq!(extension["patch"]["operation"], "ADD");
    let value = &extension["patch"]["value"];
    assert_eq!(value["name"], "istio-system.auth0-filter");
    assert_eq!(value["typed_config"]["@type"], WASM_TYPE);
    let wasm = &value["typed_config"]["config"];
    assert_eq!(wasm["allow_on_headers_stop_iteration"], true);
    assert_eq!(wasm["failure_policy"], "FAIL_CLOSED");
    assert_eq!(wasm["root_id"], "auth0_filter");
    assert_eq!(wasm["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
    // The same module the WasmPlugin shape pulls, through the agent (which needs http_uri).
    let gateway = shape("gateway");
    let plugin = &one(&gateway, "WasmPlugin", "auth0-filter")["spec"];
    let uri = &wasm["vm_config"]["code"]["remote"]["http_uri"];
    assert_eq!(uri["uri"], plugin["url"]);
    assert!(
        uri["cluster"].is_string() && uri["timeout"].is_string(),
        "{uri}"
    );

    // 2. and 3.: before the router of every gateway HTTP connection manager, in this order.
    for patch in [&headers, &http_filter] {
        assert_eq!(patch["applyTo"], "HTTP_FILTER");
        assert_eq!(patch["match"]["context"], "GATEWAY");
        let chain = &patch["match"]["listener"]["filterChain"]["filter"];
        assert_eq!(
            chain["name"],
            "envoy.filters.network.http_connection_manager"
        );
        assert_eq!(chain["subFilter"]["name"], "envoy.filters.http.router");
        assert_eq!(patch["patch"]["operation"], "INSERT_BEFORE");
    }
    let value = &http_filter["patch"]["value"];
    assert_eq!(value["name"], "istio-system.auth0-filter");
    assert_eq!(value["disabled"], true, "the routes enable it");
    assert!(
        value.get("typed_config").is_none(),
        "inline config: {value}"
    );
    let discovery = &value["config_discovery"];
    assert!(discovery["config_source"]["ads"].is_object(), "{discovery}");
    assert_eq!(discovery["config_source"]["resource_api_version"], "V3");
    assert_eq!(discovery["config_source"]["initial_fetch_timeout"], "0s");
    // The RBAC filter is what the agent serves when it cannot fetch the module.
    assert_eq!(discovery["type_urls"], json!([WASM_TYPE, RBAC_TYPE]));

    // 4. Enabled on the routes of that name, on every route configuration of the gateway.
    assert_eq!(route["applyTo"], "HTTP_ROUTE");
    assert_eq!(route["match"]["context"], "GATEWAY");
    assert_eq!(
        route["match"]["routeConfiguration"],
        json!({"vhost": {"route": {"name": FILTER_ROUTE}}})
    );
    assert_eq!(route["patch"]["operation"], "MERGE");
    // An empty `config` is the FilterConfig that enables a filter disabled in the chain.
    assert_eq!(
        route["patch"]["value"],
        json!({"typed_per_filter_config": {"istio-system.auth0-filter": {
            "@type": FILTER_CONFIG_TYPE, "config": {}}}})
    );

    // The identity headers, in every spelling, are dropped from every request.
    let config = filter_config(&envoy_filter_config(&documents));
    let protected = config.protected.as_ref().expect("protectedRoutes");
    let removed: BTreeSet<&str> = headers["patch"]["value"]["typed_config"]["mutations"]
        ["request_mutations"]
        .as_array()
        .expect("request_mutations")
        .iter()
        .filter_map(|m| m["remove"].as_str())
        .collect();
    assert_eq!(removed.len(), 24, "{removed:?}");
    assert!(
        removed.iter().all(|h| protected.is_identity_header(h)),
        "{removed:?}"
    );
}

/// The first route of the VirtualService (in order, as Envoy matches the routes Istio makes
/// of it) that a normalised `:path` takes: its name.
fn route_taken(virtual_service: &Value, path: &str) -> String {
    let path_only = path.split('?').next().unwrap_or_default();
    let matches = |m: &Value| -> bool {
        let uri = &m["uri"];
        let fold = |s: &str| {
            if m["ignoreUriCase"] == true {
                s.to_ascii_lowercase()
            } else {
                s.to_string()
            }
        };
        if let Some(exact) = uri["exact"].as_str() {
            return fold(path_only) == fold(exact);
        }
        if let Some(prefix) = uri["prefix"].as_str() {
            return fold(path).starts_with(&fold(prefix));
        }
        if let Some(regex) = uri["regex"].as_str() {
            // The one regex: a path (Envoy's safe_regex takes it without the query string)
            // holding any of these characters.
            assert_eq!(regex, r".*[;%\\].*");
            return path_only.contains([';', '%', '\\']);
        }
        panic!("an unsupported match: {m}")
    };
    let http = virtual_service["spec"]["http"].as_array().expect("http");
    for route in http {
        let list = route["match"].as_array().cloned().unwrap_or_default();
        if list.is_empty() || list.iter().any(&matches) {
            return route["name"].as_str().unwrap_or_default().to_string();
        }
    }
    panic!("no route for {path}")
}

#[test]
fn the_routes_that_enable_the_filter_cover_every_request_it_owns() {
    let documents = shape("envoyfilter");
    let gateway = one(&documents, "Gateway", "app");
    let virtual_service = one(&documents, "VirtualService", "app");
    // Bound to the Gateway on the ingress gateway the EnvoyFilter selects.
    assert_eq!(virtual_service["spec"]["gateways"], json!(["app"]));
    assert_eq!(
        gateway["spec"]["selector"],
        json!({"istio": "ingressgateway"})
    );
    let filter = one(&documents, "EnvoyFilter", "auth0-filter");
    assert_eq!(
        filter["spec"]["workloadSelector"]["labels"],
        gateway["spec"]["selector"]
    );
    // Every route reaches the application; the last is its catch-all, without the filter.
    let http = virtual_service["spec"]["http"].as_array().expect("http");
    let app = json!([{"destination": {"host": "my-app.my-app.svc.cluster.local",
                                      "port": {"number": 80}}}]);
    for route in http {
        assert_eq!(route["route"], app, "{route}");
    }
    let last = http.last().expect("routes");
    assert!(last.get("match").is_none() && last["name"] != FILTER_ROUTE);

    let config = filter_config(&envoy_filter_config(&documents));
    let protected = config.protected.as_ref().expect("protectedRoutes");
    let owns = |path: &str| {
        protected.covers(path)
            || ["GET", "POST", "PATCH", "DELETE"]
                .iter()
                .any(|method| config.routes.classify(method, path).is_some())
    };
    // The filter's routes, management, the protected prefix in several cases, and neighbours.
    let mut probes: Vec<String> = concat!(
        "/oauth/token /refreshtoken /oauth/refreshtoken /logout /authorize /userinfo /users/me ",
        "/documentation/json /users /users/auth0|1 /users/import /users/import/status/job_1 ",
        "/protected/x /PROTECTED/x /Protected/a/b / /public /oauth/tokenx /usersx /protectedx ",
        "/app/logout /userinfo/x"
    )
    .split(' ')
    .map(str::to_string)
    .collect();
    let with_query: Vec<String> = probes
        .iter()
        .map(|p| format!("{p}?a=1&b=/protected/"))
        .collect();
    probes.extend(with_query);
    let mut owned = 0;
    for path in &probes {
        if owns(path) {
            owned += 1;
            assert_eq!(
                route_taken(virtual_service, path),
                FILTER_ROUTE,
                "the filter would be off for {path}"
            );
        }
    }
    assert!(owned >= 20, "{owned}");
    // Spellings an upstream may read as a protected path always reach the filter.
    for path in [
        "/protected;x/y",
        "/protected%2Fx",
        "/%70rotected/x",
        "/protected\\x",
    ] {
        assert_eq!(route_taken(virtual_service, path), FILTER_ROUTE, "{path}");
    }
    // And foreign paths do not: that is the point of the shape.
    for path in [
        "/",
        "/public/page",
        "/app/orders?id=1",
        "/app/resource?q=a;b%20c",
        "/oauth/tokenx",
        "/usersx",
    ] {
        assert_ne!(route_taken(virtual_service, path), FILTER_ROUTE, "{path}");
    }
}
