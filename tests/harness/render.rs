//! The one renderer of the filter's Envoy configuration: envoy/envoy.template.yaml with the
//! ports, the module path and the filter configuration (envoy/filter-config.json plus
//! top-level changes) filled in, in either body-reading mode, for loopback or for
//! docker-compose.yml. The gateways of the tests, `auth0-stack render` (`make run`,
//! `make validate-envoy`, `make compose-config`) and `auth0-stack up` (the curl tour, the
//! api-check, the browser test, the bench) all render through here.
//!
//! The filter configuration keeps the members in the order the file gives them and is written
//! compact, byte for byte as `json.dumps(config, separators=(",", ":"))` writes it, so the
//! generated envoy/compose/envoy.yaml reads like its source.

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

use super::repo;

/// Where one gateway's processes listen, and the module Envoy loads.
pub struct Ports {
    pub listen: u16,
    pub admin: u16,
    pub auth0: u16,
    pub upstream: u16,
    pub webdis: u16,
    pub wasm: PathBuf,
    /// This gateway's directory, for files its Envoy config refers to.
    pub dir: PathBuf,
}

/// Makes an Envoy configuration from the ports and the filter configuration (the
/// deployment-shape tests render a control plane's configuration this way).
pub type Render<'a> = &'a dyn Fn(&Ports, &FilterConfig) -> String;

/// Which variant of the template to render.
#[derive(Clone, Default)]
pub struct Shape {
    /// The hold mode (`bodyReading: holdFilter`): lines tagged `# flag-mode` are dropped and the
    /// lines commented `#hold:` uncommented, which add the hold instance after the filter.
    pub hold: bool,
    /// For docker-compose.yml: Envoy listens on 0.0.0.0 and reaches the emulator and the echo
    /// upstream by their compose service names (STRICT_DNS clusters).
    pub compose: bool,
    /// Put before the paths of the routes the filter answers.
    pub prefix: String,
}

/// With `AUTH0_FILTER_BODY=hold` the filter reads bodies through a hold instance
/// (`bodyReading: holdFilter`) instead of `allow_on_headers_stop_iteration`, so the same
/// behavioural suites run in both modes.
pub fn hold_mode() -> bool {
    std::env::var("AUTH0_FILTER_BODY").is_ok_and(|mode| mode == "hold")
}

/// A filter configuration: a JSON object whose top-level members keep their order, each value
/// kept as the compact JSON text it was given as.
#[derive(Clone, Debug)]
pub struct FilterConfig {
    members: Vec<(String, String)>,
}

impl FilterConfig {
    /// Reads a JSON object.
    pub fn parse(text: &str) -> Result<FilterConfig, String> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(_)) => {}
            Ok(_) => return Err("the filter configuration is not a JSON object".into()),
            Err(e) => return Err(format!("the filter configuration is not JSON: {e}")),
        }
        Ok(FilterConfig {
            members: members(&compact(text))?,
        })
    }

    /// envoy/filter-config.json for a tenant (the emulator) on `auth0` and a gateway on
    /// `listen`. `compose`: the tenant URL is http://localhost:AUTH0, the emulator's `--issuer`
    /// in docker-compose.yml, which a browser reaches through the published port.
    pub fn shipped(auth0: &str, listen: &str, compose: bool) -> Result<FilterConfig, String> {
        let mut text = read("envoy/filter-config.json")?;
        if compose {
            text = swap(
                &text,
                "127.0.0.1:{{AUTH0_PORT}}",
                "localhost:{{AUTH0_PORT}}",
            )?;
        }
        Self::parse(
            &text
                .replace("{{AUTH0_PORT}}", auth0)
                .replace("{{LISTEN_PORT}}", listen),
        )
    }

    /// What `make run` (and everything started like it) runs: the shipped configuration with
    /// the `website` client as the default client, since the sample login site the echo
    /// upstream serves logs in from a browser, which sends no API key. The test gateways keep
    /// filter-config.json's `app` default.
    pub fn local_run(auth0: &str, listen: &str, compose: bool) -> Result<FilterConfig, String> {
        let mut config = Self::shipped(auth0, listen, compose)?;
        config.set("defaultClient", &Value::from("website"));
        Ok(config)
    }

    /// Sets a top-level member: in its place if it is there, else last.
    pub fn set(&mut self, key: &str, value: &Value) {
        let value = value.to_string();
        match self.members.iter_mut().find(|(k, _)| k == key) {
            Some(member) => member.1 = value,
            None => self.members.push((key.to_string(), value)),
        }
    }

    /// Applies the top-level members of the JSON object `overrides` with `set`; a `null` one
    /// removes the member instead.
    pub fn merge(&mut self, overrides: &str) -> Result<(), String> {
        let parsed: Value = serde_json::from_str(overrides)
            .map_err(|e| format!("the configuration changes are not JSON: {e}"))?;
        if !parsed.is_object() {
            return Err("the configuration changes are not a JSON object".into());
        }
        for (key, value) in members(&compact(overrides))? {
            if value == "null" {
                self.members.retain(|(k, _)| *k != key);
            } else {
                match self.members.iter_mut().find(|(k, _)| *k == key) {
                    Some(member) => member.1 = value,
                    None => self.members.push((key, value)),
                }
            }
        }
        Ok(())
    }

    /// Replaces `from` with `to` in every value.
    pub fn replace(&mut self, from: &str, to: &str) {
        for (_, value) in &mut self.members {
            *value = value.replace(from, to);
        }
    }

    /// The compact JSON text.
    pub fn json(&self) -> String {
        let members: Vec<String> = self
            .members
            .iter()
            .map(|(key, value)| format!("{}:{value}", Value::from(key.as_str())))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json()).unwrap_or(Value::Null)
    }
}

