//! A worker's root: its configuration, the tenants' JWKS kept fresh in the shared store, and
//! the sweep of expired sessions. The root context in the filter crate calls these on its
//! configuration, its timer and the answers to its callouts; the wake-ups of waiting requests
//! are the host's (it holds the requests).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use super::host::{callout_answer, RootHost};
use crate::config::{Config, Plugin};
use crate::flows::LogLevel;
use crate::http::{Callout, CalloutResult};
use crate::store::{JwksCache, Sessions};
use crate::time::Timestamp;

/// The root tick while requests wait for a wake-up: it is their clock.
pub const WAIT_TICK: Duration = Duration::from_millis(10);
/// The root tick otherwise: the sweep and the key refresh need no finer one.
pub const IDLE_TICK: Duration = Duration::from_secs(1);

/// What a plugin configuration made of this instance of the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The filter, with the configuration `Maintenance::config` hands its requests.
    Filter,
    /// The hold instance (`{"role": "hold"}`): its requests only stop the filter's marked ones.
    Hold,
    /// The configuration was refused (logged): the host rejects it.
    Refused,
}

#[derive(Default)]
pub struct Maintenance {
    config: Option<Rc<Config>>,
    /// JWKS fetches under way: callout token → issuer and start (unix ms).
    jwks_calls: HashMap<u32, (String, u64)>,
    /// The tick period last asked of the host.
    tick: Option<Duration>,
}

impl Maintenance {
    /// The filter's configuration, for its requests; `None` for a hold instance or before
    /// one is accepted.
    pub fn config(&self) -> Option<Rc<Config>> {
        self.config.clone()
    }

    /// Takes a plugin configuration: parses it and prepares the shared store's keys for it.
    pub fn configure<H: RootHost>(&mut self, host: &mut H, bytes: &[u8]) -> Role {
        let config = match Plugin::from_json(bytes) {
            Ok(Plugin::Hold) => {
                self.config = None;
                return Role::Hold;
            }
            Ok(Plugin::Filter(config)) => config,
            Err(error) => {
                host.log(LogLevel::Error, &error.to_string());
                return Role::Refused;
            }
        };
        let issuers: Vec<String> = config
            .clients
            .values()
            .map(|c| c.auth0.public_url("/"))
            .collect();
        let prepared = crate::store::prepare(
            host.shared_data(),
            &config.session_scope,
            issuers.iter().map(String::as_str),
        );
        if let Err(e) = prepared {
            let message = format!("cannot prepare the session store: {}", e.0);
            host.log(LogLevel::Error, &message);
            return Role::Refused;
        }
        self.config = Some(Rc::new(*config));
        // Tick at once for the first JWKS fetch; then once a second unless requests wait.
        self.set_tick(host, WAIT_TICK);
        Role::Filter
    }

