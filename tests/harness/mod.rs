//! The integration tests' harness, and the one implementation of starting the stack they
//! run: the Auth0 emulator, an echo upstream and a real Envoy with the built `.wasm` (plus
//! redis-server and Webdis for the Redis session store) on free 127.0.0.1 ports, stopped when
//! dropped.
//!
//! - `render.rs` renders the filter's Envoy configuration (envoy/envoy.template.yaml with
//!   envoy/filter-config.json), in either body-reading mode, for loopback or docker-compose.
//! - `launch.rs` starts and stops the processes (`redis.rs`: redis-server and Webdis).
//! - `Gateway` is what a test holds. Paths come from the environment that `make test` sets:
//!   ENVOY_BIN, EMULATOR_BIN, WASM_PATH.
//! - `bin/auth0_stack.rs` is the same code for everything else, as a command:
//!   `auth0-stack render [--hold] [--compose] LISTEN ADMIN AUTH0 UPSTREAM WASM` prints the
//!   configuration `make run` runs (`make validate-envoy`, `make compose-config`);
//!   `auth0-stack up [OPTIONS] [-- COMMAND…]` starts the stack, prints one JSON line with its
//!   ports, pids and paths once it is ready, and stops everything when its standard input
//!   closes, on SIGINT/SIGTERM/SIGHUP, or when COMMAND (given the ports in its environment)
//!   exits: `make run`, tests/curl/local.sh, tests/api_check.py, tests/browser/login_test.py
//!   and bench/ start it so (Python through tools/auth0_stack.py). `auth0-stack --help` lists
//!   the options.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod client;
mod fixtures;
pub mod launch;
mod plugin_configs;
mod redis;
pub mod render;
// Each test binary uses some of these.
#[allow(unused_imports)]
pub use client::{request, Response};
#[allow(unused_imports)]
pub use fixtures::{manifest_documents, manifest_named, multipart, MULTIPART};
#[allow(unused_imports)]
pub use launch::free_port;
use launch::{Bins, EnvoyConfig, EnvoyPlan, EnvoyRun, Failure, FilterPlan, Launched, Plan, Side};
#[allow(unused_imports)]
pub use plugin_configs::{
    filled_original_config, original_gateway_fields, plugin_configurations,
    plugin_configurations_in, shipped_manifest_files, yaml_files, Found, MANIFEST_DIRS, WASM_TYPE,
};
#[allow(unused_imports)]
pub use redis::{Redis, WEBDIS_PASSWORD, WEBDIS_USER};
#[allow(unused_imports)]
pub use render::{
    hold_mode, render_template, render_template_in, FilterConfig, Ports, Render, Shape,
};

pub const APP_KEY: (&str, &str) = ("secret", "app-api-key");
pub const WEB_KEY: (&str, &str) = ("secret", "website-api-key");
pub const ALICE: &[(&str, &str)] = &[
    ("grant_type", "password"),
    ("username", "alice"),
    ("password", "Alice-Passw0rd!"),
];

/// The `clients` of the local-run filter config (with its `{{AUTH0_PORT}}` placeholders).
pub fn base_clients() -> serde_json::Value {
    let text =
        std::fs::read_to_string(repo().join("envoy/filter-config.json")).expect("filter config");
    serde_json::from_str::<serde_json::Value>(&text).expect("filter config JSON")["clients"].clone()
}

/// The shell commands of a documentation block between `<!-- NAME:start -->` and
/// `<!-- NAME:end -->` in `doc` (a path from the repository root): one per command,
/// continuation lines joined, comments and fences dropped.
pub fn doc_commands(doc: &str, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"));
    let block = text
        .split(&format!("<!-- {name}:start -->"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("<!-- {name}:end -->")).next())
        .unwrap_or_else(|| panic!("no {name} block in {doc}"));
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("```") && !l.trim().is_empty())
    {
        current.push_str(line.trim_end_matches('\\'));
        current.push(' ');
        if !line.ends_with('\\') {
            commands.push(std::mem::take(&mut current));
        }
    }
    commands
}

/// Runs a documented command from the repository root against `base` instead of localhost:8080,
/// and returns its standard output (CRLF folded to LF).
pub fn run_doc_command(base: &str, command: &str) -> String {
    let command = command.replace("http://localhost:8080", base);
    let out = Command::new("bash")
        .arg("-c")
        .arg(&command)
        .current_dir(repo())
        .output()
        .expect("bash + curl");
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

fn env_path(name: &str) -> PathBuf {
    let value = std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests with `make test`")
    });
    let path = PathBuf::from(&value);
    assert!(
        path.exists(),
        "{name}={value} does not exist: run `make test`"
    );
    path
}

