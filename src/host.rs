//! The only module that talks to proxy-wasm. It executes the core's `Action`s: callouts,
//! local replies, the shared-data session store, the sweep timer and logs. It decides nothing.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{
    Action as HostAction, BufferType, ContextType, LogLevel as HostLevel, MapType, Status,
};

use crate::config::Config;
use crate::flow::{Action, Exchange, LogLevel, LogLine, Start};
use crate::http::{CalloutResult, RequestHead};
use crate::session::{CasKv, KvError, KvSessionStore, SessionStore};
use crate::timefmt::Timestamp;
use crate::verifier::Verifier;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(HostLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(FilterRoot {
            config: None,
            waiters: Rc::new(RefCell::new(Registry::default())),
            verifier: Rc::new(RefCell::new(Verifier::default())),
            jwks_calls: std::collections::HashMap::new(),
            tick: WAIT_TICK,
        })
    });
}}

fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Debug => HostLevel::Debug,
        LogLevel::Info => HostLevel::Info,
        LogLevel::Warn => HostLevel::Warn,
        LogLevel::Error => HostLevel::Error,
    };
    let _ = hostcalls::log(level, &format!("auth0-filter: {message}"));
}

fn now() -> Timestamp {
    hostcalls::get_current_time()
        .map(Timestamp::from_system_time)
        .unwrap_or(Timestamp::from_secs(0))
}

// Header values are read as bytes: the SDK's `get_map`/`get_map_value` unwrap a UTF-8
// conversion, and Envoy accepts header bytes 0x80-0xFF, so one such header would abort the VM.
// Names are safe (Envoy's codecs only accept token characters).
fn header_map(map: MapType) -> Vec<(String, String)> {
    hostcalls::get_map_bytes(map)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect()
}

fn header_value(map: MapType, name: &str) -> Option<String> {
    hostcalls::get_map_value_bytes(map, name)
        .ok()
        .flatten()
        .map(|value| String::from_utf8_lossy(&value).into_owned())
}

/// A callout's answer. Without headers the call failed (refused, reset, torn body, timed out)
/// and Envoy has no response maps: reading them then makes the SDK abort the VM, so they are
/// only read when there are headers.
fn call_result(num_headers: usize, body_size: usize, elapsed_ms: u64) -> CalloutResult {
    if num_headers == 0 {
        return CalloutResult::Failed { elapsed_ms };
    }
    let headers = header_map(MapType::HttpCallResponseHeaders);
    let status = headers
        .iter()
        .find(|(n, _)| n == ":status")
        .and_then(|(_, v)| v.parse::<u16>().ok())
        .unwrap_or(502);
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    CalloutResult::Answered {
        status,
        headers,
        body,
    }
}

/// proxy-wasm shared data as a CAS key-value store, shared by every worker's VM.
struct SharedData;

impl CasKv for SharedData {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), KvError> {
        hostcalls::get_shared_data(key)
            .map_err(|s| KvError::Failed(format!("shared data read: {s:?}")))
    }

    fn set(&self, key: &str, value: Option<&[u8]>, cas: Option<u32>) -> Result<(), KvError> {
        match hostcalls::set_shared_data(key, value, cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(KvError::CasMismatch),
            Err(s) => Err(KvError::Failed(format!("shared data write: {s:?}"))),
        }
    }
}

/// What the root context knows of requests: those paused by `Action::Wait` (woken by its
/// tick), and the callouts made while it woke them. The SDK files a callout under the context
/// that was *running* when it was made, which during a wake-up is the root, so the root hands
/// those answers on. Each worker's VM has its own root and requests: no thread is crossed.
#[derive(Default)]
struct Registry {
    waiters: Vec<Waiter>,
    callouts: std::collections::HashMap<u32, (u32, Weak<RefCell<HttpState>>)>,
}

type Waiters = Rc<RefCell<Registry>>;

struct Waiter {
    context_id: u32,
    due_ms: u64,
    state: Weak<RefCell<HttpState>>,
}

/// The root tick: once a second for the sweeper, every few ms while requests wait.
const IDLE_TICK: Duration = Duration::from_secs(1);
const WAIT_TICK: Duration = Duration::from_millis(10);

