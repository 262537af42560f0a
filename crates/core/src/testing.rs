//! Fixtures shared by the crate's unit tests: a valid configuration, an in-memory CAS store
//! with shared data's semantics, Redis behind Webdis in memory, an RSA signing key, and a
//! host in memory for the engine (`host`).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use base64::Engine;
use jwt_simple::prelude::RS256KeyPair;
use serde_json::Value;

use crate::config::Config;
use crate::http::{Callout, CalloutResult};
use crate::store::kv::{CasKv, KvError};
use crate::store::redis::COMMANDS;
use crate::store::SessionRecord;

mod host;
pub(crate) use host::{FakeHost, FlakyKv};

/// A valid base configuration (clients `web` and `app`, a management client), as JSON.
pub(crate) fn base_json() -> serde_json::Value {
    serde_json::json!({
        "clients": {
            "web": {
                "auth0Url": "https://tenant.eu.auth0.com/",
                "clientId": "web-client-id",
                "clientSecret": "web-client-secret",
                "redirectUrl": "https://app.example.org/web-login/callback",
                "scopes": ["offline_access", "profile", "email", "website"],
                "audience": "https://api.example.org",
                "supportedConnections": ["db-a", "db-b"],
                "defaultConnection": "db-a",
                "sameSite": "Lax"
            },
            "app": {
                "auth0Url": "https://tenant.eu.auth0.com",
                "clientId": "app-client-id",
                "clientSecret": "app-client-secret",
                "redirectUrl": "https://app.example.org/callback",
                "scopes": ["openid", "offline_access", "profile"],
                "supportedConnections": ["db-a"]
            }
        },
        "managementClient": {
            "auth0Url": "https://tenant.eu.auth0.com/",
            "clientId": "mgmt-id",
            "clientSecret": "mgmt-secret",
            "supportedConnectionsMap": {"db-a": {"connectionId": "con_0000000000000001"}},
            "defaultManagementConnectionName": "db-a"
        },
        "auth0Clusters": {"tenant.eu.auth0.com": "auth0"}
    })
}

