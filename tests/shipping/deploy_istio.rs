//! The shipped Istio shapes (istio/gateway, istio/ambient, istio/envoyfilter) run as Istio
//! would run them: `tools/controlplane/istio.py` makes the Envoy configuration istiod and the
//! istio-agent generate from the manifests (the filter delivered through ECDS, its PluginConfig
//! as Istio builds it, the tenant's ServiceEntry as Istio's cluster), and a real Envoy runs it
//! against the Auth0 emulator and the echo upstream. One Envoy per shape: logins, refresh,
//! logout, `/userinfo`, protected routes, management and import, and the upstream receives
//! only the requests the filter let through. Needs ENVOY_BIN, EMULATOR_BIN and WASM_PATH.

use std::process::Command;

use harness::{repo, FilterConfig, Gateway, Ports, ALICE, APP_KEY, WEB_KEY};
use serde_json::{json, Value};

const ALICE_ID: &str = "auth0|0000000000000000000000a1";
const ADMIN: (&str, &str) = ("secret", "admin-api-key");
const JSON_ACCEPT: (&str, &str) = ("accept", "application/json");

/// The Envoy bootstrap the control-plane translation makes of `istio/<shape>` for these ports.
fn istio_config(
    shape: &str,
    extra: &[&str],
    ports: &Ports,
    filter_config: &FilterConfig,
) -> String {
    let out = Command::new("python3")
        .arg(repo().join("tools/controlplane/istio.py"))
        .arg(repo().join("istio").join(shape))
        .args(["--listen", &ports.listen.to_string()])
        .args(["--admin", &ports.admin.to_string()])
        .args(["--auth0", &ports.auth0.to_string()])
        .args(["--upstream", &ports.upstream.to_string()])
        .arg("--wasm")
        .arg(&ports.wasm)
        .arg("--dir")
        .arg(&ports.dir)
        .args(["--filter-config", &filter_config.json()])
        .args(extra)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "istio.py {shape}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn start(name: &str, shape: &'static str, extra: &'static [&'static str]) -> Gateway {
    Gateway::start_rendered(name, json!({}), &move |ports, config| {
        istio_config(shape, extra, ports, config)
    })
}

