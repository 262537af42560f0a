//! The only module that talks to proxy-wasm. It executes the core's `Action`s: callouts,
//! local replies, the shared-data session store, the sweep timer and logs. It decides nothing.

use std::cell::RefCell;
use std::rc::Rc;
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

proxy_wasm::main! {{
    proxy_wasm::set_log_level(HostLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FilterRoot { config: None }) });
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

struct FilterRoot {
    config: Option<Rc<Config>>,
}

impl FilterRoot {
    fn store(&self) -> Option<KvSessionStore<SharedData>> {
        self.config
            .as_ref()
            .map(|c| KvSessionStore::new(SharedData, &c.session_scope))
    }
}

impl Context for FilterRoot {}

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
                    if let Err(e) = store.ensure_slots() {
                        log(
                            LogLevel::Error,
                            &format!("cannot prepare the session store: {}", e.0),
                        );
                        return false;
                    }
                }
                // Every second one worker claims the next batch of slots to sweep.
                let _ = hostcalls::set_tick_period(Duration::from_secs(1));
                true
            }
            Err(error) => {
                log(LogLevel::Error, &error.to_string());
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let (Some(store), Some(config)) = (self.store(), self.config.as_ref()) else {
            return;
        };
        let now = now();
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
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FilterHttp {
            config: self.config.clone(),
            exchange: RefCell::new(None),
            reading_body: None,
            callout_started_ms: 0,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct FilterHttp {
    config: Option<Rc<Config>>,
    exchange: RefCell<Option<Exchange>>,
    /// `Some(limit)` while the body is being buffered for the exchange.
    reading_body: Option<usize>,
    callout_started_ms: u64,
}

impl FilterHttp {
    fn flush_logs(&self) {
        if let Some(exchange) = self.exchange.borrow_mut().as_mut() {
            for LogLine { level, message } in exchange.take_logs() {
                log(level, &message);
            }
        }
    }

    /// Runs actions until one needs to wait. Returns what Envoy should do with the request.
    fn run(&mut self, mut action: Action, body_ended: bool) -> HostAction {
        let Some(config) = self.config.clone() else {
            return HostAction::Continue;
        };
        loop {
            self.flush_logs();
            action = match action {
                Action::PassThrough => return HostAction::Continue,
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
                    return HostAction::Pause;
                }
                Action::ReadBody { max_bytes } => {
                    if body_ended {
                        self.with_exchange(|ex| ex.on_body(&config, now(), &[]))
                    } else {
                        self.reading_body = Some(max_bytes);
                        return HostAction::Pause;
                    }
                }
                Action::Store(op) => {
                    let store = KvSessionStore::new(SharedData, &config.session_scope);
                    let at = now();
                    let outcome = store.execute(&op, at);
                    self.with_exchange(|ex| ex.on_store(&config, at, outcome))
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
                        Ok(_) => return HostAction::Pause,
                        Err(status) => {
                            log(
                                LogLevel::Warn,
                                &format!(
                                    "callout to cluster {} refused: {status:?}",
                                    callout.cluster
                                ),
                            );
                            self.with_exchange(|ex| {
                                ex.on_callout(
                                    &config,
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

    fn with_exchange(&self, step: impl FnOnce(&mut Exchange) -> Action) -> Action {
        match self.exchange.borrow_mut().as_mut() {
            Some(exchange) => step(exchange),
            None => Action::Respond(
                crate::error::FilterError::internal("no exchange under way").to_reply(),
            ),
        }
    }

    /// After a callout answer the request is paused: an action that lets it go must resume it.
    fn run_resumed(&mut self, action: Action) {
        if let HostAction::Continue = self.run(action, true) {
            let _ = hostcalls::resume_http_request();
        }
    }
}

impl Context for FilterHttp {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let at = now();
        let result = if num_headers == 0 {
            CalloutResult::Failed {
                elapsed_ms: at.millis().saturating_sub(self.callout_started_ms),
            }
        } else {
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
        };
        let action = self.with_exchange(|ex| ex.on_callout(&config, at, result));
        self.run_resumed(action);
    }
}

impl HttpContext for FilterHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> HostAction {
        let Some(config) = self.config.clone() else {
            return HostAction::Continue;
        };
        // Only the method and path are read for requests the filter does not own.
        let method = header_value(MapType::HttpRequestHeaders, ":method");
        let path = header_value(MapType::HttpRequestHeaders, ":path");
        let (Some(method), Some(path)) = (method, path) else {
            return HostAction::Continue;
        };
        if config.routes.classify(&method, &path).is_none() {
            return HostAction::Continue;
        }
        let mut head = RequestHead::from_headers(header_map(MapType::HttpRequestHeaders));
        head.client_ip = hostcalls::get_property(vec!["source", "address"])
            .ok()
            .flatten()
            .and_then(|address| crate::http::ip_of_address(&String::from_utf8_lossy(&address)));
        match Exchange::start(&config, &head, now()) {
            Start::PassThrough => HostAction::Continue,
            Start::Respond(reply) => self.run(Action::Respond(reply), end_of_stream),
            Start::Exchange(exchange, action) => {
                *self.exchange.borrow_mut() = Some(exchange);
                self.run(action, end_of_stream)
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> HostAction {
        let Some(limit) = self.reading_body else {
            return HostAction::Continue;
        };
        let Some(config) = self.config.clone() else {
            return HostAction::Continue;
        };
        if body_size > limit {
            self.reading_body = None;
            let action = self.with_exchange(|ex| ex.on_body_too_large(&config));
            return self.run(action, true);
        }
        if !end_of_stream {
            return HostAction::Pause;
        }
        self.reading_body = None;
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let action = self.with_exchange(|ex| ex.on_body(&config, now(), &body));
        self.run(action, true)
    }
}
