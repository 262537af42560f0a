//! The root context: configuration, the JWKS fetches, the session sweep, and the wake-ups of
//! requests that wait.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use super::{call_result, log, now, stats, FilterHttp, HttpState, SharedData};
use auth0_filter_core::config::{Config, Plugin};
use auth0_filter_core::flows::LogLevel;
use auth0_filter_core::http::CalloutResult;
use auth0_filter_core::store::{JwksCache, Sessions};
use auth0_filter_core::time::Timestamp;
use auth0_filter_core::tokens::verifier::Verifier;

/// What the root context knows of requests: those paused by `Action::Wait` (woken by its
/// tick), and the callouts made while it woke them. The SDK files a callout under the context
/// that was *running* when it was made, which during a wake-up is the root, so the root hands
/// those answers on. Each worker's VM has its own root and requests: no thread is crossed.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) waiters: Vec<Waiter>,
    pub(super) callouts: std::collections::HashMap<u32, (u32, Weak<RefCell<HttpState>>)>,
}

pub(super) type Waiters = Rc<RefCell<Registry>>;

pub(super) struct Waiter {
    pub(super) context_id: u32,
    pub(super) due_ms: u64,
    pub(super) state: Weak<RefCell<HttpState>>,
}

/// The root tick: once a second for the sweeper, every few ms while requests wait.
const IDLE_TICK: Duration = Duration::from_secs(1);
pub(super) const WAIT_TICK: Duration = Duration::from_millis(10);

pub(super) struct FilterRoot {
    config: Option<Rc<Config>>,
    /// A hold instance (`{"role": "hold"}`): its requests only stop the filter's marked ones.
    hold: bool,
    waiters: Waiters,
    /// This worker's parsed keys and verification cache, shared with its requests.
    verifier: Rc<RefCell<Verifier>>,
    /// JWKS fetches under way: callout token → issuer and start (ms).
    jwks_calls: std::collections::HashMap<u32, (String, u64)>,
    tick: Duration,
}

impl FilterRoot {
    pub(super) fn new() -> Self {
        FilterRoot {
            config: None,
            hold: false,
            waiters: Rc::new(RefCell::new(Registry::default())),
            verifier: Rc::new(RefCell::new(Verifier::default())),
            jwks_calls: std::collections::HashMap::new(),
            tick: WAIT_TICK,
        }
    }

    fn wake_due_requests(&self) {
        let now_ms = now().millis();
        let due: Vec<Waiter> = {
            let mut registry = self.waiters.borrow_mut();
            let (due, waiting): (Vec<Waiter>, Vec<Waiter>) =
                registry.waiters.drain(..).partition(|w| w.due_ms <= now_ms);
            registry.waiters = waiting;
            due
        };
        for waiter in due {
            // A request that ended meanwhile (client gone) has no state left to wake.
            let Some(state) = waiter.state.upgrade() else {
                continue;
            };
            if hostcalls::set_effective_context(waiter.context_id).is_err() {
                continue;
            }
            let at = now();
            let action = state.borrow_mut().wake(at);
            state.borrow_mut().run_resumed(action, at);
        }
    }
}

impl FilterRoot {
    /// Starts a JWKS fetch for each tenant whose keys are missing, stale or asked for, when
    /// this worker wins the fetch lease.
    fn fetch_due_jwks(&mut self, config: &Config, now: Timestamp) {
        let lease_ms = config.callout_timeout_ms + 1_000;
        for client in config.clients.values() {
            let issuer = client.auth0.public_url("/");
            if self.jwks_calls.values().any(|(i, _)| *i == issuer) {
                continue;
            }
            let jwks = JwksCache::new(&SharedData, &config.session_scope);
            if !jwks.claim_fetch(&issuer, now, config.jwks_refresh_seconds, lease_ms) {
                continue;
            }
            let path = client.auth0.path("/.well-known/jwks.json");
            let headers = vec![
                (":method", "GET"),
                (":path", path.as_str()),
                (":authority", client.auth0.authority.as_str()),
                ("accept", "application/json"),
            ];
            match hostcalls::dispatch_http_call(
                &client.auth0.cluster,
                headers,
                None,
                vec![],
                Duration::from_millis(config.callout_timeout_ms),
            ) {
                Ok(token) => {
                    self.jwks_calls.insert(token, (issuer, now.millis()));
                    stats::apply(vec![auth0_filter_core::metrics::jwks_fetch(
                        &config.stat_prefix,
                    )]);
                }
                Err(status) => log(
                    LogLevel::Warn,
                    &format!("JWKS fetch for {issuer} refused: {status:?}"),
                ),
            }
        }
    }

