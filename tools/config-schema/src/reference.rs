//! docs/configuration.md from the schema: a section per object or enumeration of `$defs`, in
//! the order they are met from the top level, each field with its type, default, allowed
//! values and description; then what only the loader checks.
//!
//! A keyword this page cannot put into words is an error, not a silent omission: the page
//! says everything the schema does.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::{COMMAND, SCHEMA_FILE};

/// The keywords the page puts into words (or that structure it).
const KNOWN: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "default",
    "deprecated",
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "minProperties",
    "items",
    "minItems",
    "maxItems",
    "contains",
    "pattern",
    "minLength",
    "minimum",
    "maximum",
    "enum",
    "const",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "if",
    "then",
    "x-checked-at-load-time",
    "x-rules",
];

/// Keywords that combine subschemas into object-level rules: an object using them must say
/// the rule in words (`x-rules`).
const LOGIC: &[&str] = &["oneOf", "anyOf", "allOf", "not", "if", "then"];

/// One `$defs` entry and where it sits in a configuration.
struct Section<'a> {
    name: &'a str,
    location: String,
}

/// A rule only the loader checks, and where.
struct LoadTimeRule {
    location: String,
    rule: String,
}

type Defs = Map<String, Value>;

fn check_keywords(schema: &Value, at: &str) -> Result<(), String> {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                if !KNOWN.contains(&key.as_str()) {
                    return Err(format!(
                        "{at}: the keyword `{key}` is not documented by tools/config-schema"
                    ));
                }
                match key.as_str() {
                    // Maps of names, not schemas with keywords.
                    "properties" | "$defs" => {
                        for (name, child) in value.as_object().into_iter().flatten() {
                            check_keywords(child, &format!("{at}/{key}/{name}"))?;
                        }
                    }
                    "default" | "enum" | "const" | "required" | "x-rules" => {}
                    _ => check_keywords(value, &format!("{at}/{key}"))?,
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_keywords(item, &format!("{at}/{i}"))),
        _ => Ok(()),
    }
}

/// The `$defs` name a `$ref` points to.
fn ref_name(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix("#/$defs/")
}

/// The definitions a field's schema leads to, with the suffix its location takes on the way
/// (`[]` for an array's items, `.<name>` for a map's values).
fn referenced<'a>(schema: &'a Value, suffix: &str, found: &mut Vec<(&'a str, String)>) {
    if let Some(name) = ref_name(schema) {
        found.push((name, suffix.to_string()));
    }
    for alternative in schema
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        referenced(alternative, suffix, found);
    }
    if let Some(items) = schema.get("items") {
        referenced(items, &format!("{suffix}[]"), found);
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        referenced(values, &format!("{suffix}.<name>"), found);
    }
}

fn properties(schema: &Value) -> impl Iterator<Item = (&String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

fn walk<'a>(
    defs: &'a Defs,
    name: &'a str,
    location: String,
    seen: &mut BTreeSet<&'a str>,
    sections: &mut Vec<Section<'a>>,
) -> Result<(), String> {
    if !seen.insert(name) {
        return Ok(());
    }
    let schema = defs
        .get(name)
        .ok_or_else(|| format!("`#/$defs/{name}` is referenced but not defined"))?;
    sections.push(Section {
        name,
        location: location.clone(),
    });
    for (field, property) in properties(schema) {
        let mut found = Vec::new();
        referenced(property, "", &mut found);
        for (child, suffix) in found {
            let at = if location.is_empty() {
                format!("{field}{suffix}")
            } else {
                format!("{location}.{field}{suffix}")
            };
            walk(defs, child, at, seen, sections)?;
        }
    }
    Ok(())
}

fn code(text: &str) -> String {
    format!("`{text}`")
}

fn json(value: &Value) -> String {
    code(&value.to_string())
}

fn anchor(name: &str) -> String {
    format!("[{name}](#{})", name.to_ascii_lowercase())
}

/// The values of an enumeration: `enum`, or `oneOf` alternatives that are each a `const`.
fn enum_values(schema: &Value) -> Option<Vec<(&Value, Option<&str>)>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.iter().map(|v| (v, None)).collect());
    }
    let alternatives = schema.get("oneOf")?.as_array()?;
    alternatives
        .iter()
        .map(|alt| {
            alt.get("const")
                .map(|v| (v, alt.get("description").and_then(Value::as_str)))
        })
        .collect()
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// `anyOf: [X, {"type": "null"}]`, as the derive writes an optional field: X.
fn nullable_of(schema: &Value) -> Option<&Value> {
    match schema.get("anyOf")?.as_array()?.as_slice() {
        [inner, null] if is_null_schema(null) => Some(inner),
        _ => None,
    }
}

