//! The session store on Redis, reached through Webdis (Redis over HTTP) with Envoy callouts.
//!
//! Each `StoreOp` becomes a short sequence of Webdis calls; `RedisOp` is its state machine, fed
//! the answers. Redis keeps the same records as shared data, under the configured key prefix:
//! - `<p>s:<session key>`: the session JSON, `SETEX` to its expiry;
//! - `<p>active`: a sorted set of `<session key> <user id>` scored by expiry (pruned on read);
//! - `<p>st:<state digest>`: a login state, `SET NX EX`, taken atomically by a Lua script;
//! - `<p>mgmt:token`, `<p>mgmt:lease`: the Management API token and its fetch lease.

use serde_json::Value;

use crate::http::{Callout, CalloutResult};
use crate::session::{SessionRecord, StoreOp, StoreOutcome, TokenGrant};
use crate::timefmt::Timestamp;

/// Where Webdis is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub cluster: String,
    pub authority: String,
    pub key_prefix: String,
    /// `Basic …` for Webdis' `http_basic_auth` ACL, if configured.
    pub authorization: Option<String>,
    pub timeout_ms: u64,
}

pub enum RedisStep {
    Call(Callout),
    Done(StoreOutcome),
}

/// Takes a login state only if it belongs to the client (ARGV[1] is the JSON `"c":"…"` field),
/// in one atomic step, so a state can never be redeemed twice or burnt by another client.
const TAKE_STATE_SCRIPT: &str =
    "local v = redis.call('GET', KEYS[1]) if v and string.find(v, ARGV[1], 1, true) then redis.call('DEL', KEYS[1]) return v end return false";

