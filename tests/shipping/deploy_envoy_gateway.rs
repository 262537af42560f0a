//! The Envoy Gateway shape (`envoy-gateway/`): the manifests' plugin configurations pass the
//! filter's own parser, and the Envoy configuration Envoy Gateway generates from the manifests
//! (rendered by tools/controlplane/envoy_gateway.py, the module served over HTTP as Envoy
//! Gateway serves it) runs the filter's flows in a real Envoy: the filter answers without the
//! application seeing those requests, the other routes run without the filter, and forged
//! identity headers reach no upstream. Run through `make test`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth0_filter_core::config::{BodyReading, Plugin};
use harness::{repo, FilterConfig, Gateway, Ports, ALICE, APP_KEY, WEB_KEY};
use serde_json::{json, Value};

const ADMIN: (&str, &str) = ("secret", "admin-api-key");
const ALICE_ID: &str = "auth0|0000000000000000000000a1";
const FILTER: &str = "envoy.filters.http.wasm/envoyextensionpolicy/edge/auth0-filter/wasm/0";
const HOLD: &str = "envoy.filters.http.wasm/envoyextensionpolicy/edge/auth0-filter/wasm/1";
const TENANT_CLUSTER: &str = "httproute/edge/auth0-callouts/rule/0";
const WEBDIS_CLUSTER: &str = "httproute/edge/auth0-callouts/rule/1";
const FORGED: [(&str, &str); 4] = [
    ("x-auth0-user-id", "auth0|attacker"),
    ("x-auth0-user-groups", "admin"),
    ("x-auth0-client-type", "website"),
    ("x_auth0_user_id", "auth0|attacker"),
];

/// Every document of every YAML file in envoy-gateway/, as JSON values.
fn manifests() -> Vec<Value> {
    harness::manifest_documents(&repo().join("envoy-gateway"))
}

fn one<'a>(documents: &'a [Value], kind: &str, name: &str) -> &'a Value {
    harness::manifest_named(documents, kind, name)
}

/// Serves the .wasm module over HTTP on a loopback port, as Envoy Gateway's Wasm HTTP server
/// does, and records the paths Envoy fetched. Stops when dropped.
struct WasmServer {
    port: u16,
    fetched: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WasmServer {
    fn start() -> WasmServer {
        let module = std::fs::read(std::env::var("WASM_PATH").expect("WASM_PATH")).expect("wasm");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (fetched, stop) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(AtomicBool::new(false)),
        );
        let (log, done) = (fetched.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                log.lock().expect("log").push(path.clone());
                let (status, body): (&str, &[u8]) = if path.ends_with(".wasm") {
                    ("200 OK", &module)
                } else {
                    ("404 Not Found", b"")
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(body);
            }
        });
        WasmServer {
            port,
            fetched,
            stop,
            thread: Some(thread),
        }
    }

    fn fetched(&self) -> Vec<String> {
        self.fetched.lock().expect("log").clone()
    }
}

impl Drop for WasmServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The Envoy configuration Envoy Gateway generates from envoy-gateway/, for these ports and
/// with the local run's tenant-specific filter settings.
fn render(ports: &Ports, filter_config: &FilterConfig, wasm_server: u16) -> String {
    let config_path = ports.dir.join("filter-config.json");
    std::fs::write(&config_path, filter_config.json()).expect("filter config");
    let out = std::process::Command::new("python3")
        .arg(repo().join("tools/controlplane/envoy_gateway.py"))
        .arg(repo().join("envoy-gateway"))
        .args(["--listen", &ports.listen.to_string()])
        .args(["--admin", &ports.admin.to_string()])
        .arg("--wasm")
        .arg(&ports.wasm)
        .args(["--wasm-server", &format!("127.0.0.1:{wasm_server}")])
        .args([
            "--backend",
            &format!("Service/edge/app=127.0.0.1:{}", ports.upstream),
        ])
        .args([
            "--backend",
            &format!("Backend/edge/auth0-tenant=127.0.0.1:{}", ports.auth0),
        ])
        .args([
            "--backend",
            &format!("Service/session-store/webdis=127.0.0.1:{}", ports.webdis),
        ])
        .arg("--filter-config")
        .arg(format!("@{}", config_path.display()))
        .output()
        .expect("python3 tools/controlplane/envoy_gateway.py");
    assert!(
        out.status.success(),
        "envoy_gateway.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn start(name: &str, wasm: &WasmServer) -> Gateway {
    let port = wasm.port;
    Gateway::start_rendered(name, json!({}), &move |ports, config| {
        render(ports, config, port)
    })
}

/// The generated configuration, parsed, for structural checks.
fn generated(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("envoy.yaml")).expect("envoy.yaml");
    serde_yaml_ng::from_str(&text).expect("envoy.yaml parses")
}

