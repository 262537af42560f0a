//! auth0-filter: the proxy-wasm HTTP filter. The only crate that talks to proxy-wasm: it executes
//! the core's `Action`s (callouts, local replies, the shared-data session store, the sweep timer
//! and logs) with hostcalls. It decides nothing; `auth0-filter-core` does.

// The module is built for wasm32 only: natively there is no host to link against.
#![cfg(target_arch = "wasm32")]
// A panic aborts the wasm VM and with it every request on that Envoy worker.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

mod hold;
mod root;
mod stats;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as HostAction, BufferType, LogLevel as HostLevel, MapType, Status};

use auth0_filter_core::config::Config;
use auth0_filter_core::engine::{Exchange, Start};
use auth0_filter_core::flows::{Action, LogLevel, LogLine};
use auth0_filter_core::http::{CalloutResult, RequestHead};
use auth0_filter_core::store::{CasKv, JwksCache, KvError};
use auth0_filter_core::time::Timestamp;
use auth0_filter_core::tokens::verifier::Verifier;
use hold::Held;
use root::{Waiter, Waiters, WAIT_TICK};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(HostLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::FilterRoot::new()) });
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
        .map(|(name, value)| {
            // Valid UTF-8 (nearly always) keeps its buffer: no second copy of each header.
            let value = String::from_utf8(value).unwrap_or_else(|e| lossy_string(e.as_bytes()));
            (name, value)
        })
        .collect()
}

fn lossy_string(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

// The ABI call behind the SDK's `get_map_bytes`, made directly so the request's headers can
// be read in place (`http::header_pairs`) instead of as two allocations per header.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

/// The request's serialised header map: empty when the host has no headers, `None` when it
/// refuses the read (the request is then answered, never let through unchecked).
fn request_header_buffer() -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and a size into the two out-parameters. The buffer
    // was allocated in this module through the SDK's `proxy_on_memory_allocate`, which hands
    // out a `Vec<u8>` of exactly `size` bytes, so it is taken back as that Vec (as the SDK
    // itself does) and freed when dropped.
    unsafe {
        let status =
            proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size);
        if status != 0 {
            return None;
        }
        if data.is_null() || size == 0 {
            return Some(Vec::new());
        }
        Some(Vec::from_raw_parts(data, size, size))
    }
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
pub(crate) struct SharedData;

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

/// The proxy-wasm HTTP context: a thin handle on the request's state, which the root context
/// can also reach to wake a waiting request.
pub(crate) struct FilterHttp {
    state: Rc<RefCell<HttpState>>,
}

pub(crate) struct HttpState {
    config: Option<Rc<Config>>,
    exchange: Option<Exchange>,
    /// `Some(limit)` while the body is being buffered for the exchange.
    reading_body: Option<usize>,
    /// Paused while the flow decides (callout, wait, verification): nothing of the request,
    /// body or trailers, may go upstream until it has.
    undecided: bool,
    /// In the hold mode: whether this request's headers went on to the hold instance.
    held: Held,
    callout_started_ms: u64,
    /// `x-request-id` and route, made into the tag of the request's log lines only when one
    /// is written (most requests write none).
    request_id: String,
    route: &'static str,
    context_id: u32,
    me: Weak<RefCell<HttpState>>,
    waiters: Waiters,
    verifier: Rc<RefCell<Verifier>>,
}

impl HttpState {
    fn flush_logs(&mut self) {
        if let Some(exchange) = self.exchange.as_mut() {
            let (logs, metrics) = (exchange.take_logs(), exchange.take_metrics());
            let ended = exchange.take_ended_tokens();
            if let Ok(verifier) = self.verifier.try_borrow() {
                for token in &ended {
                    verifier.forget_session_read(token);
                }
            }
            self.emit(logs, metrics);
        }
    }

    fn emit(&self, logs: Vec<LogLine>, metrics: Vec<auth0_filter_core::metrics::MetricEvent>) {
        if !logs.is_empty() {
            let tag = auth0_filter_core::http::log_tag(&self.request_id, self.route);
            for LogLine { level, message } in logs {
                log(level, &format!("{tag} {message}"));
            }
        }
        stats::apply(metrics);
    }