fn echo_header(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .map(|headers| {
            headers
                .iter()
                .filter(|h| h[0] == name)
                .filter_map(|h| h[1].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Envoy's own view (its config dump): the HTTP filters of the listener in order, and the
/// ECDS resources it loaded, by name.
fn loaded(gw: &Gateway) -> (Vec<String>, Vec<Value>) {
    let url = format!("http://127.0.0.1:{}/config_dump", gw.admin_port);
    let dump = harness::request("GET", &url, &[], None).json();
    let configs = dump["configs"].as_array().cloned().unwrap_or_default();
    let of_type = |suffix: &str| -> Value {
        configs
            .iter()
            .find(|c| c["@type"].as_str().is_some_and(|t| t.ends_with(suffix)))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let listeners = of_type("ListenersConfigDump");
    let filters = listeners["static_listeners"][0]["listener"]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter_map(|f| f["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let ecds = of_type("EcdsConfigDump")["ecds_filters"]
        .as_array()
        .map(|fs| fs.iter().map(|f| f["ecds_filter"].clone()).collect())
        .unwrap_or_default();
    (filters, ecds)
}

fn ecds_resource<'a>(ecds: &'a [Value], name: &str) -> &'a Value {
    ecds.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no ECDS resource {name}: {ecds:?}"))
}

/// The WasmPlugin shapes: the filter, then its hold instance, first on the chain (phase
/// AUTHN), each delivered through ECDS with the PluginConfig fields Istio sets and no others.
fn assert_wasm_plugins_delivered(gw: &Gateway, namespace: &str) {
    let (filters, ecds) = loaded(gw);
    let name = |plugin: &str| {
        format!(
            "extensions.istio.io/trafficextension/{namespace}.{plugin}~istio-translated-wasmplugin"
        )
    };
    let (filter, hold) = (name("auth0-filter"), name("auth0-filter-hold"));
    assert_eq!(filters[..2], [filter.clone(), hold.clone()], "{filters:?}");
    assert_eq!(
        filters.last().map(String::as_str),
        Some("envoy.filters.http.router")
    );
    for (resource, root_id) in [(&filter, "auth0_filter"), (&hold, "auth0_filter_hold")] {
        let typed = &ecds_resource(&ecds, resource)["typed_config"];
        assert_eq!(
            typed["@type"],
            "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
        );
        let config = &typed["config"];
        let mut fields: Vec<&str> = config
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "configuration",
                "failure_policy",
                "name",
                "root_id",
                "vm_config"
            ],
            "{config}"
        );
        assert_eq!(config["root_id"], root_id);
        assert_eq!(config["failure_policy"], "FAIL_CLOSED");
        assert!(config["vm_config"].get("vm_id").is_none(), "{config}");
        let plugin = resource.rsplit('/').next().unwrap_or_default();
        assert_eq!(config["name"], plugin);
    }
}

/// Every flow the issue names, then: the upstream got exactly the requests the filter let
/// through, none it answered.
fn run_the_flows(gw: &Gateway) {
    // Website password login: the session cookie.
    let login = gw.post_form("/oauth/token", &[WEB_KEY], ALICE);
    assert_eq!(login.status, 200, "{}", login.body);
    let sid = login.sid();
    let cookie = format!("sid={sid}");

    let info = gw.call("GET", "/userinfo", &[("cookie", &cookie)], None);
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["sub"], ALICE_ID);

    // A protected route with the session, then with a Bearer token of the app client.
    let by_sid = gw.call(
        "GET",
        "/protected/orders",
        &[("cookie", &cookie), JSON_ACCEPT],
        None,
    );
    assert_eq!(by_sid.status, 200, "{}", by_sid.body);
    assert_eq!(
        echo_header(&by_sid.json(), "x-auth0-user-id"),
        vec![ALICE_ID]
    );
    let app = gw.post_form("/oauth/token", &[APP_KEY], ALICE);
    assert_eq!(app.status, 200, "{}", app.body);
    let bearer = format!(
        "Bearer {}",
        app.json()["accessToken"].as_str().unwrap_or_default()
    );
    let by_bearer = gw.call(
        "GET",
        "/protected/orders?page=2",
        &[("authorization", &bearer), ("x-auth0-user-id", "attacker")],
        None,
    );
    assert_eq!(by_bearer.status, 200, "{}", by_bearer.body);
    let echo = by_bearer.json();
    assert_eq!(echo_header(&echo, "x-auth0-user-id"), vec![ALICE_ID]);
    assert_eq!(echo_header(&echo, "x-auth0-client-type"), vec!["app"]);

    // Spellings of a protected path: each reaches the filter, none the upstream unchecked.
    for path in [
        "/PROTECTED/orders",
        "/protected;v=1/orders",
        "//protected/orders",
    ] {
        gw.call("GET", path, &[JSON_ACCEPT], None).assert_error(401);
    }
    let escaped = gw.call("GET", "/protected%2Forders", &[JSON_ACCEPT], None);
    assert_eq!(escaped.status, 400, "{}", escaped.body);

    // Pass-through: untouched, but a forged identity header never reaches the upstream.
    let public = gw.call(
        "GET",
        "/public/page",
        &[
            ("x-auth0-user-id", "attacker"),
            ("x_auth0_user_groups", "admin"),
        ],
        None,
    );
    assert_eq!(public.status, 200, "{}", public.body);
    let echo = public.json();
    assert!(echo_header(&echo, "x-auth0-user-id").is_empty(), "{echo}");
    assert!(
        echo_header(&echo, "x_auth0_user_groups").is_empty(),
        "{echo}"
    );

    // Refresh from the cookie, with rotation.
    let refreshed = gw.call(
        "POST",
        "/refreshtoken",
        &[WEB_KEY, ("cookie", &cookie)],
        None,
    );
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let cookie = format!("sid={}", refreshed.sid());

    // Management: a search and an import.
    let users = gw.call("GET", "/users?email=alice%40example.org", &[ADMIN], None);
    assert_eq!(users.status, 200, "{}", users.body);
    let found = users.json();
    assert!(
        found.as_array().is_some_and(|list| !list.is_empty()),
        "{found}"
    );
    let import = json!([{"email": "istio.import@corp.example", "email_verified": true}]);
    gw.start_import(ADMIN, &import);

    // Logout ends the session.
    let out = gw.call("GET", "/logout", &[WEB_KEY, ("cookie", &cookie)], None);
    assert_eq!(out.status, 302, "{}", out.body);
    gw.call("GET", "/userinfo", &[("cookie", &cookie)], None)
        .assert_error(401);

    assert_eq!(
        gw.upstream_received(),
        [
            "GET /protected/orders",
            "GET /protected/orders?page=2",
            "GET /public/page"
        ],
        "the upstream got a request the filter answered"
    );
}

#[test]
fn the_ingress_gateway_shape_runs_every_flow_with_wasm_plugins_only() {
    let gw = start("istio_gateway", "gateway", &[]);
    assert_wasm_plugins_delivered(&gw, "istio-system");
    run_the_flows(&gw);
}

#[test]
fn the_ambient_waypoint_shape_runs_every_flow() {
    let gw = start("istio_ambient", "ambient", &[]);
    assert_wasm_plugins_delivered(&gw, "my-app");
    run_the_flows(&gw);
}

/// The listener's route table as Envoy loaded it: (route name, whether the route enables
/// `filter`) per route.
fn routes_enabling(gw: &Gateway, filter: &str) -> Vec<(String, bool)> {
    let url = format!("http://127.0.0.1:{}/config_dump", gw.admin_port);
    let dump = harness::request("GET", &url, &[], None).json();
    let configs = dump["configs"].as_array().cloned().unwrap_or_default();
    let listeners = configs
        .iter()
        .find(|c| {
            c["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("ListenersConfigDump"))
        })
        .cloned()
        .unwrap_or(Value::Null);
    let table = &listeners["static_listeners"][0]["listener"]["filter_chains"][0]["filters"][0]
        ["typed_config"]["route_config"];
    table["virtual_hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|vhost| vhost["routes"].as_array().cloned().unwrap_or_default())
        .map(|route| {
            let per_filter = &route["typed_per_filter_config"][filter];
            let enabled = per_filter["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("envoy.config.route.v3.FilterConfig"))
                && per_filter["disabled"] != true;
            (route["name"].as_str().unwrap_or("").to_string(), enabled)
        })
        .collect()
}

#[test]
fn the_envoy_filter_shape_runs_every_flow_with_the_filter_on_its_routes_only() {
    let gw = start("istio_envoyfilter", "envoyfilter", &[]);
    let (filters, ecds) = loaded(&gw);
    let at = |name: &str| filters.iter().position(|f| f == name);
    // The identity-header filter, then the filter, then (after Istio's own) the router.
    assert!(at("istio-system.auth0-identity-headers") < at("istio-system.auth0-filter"));
    assert!(at("istio-system.auth0-filter").is_some(), "{filters:?}");
    // A plain Wasm filter through ECDS (what the agent fetches modules for), with the flag.
    let typed = &ecds_resource(&ecds, "istio-system.auth0-filter")["typed_config"];
    assert_eq!(
        typed["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
    );
    assert_eq!(typed["config"]["allow_on_headers_stop_iteration"], true);
    // Enabled on exactly the routes named `auth0-filter`, the app's catch-all last.
    let routes = routes_enabling(&gw, "istio-system.auth0-filter");
    assert!(routes.len() > 2, "{routes:?}");
    for (name, enabled) in &routes {
        assert_eq!(*enabled, name == "auth0-filter", "{routes:?}");
    }
    assert_eq!(routes.last(), Some(&("app".to_string(), false)));
    run_the_flows(&gw);
}

#[test]
fn the_envoy_filter_shape_fails_closed_on_its_routes_when_the_agent_cannot_fetch_the_module() {
    // The agent serves a deny-all RBAC filter under the filter's name; the routes that enable
    // the filter enable that one instead, and the others keep working.
    let gw = start(
        "istio_envoyfilter_fetch_failed",
        "envoyfilter",
        &["--module-fetch-failed", "auth0-filter"],
    );
    for path in ["/protected/x", "/oauth/token", "/users", "/PROTECTED/x"] {
        let r = gw.call("GET", path, &[], None);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let public = gw.call("GET", "/public/page", &[], None);
    assert_eq!(public.status, 200, "{}", public.body);
    assert_eq!(gw.upstream_received(), ["GET /public/page"]);
}

#[test]
fn without_the_hold_plugin_a_body_request_is_refused_and_its_body_never_forwarded() {
    let gw = start(
        "istio_no_hold",
        "gateway",
        &["--without", "auth0-filter-hold"],
    );
    // The filter let the headers go on and found no hold instance stopped them: it refuses
    // the request before its body follows. The upstream may have seen the headers of a
    // request that never completed (Envoy resets it); it never receives the request.
    let r = gw.post_form("/oauth/token", &[WEB_KEY], ALICE);
    r.assert_error(500);
    assert_eq!(gw.emulator_calls("/oauth/token"), 0);
    let stats = gw.stats_once("hold_missing", |s| s.contains("hold_missing: 1"));
    assert!(stats.contains("hold_missing: 1"), "{stats}");
    // Requests without a body the filter reads are unaffected.
    let info = gw.call("GET", "/protected/x", &[JSON_ACCEPT], None);
    info.assert_error(401);
    assert!(
        gw.upstream_received().is_empty(),
        "{:?}",
        gw.upstream_received()
    );
}

#[test]
fn a_module_the_agent_cannot_fetch_fails_closed() {
    // What the istio-agent serves for a FAIL_CLOSE WasmPlugin whose module it cannot fetch: a
    // deny-all RBAC filter under the plugin's name.
    let gw = start(
        "istio_fetch_failed",
        "gateway",
        &["--module-fetch-failed", "auth0-filter"],
    );
    for path in ["/public/page", "/protected/x", "/oauth/token"] {
        let r = gw.call("GET", path, &[], None);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    assert!(gw.upstream_received().is_empty());
}
