//! Coming from auth0-client: the original's documented example `config.json` (the 3.8.0
//! catalog default, `tests/fixtures/original-config.json`, copied verbatim from the spec) runs
//! as the plugin configuration in a real Envoy, and a login through it works.
//!
//! The example is a template: `{{AUTH0_CLIENT_ID}}`-style values are Mia Console
//! interpolations and `…` stands for the URLs the documentation leaves out. The test fills
//! those values, exactly as a deployment does, with the emulator tenant's, and adds only the
//! gateway fields that have no equivalent in the original (`harness::filled_original_config`,
//! `harness::original_gateway_fields`). Nothing else is changed.

use auth0_filter_core::config::Config;
use harness::Gateway;
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("../fixtures/original-config.json");

#[test]
fn the_verbatim_example_parses_up_to_its_elided_urls() {
    // Every key of the original is accepted as written: with the gateway fields added, the
    // only complaint left is the documentation's `…` where a tenant URL goes.
    let mut config: Value = serde_json::from_str(FIXTURE).expect("fixture JSON");
    config["auth0Clusters"] = json!({"tenant.eu.auth0.com": "auth0"});
    let error = Config::from_json(config.to_string().as_bytes()).expect_err("`…` is no URL");
    assert_eq!(error.field, "clients.cms.auth0Url", "{error}");
}

#[test]
fn the_filled_example_is_a_valid_plugin_configuration() {
    let mut config = harness::filled_original_config();
    for (key, value) in harness::original_gateway_fields()
        .as_object()
        .expect("object")
    {
        config[key] = value.clone();
    }
    let text = config.to_string().replace("{{AUTH0_PORT}}", "8081");
    let parsed = Config::from_json(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.default_client, None);
    assert!(parsed
        .clients
        .get("cms")
        .is_some_and(|cms| cms.is_website()));
    assert_eq!(parsed.session_duration_seconds, 86_400);
}

#[test]
fn a_login_works_with_the_original_config() {
    // The plugin configuration is the original's plus the gateway fields, nothing of the
    // local-run config: every other key of envoy/filter-config.json is removed.
    let base: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/filter-config.json"),
        )
        .expect("filter config"),
    )
    .expect("filter config JSON");
    let mut overrides = serde_json::Map::new();
    for key in base.as_object().expect("object").keys() {
        overrides.insert(key.clone(), Value::Null);
    }
    for part in [
        harness::filled_original_config(),
        harness::original_gateway_fields(),
    ] {
        for (key, value) in part.as_object().expect("object") {
            overrides.insert(key.clone(), value.clone());
        }
    }
    let gw = Gateway::start("original_config", Value::Object(overrides));

    // The original's login, as behind Mia's gateway: the client comes in `client-type`.
    let cms = ("client-type", "cms");
    let r = gw.post_form(
        "/oauth/token",
        &[cms],
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "Alice-Passw0rd!"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // `website` scope: empty body and the `sid` cookie, as the original.
    assert_eq!(r.body, "");
    let sid = r.sid();
    assert!(!sid.is_empty());

    // The session serves /userinfo, with the example's custom-claim namespaces merged.
    let cookie = format!("sid={sid}");
    let r = gw.call("GET", "/userinfo", &[cms, ("cookie", &cookie)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    let user = r.json();
    assert_eq!(user["sub"], "auth0|0000000000000000000000a1");
    assert_eq!(user["groups"], json!(["admin"]));
    assert_eq!(user["theme"], "dark");

    // Logout ends it: 302 to the tenant's /v2/logout, cookie cleared.
    let r = gw.call(
        "GET",
        "/logout?redirect=/",
        &[cms, ("cookie", &cookie)],
        None,
    );
    assert_eq!(r.status, 302, "{}", r.body);
    let location = r.header("location").unwrap_or_default();
    assert!(
        location.starts_with(&format!("{}/v2/logout?returnTo=", gw.auth0_base)),
        "{location}"
    );
    let r = gw.call("GET", "/userinfo", &[cms, ("cookie", &cookie)], None);
    r.assert_error(401);

    // Without a client (no `client-type`, empty `defaultClient`): 401, as the original.
    let r = gw.post_form(
        "/oauth/token",
        &[],
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "Alice-Passw0rd!"),
        ],
    );
    r.assert_error(401);
}
