//! The one primitive every record store is built on: a key-value store with compare-and-swap
//! (proxy-wasm shared data in the filter; a `HashMap` in tests).

/// Read with a version, write if the version still matches.
pub trait CasKv {
    /// Value and version of a key; `(None, _)` when absent.
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), KvError>;
    /// Writes (or with `None` deletes) a key; `cas` of `Some(v)` fails with `CasMismatch` if
    /// the key changed since version `v` was read.
    fn set(&self, key: &str, value: Option<&[u8]>, cas: Option<u32>) -> Result<(), KvError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    CasMismatch,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

pub(crate) fn kv_error(e: KvError) -> StoreError {
    match e {
        KvError::CasMismatch => StoreError("concurrent update".into()),
        KvError::Failed(m) => StoreError(m),
    }
}

/// Creates `key` with an empty value if it is missing. Writing a missing key in shared data
/// ignores the CAS, so a key that is later compare-and-swapped must exist first; an existing
/// key is never overwritten.
pub(crate) fn ensure_key<K: CasKv + ?Sized>(kv: &K, key: &str) -> Result<(), StoreError> {
    let (_, cas) = kv.get(key).map_err(kv_error)?;
    if cas.is_none() {
        kv.set(key, Some(b""), None).map_err(kv_error)?;
    }
    Ok(())
}

/// A stored decimal number (unix secs or ms); anything else reads as none.
pub(crate) fn number(value: Option<Vec<u8>>) -> Option<u64> {
    value
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.trim().parse().ok())
}
