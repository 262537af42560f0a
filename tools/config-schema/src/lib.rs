//! The plugin configuration's JSON Schema and its reference page, both generated from the
//! configuration types (`auth0_filter_core::config::schema`, the `schema` feature): the
//! binary writes them (`make config-schema`) or, with `--check`, fails when a checked-in copy
//! differs (`make config-schema-check`, part of `make test`).

use std::path::{Path, PathBuf};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

mod reference;

/// The schema, relative to the repository root.
pub const SCHEMA_FILE: &str = "schema/auth0-filter-config.schema.json";
/// The reference page, relative to the repository root.
pub const REFERENCE_FILE: &str = "docs/configuration.md";
/// How to bring both up to date, as the reference page and `--check` say.
pub const COMMAND: &str = "make config-schema";

/// The repository root: this crate sits at `tools/config-schema`.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The schema, from the configuration types.
pub fn schema() -> Value {
    auth0_filter_core::config::plugin_config_schema()
}

/// The keys a reader looks for first stay at the top of the file; the rest of the schema is
/// in serde_json's (sorted) order.
const ROOT_ORDER: [&str; 5] = ["$schema", "$id", "title", "description", "oneOf"];

struct Root<'a>(&'a Map<String, Value>);

impl Serialize for Root<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for key in ROOT_ORDER {
            if let Some(value) = self.0.get(key) {
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in self.0 {
            if !ROOT_ORDER.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// The schema file's text: pretty-printed, ending with a newline.
pub fn schema_text(schema: &Value) -> Result<String, String> {
    let root = schema.as_object().ok_or("the schema is not an object")?;
    let mut text = serde_json::to_string_pretty(&Root(root)).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// Every generated file: its path relative to the repository root, and its text.
pub fn outputs() -> Result<Vec<(&'static str, String)>, String> {
    let schema = schema();
    Ok(vec![
        (SCHEMA_FILE, schema_text(&schema)?),
        (REFERENCE_FILE, reference::page(&schema)?),
    ])
}