/// The repository: the tests and `auth0-stack` read the template, the filter configuration
/// and the tenant from it.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Gateway {
    pub base: String,
    pub auth0_base: String,
    pub auth0_port: u16,
    pub admin_port: u16,
    /// The echo upstream, reached directly (not through Envoy).
    pub upstream_base: String,
    dir: PathBuf,
    /// Envoy, the echo upstream and (unless shared) the emulator; stopped when dropped.
    processes: Launched,
    /// The Redis of this gateway's sessions, with `AUTH0_FILTER_STORE=redis`.
    redis: Option<Redis>,
}

impl Gateway {
    /// Starts everything with the local-run filter config plus top-level `overrides`.
    pub fn start(name: &str, overrides: serde_json::Value) -> Gateway {
        Self::try_start(name, overrides)
            .unwrap_or_else(|log| panic!("Envoy refused to start:\n{log}"))
    }

    /// Like `start`, but returns Envoy's log when Envoy refuses the configuration.
    pub fn try_start(name: &str, overrides: serde_json::Value) -> Result<Gateway, String> {
        Self::try_start_with(name, overrides, "")
    }

    /// With `AUTH0_FILTER_STORE=redis` every gateway keeps its sessions in a Redis of its own
    /// (through Webdis), so the same behavioural suites run against both backends.
    pub fn try_start_with(
        name: &str,
        overrides: serde_json::Value,
        prefix: &str,
    ) -> Result<Gateway, String> {
        let on_redis = std::env::var("AUTH0_FILTER_STORE").is_ok_and(|b| b == "redis");
        if !on_redis || overrides.get("sessionStore").is_some() {
            return Self::try_start_full(name, overrides, prefix, None, None);
        }
        let redis = Redis::start(name);
        let mut overrides = overrides;
        if let Some(object) = overrides.as_object_mut() {
            object.insert(
                "sessionStore".into(),
                redis.store_config(&format!("{name}:")),
            );
        }
        let mut gateway =
            Self::try_start_full(name, overrides, prefix, None, Some(redis.webdis_port))?;
        gateway.redis = Some(redis);
        Ok(gateway)
    }

    pub fn on_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// A second gateway (a replica) that shares this one's emulator and the Webdis on
    /// `webdis_port`.
    pub fn start_replica(
        &self,
        name: &str,
        overrides: serde_json::Value,
        webdis_port: u16,
    ) -> Gateway {
        Self::try_start_full(
            name,
            overrides,
            "",
            Some(self.auth0_port),
            Some(webdis_port),
        )
        .unwrap_or_else(|log| panic!("Envoy refused to start:\n{log}"))
    }

    /// A gateway whose `webdis` cluster reaches the Webdis on `webdis_port`.
    pub fn start_with_webdis(
        name: &str,
        overrides: serde_json::Value,
        webdis_port: u16,
    ) -> Gateway {
        Self::try_start_full(name, overrides, "", None, Some(webdis_port))
            .unwrap_or_else(|log| panic!("Envoy refused to start:\n{log}"))
    }

    /// Starts the gateway, retrying with new ports if one was taken meanwhile.
    fn try_start_full(
        name: &str,
        overrides: serde_json::Value,
        prefix: &str,
        shared_auth0: Option<u16>,
        webdis: Option<u16>,
    ) -> Result<Gateway, String> {
        let shape = Shape {
            hold: hold_mode(),
            compose: false,
            prefix: prefix.to_string(),
        };
        let launched = launch::launch_retrying(|| {
            let config = EnvoyConfig::Template(shape.clone());
            Ok(Self::plan(name, &overrides, shared_auth0, webdis, config))
        });
        Self::started(name, launched)
    }

    /// Starts the emulator and the echo upstream, then Envoy with the configuration `render`
    /// makes from their ports and the local-run filter config (with `overrides`): how the
    /// deployment-shape tests run the Envoy configuration a control plane would generate.
    pub fn start_rendered(name: &str, overrides: serde_json::Value, render: Render) -> Gateway {
        let plan = Self::plan(name, &overrides, None, None, EnvoyConfig::Rendered(render));
        let mut last = String::new();
        for _ in 0..3 {
            match Self::started(name, launch::launch(&plan)) {
                Ok(gateway) => return gateway,
                Err(log) => last = log,
            }
        }
        panic!("Envoy refused to start:\n{last}")
    }