/// The base configuration with top-level fields replaced.
pub(crate) fn config_with(overrides: serde_json::Value) -> Config {
    let mut json = base_json();
    if let (Some(base), Some(extra)) = (json.as_object_mut(), overrides.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    Config::from_json(json.to_string().as_bytes()).unwrap()
}

/// An in-memory CAS store with the semantics of Envoy's shared data (proxy-wasm-cpp-host
/// `SharedData::set`): a version per key; writing a missing key always succeeds, whatever the
/// CAS; writing `None` leaves the key with an empty value (there is no delete).
#[derive(Default)]
pub(crate) struct MemKv {
    pub(crate) data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    /// Makes the next N conditional writes fail as if another worker wrote first.
    pub(crate) conflicts: RefCell<usize>,
    version: RefCell<u32>,
    /// Reads and writes so far (what docs/scaling.md counts per route).
    pub(crate) reads: Cell<usize>,
    pub(crate) writes: Cell<usize>,
}

impl CasKv for MemKv {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), KvError> {
        self.reads.set(self.reads.get() + 1);
        Ok(match self.data.borrow().get(key) {
            Some((v, cas)) => ((!v.is_empty()).then(|| v.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn set(&self, key: &str, value: Option<&[u8]>, cas: Option<u32>) -> Result<(), KvError> {
        self.writes.set(self.writes.get() + 1);
        let mut data = self.data.borrow_mut();
        let current = data.get(key).map(|(_, c)| *c);
        if let (Some(current), Some(expected)) = (current, cas.filter(|c| *c != 0)) {
            let mut conflicts = self.conflicts.borrow_mut();
            if *conflicts > 0 {
                *conflicts -= 1;
                return Err(KvError::CasMismatch);
            }
            if current != expected {
                return Err(KvError::CasMismatch);
            }
        }
        let mut version = self.version.borrow_mut();
        *version += 1;
        data.insert(
            key.to_string(),
            (value.unwrap_or_default().to_vec(), *version),
        );
        Ok(())
    }
}

/// Redis behind Webdis, in memory: enough of GET/SET(NX,EX,PX)/SETEX/GETDEL/DEL/EXPIRE/ZADD/
/// ZREM/ZRANGEBYSCORE/ZREMRANGEBYSCORE to answer `RedisOp`'s calls with Webdis' JSON, refusing
/// any other command as the recommended Redis ACL does. `down` makes every call fail like an
/// unreachable Webdis.
#[derive(Default)]
pub(crate) struct FakeRedis {
    pub(crate) strings: RefCell<HashMap<String, (String, Option<u64>)>>,
    pub(crate) zsets: RefCell<HashMap<String, BTreeMap<String, u64>>>,
    /// EXPIRE on sorted sets (their TTL, as an absolute time).
    pub(crate) zset_expiry: RefCell<HashMap<String, u64>>,
    pub(crate) down: RefCell<bool>,
    pub(crate) now: RefCell<u64>,
    /// The command (first word) of every Webdis call so far, in order.
    pub(crate) sent: RefCell<Vec<String>>,
}

impl FakeRedis {
    pub(crate) fn answer(&self, callout: &Callout) -> CalloutResult {
        let body = String::from_utf8(callout.body.clone().unwrap_or_default()).unwrap();
        let args: Vec<String> = body
            .split('/')
            .map(|a| {
                percent_encoding::percent_decode_str(a)
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            })
            .collect();
        self.sent.borrow_mut().push(args[0].clone());
        if *self.down.borrow() {
            return CalloutResult::Failed { elapsed_ms: 1 };
        }
        let now = *self.now.borrow();
        let reply = self.run(&args, now);
        CalloutResult::Answered {
            status: 200,
            headers: vec![],
            body: serde_json::json!({ args[0].clone(): reply })
                .to_string()
                .into_bytes(),
        }
    }

    /// Drops every string key ending with `suffix` (another client's `DEL`).
    pub(crate) fn forget(&self, suffix: &str) {
        self.strings
            .borrow_mut()
            .retain(|k, _| !k.ends_with(suffix));
    }

    fn get(&self, key: &str, now: u64) -> Option<String> {
        let strings = self.strings.borrow();
        strings
            .get(key)
            .filter(|(_, exp)| exp.is_none_or(|e| e > now))
            .map(|(v, _)| v.clone())
    }

    fn run(&self, args: &[String], now: u64) -> Value {
        if !COMMANDS.contains(&args[0].as_str()) {
            return serde_json::json!([
                false,
                format!("NOPERM no permissions to run '{}'", args[0])
            ]);
        }
        let expired: Vec<String> = self
            .zset_expiry
            .borrow()
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.zsets.borrow_mut().remove(&key);
            self.zset_expiry.borrow_mut().remove(&key);
        }
        let reply = self.command(args, now);
        // Redis has no empty sorted sets: the key goes with its last member.
        self.zsets.borrow_mut().retain(|_, set| !set.is_empty());
        reply
    }

    fn command(&self, args: &[String], now: u64) -> Value {
        let a = |i: usize| args[i].clone();
        match args[0].as_str() {
            "GET" => self.get(&a(1), now).map_or(Value::Null, Value::String),
            "DEL" => Value::from(self.strings.borrow_mut().remove(&a(1)).is_some() as u64),
            "SETEX" => {
                let ttl: u64 = a(2).parse().unwrap();
                self.strings
                    .borrow_mut()
                    .insert(a(1), (a(3), Some(now + ttl)));
                serde_json::json!([true, "OK"])
            }
            "SET" => {
                let opts: Vec<String> = args[3..].to_vec();
                if opts.contains(&"NX".to_string()) && self.get(&a(1), now).is_some() {
                    return Value::Null;
                }
                let expiry = opts
                    .iter()
                    .position(|o| o == "EX")
                    .map(|i| now + opts[i + 1].parse::<u64>().unwrap())
                    .or_else(|| {
                        opts.iter()
                            .position(|o| o == "PX")
                            .map(|i| now + opts[i + 1].parse::<u64>().unwrap().div_ceil(1000))
                    });
                let previous = self.get(&a(1), now);
                self.strings.borrow_mut().insert(a(1), (a(2), expiry));
                if opts.contains(&"GET".to_string()) {
                    return previous.map_or(Value::Null, Value::String);
                }
                serde_json::json!([true, "OK"])
            }
            "ZADD" => {
                self.zsets
                    .borrow_mut()
                    .entry(a(1))
                    .or_default()
                    .insert(a(3), a(2).parse().unwrap());
                Value::from(1)
            }
            "ZREM" => Value::from(
                self.zsets
                    .borrow_mut()
                    .entry(a(1))
                    .or_default()
                    .remove(&a(2))
                    .is_some() as u64,
            ),
            "ZREMRANGEBYSCORE" => {
                let max: u64 = a(3).parse().unwrap();
                let mut zsets = self.zsets.borrow_mut();
                let set = zsets.entry(a(1)).or_default();
                let before = set.len();
                set.retain(|_, score| *score > max);
                Value::from((before - set.len()) as u64)
            }
            "ZRANGEBYSCORE" => {
                let min: u64 = a(2).trim_start_matches('(').parse().unwrap();
                let zsets = self.zsets.borrow();
                let members: Vec<Value> = zsets
                    .get(&a(1))
                    .map(|set| {
                        set.iter()
                            .filter(|(_, s)| **s > min)
                            .map(|(m, _)| Value::String(m.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                Value::Array(members)
            }
            "EXPIRE" => {
                let ttl: u64 = a(2).parse().unwrap();
                let exists = self.zsets.borrow().contains_key(&a(1));
                if exists {
                    self.zset_expiry.borrow_mut().insert(a(1), now + ttl);
                }
                Value::from(exists as u64)
            }
            other => serde_json::json!([false, format!("ERR unknown command '{other}'")]),
        }
    }
}

/// One RSA key for the whole test binary: generating one costs seconds.
pub(crate) fn key_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| RS256KeyPair::generate(2048).unwrap().to_pem().unwrap())
}

pub(crate) fn key(kid: &str) -> RS256KeyPair {
    RS256KeyPair::from_pem(key_pem()).unwrap().with_key_id(kid)
}

/// The issuer of the base configuration's clients.
pub(crate) const ISSUER: &str = "https://tenant.eu.auth0.com/";

/// An access token of `ISSUER` signed with `key(kid)`, issued 5 s before `now`, for `azp`,
/// with Alice's profile and the groups `admin` and `ops`.
pub(crate) fn sign(
    kid: &str,
    audiences: &[&str],
    azp: &str,
    now: crate::time::Timestamp,
    lifetime: u64,
) -> String {
    use jwt_simple::prelude::{Duration, RSAKeyPairLike, UnixTimeStamp};
    let custom = serde_json::json!({
        "azp": azp, "name": "Alice", "email": "a@x.org",
        "https://mia-platform.eu/app_metadata": {"groups": ["admin", "ops"]},
    });
    let mut claims =
        jwt_simple::prelude::Claims::with_custom_claims(custom, Duration::from_secs(lifetime))
            .with_issuer(ISSUER)
            .with_subject("auth0|u1");
    claims = match audiences {
        [one] => claims.with_audience(*one),
        many => claims.with_audiences(many.iter().map(|a| a.to_string()).collect()),
    };
    claims.issued_at = Some(UnixTimeStamp::from_secs(now.secs - 5));
    claims.invalid_before = Some(UnixTimeStamp::from_secs(now.secs - 5));
    claims.expires_at = Some(UnixTimeStamp::from_secs(now.secs - 5 + lifetime));
    key(kid).sign(claims).unwrap()
}

pub(crate) fn jwks_json(kids: &[&str]) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let components = key("x").public_key().to_components();
    let keys: Vec<serde_json::Value> = kids
        .iter()
        .map(|kid| serde_json::json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64.encode(&components.n), "e": b64.encode(&components.e)}))
        .collect();
    serde_json::json!({"keys": keys}).to_string()
}

/// A live session of `user` for the `web` client, with a refresh token, until `expires_at`.
pub(crate) fn session_record(user: &str, expires_at: u64) -> SessionRecord {
    SessionRecord {
        user_id: user.into(),
        client: "web".into(),
        refresh_token: Some("refresh-secret".into()),
        profile: None,
        expires_at,
        ended: false,
    }
}
