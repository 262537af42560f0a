//! auth0-filter: the proxy-wasm HTTP filter. The only crate that talks to proxy-wasm: it
//! implements the core's host traits (`auth0_filter_core::engine::host`) with hostcalls and
//! hands each proxy-wasm callback to the core's `Runner` (requests) or `Maintenance` (root). It
//! decides nothing; `auth0-filter-core` does.

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

use auth0_filter_core::engine::maintenance::WAIT_TICK;
use auth0_filter_core::engine::{Host, RequestHost, Runner, Verdict};
use auth0_filter_core::flows::LogLevel;
use auth0_filter_core::http::{Callout, Reply, HOLD_MARK, HOLD_TAKEN};
use auth0_filter_core::metrics::MetricEvent;
use auth0_filter_core::store::{CasKv, KvError};
use auth0_filter_core::time::Timestamp;
use root::{Waiter, Waiters};

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

/// A callout with the pseudo-headers Envoy needs.
fn dispatch(callout: &Callout) -> Result<u32, String> {
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
    hostcalls::dispatch_http_call(
        &callout.cluster,
        headers,
        callout.body.as_deref(),
        vec![],
        Duration::from_millis(callout.timeout_ms),
    )
    .map_err(|status| format!("{status:?}"))
}

// Header values are read as bytes: the SDK's `get_map`/`get_map_value` unwrap a UTF-8
// conversion, and Envoy accepts header bytes 0x80-0xFF, so one such header would abort the VM.
// Names are safe (Envoy's codecs only accept token characters).
fn callout_headers() -> Vec<(String, String)> {
    hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            // Valid UTF-8 (nearly always) keeps its buffer: no second copy of each header.
            let value = String::from_utf8(value)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            (name, value)
        })
        .collect()
}

fn buffer(kind: BufferType, size: usize) -> Vec<u8> {
    hostcalls::get_buffer(kind, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
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
/// refuses the read.
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
/// can also reach to wake a waiting request or hand it a callout answer.
pub(crate) struct FilterHttp {
    state: Rc<RefCell<HttpState>>,
}

pub(crate) struct HttpState {
    runner: Runner,
    host: HttpHost,
}

/// The hostcalls of one request, and what the root needs to find it again: its context id
/// (made the effective context before it is called from the root) and its state.
pub(crate) struct HttpHost {
    context_id: u32,
    me: Weak<RefCell<HttpState>>,
    waiters: Waiters,
    /// Whether this request put a callout or a wake-up in the registry: only then does its
    /// end have entries to remove.
    registered: bool,
}

impl HttpState {
    fn on_wake(&mut self) {
        let verdict = self.runner.on_wake(&mut self.host);
        resume_if(verdict);
    }

    fn on_call_response(&mut self, token: u32, num_headers: usize, body_size: usize) {
        self.host.waiters.borrow_mut().callouts.remove(&token);
        let verdict = self
            .runner
            .on_callout_answer(&mut self.host, num_headers, body_size);
        resume_if(verdict);
    }
}

fn resume_if(verdict: Verdict) {
    if verdict == Verdict::Resume {
        let _ = hostcalls::resume_http_request();
    }
}

fn host_action(verdict: Verdict) -> HostAction {
    match verdict {
        Verdict::Pause => HostAction::Pause,
        Verdict::Continue | Verdict::Resume => HostAction::Continue,
    }
}

impl Host for HttpHost {
    type Kv = SharedData;

    fn now(&mut self) -> Timestamp {
        now()
    }

    fn shared_data(&self) -> &SharedData {
        &SharedData
    }

    fn dispatch(&mut self, callout: &Callout) -> Result<u32, String> {
        let token = dispatch(callout)?;
        self.registered = true;
        // Only the root consults this, for callouts made while it woke this request; answers
        // routed here directly are dropped from it then.
        self.waiters
            .borrow_mut()
            .callouts
            .insert(token, (self.context_id, self.me.clone()));
        Ok(token)
    }

    fn callout_headers(&mut self) -> Vec<(String, String)> {
        callout_headers()
    }

    fn callout_body(&mut self, size: usize) -> Vec<u8> {
        buffer(BufferType::HttpCallResponseBody, size)
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        log(level, message);
    }

    fn record(&mut self, metrics: Vec<MetricEvent>) {
        stats::apply(metrics);
    }
}

impl RequestHost for HttpHost {
    fn request_headers(&mut self) -> Option<Vec<u8>> {
        request_header_buffer()
    }

    fn set_request_header(&mut self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
    }

    fn remove_request_header(&mut self, name: &str) {
        let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
    }

    fn request_body(&mut self, size: usize) -> Vec<u8> {
        buffer(BufferType::HttpRequestBody, size)
    }

    fn send_reply(&mut self, reply: &Reply) -> Result<(), String> {
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body))
            .map_err(|status| format!("{status:?}"))
    }

    fn client_address(&mut self) -> Option<String> {
        hostcalls::get_property(vec!["source", "address"])
            .ok()
            .flatten()
            .map(|address| String::from_utf8_lossy(&address).into_owned())
    }

    fn fill_random(&mut self, bytes: &mut [u8]) -> bool {
        getrandom::fill(bytes).is_ok()
    }

    fn wake_at(&mut self, due_ms: u64) {
        self.registered = true;
        let mut registry = self.waiters.borrow_mut();
        registry.waiters.push(Waiter {
            context_id: self.context_id,
            due_ms,
            state: self.me.clone(),
        });
        registry.tick_raised = true;
        let _ = hostcalls::set_tick_period(WAIT_TICK);
    }

    fn mark_for_hold(&mut self) -> bool {
        hostcalls::set_property(vec![HOLD_MARK], Some(b"1")).is_ok()
    }

    fn hold_taken(&mut self) -> bool {
        matches!(hostcalls::get_property(vec![HOLD_TAKEN]), Ok(Some(_)))
    }
}

impl Drop for FilterHttp {
    /// A request that ends before its callout is answered (the client hung up) is never handed
    /// the answer, so its entries would stay in the worker's registry for good: an anonymous
    /// caller could grow the VM's memory by hanging up during Auth0 calls. They go with it.
    fn drop(&mut self) {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return;
        };
        let HttpState { runner, host } = &mut *state;
        if !host.registered {
            return;
        }
        let abandoned = {
            let Ok(mut registry) = host.waiters.try_borrow_mut() else {
                return;
            };
            let id = host.context_id;
            let before = registry.callouts.len();
            registry.callouts.retain(|_, (context, _)| *context != id);
            registry.waiters.retain(|waiter| waiter.context_id != id);
            before - registry.callouts.len()
        };
        runner.on_end(host, abandoned);
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
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> HostAction {
        let mut state = self.state.borrow_mut();
        let HttpState { runner, host } = &mut *state;
        host_action(runner.on_request_headers(host, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> HostAction {
        let mut state = self.state.borrow_mut();
        let HttpState { runner, host } = &mut *state;
        host_action(runner.on_request_body(host, body_size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> HostAction {
        host_action(self.state.borrow().runner.on_request_trailers())
    }
}
