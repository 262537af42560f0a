//! The EnvoyFilter shape: the filter served through ECDS, enabled per route, and routes that
//! cover every request the configuration owns.

use super::*;

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