fn type_text(schema: &Value) -> String {
    if let Some(inner) = nullable_of(schema) {
        return format!("{} or null", type_text(inner));
    }
    if let Some(name) = ref_name(schema) {
        return anchor(name);
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.is_empty() {
        return "any".into();
    }
    types
        .iter()
        .map(|t| match *t {
            "array" => match schema.get("items") {
                Some(items) => format!("array of {}", type_text(items)),
                None => "array".into(),
            },
            "object" => match schema.get("additionalProperties") {
                Some(values) if values.is_object() => {
                    format!("map of {}", type_text(values))
                }
                _ => "object".into(),
            },
            other => other.into(),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn plural(n: &Value, one: &str, many: &str) -> String {
    if n.as_u64() == Some(1) {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// What a schema allows, beyond its type, in words.
fn constraints(schema: &Value, defs: &Defs) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(inner) = nullable_of(schema) {
        return constraints(inner, defs);
    }
    if let Some(name) = ref_name(schema) {
        if let Some(values) = defs.get(name).and_then(enum_values) {
            let listed: Vec<String> = values.iter().map(|(v, _)| json(v)).collect();
            out.push(format!("one of {}", listed.join(", ")));
        }
        return out;
    }
    if let Some(values) = enum_values(schema) {
        let listed: Vec<String> = values.iter().map(|(v, _)| json(v)).collect();
        out.push(format!("one of {}", listed.join(", ")));
    }
    if let Some(value) = schema.get("const") {
        out.push(format!("exactly {}", json(value)));
    }
    match (schema.get("minimum"), schema.get("maximum")) {
        (Some(min), Some(max)) => out.push(format!("from {min} to {max}")),
        (Some(min), None) if min.as_u64() != Some(0) => out.push(format!("at least {min}")),
        (None, Some(max)) => out.push(format!("at most {max}")),
        _ => {}
    }
    if let Some(n) = schema.get("minLength") {
        if n.as_u64() == Some(1) {
            out.push("not empty".into());
        } else {
            out.push(format!("at least {}", plural(n, "character", "characters")));
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        if pattern == r"\S" {
            out.push("not blank".into());
        } else {
            out.push(format!("matches {}", code(pattern)));
        }
    }
    if let Some(n) = schema.get("minItems") {
        out.push(format!("at least {}", plural(n, "item", "items")));
    }
    if schema.get("maxItems").and_then(Value::as_u64) == Some(0) {
        out.push("empty".into());
    } else if let Some(n) = schema.get("maxItems") {
        out.push(format!("at most {}", plural(n, "item", "items")));
    }
    if let Some(n) = schema.get("minProperties") {
        out.push(format!("at least {}", plural(n, "entry", "entries")));
    }
    if let Some(names) = schema.get("propertyNames") {
        out.push(format!("keys: {}", constraints(names, defs).join(", ")));
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        let said = constraints(values, defs);
        if !said.is_empty() && ref_name(values).is_none() {
            out.push(format!("values: {}", said.join(", ")));
        }
    }
    if let Some(items) = schema.get("items") {
        let said = constraints(items, defs);
        if !said.is_empty() && ref_name(items).is_none() {
            out.push(format!("each item: {}", said.join(", ")));
        }
    }
    if let Some(contains) = schema.get("contains") {
        out.push(format!(
            "containing an item that is {}",
            constraints(contains, defs).join(", ")
        ));
    }
    if let Some(alternatives) = schema.get("anyOf").and_then(Value::as_array) {
        let said: Vec<String> = alternatives
            .iter()
            .map(|alt| constraints(alt, defs).join(", "))
            .collect();
        out.push(format!("either {}", said.join(", or ")));
    }
    out
}

/// A table cell: one line, no column separator.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace("\n\n", "<br><br>")
        .replace('\n', " ")
}

fn description(schema: &Value) -> Option<&str> {
    schema.get("description").and_then(Value::as_str)
}

fn object_section(
    out: &mut String,
    section: &Section<'_>,
    schema: &Value,
    defs: &Defs,
    load_time: &mut Vec<LoadTimeRule>,
) -> Result<(), String> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    out.push_str("| Field | Type | Default | Description |\n|---|---|---|---|\n");
    for (field, property) in properties(schema) {
        let location = if section.location.is_empty() {
            field.clone()
        } else {
            format!("{}.{field}", section.location)
        };
        let name = if required.contains(&field.as_str()) {
            format!("{} (required)", code(field))
        } else {
            code(field)
        };
        let default = property.get("default").map_or("—".to_string(), json);
        // A field without its own description takes its type's.
        let referenced = nullable_of(property).unwrap_or(property);
        let mut text = description(property)
            .or_else(|| {
                ref_name(referenced)
                    .and_then(|n| defs.get(n))
                    .and_then(description)
            })
            .unwrap_or_default()
            .to_string();
        if property.get("deprecated").and_then(Value::as_bool) == Some(true) {
            text = format!("**Deprecated.** {text}");
        }
        let allowed = constraints(property, defs);
        if !allowed.is_empty() {
            text.push_str(&format!("<br>**Allowed:** {}.", allowed.join("; ")));
        }
        if let Some(rule) = property
            .get("x-checked-at-load-time")
            .and_then(Value::as_str)
        {
            text.push_str(&format!("<br>**Checked at load time:** {rule}."));
            load_time.push(LoadTimeRule {
                location: location.clone(),
                rule: rule.to_string(),
            });
        }
        out.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            cell(&type_text(property)),
            cell(&default),
            cell(&text)
        ));
    }
    let rules: Vec<&str> = schema
        .get("x-rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if rules.is_empty() {
        if let Some(keyword) = LOGIC.iter().find(|k| schema.get(**k).is_some()) {
            return Err(format!(
                "`{}` has an object-level `{keyword}` without `x-rules` saying it in words",
                section.name
            ));
        }
    } else {
        out.push('\n');
        for rule in rules {
            out.push_str(&format!("- {rule}\n"));
        }
    }
    if let Some(rule) = schema.get("x-checked-at-load-time").and_then(Value::as_str) {
        out.push_str(&format!("\n**Checked at load time:** {rule}.\n"));
        load_time.push(LoadTimeRule {
            location: section.location.clone(),
            rule: rule.to_string(),
        });
    }
    Ok(())
}

fn enum_section(out: &mut String, values: &[(&Value, Option<&str>)]) {
    out.push_str("| Value | Description |\n|---|---|\n");
    for (value, text) in values {
        out.push_str(&format!(
            "| {} | {} |\n",
            cell(&json(value)),
            cell(text.unwrap_or_default())
        ));
    }
}

const HEADER: &str = "\
# Configuration reference

<!-- Generated by `{COMMAND}` (tools/config-schema) from the configuration types in
crates/core/src/config/raw.rs: edit their doc comments and attributes, not this page. -->

Every field of the plugin configuration, generated by `{COMMAND}` from the types the filter
reads it into, together with its JSON Schema,
[`{SCHEMA_FILE}`](../{SCHEMA_FILE}); `make test` fails when either is out of
date. How the fields work together, with examples, is in
[configuration-notes.md](configuration-notes.md).

Editors: the Istio and Envoy Gateway manifests name the schema in a comment beside each
plugin configuration; point a JSON or YAML editor at it there. A configuration cannot name its
schema itself (a `$schema` key is an unknown key, which the filter refuses).

";

const GENERAL: &str = "\
General rules:
- A field whose type includes `null` may be given as `null`: it counts as absent and takes its
  default.
- \"Not blank\" means a string with a character other than whitespace: the loader trims
  strings before it checks them.
- A configuration the loader refuses makes Envoy refuse the plugin, with one log line naming
  the field, e.g. `invalid plugin configuration: clients.web.sameSite: unknown variant …`.

";

/// The reference page of `schema`.
pub(crate) fn page(schema: &Value) -> Result<String, String> {
    check_keywords(schema, "#")?;
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .ok_or("the schema has no $defs")?;
    let forms: Vec<&str> = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .ok_or("the schema's root is not a oneOf")?
        .iter()
        .map(|form| ref_name(form).ok_or("a root alternative is not a $ref"))
        .collect::<Result<_, _>>()?;

    let mut out = HEADER
        .replace("{COMMAND}", COMMAND)
        .replace("{SCHEMA_FILE}", SCHEMA_FILE);
    if let Some(text) = description(schema) {
        out.push_str(text);
        out.push_str("\n\n");
    }
    out.push_str("A plugin configuration is one of:\n");
    for form in &forms {
        let text = defs.get(*form).and_then(description).unwrap_or_default();
        out.push_str(&format!("- {}: {}\n", anchor(form), text));
    }
    out.push('\n');
    out.push_str(GENERAL);

    let mut seen = BTreeSet::new();
    let mut sections = Vec::new();
    for form in &forms {
        walk(defs, form, String::new(), &mut seen, &mut sections)?;
    }
    let mut load_time = Vec::new();
    for section in &sections {
        let def = defs
            .get(section.name)
            .ok_or("a section without a definition")?;
        out.push_str(&format!("## {}\n\n", section.name));
        if !section.location.is_empty() {
            out.push_str(&format!("At {}.\n\n", code(&section.location)));
        }
        if let Some(text) = description(def) {
            out.push_str(text);
            out.push_str("\n\n");
        }
        if let Some(values) = enum_values(def) {
            enum_section(&mut out, &values);
        } else if def.get("properties").is_some() {
            object_section(&mut out, section, def, defs, &mut load_time)?;
        } else {
            return Err(format!(
                "`{}` is neither an object nor an enumeration",
                section.name
            ));
        }
        out.push('\n');
    }
    if let Some(unused) = defs.keys().find(|name| !seen.contains(name.as_str())) {
        return Err(format!("`#/$defs/{unused}` is not reachable from the root"));
    }

    out.push_str(
        "## Checked at load time\n\n\
         The schema cannot say these rules; the loader (`Config::from_json`) refuses a \
         configuration that breaks them.\n\n| Where | Rule |\n|---|---|\n",
    );
    if let Some(rule) = schema.get("x-checked-at-load-time").and_then(Value::as_str) {
        out.push_str(&format!("| everywhere | {} |\n", cell(rule)));
    }
    for rule in load_time {
        out.push_str(&format!(
            "| {} | {} |\n",
            code(&rule.location),
            cell(&rule.rule)
        ));
    }
    // The file ends with exactly one newline.
    while out.ends_with("\n\n") {
        out.pop();
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