fn echo_header(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("not the echo upstream: {echo}"))
        .iter()
        .filter(|h| h[0] == name)
        .map(|h| h[1].as_str().unwrap_or_default().to_string())
        .collect()
}

fn emulator_total(gw: &Gateway) -> u64 {
    let calls = harness::request(
        "GET",
        &format!("{}/__emulator/calls", gw.auth0_base),
        &[],
        None,
    )
    .json();
    calls
        .as_object()
        .expect("counters")
        .iter()
        .filter(|(name, _)| name.starts_with('/'))
        .map(|(_, count)| count.as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn the_policy_runs_the_filter_then_its_hold_instance_with_valid_configurations() {
    let documents = manifests();
    let policy = one(&documents, "EnvoyExtensionPolicy", "auth0-filter");
    assert_eq!(
        policy["spec"]["targetRefs"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "auth0-filter"}])
    );
    let wasm = policy["spec"]["wasm"].as_array().expect("a wasm list");
    assert_eq!(wasm.len(), 2, "the filter, then the hold instance");
    for entry in wasm {
        assert_eq!(entry["failOpen"], false, "fail closed: {entry}");
        assert_eq!(entry["code"], wasm[0]["code"], "one module for both");
    }
    let filter = serde_json::to_vec(&wasm[0]["config"]).expect("JSON");
    let Ok(Plugin::Filter(config)) = Plugin::from_json(&filter) else {
        panic!("the first entry must be a valid filter configuration")
    };
    assert_eq!(config.body_reading, BodyReading::HoldFilter);
    assert!(matches!(
        Plugin::from_json(&serde_json::to_vec(&wasm[1]["config"]).expect("JSON")),
        Ok(Plugin::Hold)
    ));
    assert_eq!(wasm[1]["config"], json!({"role": "hold"}));

    // The callouts go to the clusters Envoy Gateway generates for the auth0-callouts rules.
    let raw = &wasm[0]["config"];
    let tenant = one(&documents, "Backend", "auth0-tenant");
    let host = tenant["spec"]["endpoints"][0]["fqdn"]["hostname"].clone();
    assert_eq!(tenant["spec"]["tls"]["sni"], host);
    assert_eq!(tenant["spec"]["tls"]["wellKnownCACertificates"], "System");
    let host = host.as_str().expect("a host");
    assert_eq!(raw["auth0Clusters"], json!({host: TENANT_CLUSTER}));
    for url in [
        &raw["clients"]["website"]["auth0Url"],
        &raw["clients"]["app"]["auth0Url"],
        &raw["managementClient"]["auth0Url"],
    ] {
        assert_eq!(url.as_str(), Some(format!("https://{host}/").as_str()));
    }
    assert_eq!(raw["sessionStore"]["webdisCluster"], WEBDIS_CLUSTER);
    let callouts = one(&documents, "HTTPRoute", "auth0-callouts");
    let rules = callouts["spec"]["rules"].as_array().expect("rules");
    assert_eq!(rules[0]["backendRefs"][0]["name"], "auth0-tenant");
    assert_eq!(rules[1]["backendRefs"][0]["name"], "webdis");
    for rule in rules {
        assert_eq!(
            rule["matches"],
            json!([{"path": {"type": "RegularExpression", "value": "[^\\s\\S]"}}]),
            "the callout clusters' rules match no request"
        );
    }
    let protected = config.protected.as_ref().map(|p| p.prefixes.clone());
    assert_eq!(
        protected,
        Some(vec!["/protected/".to_string()]),
        "03-routes.yaml routes these"
    );
}