    /// In target/it/NAME, with the emulator's key shared by every gateway (made once).
    fn plan<'a>(
        name: &str,
        overrides: &serde_json::Value,
        shared_auth0: Option<u16>,
        webdis: Option<u16>,
        config: EnvoyConfig<'a>,
    ) -> Plan<'a> {
        let emulator = match shared_auth0 {
            Some(port) => Side::Running(port),
            None => Side::Start {
                port: None,
                threads: Some(4),
            },
        };
        Plan {
            dir: repo().join("target/it").join(name),
            fresh_dir: true,
            log_here: false,
            bins: Bins {
                envoy: env_path("ENVOY_BIN"),
                emulator: env_path("EMULATOR_BIN"),
                wasm: env_path("WASM_PATH"),
            },
            emulator,
            tenant: repo().join("emulator/tenant.json"),
            key_file: repo().join("target/it/emulator-key.pem"),
            echo: Side::Start {
                port: None,
                threads: Some(2),
            },
            envoy: Some(EnvoyPlan {
                listen: None,
                admin: None,
                webdis: webdis.unwrap_or(9),
                filter: FilterPlan {
                    local_run: false,
                    overrides: vec![overrides.to_string()],
                    replace: vec![],
                },
                config,
                run: EnvoyRun {
                    component_log_level: Some("wasm:debug".into()),
                    ..EnvoyRun::default()
                },
            }),
        }
    }

    /// The gateway, or Envoy's log when Envoy refused its configuration (a test may expect
    /// that), or what else failed. Envoy not ready in time fails the test.
    fn started(name: &str, launched: Result<Launched, Failure>) -> Result<Gateway, String> {
        match launched {
            Ok(processes) => Ok(Gateway {
                base: format!("http://127.0.0.1:{}", processes.listen),
                auth0_base: format!("http://127.0.0.1:{}", processes.auth0),
                auth0_port: processes.auth0,
                admin_port: processes.admin,
                upstream_base: format!("http://127.0.0.1:{}", processes.upstream),
                dir: repo().join("target/it").join(name),
                processes,
                redis: None,
            }),
            Err(Failure::Exited { what, log, .. }) if what == "Envoy" => Err(log),
            Err(Failure::Timeout(message)) if message.starts_with("Envoy") => {
                panic!("envoy not ready: {message}")
            }
            Err(failure) => Err(failure.to_string()),
        }
    }

    pub fn stop_emulator(&mut self) {
        self.processes.emulator = None;
    }

    pub fn envoy_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// Arms a fault in the emulator (see emulator/src/faults.rs).
    pub fn fault(&self, spec: serde_json::Value) {
        let r = request(
            "POST",
            &format!("{}/__emulator/faults", self.auth0_base),
            &[],
            Some(spec.to_string().as_bytes()),
        );
        assert_eq!(r.status, 200);
    }

    /// Sends `method target` with `headers` byte for byte (no client normalises the target),
    /// and reads the answer until Envoy closes the connection.
    pub fn raw(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
        use std::io::{Read, Write};
        let address = self.base.trim_start_matches("http://");
        let mut text = format!("{method} {target} HTTP/1.1\r\nhost: {address}\r\n");
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("connection: close\r\n\r\n");
        let mut stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        stream.write_all(text.as_bytes()).expect("send");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Response {
            status,
            headers,
            body: body.to_string(),
        }
    }

    /// `METHOD target` of every request the upstream received, oldest first.
    pub fn upstream_received(&self) -> Vec<String> {
        let url = format!("{}/__echo/received", self.upstream_base);
        serde_json::from_value(request("GET", &url, &[], None).json()).expect("a list")
    }

    /// `(METHOD target, header names)` of every request whose head reached the upstream,
    /// with or without its body, oldest first.
    pub fn upstream_received_headers(&self) -> Vec<(String, Vec<String>)> {
        let url = format!("{}/__echo/received-headers", self.upstream_base);
        serde_json::from_value(request("GET", &url, &[], None).json()).expect("a list")
    }

    /// Starts a bulk import of `users` (a JSON list) with `admin`'s key, and checks Auth0's job
    /// came back.
    pub fn start_import(&self, admin: (&str, &str), users: &serde_json::Value) -> Response {
        let users = users.to_string();
        let body = multipart(&[
            ("users", Some("users.json"), users.as_bytes()),
            ("upsert", None, b"false"),
        ]);
        let job = self.call("POST", "/users/import", &[admin, MULTIPART], Some(&body));
        assert!(
            job.status == 201 || job.status == 202,
            "{} {}",
            job.status,
            job.body
        );
        assert_eq!(job.json()["type"], "users_import");
        job
    }

    /// Envoy's stats whose names match `filter` (a regex), as `/stats` lists them.
    pub fn stats(&self, filter: &str) -> String {
        let url = format!("http://127.0.0.1:{}/stats?filter={filter}", self.admin_port);
        request("GET", &url, &[], None).body
    }

    /// `stats(filter)` once `settled` holds, or after 5 s: the filter hands its counters to
    /// Envoy on its once-a-second tick.
    pub fn stats_once(&self, filter: &str, settled: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let stats = self.stats(filter);
            if settled(&stats) || std::time::Instant::now() >= deadline {
                return stats;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn emulator_calls(&self, path: &str) -> u64 {
        let r = request(
            "GET",
            &format!("{}/__emulator/calls", self.auth0_base),
            &[],
            None,
        );
        r.json()[path].as_u64().unwrap_or(0)
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        request(method, &format!("{}{path}", self.base), headers, body)
    }

    pub fn post_form(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        pairs: &[(&str, &str)],
    ) -> Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.call("POST", path, &all, Some(body.as_bytes()))
    }

    pub fn post_json(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: serde_json::Value,
    ) -> Response {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.call("POST", path, &all, Some(body.to_string().as_bytes()))
    }
}