    fn step(&mut self, event: impl FnOnce(&mut Exchange, &Config) -> Action) -> Action {
        match (self.exchange.as_mut(), self.config.as_deref()) {
            (Some(exchange), Some(config)) => event(exchange, config),
            _ => Action::Respond(
                auth0_filter_core::http::error::FilterError::internal("no exchange under way")
                    .to_reply(),
            ),
        }
    }

    fn wake(&mut self, at: Timestamp) -> Action {
        self.step(|ex, config| ex.on_wake(config, at))
    }

    /// Runs actions until one needs to wait. Returns what Envoy should do with the request.
    /// `at` is the time of the host event being handled: the actions run within it, and each
    /// clock read is a host call.
    fn run(&mut self, mut action: Action, body_ended: bool, at: Timestamp) -> HostAction {
        let Some(config) = self.config.clone() else {
            return HostAction::Continue;
        };
        loop {
            self.flush_logs();
            action = match action {
                // The hold instance keeps a held request from the router for good: one that
                // should go on is a bug, answered rather than left hanging.
                Action::PassThrough | Action::Forward { .. } if self.held != Held::No => {
                    let error = auth0_filter_core::http::error::FilterError::internal(
                        "a held request cannot go on",
                    );
                    Action::Respond(error.to_reply())
                }
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
                        self.step(|ex, config| ex.on_body(config, at, &[]))
                    } else {
                        self.reading_body = Some(max_bytes);
                        self.undecided = true;
                        return HostAction::Pause;
                    }
                }
                Action::Store(op) => {
                    let outcome = auth0_filter_core::store::execute(
                        &SharedData,
                        &config.session_scope,
                        &op,
                        at,
                    );
                    self.step(|ex, config| ex.on_store(config, at, outcome))
                }
                Action::Verify {
                    token,
                    against,
                    waiting,
                } => {
                    let jwks = JwksCache::new(&SharedData, &config.session_scope);
                    let source = |issuer: &str| jwks.source(issuer);
                    let mut verifier = self.verifier.borrow_mut();
                    let result = match waiting {
                        false => verifier.verify(&token, &against, &config, &source, at),
                        true => verifier.verify_waiting(&token, &against, &config, &source, at),
                    };
                    drop(verifier);
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
                        due_ms: at.millis().saturating_add(millis),
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
                    self.callout_started_ms = at.millis();
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
                                ex.on_callout(config, at, CalloutResult::Failed { elapsed_ms: 0 })
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
        self.run_resumed(action, at);
    }

    /// After a callout answer or a wake-up the request is paused: an action that lets it go
    /// must resume it.
    fn run_resumed(&mut self, action: Action, at: Timestamp) {
        if let HostAction::Continue = self.run(action, true, at) {
            let _ = hostcalls::resume_http_request();
        }
    }
}

impl Drop for FilterHttp {
    /// A request that ends before its callout is answered (the client hung up) is never handed
    /// the answer, so its entries would stay in the worker's registry for good: an anonymous
    /// caller could grow the VM's memory by hanging up during Auth0 calls. They go with it.
    fn drop(&mut self) {
        let Ok(state) = self.state.try_borrow() else {
            return;
        };
        let Ok(mut registry) = state.waiters.try_borrow_mut() else {
            return;
        };
        let id = state.context_id;
        let before = registry.callouts.len();
        registry.callouts.retain(|_, (context, _)| *context != id);
        registry.waiters.retain(|waiter| waiter.context_id != id);
        let abandoned = before - registry.callouts.len();
        if let (true, Some(config)) = (abandoned > 0, state.config.as_deref()) {
            let count = u64::try_from(abandoned).unwrap_or(u64::MAX);
            stats::apply(vec![auth0_filter_core::metrics::callouts_abandoned(
                &config.stat_prefix,
                count,
            )]);
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

// Only the callbacks listed in tools/wasm-exports.json are exported from the module: a callback
// added here must be added there too, or Envoy never calls it.
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
        // One host call reads every header, read in place: every request the filter sees
        // pays for this, and each host call or allocation in V8 costs more than scanning a
        // request's few headers.
        let buffer = request_header_buffer();
        if buffer.as_ref().is_some_and(Vec::is_empty) {
            return HostAction::Continue;
        }
        // Refused or out of format: answered, never let through unchecked.
        let Some(pairs) = buffer
            .as_deref()
            .and_then(auth0_filter_core::http::header_pairs)
        else {
            log(LogLevel::Error, "the host gave no readable request headers");
            let error =
                auth0_filter_core::http::error::FilterError::internal("unreadable request headers");
            return state.run(Action::Respond(error.to_reply()), end_of_stream, now());
        };
        // Identity headers are the filter's to set: a client's copies never go upstream.
        let is_identity = |name: &str| {
            config
                .protected
                .as_ref()
                .is_some_and(|p| p.is_identity_header(name))
        };
        let (mut method, mut path) = (None, None);
        let mut forged = false;
        for (name, value) in &pairs {
            match *name {
                ":method" => method = Some(String::from_utf8_lossy(value)),
                ":path" => path = Some(String::from_utf8_lossy(value)),
                _ if is_identity(name) => {
                    let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
                    forged = true;
                }
                _ => {}
            }
        }
        let (Some(method), Some(path)) = (method, path) else {
            return HostAction::Continue;
        };
        let ownership = auth0_filter_core::engine::ownership(&config, &method, &path);
        if let Ok(auth0_filter_core::engine::Ownership::Foreign) = ownership {
            return HostAction::Continue;
        }
        // The route's stat name, or `None` for a protected prefix (a path the filter guards
        // but does not answer) or a refused path.
        let owned_route = match &ownership {
            Ok(auth0_filter_core::engine::Ownership::Route(route)) => {
                Some(route.kind.metric_name())
            }
            Err(_) => Some(auth0_filter_core::engine::UNREADABLE_PATH),
            _ => None,
        };
        let owned = matches!(
            ownership,
            Ok(auth0_filter_core::engine::Ownership::Route(_))
        );
        let kept = pairs
            .iter()
            .filter(|(name, _)| !forged || !is_identity(name))
            .copied();
        let mut head = RequestHead::from_pairs(kept);
        let mut entropy = [0u8; auth0_filter_core::flows::ENTROPY_BYTES];
        // The client address and random bytes serve the routes the filter answers (logins,
        // states, boundaries); a protected route only verifies a token, so it skips these two
        // host calls on what is the hot path of an API behind the gateway.
        if owned {
            head.client_ip = hostcalls::get_property(vec!["source", "address"])
                .ok()
                .flatten()
                .and_then(|address| {
                    auth0_filter_core::http::ip_of_address(&String::from_utf8_lossy(&address))
                });
        }
        let at = now();
        if owned && getrandom::fill(&mut entropy).is_err() {
            log(LogLevel::Error, "the host gave no random bytes");
            return state.run(
                Action::Respond(
                    auth0_filter_core::http::error::FilterError::internal("no randomness")
                        .to_reply(),
                ),
                end_of_stream,
                at,
            );
        }
        state.request_id = head.header("x-request-id").unwrap_or_default().to_string();
        match Exchange::start_owned(&config, &head, ownership, at, entropy) {
            Start::PassThrough => HostAction::Continue,
            Start::Respond(reply, logs, metrics) => {
                let route = owned_route.unwrap_or("protected");
                state.route = route;
                state.emit(logs, metrics);
                state.run(Action::Respond(reply), end_of_stream, at)
            }
            Start::Exchange(exchange, action) => {
                state.route = exchange.route();
                state.exchange = Some(*exchange);
                let verdict = state.run(action, end_of_stream, at);
                state.hold_instead_of_pause(verdict, end_of_stream)
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> HostAction {
        let mut state = self.state.borrow_mut();
        if let Some(refused) = state.hold_confirmed() {
            return refused;
        }
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
            let at = now();
            let action = state.step(|ex, config| ex.on_body_too_large(config, at, limit));
            return state.run(action, true, at);
        }
        if !end_of_stream {
            return HostAction::Pause;
        }
        state.reading_body = None;
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let at = now();
        let action = state.step(|ex, config| ex.on_body(config, at, &body));
        state.run(action, true, at)
    }
}
