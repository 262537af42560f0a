//! The session store on Redis, reached through Webdis (Redis over HTTP) with Envoy callouts.
//!
//! Each `StoreOp` becomes a short sequence of Webdis calls; `RedisOp` is its state machine, fed
//! the answers. Redis keeps the same records as shared data, under the configured key prefix:
//! - `<p>s:<session key>`: the session JSON, `SETEX` to its expiry; an ended session's marker
//!   replaces it (`SET … EX … GET`) for as long as its token could be presented;
//! - `<p>active`: a sorted set of `<session key> <user id>` scored by expiry, pruned on every
//!   session write and read and given the session TTL, so it stays bounded with no reader;
//! - `<p>mgmt:token`, `<p>mgmt:lease`: the Management API token and its fetch lease.

use serde_json::Value;

use crate::config::redis::RedisConfig;
use crate::http::{Callout, CalloutResult};
use crate::store::{SessionRecord, StoreOp, StoreOutcome, TokenGrant};
use crate::time::Timestamp;

/// Every Redis command the filter sends: what a Redis ACL (and Webdis' ACL) must allow.
pub const COMMANDS: [&str; 9] = [
    "GET",
    "SET",
    "SETEX",
    "DEL",
    "EXPIRE",
    "ZADD",
    "ZREM",
    "ZRANGEBYSCORE",
    "ZREMRANGEBYSCORE",
];

pub enum RedisStep {
    Call(Callout),
    Done(StoreOutcome),
}