#[test]
fn envoy_gateway_order_names_and_per_route_switching() {
    let wasm = WasmServer::start();
    let gw = start("eg_shape", &wasm);
    let config = generated(&gw_dir("eg_shape"));
    let listener = &config["static_resources"]["listeners"][0];
    assert_eq!(listener["name"], "edge/edge/http");
    let hcm = &listener["default_filter_chain"]["filters"][0]["typed_config"];
    let names: Vec<&str> = hcm["http_filters"]
        .as_array()
        .expect("filters")
        .iter()
        .map(|f| f["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, [FILTER, HOLD, "envoy.filters.http.router"]);
    for filter in &hcm["http_filters"].as_array().expect("filters")[..2] {
        assert_eq!(filter["disabled"], true, "enabled per route only");
        let plugin = &filter["typed_config"]["config"];
        assert!(plugin.get("allow_on_headers_stop_iteration").is_none());
        assert_eq!(
            plugin["vm_config"]["code"]["remote"]["http_uri"]["cluster"],
            "wasm_cluster"
        );
    }
    assert_eq!(hcm["path_with_escaped_slashes_action"], "REJECT_REQUEST");
    assert_eq!(
        (&hcm["normalize_path"], &hcm["merge_slashes"]),
        (&json!(true), &json!(true))
    );
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .expect("routes");
    for route in routes {
        let name = route["name"].as_str().expect("a route name");
        let enabled = route.get("typed_per_filter_config");
        if name.starts_with("httproute/edge/auth0-filter/") {
            let enabled = enabled.unwrap_or_else(|| panic!("{name}: filter off"));
            assert!(
                enabled.get(FILTER).is_some() && enabled.get(HOLD).is_some(),
                "{name}"
            );
        } else {
            assert!(enabled.is_none(), "{name}: the filter must stay off");
        }
    }
    assert_eq!(
        routes.last().expect("routes")["name"],
        "httproute/edge/app/rule/0/match/0/*",
        "the catch-all comes last"
    );
    // Envoy fetched the module from the unguessable path Envoy Gateway serves it at.
    let fetched = wasm.fetched();
    assert!(!fetched.is_empty(), "the module was not fetched");
    for path in fetched {
        assert!(path.len() == 50 && path.ends_with(".wasm"), "{path}");
    }
    drop(gw);
}

fn gw_dir(name: &str) -> PathBuf {
    repo().join("target/it").join(name)
}

#[test]
fn login_refresh_userinfo_protected_management_import_logout() {
    let wasm = WasmServer::start();
    let gw = start("eg_flows", &wasm);

    // Website password login: the filter reads the body (hold mode) and answers with a sid.
    let login = gw.post_form("/oauth/token", &[WEB_KEY], ALICE);
    assert_eq!(login.status, 200, "{}", login.body);
    let sid = format!("sid={}", login.sid());
    let refreshed = gw.call("POST", "/refreshtoken", &[WEB_KEY, ("cookie", &sid)], None);
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let sid = format!("sid={}", refreshed.sid());

    let info = gw.call("GET", "/userinfo", &[("cookie", &sid)], None);
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["sub"], ALICE_ID);

    // A protected route with the sid, with forged identity headers next to it.
    let mut headers = vec![("cookie", sid.as_str()), ("accept", "application/json")];
    headers.extend_from_slice(&FORGED);
    let api = gw.call("GET", "/protected/orders", &headers, None);
    assert_eq!(api.status, 200, "{}", api.body);
    let echo = api.json();
    assert_eq!(echo_header(&echo, "x-auth0-user-id"), [ALICE_ID]);
    assert_eq!(echo_header(&echo, "x-auth0-client-type"), ["website"]);
    assert!(echo_header(&echo, "x_auth0_user_id").is_empty());

    // And with a Bearer token from an app login, on a case variant of the prefix.
    let app = gw.post_form("/oauth/token", &[APP_KEY], ALICE).json();
    let bearer = format!("Bearer {}", app["accessToken"].as_str().expect("a token"));
    let echo = gw
        .call(
            "GET",
            "/Protected/items",
            &[("authorization", &bearer)],
            None,
        )
        .json();
    assert_eq!(echo_header(&echo, "x-auth0-user-id"), [ALICE_ID]);
    assert_eq!(echo_header(&echo, "x-auth0-client-type"), ["app"]);
    let anonymous = gw.call(
        "GET",
        "/protected/orders",
        &[("accept", "application/json")],
        None,
    );
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);

    // User management with the admin key, and an import (a multipart body the filter reads).
    let users = gw.call("GET", "/users?email=alice*", &[ADMIN], None);
    assert_eq!(users.status, 200, "{}", users.body);
    assert!(users.body.contains("alice@example.org"), "{}", users.body);
    // `acl_rows` has an underscore: the ClientTrafficPolicy lets it reach the filter.
    let acl = ("acl_rows", r#"{"app_metadata.tenant":"nobody"}"#);
    let none = gw.call("GET", "/users?email=alice*", &[ADMIN, acl], None);
    assert_eq!((none.status, none.body.as_str()), (200, "[]"));
    gw.start_import(ADMIN, &json!([{"email": "eg.one@corp.example"}]));

    let out = gw.call("GET", "/logout", &[WEB_KEY, ("cookie", &sid)], None);
    assert_eq!(out.status, 302, "{}", out.body);
    gw.call("POST", "/refreshtoken", &[WEB_KEY, ("cookie", &sid)], None)
        .assert_error(401);

    // The application received the two authenticated protected requests and nothing else:
    // none of the requests the filter answered, no part of the bodies it read.
    assert_eq!(
        gw.upstream_received(),
        ["GET /protected/orders", "GET /Protected/items"]
    );
}

#[test]
fn other_routes_pass_through_untouched_and_forged_headers_reach_no_upstream() {
    let wasm = WasmServer::start();
    let gw = start("eg_passthrough", &wasm);
    let mut headers = vec![("x-custom", "kept"), ("content-type", "text/plain")];
    headers.extend_from_slice(&FORGED);
    // The pass-through route (no filter), and a request on a filter route the filter lets go.
    for (method, path) in [
        ("POST", "/anything/else?a=1"),
        ("POST", "/documentation/json"),
    ] {
        let r = gw.call(method, path, &headers, Some(b"payload"));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let echo = r.json();
        assert_eq!(echo["upstream"], "echo", "{path}");
        assert_eq!(echo["body"], "payload", "{path}");
        assert_eq!(echo_header(&echo, "x-custom"), ["kept"], "{path}");
        for (name, _) in FORGED {
            assert!(echo_header(&echo, name).is_empty(), "{path}: {name} passed");
        }
    }
    assert_eq!(
        gw.upstream_received(),
        ["POST /anything/else?a=1", "POST /documentation/json"]
    );
    // The callout clusters' rules match no request: nothing a client sends reaches Auth0.
    let before = emulator_total(&gw);
    for (method, target) in [("GET", "/"), ("GET", "?x"), ("OPTIONS", "*")] {
        gw.raw(method, target, &[]);
    }
    let connect = gw.raw("CONNECT", "127.0.0.1:1", &[]);
    assert!(
        connect.status >= 400 || connect.status == 0,
        "{}",
        connect.status
    );
    let slashes = gw.raw("GET", "/protected%2Fx", &[]);
    assert_eq!(slashes.status, 400, "escaped slashes are refused");
    assert_eq!(
        emulator_total(&gw),
        before,
        "a client request reached the tenant"
    );
}