    /// The root's timer, after the host woke the requests that were due. `requests_waiting`:
    /// some still wait for a wake-up, so the tick stays fine.
    pub fn on_tick<H: RootHost>(&mut self, host: &mut H, requests_waiting: bool) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let now = host.now();
        self.fetch_due_jwks(host, &config, now);
        self.sweep(host, &config, now);
        let wanted = match requests_waiting {
            true => WAIT_TICK,
            false => IDLE_TICK,
        };
        if self.tick != Some(wanted) {
            self.set_tick(host, wanted);
        }
    }

    /// The host set the tick to `WAIT_TICK` for a request's wake-up (`RequestHost::wake_at`),
    /// so the next tick without waiting requests slows it down again.
    pub fn tick_raised(&mut self) {
        self.tick = Some(WAIT_TICK);
    }

    fn set_tick<H: RootHost>(&mut self, host: &mut H, period: Duration) {
        self.tick = Some(period);
        host.set_tick_period(period);
    }

    /// Starts a JWKS fetch for each tenant whose keys are missing, stale or asked for, when
    /// this worker wins the fetch lease.
    fn fetch_due_jwks<H: RootHost>(&mut self, host: &mut H, config: &Config, now: Timestamp) {
        let lease_ms = config.callout_timeout_ms + 1_000;
        for client in config.clients.values() {
            let issuer = client.auth0.public_url("/");
            if self.jwks_calls.values().any(|(i, _)| *i == issuer) {
                continue;
            }
            let jwks = JwksCache::new(host.shared_data(), &config.session_scope);
            if !jwks.claim_fetch(&issuer, now, config.jwks_refresh_seconds, lease_ms) {
                continue;
            }
            let callout = Callout {
                cluster: client.auth0.cluster.clone(),
                method: "GET".into(),
                path: client.auth0.path("/.well-known/jwks.json"),
                authority: client.auth0.authority.clone(),
                headers: vec![("accept".into(), "application/json".into())],
                body: None,
                timeout_ms: config.callout_timeout_ms,
            };
            match host.dispatch(&callout) {
                Ok(token) => {
                    self.jwks_calls.insert(token, (issuer, now.millis()));
                    host.record(vec![crate::metrics::jwks_fetch(&config.stat_prefix)]);
                }
                Err(status) => host.log(
                    LogLevel::Warn,
                    &format!("JWKS fetch for {issuer} refused: {status}"),
                ),
            }
        }
    }

    /// Removes the expired sessions of the slots this worker claims, and counts the live ones
    /// after a full pass.
    fn sweep<H: RootHost>(&mut self, host: &mut H, config: &Config, now: Timestamp) {
        let store = Sessions::new(host.shared_data(), &config.session_scope);
        let Some(slots) = store.claim_sweep(now, config.sweep_interval_seconds) else {
            return;
        };
        let swept = store.sweep(slots.clone(), now);
        // Sessions live in shared data only without Redis; a full pass counts them all.
        let live = match config.redis {
            None => store.record_sweep(&slots, swept.remaining),
            Some(_) => None,
        };
        if swept.removed > 0 {
            let message = format!(
                "swept {} expired sessions, {} live in the slots swept",
                swept.removed, swept.remaining
            );
            host.log(LogLevel::Debug, &message);
        }
        if let Some(live) = live {
            host.record(vec![crate::metrics::sessions_live(
                &config.stat_prefix,
                live,
            )]);
        }
    }

    /// The answer to a callout this root made. `false`: not one of its JWKS fetches (the host
    /// hands it to the request that made it).
    pub fn on_callout_answer<H: RootHost>(
        &mut self,
        host: &mut H,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) -> bool {
        let Some((issuer, started_ms)) = self.jwks_calls.remove(&token) else {
            return false;
        };
        let now = host.now();
        let elapsed_ms = now.millis().saturating_sub(started_ms);
        let result = callout_answer(host, num_headers, body_size, elapsed_ms);
        if let Some(config) = self.config.clone() {
            store_jwks(host, &config, &issuer, &result, elapsed_ms, now);
        }
        true
    }
}

/// Stores a fetched JWKS for every worker, or logs why there is none; counts the answer.
fn store_jwks<H: RootHost>(
    host: &mut H,
    config: &Config,
    issuer: &str,
    result: &CalloutResult,
    elapsed_ms: u64,
    now: Timestamp,
) {
    let document = crate::jwt::fetched_jwks(result);
    let prefix = config.stat_prefix.as_str();
    let timeout_ms = config.callout_timeout_ms;
    let mut events = crate::metrics::callout_answered(prefix, result, elapsed_ms, timeout_ms);
    if matches!(result, CalloutResult::Answered { status: 200, .. }) && document.is_none() {
        events.push(crate::metrics::invalid_answer(prefix));
    }
    host.record(events);
    let Some(document) = document else {
        let status = match result {
            CalloutResult::Answered { status, .. } => format!("status {status}"),
            CalloutResult::Failed { .. } => "no answer".to_string(),
        };
        let message = format!("JWKS fetch for {issuer} failed ({status}); retrying later");
        host.log(LogLevel::Warn, &message);
        return;
    };
    let jwks = JwksCache::new(host.shared_data(), &config.session_scope);
    if let Err(e) = jwks.put(issuer, document, now) {
        let message = format!("storing the JWKS failed: {}", e.0);
        host.log(LogLevel::Warn, &message);
    }
}

#[cfg(test)]
mod tests;