fn encode(arg: &str) -> String {
    percent_encoding::utf8_percent_encode(arg, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One Webdis call: `POST /` with `CMD/arg/…` (each argument %-encoded) as the body.
fn command(config: &RedisConfig, args: &[&str], timeout_ms: u64) -> Callout {
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
        timeout_ms,
    }
}

/// The reply of a Webdis call (`{"CMD": reply}` for the command sent), or why there is none.
fn reply(command: &str, result: &CalloutResult) -> Result<Value, String> {
    match result {
        CalloutResult::Failed { .. } => Err("Webdis did not answer".into()),
        CalloutResult::Answered {
            status: 200, body, ..
        } => {
            let value: Value =
                serde_json::from_slice(body).map_err(|_| "Webdis answered garbage".to_string())?;
            // Anything else (another service on the cluster, `{}` for a value Webdis cannot
            // show) must not pass for a nil or an OK.
            let reply = match value.as_object() {
                Some(object) if object.len() == 1 => object
                    .get(command)
                    .cloned()
                    .ok_or_else(|| "Webdis answered another command".to_string())?,
                _ => return Err("Webdis answered garbage".into()),
            };
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

pub struct RedisOp {
    op: StoreOp,
    stage: u8,
    /// The command in flight, to read its reply.
    sent: &'static str,
    /// A `Delete` found a live session (the `SET … GET` answer), reported once the index is updated.
    deleted: bool,
    /// The Management API token an `AcquireManagementToken` found after winning the lease,
    /// handed back once the lease is released.
    found_token: Option<String>,
    /// When the operation started (unix ms): all its calls share one `timeout_ms`, so a slow
    /// Redis costs a request one callout timeout, not one per command.
    started_ms: u64,
}

/// The token of a `<until> <token>` value that is still fresh at `now`.
fn fresh_token(value: Option<String>, now: Timestamp) -> Option<String> {
    let value = value?;
    let (until, token) = value.split_once(' ')?;
    (until.parse::<u64>().ok()? > now.secs && !token.is_empty()).then(|| token.to_string())
}

impl RedisOp {
    pub fn start(config: &RedisConfig, op: StoreOp, now: Timestamp) -> (RedisOp, RedisStep) {
        let mut redis = RedisOp {
            op,
            stage: 0,
            sent: "",
            deleted: false,
            found_token: None,
            started_ms: now.millis(),
        };
        let step = redis.next(config, None, now);
        redis.remember(&step);
        (redis, step)
    }

    pub fn on_answer(
        &mut self,
        config: &RedisConfig,
        result: &CalloutResult,
        now: Timestamp,
    ) -> RedisStep {
        match reply(self.sent, result) {
            Ok(value) => {
                self.stage += 1;
                let step = self.next(config, Some(value), now);
                self.remember(&step);
                step
            }
            // When only the release of a lease failed, the token found is good (the lease
            // ends by itself).
            Err(why) => RedisStep::Done(match self.found_token.take() {
                Some(token) => StoreOutcome::ManagementToken(TokenGrant::Ready(token)),
                None => StoreOutcome::Unavailable(why),
            }),
        }
    }

    /// Notes which command a call sends (its first body segment), to read the reply by name.
    fn remember(&mut self, step: &RedisStep) {
        if let RedisStep::Call(callout) = step {
            let body = callout.body.as_deref().unwrap_or_default();
            let name = body.split(|b| *b == b'/').next().unwrap_or_default();
            self.sent = COMMANDS
                .iter()
                .find(|c| c.as_bytes() == name)
                .copied()
                .unwrap_or("");
        }
    }

    fn key(&self, config: &RedisConfig, rest: &str) -> String {
        format!("{}{rest}", config.key_prefix)
    }

    /// The call of the current stage, given the previous stage's reply.
    fn next(&mut self, config: &RedisConfig, last: Option<Value>, now: Timestamp) -> RedisStep {
        let left_ms = config
            .timeout_ms
            .saturating_sub(now.millis().saturating_sub(self.started_ms));
        if left_ms == 0 {
            return RedisStep::Done(StoreOutcome::Unavailable(
                "Redis did not answer within the callout timeout".into(),
            ));
        }
        let call = |args: &[&str]| RedisStep::Call(command(config, args, left_ms));
        let done = |outcome| RedisStep::Done(outcome);
        let text = |v: &Option<Value>| v.as_ref().and_then(|v| v.as_str()).map(str::to_string);
        let active = self.key(config, "active");
        match (&self.op, self.stage) {
            (StoreOp::Get(key), 0) => {
                call(&["GET", &self.key(config, &format!("s:{}", key.as_str()))])
            }
            (StoreOp::Get(_), _) => {
                let record = text(&last)
                    .and_then(|v| serde_json::from_slice::<SessionRecord>(v.as_bytes()).ok())
                    .filter(|r| r.expires_at > now.secs);
                done(match record {
                    Some(record) if record.ended => StoreOutcome::Ended,
                    record => StoreOutcome::Record(record),
                })
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
            // Every session write prunes the index and extends its TTL to this session's, so
            // it neither grows with expired members nor outlives the sessions it lists.
            (StoreOp::Put(..), 2) => {
                call(&["ZREMRANGEBYSCORE", &active, "-inf", &now.secs.to_string()])
            }
            (StoreOp::Put(_, record), 3) => {
                let ttl = record.expires_at.saturating_sub(now.secs).max(1);
                call(&["EXPIRE", &active, &ttl.to_string()])
            }
            (StoreOp::Put(..), _) => done(StoreOutcome::Done),
            // One command swaps the session for its marker and answers what was there, so of
            // two requests ending the same session (a logout and a refresh, perhaps on two
            // replicas) exactly one finds it live.
            (StoreOp::Delete(key, until), 0) => {
                let marker =
                    serde_json::to_string(&SessionRecord::ended_marker(*until)).unwrap_or_default();
                let ttl = until.saturating_sub(now.secs).max(1).to_string();
                call(&[
                    "SET",
                    &self.key(config, &format!("s:{}", key.as_str())),
                    &marker,
                    "EX",
                    &ttl,
                    "GET",
                ])
            }
            (StoreOp::Delete(key, _), 1) => {
                match text(&last)
                    .and_then(|v| serde_json::from_slice::<SessionRecord>(v.as_bytes()).ok())
                    .filter(|record| !record.ended)
                {
                    Some(record) => {
                        self.deleted = true;
                        call(&[
                            "ZREM",
                            &active,
                            &format!("{} {}", key.as_str(), record.user_id),
                        ])
                    }
                    None => done(StoreOutcome::Deleted(false)),
                }
            }
            (StoreOp::Delete(..), _) => done(StoreOutcome::Deleted(self.deleted)),
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
                match fresh_token(text(&last), now) {
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
            // The lease is ours. The previous holder may have saved its token and released the
            // lease between our GET and our SET: look again before fetching a second one.
            (StoreOp::AcquireManagementToken { .. }, 2) => {
                if last.is_some_and(|v| !v.is_null()) {
                    call(&["GET", &self.key(config, "mgmt:token")])
                } else {
                    done(StoreOutcome::ManagementToken(TokenGrant::Wait))
                }
            }
            (StoreOp::AcquireManagementToken { .. }, 3) => match fresh_token(text(&last), now) {
                Some(token) => {
                    self.found_token = Some(token);
                    call(&["DEL", &self.key(config, "mgmt:lease")])
                }
                None => done(StoreOutcome::ManagementToken(TokenGrant::FetchIt)),
            },
            (StoreOp::AcquireManagementToken { .. }, _) => done(StoreOutcome::ManagementToken(
                match self.found_token.take() {
                    Some(token) => TokenGrant::Ready(token),
                    None => TokenGrant::Wait,
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
            // JWKS wants are per Envoy (shared data): never sent here.
            (StoreOp::WantJwks { .. }, _) => done(StoreOutcome::Done),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