fn encode(arg: &str) -> String {
    percent_encoding::utf8_percent_encode(arg, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One Webdis call: `POST /` with `CMD/arg/…` (each argument %-encoded) as the body.
fn command(config: &RedisConfig, args: &[&str]) -> Callout {
    let body = args.iter().map(|a| encode(a)).collect::<Vec<_>>().join("/");
    let mut headers = vec![("content-type".to_string(), "text/plain".to_string())];
    if let Some(authorization) = &config.authorization {
        headers.push(("authorization".into(), authorization.clone()));
    }
    Callout {
        cluster: config.cluster.clone(),
        method: "POST".into(),
        path: "/".into(),
        authority: config.authority.clone(),
        headers,
        body: Some(body.into_bytes()),
        timeout_ms: config.timeout_ms,
    }
}

/// The reply of a Webdis call (`{"CMD": reply}`), or why there is none.
fn reply(result: &CalloutResult) -> Result<Value, String> {
    match result {
        CalloutResult::Failed { .. } => Err("Webdis did not answer".into()),
        CalloutResult::Answered {
            status: 200, body, ..
        } => {
            let value: Value =
                serde_json::from_slice(body).map_err(|_| "Webdis answered garbage".to_string())?;
            let reply = value
                .as_object()
                .and_then(|o| o.values().next().cloned())
                .unwrap_or(Value::Null);
            // Redis errors come as `[false, "ERR …"]`.
            if let Some([Value::Bool(false), Value::String(error)]) =
                reply.as_array().map(Vec::as_slice)
            {
                return Err(format!("Redis: {error}"));
            }
            Ok(reply)
        }
        CalloutResult::Answered { status, .. } => Err(format!("Webdis answered {status}")),
    }
}

fn state_digest(state: &str) -> String {
    hmac_sha256::Hash::hash(state.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub struct RedisOp {
    op: StoreOp,
    stage: u8,
}

impl RedisOp {
    pub fn start(config: &RedisConfig, op: StoreOp, now: Timestamp) -> (RedisOp, RedisStep) {
        let mut redis = RedisOp { op, stage: 0 };
        let step = redis.next(config, None, now);
        (redis, step)
    }

    pub fn on_answer(
        &mut self,
        config: &RedisConfig,
        result: &CalloutResult,
        now: Timestamp,
    ) -> RedisStep {
        match reply(result) {
            Ok(value) => {
                self.stage += 1;
                self.next(config, Some(value), now)
            }
            Err(why) => RedisStep::Done(StoreOutcome::Unavailable(why)),
        }
    }

    fn key(&self, config: &RedisConfig, rest: &str) -> String {
        format!("{}{rest}", config.key_prefix)
    }

    /// The call of the current stage, given the previous stage's reply.
    fn next(&mut self, config: &RedisConfig, last: Option<Value>, now: Timestamp) -> RedisStep {
        let call = |args: &[&str]| RedisStep::Call(command(config, args));
        let done = |outcome| RedisStep::Done(outcome);
        let text = |v: &Option<Value>| v.as_ref().and_then(|v| v.as_str()).map(str::to_string);
        let active = self.key(config, "active");
        match (&self.op, self.stage) {
            (StoreOp::Get(key), 0) => {
                call(&["GET", &self.key(config, &format!("s:{}", key.as_str()))])
            }
            (StoreOp::Get(_), _) => {
                let record = text(&last)
                    .and_then(|v| serde_json::from_str::<SessionRecord>(&v).ok())
                    .filter(|r| r.expires_at > now.secs);
                done(StoreOutcome::Record(record))
            }
            (StoreOp::Put(key, record), 0) => {
                let json = serde_json::to_string(record).unwrap_or_default();
                let ttl = record
                    .expires_at
                    .saturating_sub(now.secs)
                    .max(1)
                    .to_string();
                call(&[
                    "SETEX",
                    &self.key(config, &format!("s:{}", key.as_str())),
                    &ttl,
                    &json,
                ])
            }
            (StoreOp::Put(key, record), 1) => {
                let member = format!("{} {}", key.as_str(), record.user_id);
                call(&["ZADD", &active, &record.expires_at.to_string(), &member])
            }
            (StoreOp::Put(..), _) => done(StoreOutcome::Done),
            (StoreOp::Delete(key), 0) => {
                call(&["GETDEL", &self.key(config, &format!("s:{}", key.as_str()))])
            }
            (StoreOp::Delete(key), 1) => {
                match text(&last).and_then(|v| serde_json::from_str::<SessionRecord>(&v).ok()) {
                    Some(record) => call(&[
                        "ZREM",
                        &active,
                        &format!("{} {}", key.as_str(), record.user_id),
                    ]),
                    None => done(StoreOutcome::Done),
                }
            }
            (StoreOp::Delete(_), _) => done(StoreOutcome::Done),
            (StoreOp::ActiveUsers, 0) => {
                call(&["ZREMRANGEBYSCORE", &active, "-inf", &now.secs.to_string()])
            }
            (StoreOp::ActiveUsers, 1) => {
                call(&["ZRANGEBYSCORE", &active, &format!("({}", now.secs), "+inf"])
            }
            (StoreOp::ActiveUsers, _) => {
                let mut users: Vec<String> = last
                    .as_ref()
                    .and_then(|v| v.as_array())
                    .map(|members| {
                        members
                            .iter()
                            .filter_map(|m| {
                                m.as_str()?
                                    .split_once(' ')
                                    .map(|(_, user)| user.to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                users.sort();
                users.dedup();
                done(StoreOutcome::Users(users))
            }
            (StoreOp::AcquireManagementToken { .. }, 0) => {
                call(&["GET", &self.key(config, "mgmt:token")])
            }
            (StoreOp::AcquireManagementToken { lease_ms }, 1) => {
                let fresh = text(&last).and_then(|v| {
                    let (until, token) = v.split_once(' ')?;
                    (until.parse::<u64>().ok()? > now.secs && !token.is_empty())
                        .then(|| token.to_string())
                });
                match fresh {
                    Some(token) => done(StoreOutcome::ManagementToken(TokenGrant::Ready(token))),
                    None => call(&[
                        "SET",
                        &self.key(config, "mgmt:lease"),
                        "1",
                        "NX",
                        "PX",
                        &lease_ms.to_string(),
                    ]),
                }
            }
            (StoreOp::AcquireManagementToken { .. }, _) => done(StoreOutcome::ManagementToken(
                if last.is_some_and(|v| !v.is_null()) {
                    TokenGrant::FetchIt
                } else {
                    TokenGrant::Wait
                },
            )),
            (StoreOp::SaveManagementToken { token, use_until }, 0) => {
                let ttl = use_until.saturating_sub(now.secs).max(1).to_string();
                call(&[
                    "SETEX",
                    &self.key(config, "mgmt:token"),
                    &ttl,
                    &format!("{use_until} {token}"),
                ])
            }
            (StoreOp::SaveManagementToken { .. }, 1) | (StoreOp::ReleaseManagementToken, 0) => {
                call(&["DEL", &self.key(config, "mgmt:lease")])
            }
            (StoreOp::SaveManagementToken { .. } | StoreOp::ReleaseManagementToken, _) => {
                done(StoreOutcome::Done)
            }
            (StoreOp::DropManagementToken { .. }, 0) => {
                call(&["GET", &self.key(config, "mgmt:token")])
            }
            (StoreOp::DropManagementToken { token }, 1) => {
                // Forget it only if no other worker replaced it meanwhile.
                if text(&last)
                    .and_then(|v| v.split_once(' ').map(|(_, t)| t == token))
                    .unwrap_or(false)
                {
                    call(&["DEL", &self.key(config, "mgmt:token")])
                } else {
                    done(StoreOutcome::Done)
                }
            }
            (StoreOp::DropManagementToken { .. }, _) => done(StoreOutcome::Done),
            (StoreOp::PutLoginState { state, record }, 0) => {
                let json = serde_json::to_string(record).unwrap_or_default();
                let ttl = record
                    .expires_at
                    .saturating_sub(now.secs)
                    .max(1)
                    .to_string();
                call(&[
                    "SET",
                    &self.key(config, &format!("st:{}", state_digest(state))),
                    &json,
                    "NX",
                    "EX",
                    &ttl,
                ])
            }
            (StoreOp::PutLoginState { .. }, _) => match last {
                Some(Value::Null) | None => {
                    done(StoreOutcome::Refused("this state is already in use".into()))
                }
                Some(_) => done(StoreOutcome::Done),
            },
            (StoreOp::TakeLoginState { state, client }, 0) => {
                let owner = format!(
                    "\"c\":{}",
                    serde_json::to_string(client).unwrap_or_default()
                );
                call(&[
                    "EVAL",
                    TAKE_STATE_SCRIPT,
                    "1",
                    &self.key(config, &format!("st:{}", state_digest(state))),
                    &owner,
                ])
            }
            (StoreOp::TakeLoginState { .. }, _) => {
                let taken = text(&last)
                    .and_then(|v| serde_json::from_str::<crate::login_state::LoginState>(&v).ok())
                    .filter(|s| s.expires_at > now.secs);
                done(StoreOutcome::LoginState(taken))
            }
            // JWKS wants are per Envoy (shared data): never sent here.
            (StoreOp::WantJwks { .. }, _) => done(StoreOutcome::Done),
        }
    }
}

#[cfg(test)]
#[path = "redis_store_tests.rs"]
pub(crate) mod tests;
