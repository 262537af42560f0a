//! What one instance of the module on a filter chain is (the filter, or the hold instance that
//! follows it), and how the filter reads the bodies of the requests it answers.

use super::{Config, ConfigError};

/// How the filter keeps a request it answers from the upstream while it reads its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum BodyReading {
    /// Pause in the request-headers callback. Envoy then hands the filter the body only with
    /// the plugin setting `allow_on_headers_stop_iteration: true`, which plain Envoy and an
    /// Istio `EnvoyFilter` can set and Istio's `WasmPlugin` and Envoy Gateway cannot.
    #[default]
    StopIteration,
    /// Let the headers go on to a second instance of this module, configured as
    /// `{"role": "hold"}` and placed after this one, which stops exactly the requests this one
    /// marks. A filter that stops stops only itself and those after it, so this one still gets
    /// the body while the router never sees the request.
    HoldFilter,
}

/// The configuration of a hold instance: `{"role": "hold"}` and nothing else. It goes on
/// the filter chain right after a filter configured with `bodyReading: holdFilter`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "HoldConfig")
)]
pub(super) struct RawHold {
    /// Makes this instance of the module the hold instance.
    #[cfg_attr(feature = "schema", schemars(extend("const" = "hold")))]
    role: String,
}

/// What one instance of the module on an Envoy filter chain is.
#[derive(Debug, Clone)]
pub enum Plugin {
    /// The filter itself.
    Filter(Box<Config>),
    /// The hold instance that follows a filter configured with `bodyReading: holdFilter`.
    Hold,
}

impl Plugin {
    /// Parses a plugin configuration: `{"role": "hold"}` makes a hold instance, anything else
    /// must be a valid filter configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Plugin, ConfigError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ConfigError::new("(root)", e.to_string()))?;
        if value.get("role").is_none() {
            return Config::from_json(bytes).map(|config| Plugin::Filter(Box::new(config)));
        }
        let hold: RawHold = serde_json::from_value(value).map_err(|e| {
            ConfigError::new("role", format!("a hold instance has only `role`: {e}"))
        })?;
        match hold.role.as_str() {
            "hold" => Ok(Plugin::Hold),
            other => Err(ConfigError::new(
                "role",
                format!("`{other}` is not a role (the only one is `hold`)"),
            )),
        }
    }
}