struct FilterRoot {
    config: Option<Rc<Config>>,
    waiters: Waiters,
    /// This worker's parsed keys and verification cache, shared with its requests.
    verifier: Rc<RefCell<Verifier>>,
    /// JWKS fetches under way: callout token → issuer.
    jwks_calls: std::collections::HashMap<u32, String>,
    tick: Duration,
}

impl FilterRoot {
    fn store(&self) -> Option<KvSessionStore<SharedData>> {
        self.config
            .as_ref()
            .map(|c| KvSessionStore::new(SharedData, &c.session_scope))
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
            let action = state.borrow_mut().wake();
            state.borrow_mut().run_resumed(action);
        }
    }
}

impl FilterRoot {
    /// Starts a JWKS fetch for each tenant whose keys are missing, stale or asked for, when
    /// this worker wins the fetch lease.
    fn fetch_due_jwks(
        &mut self,
        store: &KvSessionStore<SharedData>,
        config: &Config,
        now: Timestamp,
    ) {
        let lease_ms = config.callout_timeout_ms + 1_000;
        for client in config.clients.values() {
            let issuer = client.auth0.public_url("/");
            if self.jwks_calls.values().any(|i| *i == issuer) {
                continue;
            }
            if !store.claim_jwks_fetch(&issuer, now, config.jwks_refresh_seconds, lease_ms) {
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
                    self.jwks_calls.insert(token, issuer);
                }
                Err(status) => log(
                    LogLevel::Warn,
                    &format!("JWKS fetch for {issuer} refused: {status:?}"),
                ),
            }
        }
    }

    fn store_jwks(&self, issuer: &str, num_headers: usize, body_size: usize) {
        let result = call_result(num_headers, body_size, 0);
        let Some(document) = crate::jwt::fetched_jwks(&result) else {
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
        if let Some(store) = self.store() {
            if let Err(e) = store.put_jwks(issuer, document, now()) {
                log(LogLevel::Warn, &format!("storing the JWKS failed: {}", e.0));
            }
        }
    }
}

