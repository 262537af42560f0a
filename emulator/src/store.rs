//! The tenant's users as one mutable store shared by the Authentication API (logins) and the
//! Management API (search, create, update, delete, imports), plus the Management API's user
//! object shape and the timestamps and ids it uses.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::tenant::{User, TENANT_EPOCH};

/// Users keyed by `user_id`, so listings come out sorted by id.
pub struct Users {
    inner: Mutex<BTreeMap<String, User>>,
}

impl Users {
    pub fn new(users: Vec<User>) -> Users {
        Users {
            inner: Mutex::new(users.into_iter().map(|u| (u.user_id.clone(), u)).collect()),
        }
    }

    /// Runs `f` on the locked store; `None` only if the lock is poisoned.
    pub fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, User>) -> R) -> Option<R> {
        let mut guard = self.inner.lock().ok()?;
        Some(f(&mut guard))
    }

    pub fn by_id(&self, user_id: &str) -> Option<User> {
        self.with(|users| users.get(user_id).cloned()).flatten()
    }

    /// A user of a connection by email (case-insensitive) or username.
    pub fn by_login(&self, connection: &str, login: &str) -> Option<User> {
        self.with(|users| find_login(users, connection, login).cloned())
            .flatten()
    }

    pub fn all(&self) -> Vec<User> {
        self.with(|users| users.values().cloned().collect())
            .unwrap_or_default()
    }
}

pub fn find_login<'a>(
    users: &'a BTreeMap<String, User>,
    connection: &str,
    login: &str,
) -> Option<&'a User> {
    users.values().find(|u| {
        u.connection == connection
            && (u.email.eq_ignore_ascii_case(login) || u.username.as_deref() == Some(login))
    })
}

/// The user whose email (case-insensitive) is taken in a connection.
pub fn find_email<'a>(
    users: &'a BTreeMap<String, User>,
    connection: &str,
    email: &str,
) -> Option<&'a User> {
    users
        .values()
        .find(|u| u.connection == connection && u.email.eq_ignore_ascii_case(email))
}

impl User {
    /// The Management API v2 user object (never the password).
    pub fn management_json(&self) -> Value {
        let local = self.email.split('@').next().unwrap_or_default();
        let initials: String = local
            .chars()
            .filter(char::is_ascii_alphabetic)
            .take(2)
            .collect::<String>()
            .to_ascii_lowercase();
        let mut user = Map::new();
        user.insert("user_id".into(), self.user_id.clone().into());
        user.insert("email".into(), self.email.clone().into());
        user.insert("email_verified".into(), self.email_verified.into());
        if let Some(username) = &self.username {
            user.insert("username".into(), username.clone().into());
        }
        let name = self.name.clone().unwrap_or_else(|| self.email.clone());
        user.insert("name".into(), name.into());
        let nickname = self.nickname.clone().unwrap_or_else(|| local.to_string());
        user.insert("nickname".into(), nickname.into());
        for (key, value) in [
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
        ] {
            if let Some(value) = value {
                user.insert(key.into(), value.clone().into());
            }
        }
        let picture = self
            .picture
            .clone()
            .unwrap_or_else(|| format!("https://cdn.auth0.com/avatars/{initials}.png"));
        user.insert("picture".into(), picture.into());
        let created = self
            .created_at
            .clone()
            .unwrap_or_else(|| TENANT_EPOCH.into());
        let updated = self.updated_at.clone().unwrap_or_else(|| created.clone());
        user.insert("created_at".into(), created.into());
        user.insert("updated_at".into(), updated.into());
        let bare_id = self
            .user_id
            .split_once('|')
            .map_or(self.user_id.as_str(), |(_, id)| id);
        user.insert(
            "identities".into(),
            json!([{"connection": self.connection, "user_id": bare_id, "provider": "auth0", "isSocial": false}]),
        );
        user.insert("app_metadata".into(), self.app_metadata.clone().into());
        user.insert("user_metadata".into(), self.user_metadata.clone().into());
        user.insert("logins_count".into(), self.logins_count.into());
        user.insert("blocked".into(), self.blocked.into());
        Value::Object(user)
    }
}

/// A new Auth0 database user id: `auth0|` and 24 hex digits.
pub fn new_user_id() -> String {
    let mut bytes = [0u8; 12];
    let _ = getrandom::getrandom(&mut bytes);
    format!("auth0|{}", crate::tokens::hex(&bytes))
}

/// `prefix` and `n` random ASCII letters and digits (job ids: `job_` + 16).
pub fn new_alnum_id(prefix: &str, n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    let _ = getrandom::getrandom(&mut bytes);
    let tail: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("{prefix}{tail}")
}

/// Basic email shape check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

/// The current time as ISO 8601 with milliseconds, as Auth0 writes timestamps.
pub fn now_iso() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    iso_from_millis(since.as_millis() as i64)
}

pub fn iso_from_millis(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
