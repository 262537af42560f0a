//! SHA-256 digests in hex: the keys sessions are stored under, and short stable names.

/// Lowercase hex of `bytes`, in one allocation (this runs on every session lookup).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for nibble in bytes.iter().flat_map(|b| [b >> 4, b & 0x0f]) {
        out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
    }
    out
}

/// Hex SHA-256 of the token a session is found by. Shared, not copied: a verified token
/// keeps its key, and every repeat request of that token clones it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(std::rc::Rc<str>);

impl SessionKey {
    pub fn for_token(token: &str) -> SessionKey {
        let digest = hmac_sha256::Hash::hash(token.as_bytes());
        SessionKey(std::rc::Rc::from(hex(&digest)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
