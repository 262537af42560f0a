//! The Envoy configuration a gateway runs: the shipped template in either body-reading mode, or
//! whatever a test renders from the ports (the deployment-shape tests).

#![allow(dead_code)]

use std::path::PathBuf;

use super::repo;

/// Where one gateway's processes listen, and the module Envoy loads.
pub struct Ports {
    pub listen: u16,
    pub admin: u16,
    pub auth0: u16,
    pub upstream: u16,
    pub webdis: u16,
    pub wasm: PathBuf,
    /// This gateway's directory under target/it, for files its Envoy config refers to.
    pub dir: PathBuf,
}

/// Makes an Envoy configuration from the ports and the filter configuration.
pub type Render<'a> = &'a dyn Fn(&Ports, &serde_json::Value) -> String;

/// With `AUTH0_FILTER_BODY=hold` the filter reads bodies through a hold instance
/// (`bodyReading: holdFilter`) instead of `allow_on_headers_stop_iteration`, so the same
/// behavioural suites run in both modes.
pub fn hold_mode() -> bool {
    std::env::var("AUTH0_FILTER_BODY").is_ok_and(|mode| mode == "hold")
}

/// The shipped Envoy template (envoy/envoy.template.yaml) for these ports and filter config.
/// Lines tagged `# flag-mode` are for the stop-iteration mode only; lines commented `#hold:`
/// are the hold mode's.
pub fn render_template(ports: &Ports, prefix: &str, config: &serde_json::Value) -> String {
    render_template_in(ports, prefix, config, hold_mode())
}

/// `render_template` in the mode given: `hold` for the hold mode, else the flag mode.
pub fn render_template_in(
    ports: &Ports,
    prefix: &str,
    config: &serde_json::Value,
    hold: bool,
) -> String {
    let mut config = config.clone();
    let template =
        std::fs::read_to_string(repo().join("envoy/envoy.template.yaml")).expect("envoy template");
    let template = if hold {
        config["bodyReading"] = serde_json::json!("holdFilter");
        template
            .lines()
            .filter(|line| !line.trim_end().ends_with("# flag-mode"))
            .map(|line| match line.split_once("#hold: ") {
                Some((indent, rest)) if indent.trim().is_empty() => format!("{indent}{rest}"),
                _ => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        template
    };
    template
        .replace("{{LISTEN_PORT}}", &ports.listen.to_string())
        .replace("{{ADMIN_PORT}}", &ports.admin.to_string())
        .replace("{{AUTH0_PORT}}", &ports.auth0.to_string())
        .replace("{{UPSTREAM_PORT}}", &ports.upstream.to_string())
        .replace("{{WASM_PATH}}", &ports.wasm.to_string_lossy())
        .replace("{{PREFIX}}", prefix)
        .replace("{{WEBDIS_PORT}}", &ports.webdis.to_string())
        .replace("{{FILTER_CONFIG}}", &config.to_string())
}
