//! The plugin configuration's JSON Schema (`schema/auth0-filter-config.schema.json`) and its
//! reference page (`docs/configuration.md`), both written by tools/config-schema from the
//! configuration types:
//! - they are what the generator writes from today's types (`make config-schema` rewrites
//!   them);
//! - the schema takes every configuration that is shipped: envoy/filter-config.json rendered
//!   into the Envoy template in both body-reading modes, every plugin configuration of the
//!   Istio and Envoy Gateway manifests, the compose stack's, and the original auth0-client
//!   example filled as `tests/behaviour/migration.rs` fills it;
//! - over the cases of `tests/fixtures/config-cases.json` the schema gives the loader's
//!   (`Plugin::from_json`) verdict, except where the loader checks what JSON Schema cannot
//!   say: each such case names the row of the page's "Checked at load time" table that says
//!   the rule, and every row has a case;
//! - the defaults the schema states are the ones the loader applies.
//!
//! The schema runs through the `jsonschema` crate (draft 2020-12, its own `$defs` only).

use std::path::PathBuf;

use auth0_filter_config_schema::{outputs, COMMAND, REFERENCE_FILE, SCHEMA_FILE};
use auth0_filter_core::config::routes::RouteKind;
use auth0_filter_core::config::{BodyReading, Config, Plugin};
use harness::{
    filled_original_config, original_gateway_fields, plugin_configurations,
    plugin_configurations_in, render_template_in, repo, shipped_manifest_files, FilterConfig,
    Ports,
};
use serde::Deserialize;
use serde_json::{json, Value};

fn read(name: &str) -> String {
    std::fs::read_to_string(repo().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn schema() -> Value {
    serde_json::from_str(&read(SCHEMA_FILE)).unwrap_or_else(|e| panic!("{SCHEMA_FILE}: {e}"))
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema())
        .unwrap_or_else(|e| panic!("{SCHEMA_FILE} is not a valid JSON Schema: {e}"))
}

/// What the schema finds wrong with `instance`, one line per error; empty when it is valid.
fn schema_errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_schema_and_the_reference_page_are_what_the_generator_writes() {
    let files = outputs().unwrap_or_else(|e| panic!("the generator fails: {e}"));
    assert_eq!(files.len(), 2);
    for (name, generated) in files {
        let checked_in = std::fs::read_to_string(repo().join(name)).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{name} differs from what the configuration types give: run `{COMMAND}`"
        );
    }
}

#[test]
fn the_schema_is_draft_2020_12_with_an_id_and_both_plugin_forms() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    for key in ["$id", "title", "description"] {
        assert!(schema[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
    }
    assert_eq!(
        schema["oneOf"],
        json!([{"$ref": "#/$defs/FilterConfig"}, {"$ref": "#/$defs/HoldConfig"}])
    );
    // Checked against the draft's meta-schema on the way.
    validator();
}

/// Every configuration that is shipped, with where it comes from.
fn shipped_configurations() -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut push = |place: String, json: Result<Vec<u8>, String>| {
        found.push((
            place.clone(),
            json.unwrap_or_else(|e| panic!("{place}: {e}")),
        ))
    };
    // `make run` and the integration tests: the local-run configuration in the template.
    let tests = FilterConfig::shipped("8081", "8080", false).expect("envoy/filter-config.json");
    let local = FilterConfig::local_run("8081", "8080", false).expect("envoy/filter-config.json");
    let ports = Ports {
        listen: 8080,
        admin: 9901,
        auth0: 8081,
        upstream: 8082,
        webdis: 7379,
        wasm: PathBuf::from("/auth0_filter.wasm"),
        dir: std::env::temp_dir(),
    };
    let modes = [("flag mode", false), ("hold mode", true)];
    for ((mode, hold), (user, config)) in modes
        .into_iter()
        .flat_map(|mode| [(mode, ("tests", &tests)), (mode, ("make run", &local))])
    {
        let text = render_template_in(&ports, "", config, hold);
        let file =
            format!("envoy/envoy.template.yaml with envoy/filter-config.json ({mode}, {user})");
        for config in plugin_configurations_in(&file, &text) {
            push(config.place, config.json);
        }
    }
    for path in shipped_manifest_files()
        .into_iter()
        .chain([repo().join("envoy/compose/envoy.yaml")])
    {
        for config in plugin_configurations(&path) {
            push(config.place, config.json);
        }
    }
    let mut original = filled_original_config();
    for (key, value) in original_gateway_fields().as_object().expect("an object") {
        original[key] = value.clone();
    }
    let original = original.to_string().replace("{{AUTH0_PORT}}", "8081");
    push(
        "tests/fixtures/original-config.json, filled".into(),
        Ok(original.into_bytes()),
    );
    found
}