/// envoy/envoy.template.yaml rendered for `ports` and `config` as `shape` says.
pub fn render(ports: &Ports, config: &FilterConfig, shape: &Shape) -> Result<String, String> {
    let mut text = read("envoy/envoy.template.yaml")?;
    let mut config = config.clone();
    if shape.compose {
        for (placeholder, host) in [
            ("LISTEN_PORT", "0.0.0.0"),
            ("ADMIN_PORT", "0.0.0.0"),
            ("AUTH0_PORT", "emulator"),
            ("UPSTREAM_PORT", "upstream"),
        ] {
            text = swap(
                &text,
                &format!("address: 127.0.0.1, port_value: {{{{{placeholder}}}}}"),
                &format!("address: {host}, port_value: {{{{{placeholder}}}}}"),
            )?;
        }
        // Service names need DNS; STRICT_DNS also takes the (unused) webdis cluster's IP
        // literal.
        text = swap(&text, "type: STATIC", "type: STRICT_DNS")?;
        text = format!(
            "# GENERATED by `make compose-config` (auth0-stack render --compose, tests/harness) \
             from\n# envoy/envoy.template.yaml: edit the template, not this file.\n{text}"
        );
    }
    if shape.hold {
        config.set("bodyReading", &Value::from("holdFilter"));
        let mut lines = Vec::new();
        for line in text.lines() {
            if line.trim_end().ends_with("# flag-mode") {
                continue;
            }
            lines.push(match line.split_once("#hold: ") {
                Some((indent, rest)) if indent.trim().is_empty() => format!("{indent}{rest}"),
                _ => line.to_string(),
            });
        }
        text = lines.join("\n") + "\n";
    }
    Ok(text
        .replace("{{LISTEN_PORT}}", &ports.listen.to_string())
        .replace("{{ADMIN_PORT}}", &ports.admin.to_string())
        .replace("{{AUTH0_PORT}}", &ports.auth0.to_string())
        .replace("{{UPSTREAM_PORT}}", &ports.upstream.to_string())
        .replace("{{WASM_PATH}}", &ports.wasm.to_string_lossy())
        .replace("{{PREFIX}}", &shape.prefix)
        .replace("{{WEBDIS_PORT}}", &ports.webdis.to_string())
        .replace("{{FILTER_CONFIG}}", &config.json()))
}

/// The template for a test gateway, in the mode `AUTH0_FILTER_BODY` selects.
pub fn render_template(ports: &Ports, prefix: &str, config: &FilterConfig) -> String {
    render_template_in(ports, prefix, config, hold_mode())
}

/// The template for a test gateway: `hold` for the hold mode, else the flag mode.
pub fn render_template_in(
    ports: &Ports,
    prefix: &str,
    config: &FilterConfig,
    hold: bool,
) -> String {
    let shape = Shape {
        hold,
        compose: false,
        prefix: prefix.to_string(),
    };
    render(ports, config, &shape).unwrap_or_else(|e| panic!("{e}"))
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(repo().join(path)).map_err(|e| format!("{path}: {e}"))
}

/// Replaces `old`, which must be there: a template change must not silently skip it.
fn swap(text: &str, old: &str, new: &str) -> Result<String, String> {
    if text.contains(old) {
        Ok(text.replace(old, new))
    } else {
        Err(format!("`{old}` is no longer in the template"))
    }
}

/// JSON text without the whitespace between its tokens.
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

/// The top-level members of a compact JSON object (already checked to be one), in order: the
/// key and the value's text.
fn members(object: &str) -> Result<Vec<(String, String)>, String> {
    let inner = object
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or("not a JSON object")?;
    let mut parts = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0i32, false, false, 0);
    let mut colon = None;
    for (at, c) in inner.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ':' if depth == 0 && colon.is_none() => colon = Some(at),
            ',' if depth == 0 => {
                parts.push((start, colon.take(), at));
                start = at + 1;
            }
            _ => {}
        }
    }
    if !inner.is_empty() {
        parts.push((start, colon, inner.len()));
    }
    parts
        .into_iter()
        .map(|(start, colon, end)| {
            let colon = colon.ok_or("a member without a value")?;
            let key: String = serde_json::from_str(&inner[start..colon])
                .map_err(|e| format!("a member's key: {e}"))?;
            Ok((key, inner[colon + 1..end].to_string()))
        })
        .collect()
}