    fn store_jwks(&self, issuer: &str, started_ms: u64, num_headers: usize, body_size: usize) {
        let elapsed_ms = now().millis().saturating_sub(started_ms);
        let result = call_result(num_headers, body_size, elapsed_ms);
        let document = auth0_filter_core::jwt::fetched_jwks(&result);
        if let Some(config) = &self.config {
            let prefix = config.stat_prefix.as_str();
            let mut events = auth0_filter_core::metrics::callout_answered(
                prefix,
                &result,
                elapsed_ms,
                config.callout_timeout_ms,
            );
            if matches!(result, CalloutResult::Answered { status: 200, .. }) && document.is_none() {
                events.push(auth0_filter_core::metrics::invalid_answer(prefix));
            }
            stats::apply(events);
        }
        let Some(document) = document else {
            let status = match &result {
                CalloutResult::Answered { status, .. } => format!("status {status}"),
                CalloutResult::Failed { .. } => "no answer".to_string(),
            };
            log(
                LogLevel::Warn,
                &format!("JWKS fetch for {issuer} failed ({status}); retrying later"),
            );
            return;
        };
        if let Some(config) = &self.config {
            let jwks = JwksCache::new(&SharedData, &config.session_scope);
            if let Err(e) = jwks.put(issuer, document, now()) {
                log(LogLevel::Warn, &format!("storing the JWKS failed: {}", e.0));
            }
        }
    }
}

// Exported callbacks: tools/wasm-exports.json.
impl Context for FilterRoot {
    /// Answers to callouts made while the root woke a request: handed on to that request.
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if let Some((issuer, started_ms)) = self.jwks_calls.remove(&token) {
            self.store_jwks(&issuer, started_ms, num_headers, body_size);
            return;
        }
        let entry = self.waiters.borrow_mut().callouts.remove(&token);
        let Some((context_id, state)) = entry else {
            return;
        };
        let Some(state) = state.upgrade() else {
            return;
        };
        if hostcalls::set_effective_context(context_id).is_ok() {
            state
                .borrow_mut()
                .on_call_response(token, num_headers, body_size);
        }
    }
}

// Exported callbacks: tools/wasm-exports.json; a callback added here must be listed there.
impl RootContext for FilterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        match Plugin::from_json(&bytes) {
            Ok(Plugin::Hold) => {
                self.hold = true;
                self.config = None;
                true
            }
            Ok(Plugin::Filter(config)) => {
                self.hold = false;
                let issuers: Vec<String> = config
                    .clients
                    .values()
                    .map(|c| c.auth0.public_url("/"))
                    .collect();
                let prepared = auth0_filter_core::store::prepare(
                    &SharedData,
                    &config.session_scope,
                    issuers.iter().map(String::as_str),
                );
                if let Err(e) = prepared {
                    log(
                        LogLevel::Error,
                        &format!("cannot prepare the session store: {}", e.0),
                    );
                    return false;
                }
                self.config = Some(Rc::new(*config));
                // Tick at once for the first JWKS fetch; then once a second (sweeper, key
                // refresh) unless requests wait.
                let _ = hostcalls::set_tick_period(WAIT_TICK);
                self.tick = WAIT_TICK;
                true
            }
            Err(error) => {
                log(LogLevel::Error, &error.to_string());
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if !self.waiters.borrow().waiters.is_empty() {
            self.wake_due_requests();
        }
        let Some(config) = self.config.clone() else {
            return;
        };
        let now = now();
        self.fetch_due_jwks(&config, now);
        let store = Sessions::new(&SharedData, &config.session_scope);
        if let Some(slots) = store.claim_sweep(now, config.sweep_interval_seconds) {
            let swept = store.sweep(slots.clone(), now);
            if swept.removed > 0 {
                log(
                    LogLevel::Debug,
                    &format!(
                        "swept {} expired sessions, {} live in the slots swept",
                        swept.removed, swept.remaining
                    ),
                );
            }
            // Sessions live in shared data only without Redis; a full pass counts them all.
            if config.redis.is_none() {
                if let Some(live) = store.record_sweep(&slots, swept.remaining) {
                    stats::apply(vec![auth0_filter_core::metrics::sessions_live(
                        &config.stat_prefix,
                        live,
                    )]);
                }
            }
        }
        let wanted = if self.waiters.borrow().waiters.is_empty() {
            IDLE_TICK
        } else {
            WAIT_TICK
        };
        if wanted != self.tick {
            self.tick = wanted;
            let _ = hostcalls::set_tick_period(wanted);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        if self.hold {
            return Some(Box::new(super::hold::HoldHttp::default()));
        }
        let state = Rc::new_cyclic(|me| {
            RefCell::new(HttpState {
                config: self.config.clone(),
                exchange: None,
                reading_body: None,
                undecided: false,
                held: super::Held::No,
                callout_started_ms: 0,
                request_id: String::new(),
                route: "",
                context_id,
                me: me.clone(),
                waiters: Rc::clone(&self.waiters),
                verifier: Rc::clone(&self.verifier),
            })
        });
        Some(Box::new(FilterHttp { state }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