#[test]
fn the_schema_accepts_every_shipped_configuration() {
    let validator = validator();
    let configurations = shipped_configurations();
    let mut wrong = Vec::new();
    let mut holds = 0;
    for (place, json) in &configurations {
        let instance: Value =
            serde_json::from_slice(json).unwrap_or_else(|e| panic!("{place}: not JSON: {e}"));
        match Plugin::from_json(json) {
            Ok(Plugin::Hold) => holds += 1,
            Ok(Plugin::Filter(_)) => {}
            Err(e) => wrong.push(format!("{place}: the filter refuses it: {e}")),
        }
        for error in schema_errors(&validator, &instance) {
            wrong.push(format!("{place}: {error}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    for expected in [
        "envoy/envoy.template.yaml with envoy/filter-config.json (flag mode, tests)",
        "envoy/envoy.template.yaml with envoy/filter-config.json (flag mode, make run)",
        "envoy/envoy.template.yaml with envoy/filter-config.json (hold mode, tests)",
        "envoy/envoy.template.yaml with envoy/filter-config.json (hold mode, make run)",
        "istio/",
        "envoy-gateway/",
        "envoy/compose/envoy.yaml",
        "tests/fixtures/original-config.json",
    ] {
        assert!(
            configurations.iter().any(|(p, _)| p.starts_with(expected)),
            "no configuration from {expected}"
        );
    }
    assert!(holds >= 2, "the hold instances are checked too ({holds})");
}

#[derive(Deserialize)]
struct Cases {
    base: Value,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Case {
    name: String,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    set: Vec<(String, Value)>,
    #[serde(default)]
    remove: Vec<String>,
    accepted: bool,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    load_time: Option<String>,
}

/// A JSON pointer's parent (created as objects where missing) and last key.
fn parent<'a>(document: &'a mut Value, pointer: &str) -> (&'a mut Value, String) {
    let unescape = |token: &str| token.replace("~1", "/").replace("~0", "~");
    let (path, last) = pointer.rsplit_once('/').expect("a JSON pointer");
    let mut at = document;
    for token in path.split('/').skip(1) {
        at = at
            .as_object_mut()
            .expect("an object on the way")
            .entry(unescape(token))
            .or_insert_with(|| json!({}));
    }
    (at, unescape(last))
}

impl Case {
    fn bytes(&self, base: &Value) -> Vec<u8> {
        if let Some(text) = &self.text {
            return text.clone().into_bytes();
        }
        if let Some(config) = &self.config {
            return serde_json::to_vec(config).expect("JSON");
        }
        let mut config = base.clone();
        for pointer in &self.remove {
            let (at, key) = parent(&mut config, pointer);
            at.as_object_mut()
                .and_then(|o| o.remove(&key))
                .unwrap_or_else(|| panic!("{}: nothing at {pointer}", self.name));
        }
        for (pointer, value) in &self.set {
            let (at, key) = parent(&mut config, pointer);
            at.as_object_mut()
                .expect("an object")
                .insert(key, value.clone());
        }
        serde_json::to_vec(&config).expect("JSON")
    }
}

/// The rows of the reference page's "Checked at load time" table: `everywhere`, or a field.
fn load_time_rows() -> Vec<String> {
    let page = read(REFERENCE_FILE);
    let table = page
        .split("## Checked at load time")
        .nth(1)
        .unwrap_or_else(|| panic!("{REFERENCE_FILE} has no \"Checked at load time\" section"));
    table
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|row| row.split(" | ").next())
        .filter(|cell| *cell != "Where" && !cell.starts_with("---"))
        .map(|cell| cell.trim_matches('`').to_string())
        .collect()
}

#[test]
fn the_schema_gives_the_loaders_verdict_on_every_case() {
    let cases: Cases = serde_json::from_str(&read("tests/fixtures/config-cases.json"))
        .expect("tests/fixtures/config-cases.json");
    let validator = validator();
    let rows = load_time_rows();
    assert!(rows.contains(&"everywhere".to_string()), "{rows:?}");
    let mut wrong = Vec::new();
    let mut rows_with_a_case = Vec::new();
    for case in &cases.cases {
        let name = &case.name;
        let bytes = case.bytes(&cases.base);
        let loader = Plugin::from_json(&bytes);
        match (&loader, case.accepted, &case.field) {
            (Ok(_), true, None) => {}
            (Err(e), false, Some(field)) if e.field == *field => {}
            (Err(e), false, Some(field)) => wrong.push(format!(
                "{name}: the loader refuses it for `{}` ({e}), not for `{field}`",
                e.field
            )),
            (Ok(_), false, _) => wrong.push(format!("{name}: the loader accepts it")),
            (Err(e), true, _) => wrong.push(format!("{name}: the loader refuses it: {e}")),
            (_, _, _) => wrong.push(format!(
                "{name}: a refused case names its `field`, an accepted one none"
            )),
        }
        let instance: Value = serde_json::from_slice(&bytes).expect("a case is JSON");
        let errors = schema_errors(&validator, &instance);
        match &case.load_time {
            None if errors.is_empty() != case.accepted => wrong.push(format!(
                "{name}: the loader {} it, the schema {} ({})",
                if case.accepted { "accepts" } else { "refuses" },
                if errors.is_empty() {
                    "accepts it"
                } else {
                    "refuses it"
                },
                errors.join("; ")
            )),
            None => {}
            Some(row) => {
                rows_with_a_case.push(row.clone());
                if case.accepted || !errors.is_empty() {
                    wrong.push(format!(
                        "{name}: a load-time case is one the loader refuses and the schema \
                         accepts ({})",
                        errors.join("; ")
                    ));
                }
                if !rows.contains(row) {
                    wrong.push(format!(
                        "{name}: `{row}` is not a row of {REFERENCE_FILE}'s \"Checked at load \
                         time\" table {rows:?}"
                    ));
                }
            }
        }
    }
    for row in &rows {
        if !rows_with_a_case.contains(row) {
            wrong.push(format!("no case shows the load-time rule of `{row}`"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every property of the schema that states a default, as `Definition.property`.
fn stated_defaults(schema: &Value) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for (definition, body) in schema["$defs"].as_object().expect("$defs") {
        for (property, spec) in body["properties"].as_object().into_iter().flatten() {
            if let Some(default) = spec.get("default") {
                found.push((format!("{definition}.{property}"), default.clone()));
            }
        }
    }
    found
}

#[test]
fn the_defaults_the_schema_states_are_the_loaders() {
    let cases: Cases =
        serde_json::from_str(&read("tests/fixtures/config-cases.json")).expect("the cases");
    // The base with the management routes open and a protected prefix: every default shows.
    let mut base = cases.base;
    base["managementAccess"] = json!({});
    base["protectedRoutes"] = json!({"prefixes": ["/p/"]});
    let config = Config::from_json(base.to_string().as_bytes()).expect("the base is valid");
    let app = config.clients.get("app").expect("the app client");
    let protected = config.protected.as_ref().expect("protectedRoutes");
    let access = config.management_access.as_ref().expect("managementAccess");
    let routes = &config.routes;
    let served = |method: &str, kind: RouteKind, defaults: &Value| -> Value {
        // The default paths that lead to the route; the first is where it is served.
        let paths: Vec<&str> = defaults
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|path| {
                routes
                    .classify(method, path)
                    .is_some_and(|m| m.kind == kind)
            })
            .collect();
        // The management routes hang under their base, which no exact route serves.
        if kind != RouteKind::UsersSearch {
            assert_eq!(routes.first_path(kind), paths.first().copied(), "{kind:?}");
        }
        json!(paths)
    };
    let schema = schema();
    let mut wrong = Vec::new();
    for (place, stated) in stated_defaults(&schema) {
        let applied = match place.as_str() {
            "FilterConfig.sessionDurationSeconds" => json!(config.session_duration_seconds),
            "FilterConfig.calloutTimeoutMs" => json!(config.callout_timeout_ms),
            "FilterConfig.maxBodyBytes" => json!(config.max_body_bytes),
            "FilterConfig.sweepIntervalSeconds" => json!(config.sweep_interval_seconds),
            "FilterConfig.jwksRefreshSeconds" => json!(config.jwks_refresh_seconds),
            "FilterConfig.loginStateTtlSeconds" => json!(config.login_state_ttl_seconds),
            "FilterConfig.tokenLeewaySeconds" => json!(app.access_expectation.leeway_secs),
            "FilterConfig.originalProtocolHeader" => json!(config.original_protocol_header),
            "FilterConfig.sessionScope" => json!(config.session_scope),
            "FilterConfig.statPrefix" => json!(config.stat_prefix),
            "FilterConfig.servicePrefix" => json!(routes
                .first_path(RouteKind::Token)
                .and_then(|path| path.strip_suffix("/oauth/token"))),
            "FilterConfig.serveDocumentation" => {
                json!(routes.first_path(RouteKind::Documentation).is_some())
            }
            "FilterConfig.bodyReading" => json!(match config.body_reading {
                BodyReading::StopIteration => "stopIteration",
                BodyReading::HoldFilter => "holdFilter",
            }),
            "FilterConfig.logoutClientIdEnabled" => json!(config.logout_client_id_enabled),
            "FilterConfig.trustClientTypeHeader" => json!(config.trust_client_type_header),
            "FilterConfig.allowedRedirectHosts" => json!(config.allowed_redirect_hosts),
            "FilterConfig.customClaimsNamespaces" => json!(config.custom_claims_namespaces),
            "Client.authorizeStateRequired" => json!(app.authorize_state_required),
            "Client.supportedConnections" => json!(app.supported_connections),
            "Client.supportedSigningAlgs" => json!(app.supported_signing_algs),
            "ManagementAccess.clientTypes" => json!(access.client_types),
            "ProtectedRoutes.redirectToLogin" => json!(protected.redirect_to_login),
            "ProtectedRoutes.sessionRecheckSeconds" => json!(protected.session_recheck_seconds),
            "IdentityHeaders.userId" => json!(&*protected.user_id_header),
            "IdentityHeaders.groups" => json!(&*protected.groups_header),
            "IdentityHeaders.clientType" => json!(&*protected.client_type_header),
            "Paths.token" => served("POST", RouteKind::Token, &stated),
            "Paths.refreshToken" => served("POST", RouteKind::RefreshToken, &stated),
            "Paths.logout" => served("GET", RouteKind::Logout, &stated),
            "Paths.authorize" => served("GET", RouteKind::Authorize, &stated),
            "Paths.userinfo" => served("GET", RouteKind::Userinfo, &stated),
            "Paths.documentation" => served("GET", RouteKind::Documentation, &stated),
            "Paths.users" => served("GET", RouteKind::UsersSearch, &stated),
            other => {
                wrong.push(format!("{other}: a default this test does not compare yet"));
                continue;
            }
        };
        if applied != stated {
            wrong.push(format!(
                "{place}: the schema says {stated}, the loader applies {applied}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
