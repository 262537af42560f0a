//! The JSON Schema of the plugin configuration, derived from the types `Plugin::from_json`
//! reads (`raw`, and `plugin::RawHold`), for tools/config-schema: what their attributes
//! name (patterns, object rules) and the schema's root. Only with the `schema` feature: the
//! `.wasm` never carries it.
//!
//! The schema states a rule of the loader where JSON Schema can say it, and never refuses what
//! the loader takes: a pattern is at most as strict as the check it mirrors. What only the
//! loader checks (a name that must be a key elsewhere, a host's exact syntax) is named by the
//! annotation `x-checked-at-load-time`; object-level rules the schema does check are told in
//! words by `x-rules`, for the reference page.

use schemars::generate::SchemaSettings;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

use super::Secret;
use crate::small_map::SmallMap;

/// The schema's identifier: a name, not a place to fetch it from.
const SCHEMA_ID: &str = "urn:auth0-filter:plugin-configuration";

/// A string that is not only whitespace (the loader trims and refuses empty).
pub(super) const NOT_BLANK: &str = r"\S";

/// A host name, IPv4 address or bracketed IPv6 literal, with an optional port: the characters
/// `http::host::is_valid_host` allows, in its shape; label lengths, the last label not being a
/// number and the port's range are the loader's.
pub(super) const HOST_PATTERN: &str = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$";

/// `HOST_PATTERN` with the surrounding whitespace the loader trims.
pub(super) const HOST_PATTERN_TRIMMED: &str =
    r"^\s*(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?\s*$";

/// A header name: letters, digits, `-` and `_`, in any case, whitespace around trimmed.
pub(super) const HEADER_NAME: &str = r"^\s*[A-Za-z0-9_-]+\s*$";

/// What the loader checks of an identity header's name beyond `HEADER_NAME`.
pub(super) const IDENTITY_HEADER_RULE: &str = "not, in any case or mix of `-` and `_`, a header \
     the filter reads a credential or the client from (`authorization`, `proxy-authorization`, \
     `cookie`, `secret`, `client-key`, `client-type`) or one HTTP routes or frames a request by \
     (`host`, `content-length`, `content-type`, `transfer-encoding`, `connection`, `te`, \
     `upgrade`, `keep-alive`, `x-request-id`)";

/// `http://` or `https://` (any case) and no query, fragment, credentials, backslash, space or
/// control character (`parts::endpoint`); the host is checked at load time.
pub(super) const TENANT_URL: &str =
    r"^\s*[Hh][Tt][Tt][Pp][Ss]?://[^\s?#@\\\x00-\x1F\x7F-\x9F]+\s*$";

/// A route path: starts with `/`, at least one more character, no trailing `/`, no `?`, `#`
/// or space (`routes::paths_of`).
pub(super) const ROUTE_PATH: &str = r"^/[^?# ]*[^?# /]$";

/// Printable ASCII without spaces (session scope, Redis key prefix).
const PRINTABLE: &str = r"^[!-~]*$";

/// A map with any keys, as JSON objects are: the shape `SmallMap` deserialises.
impl<V: JsonSchema> JsonSchema for SmallMap<V> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<V>(),
        })
    }
}

/// A string, described where it is used: inline, so the field's `pattern` or `minLength`
/// applies to it.
impl JsonSchema for Secret {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string"})
    }
}

/// `{"required": [name], "properties": {name: not null}}`: `name` is given, and not `null`
/// (which the loader reads as absent).
fn given(name: &str) -> Value {
    json!({"required": [name], "properties": {name: {"not": {"type": "null"}}}})
}

/// `supportedSigningAlgs`: the algorithms the loader knows, and at least one the filter
/// verifies tokens with unless the list is empty.
pub(super) fn signing_algorithms(schema: &mut Schema) {
    schema.insert(
        "items".into(),
        json!({"type": "string", "enum": crate::jwt::LISTED_ALGORITHMS}),
    );
    schema.insert(
        "anyOf".into(),
        json!([
            {"maxItems": 0},
            {"contains": {"enum": crate::jwt::RSA_ALGORITHMS}}
        ]),
    );
}

/// `managementClient`: the deprecated connection fields and the current ones exclude each
/// other (`parts::validate_management`).
pub(super) fn management_connection_forms(schema: &mut Schema) {
    schema.insert(
        "not".into(),
        json!({"allOf": [
            {"anyOf": [given("supportedConnections"), given("defaultCreateUserConnection")]},
            {"anyOf": [given("supportedConnectionsMap"), given("defaultManagementConnectionName")]}
        ]}),
    );
    schema.insert(
        "x-rules".into(),
        json!([
            "Either `supportedConnectionsMap`/`defaultManagementConnectionName` or the deprecated \
             `supportedConnections`/`defaultCreateUserConnection`, not both."
        ]),
    );
}

/// `sessionStore`: what the `redis` backend needs (`parts::validate_store`); with `shared`
/// the other fields are ignored.
pub(super) fn session_store_rules(schema: &mut Schema) {
    schema.insert(
        "if".into(),
        json!({"required": ["backend"], "properties": {"backend": {"const": "redis"}}}),
    );
    schema.insert(
        "then".into(),
        json!({
            "required": ["webdisCluster"],
            "properties": {
                "webdisCluster": {"type": "string", "pattern": NOT_BLANK},
                "keyPrefix": {"pattern": PRINTABLE}
            },
            "anyOf": [
                {"allOf": [given("username"), given("password")]},
                {"not": {"anyOf": [given("username"), given("password")]}}
            ]
        }),
    );
    schema.insert(
        "x-rules".into(),
        json!([
            "With `redis`: `webdisCluster` is required and not blank, `keyPrefix` is printable \
             ASCII without spaces, and `username` and `password` are given both or neither."
        ]),
    );
}

/// The JSON Schema (draft 2020-12) of a plugin configuration: a filter's (`Filter`), or a
/// hold instance's `{"role": "hold"}` (`Hold`).
pub(super) fn plugin_config_schema<Filter: JsonSchema, Hold: JsonSchema>() -> Value {
    let mut generator: SchemaGenerator = SchemaSettings::draft2020_12().into_generator();
    let filter = generator.subschema_for::<Filter>();
    let hold = generator.subschema_for::<Hold>();
    let definitions = generator.take_definitions(true);
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "auth0-filter plugin configuration",
        "description": "The configuration of the auth0-filter Envoy Wasm module, as JSON in \
            Envoy's `configuration` (a `google.protobuf.StringValue`), an Istio WasmPlugin's \
            `pluginConfig` or an Envoy Gateway EnvoyExtensionPolicy's `config`: a filter's \
            configuration, or `{\"role\": \"hold\"}` for the hold instance that follows a filter \
            with `bodyReading: holdFilter`. Unknown keys are refused everywhere.",
        "oneOf": [filter, hold],
        "$defs": definitions,
        "x-checked-at-load-time": "a number is a whole number of at most 64 bits written \
            without a fraction or an exponent (`5000`, not `5000.0` or `5e3`, which JSON \
            Schema's `integer` also takes), and an object names each of its fields once",
    });
    tidy(&mut root);
    root
}

/// What the derive writes that says nothing to a reader: the `default: null` of an optional
/// field (absent is the default), the `uint64`-style formats of Rust's integer types (the
/// `minimum` says it), and the wrapping of doc comments at 100 columns (descriptions keep
/// their paragraphs only).
fn tidy(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            if map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|format| format.starts_with("uint"))
            {
                map.remove("format");
            }
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|paragraph| paragraph.split('\n').collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => tidy(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}