impl Context for FilterRoot {
    /// Answers to callouts made while the root woke a request: handed on to that request.
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if let Some(issuer) = self.jwks_calls.remove(&token) {
            self.store_jwks(&issuer, num_headers, body_size);
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

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        match Config::from_json(&bytes) {
            Ok(config) => {
                self.config = Some(Rc::new(config));
                if let Some(store) = self.store() {
                    let issuers = self
                        .config
                        .iter()
                        .flat_map(|c| c.clients.values())
                        .map(|c| c.auth0.public_url("/"));
                    let prepared = store.ensure_slots().and_then(|_| {
                        issuers
                            .map(|i| store.ensure_jwks_keys(&i))
                            .collect::<Result<Vec<_>, _>>()
                    });
                    if let Err(e) = prepared {
                        log(
                            LogLevel::Error,
                            &format!("cannot prepare the session store: {}", e.0),
                        );
                        return false;
                    }
                }
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
        let (Some(store), Some(config)) = (self.store(), self.config.clone()) else {
            return;
        };
        let now = now();
        self.fetch_due_jwks(&store, &config, now);
        if let Some(slots) = store.claim_sweep(now, config.sweep_interval_seconds) {
            let stats = store.sweep(slots, now);
            if stats.removed > 0 {
                log(
                    LogLevel::Debug,
                    &format!(
                        "swept {} expired sessions, {} live in the slots swept",
                        stats.removed, stats.remaining
                    ),
                );
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
        let state = Rc::new_cyclic(|me| {
            RefCell::new(HttpState {
                config: self.config.clone(),
                exchange: None,
                reading_body: None,
                undecided: false,
                callout_started_ms: 0,
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

/// The proxy-wasm HTTP context: a thin handle on the request's state, which the root context
/// can also reach to wake a waiting request.
struct FilterHttp {
    state: Rc<RefCell<HttpState>>,
}

struct HttpState {
    config: Option<Rc<Config>>,
    exchange: Option<Exchange>,
    /// `Some(limit)` while the body is being buffered for the exchange.
    reading_body: Option<usize>,
    /// Paused while the flow decides (callout, wait, verification): nothing of the request,
    /// body or trailers, may go upstream until it has.
    undecided: bool,
    callout_started_ms: u64,
    context_id: u32,
    me: Weak<RefCell<HttpState>>,
    waiters: Waiters,
    verifier: Rc<RefCell<Verifier>>,
}

impl HttpState {
    fn flush_logs(&mut self) {
        if let Some(exchange) = self.exchange.as_mut() {
            for LogLine { level, message } in exchange.take_logs() {
                log(level, &message);
            }
        }
    }

    fn step(&mut self, event: impl FnOnce(&mut Exchange, &Config) -> Action) -> Action {
        match (self.exchange.as_mut(), self.config.as_deref()) {
            (Some(exchange), Some(config)) => event(exchange, config),
            _ => Action::Respond(
                crate::error::FilterError::internal("no exchange under way").to_reply(),
            ),
        }
    }

    fn wake(&mut self) -> Action {
        self.step(|ex, config| ex.on_wake(config, now()))
    }

    /// Runs actions until one needs to wait. Returns what Envoy should do with the request.
    fn run(&mut self, mut action: Action, body_ended: bool) -> HostAction {
        let Some(config) = self.config.clone() else {
            return HostAction::Continue;
        };
        loop {
            self.flush_logs();
            action = match action {
                Action::PassThrough => {
                    self.undecided = false;
                    return HostAction::Continue;
                }
                Action::Respond(reply) => {
                    let headers: Vec<(&str, &str)> = reply
                        .headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    if let Err(status) = hostcalls::send_http_response(
                        u32::from(reply.status),
                        headers,
                        Some(&reply.body),
                    ) {
                        log(
                            LogLevel::Error,
                            &format!("sending the reply failed: {status:?}"),
                        );
                    }
                    self.reading_body = None;
                    self.undecided = false;
                    return HostAction::Pause;
                }
                Action::ReadBody { max_bytes } => {
                    if body_ended {
                        self.step(|ex, config| ex.on_body(config, now(), &[]))
                    } else {
                        self.reading_body = Some(max_bytes);
                        self.undecided = true;
                        return HostAction::Pause;
                    }
                }
                Action::Store(op) => {
                    let store = KvSessionStore::new(SharedData, &config.session_scope);
                    let at = now();
                    let outcome = store.execute(&op, at);
                    self.step(|ex, config| ex.on_store(config, at, outcome))
                }
                Action::Verify { token, expect } => {
                    let store = KvSessionStore::new(SharedData, &config.session_scope);
                    let source = |issuer: &str| {
                        store
                            .jwks(issuer)
                            .ok()
                            .flatten()
                            .map(|(version, document, _)| (version, document))
                    };
                    let at = now();
                    let result = self
                        .verifier
                        .borrow_mut()
                        .verify(&token, &expect, &source, at);
                    self.step(|ex, config| ex.on_verified(config, at, result))
                }
                Action::Forward { set_headers } => {
                    for (name, value) in &set_headers {
                        let _ = hostcalls::set_map_value(
                            MapType::HttpRequestHeaders,
                            name,
                            Some(value),
                        );
                    }
                    self.undecided = false;
                    return HostAction::Continue;
                }
                Action::Wait { millis } => {
                    self.waiters.borrow_mut().waiters.push(Waiter {
                        context_id: self.context_id,
                        due_ms: now().millis().saturating_add(millis),
                        state: self.me.clone(),
                    });
                    let _ = hostcalls::set_tick_period(WAIT_TICK);
                    self.undecided = true;
                    return HostAction::Pause;
                }
                Action::Call(callout) => {
                    let mut headers: Vec<(&str, &str)> = vec![
                        (":method", callout.method.as_str()),
                        (":path", callout.path.as_str()),
                        (":authority", callout.authority.as_str()),
                    ];
                    headers.extend(
                        callout
                            .headers
                            .iter()
                            .map(|(n, v)| (n.as_str(), v.as_str())),
                    );
                    self.callout_started_ms = now().millis();
                    match hostcalls::dispatch_http_call(
                        &callout.cluster,
                        headers,
                        callout.body.as_deref(),
                        vec![],
                        Duration::from_millis(callout.timeout_ms),
                    ) {
                        Ok(token) => {
                            // Only the root consults this, for callouts it made on our behalf;
                            // answers routed here directly are dropped from it then.
                            self.waiters
                                .borrow_mut()
                                .callouts
                                .insert(token, (self.context_id, self.me.clone()));
                            self.undecided = true;
                            return HostAction::Pause;
                        }
                        Err(status) => {
                            log(
                                LogLevel::Warn,
                                &format!(
                                    "callout to cluster {} refused: {status:?}",
                                    callout.cluster
                                ),
                            );
                            self.step(|ex, config| {
                                ex.on_callout(
                                    config,
                                    now(),
                                    CalloutResult::Failed { elapsed_ms: 0 },
                                )
                            })
                        }
                    }
                }
            };
        }
    }

    fn on_call_response(&mut self, token: u32, num_headers: usize, body_size: usize) {
        self.waiters.borrow_mut().callouts.remove(&token);
        let at = now();
        let elapsed_ms = at.millis().saturating_sub(self.callout_started_ms);
        let result = call_result(num_headers, body_size, elapsed_ms);
        let action = self.step(|ex, config| ex.on_callout(config, at, result));
        self.run_resumed(action);
    }

    /// After a callout answer or a wake-up the request is paused: an action that lets it go
    /// must resume it.
    fn run_resumed(&mut self, action: Action) {
        if let HostAction::Continue = self.run(action, true) {
            let _ = hostcalls::resume_http_request();
        }
    }
}

impl Context for FilterHttp {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        self.state
            .borrow_mut()
            .on_call_response(token, num_headers, body_size);
    }
}

impl HttpContext for FilterHttp {
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> HostAction {
        if self.state.borrow().undecided {
            HostAction::Pause
        } else {
            HostAction::Continue
        }
    }

    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> HostAction {
        let mut state = self.state.borrow_mut();
        let Some(config) = state.config.clone() else {
            return HostAction::Continue;
        };
        // Only the method and path are read for requests the filter does not own.
        let method = header_value(MapType::HttpRequestHeaders, ":method");
        let path = header_value(MapType::HttpRequestHeaders, ":path");
        let (Some(method), Some(path)) = (method, path) else {
            return HostAction::Continue;
        };
        // Identity headers are the filter's to set: a client's copies never go upstream.
        if let Some(protected) = &config.protected {
            for name in protected.identity_headers() {
                let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, &name);
            }
        }
        let owned = config.routes.classify(&method, &path).is_some();
        if !owned && !config.protected.as_ref().is_some_and(|p| p.covers(&path)) {
            return HostAction::Continue;
        }
        let mut head = RequestHead::from_headers(header_map(MapType::HttpRequestHeaders));
        head.client_ip = hostcalls::get_property(vec!["source", "address"])
            .ok()
            .flatten()
            .and_then(|address| crate::http::ip_of_address(&String::from_utf8_lossy(&address)));
        let mut entropy = [0u8; crate::flow::ENTROPY_BYTES];
        if getrandom::fill(&mut entropy).is_err() {
            log(LogLevel::Error, "the host gave no random bytes");
            return state.run(
                Action::Respond(crate::error::FilterError::internal("no randomness").to_reply()),
                end_of_stream,
            );
        }
        match Exchange::start(&config, &head, now(), entropy) {
            Start::PassThrough => HostAction::Continue,
            Start::Respond(reply) => state.run(Action::Respond(reply), end_of_stream),
            Start::Exchange(exchange, action) => {
                state.exchange = Some(*exchange);
                state.run(action, end_of_stream)
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> HostAction {
        let mut state = self.state.borrow_mut();
        let Some(limit) = state.reading_body else {
            // A body arriving while the flow decides waits with the headers.
            return if state.undecided {
                HostAction::Pause
            } else {
                HostAction::Continue
            };
        };
        if body_size > limit {
            state.reading_body = None;
            let action = state.step(|ex, _| ex.on_body_too_large(limit));
            return state.run(action, true);
        }
        if !end_of_stream {
            return HostAction::Pause;
        }
        state.reading_body = None;
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let action = state.step(|ex, config| ex.on_body(config, now(), &body));
        state.run(action, true)
    }
}
