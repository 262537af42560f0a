//! The one reader for JSON a client sends (login and refresh bodies, user bodies, `acl_rows`,
//! `$in` filters). It builds a `serde_json::Value` like `serde_json::from_slice` does, but
//! refuses an object that names a member twice, at any depth: serde_json would keep the last
//! one, while another reader of the same bytes (Auth0, a log, a WAF) may keep the first, so
//! what the filter checked need not be what gets used. Nesting is bounded too, well below
//! serde_json's own recursion limit, so a deep document is refused before it costs much.
//!
//! JSON from Auth0, the configuration and stored records is read with serde_json directly.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::http::error::FilterError;

/// Deepest nesting of arrays and objects accepted (the top-level value is depth 1).
pub const MAX_DEPTH: usize = 32;

/// Why a client's JSON was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON, or something after the value.
    Malformed,
    /// This member name appears twice in one object.
    Duplicate(String),
    /// Arrays and objects nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl JsonError {
    /// The 400 for this error; `malformed` is the message for input that is not JSON at all.
    pub fn bad_request(&self, malformed: &str) -> FilterError {
        match self {
            JsonError::Malformed => FilterError::bad_request(malformed),
            JsonError::Duplicate(key) => FilterError::bad_request(format!(
                "`{}` is given more than once",
                crate::http::error::sanitize(key)
            )),
            JsonError::TooDeep => FilterError::bad_request(format!(
                "JSON is nested more than {MAX_DEPTH} levels deep"
            )),
        }
    }
}

/// Parses a client's JSON document: any JSON value, with no repeated member name in any
/// object and at most [`MAX_DEPTH`] levels of nesting.
pub fn from_slice(bytes: &[u8]) -> Result<Value, JsonError> {
    let fault = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = Node {
        depth: 0,
        fault: &fault,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    // serde_json's error only carries text: the reason the visitor refused is kept aside.
    parsed.map_err(|_| fault.into_inner().unwrap_or(JsonError::Malformed))
}

/// Parses a client's JSON document into a 400 on failure (see [`JsonError::bad_request`]).
pub fn parse(bytes: &[u8], malformed: &str) -> Result<Value, FilterError> {
    from_slice(bytes).map_err(|e| e.bad_request(malformed))
}

/// One value at `depth` (the number of arrays and objects around it).
#[derive(Clone, Copy)]
struct Node<'a> {
    depth: usize,
    fault: &'a RefCell<Option<JsonError>>,
}

impl Node<'_> {
    fn refuse<E: de::Error>(&self, why: JsonError) -> E {
        let text = match &why {
            JsonError::Duplicate(_) => "duplicate member",
            JsonError::TooDeep => "nested too deeply",
            JsonError::Malformed => "malformed",
        };
        self.fault.replace(Some(why));
        E::custom(text)
    }

    /// The node for a member or element, if one more level is allowed.
    fn child<E: de::Error>(&self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            return Err(self.refuse(JsonError::TooDeep));
        }
        Ok(Node {
            depth: self.depth + 1,
            fault: self.fault,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As serde_json's own `Value`: a float JSON cannot hold is null.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.child()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.child()?;
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(self.refuse(JsonError::Duplicate(key)));
            }
            let value = map.next_value_seed(child)?;
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests;
