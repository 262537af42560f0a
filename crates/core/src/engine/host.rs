//! What the engine needs of the proxy it runs in. The filter crate implements these traits over
//! proxy-wasm hostcalls; the tests implement them in memory (`crate::testing::FakeHost`). Every
//! decision stays on this side: a host only performs the call it is asked for.
//!
//! The engine's entry points are generic over these traits, so each host gets its own
//! monomorphised copy and the per-request path makes no dynamic calls.

use crate::flows::LogLevel;
use crate::http::{Callout, CalloutResult, Reply};
use crate::metrics::MetricEvent;
use crate::store::CasKv;
use crate::time::Timestamp;

/// What the runner tells the host to do with a request after handling one of its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let the request (headers, body or trailers) go on to the next filter.
    Continue,
    /// Keep it here: the filter is waiting, or has answered it.
    Pause,
    /// A request the filter had paused may go on now (after a callout answer or a wake-up).
    Resume,
}

/// The capabilities every context needs: the clock, the shared key-value store, callouts, logs
/// and stats.
pub trait Host {
    type Kv: CasKv;

    /// The current time. Each read is a host call: the runner reads it once per event.
    fn now(&mut self) -> Timestamp;
    /// The key-value store shared by every worker (proxy-wasm shared data).
    fn shared_data(&self) -> &Self::Kv;
    /// Starts a callout; its answer comes back through the context that made it, with the
    /// token returned here. `Err` carries why the host refused it.
    fn dispatch(&mut self, callout: &Callout) -> Result<u32, String>;
    /// The headers of the callout answer being handled (`:status` among them).
    fn callout_headers(&mut self) -> Vec<(String, String)>;
    /// The first `size` bytes of the body of the callout answer being handled.
    fn callout_body(&mut self, size: usize) -> Vec<u8>;
    fn log(&mut self, level: LogLevel, message: &str);
    /// Applies stat changes.
    fn record(&mut self, metrics: Vec<MetricEvent>);
}

/// What a request's context adds: its headers, body and reply, the wake-ups, and the stream
/// properties of the hold mode.
pub trait RequestHost: Host {
    /// The request's header map, serialised as the proxy-wasm ABI hands it over
    /// (`crate::http::header_pairs` reads it in place); `None` when the host refuses the read.
    fn request_headers(&mut self) -> Option<Vec<u8>>;
    fn set_request_header(&mut self, name: &str, value: &str);
    fn remove_request_header(&mut self, name: &str);
    /// The first `size` bytes of the buffered request body.
    fn request_body(&mut self, size: usize) -> Vec<u8>;
    /// Answers the request with a local reply. `Err` carries why the host refused it.
    fn send_reply(&mut self, reply: &Reply) -> Result<(), String>;
    /// The downstream peer's address (`ip:port`).
    fn client_address(&mut self) -> Option<String>;
    /// Fills `bytes` with random bytes; `false` when the host has none.
    fn fill_random(&mut self, bytes: &mut [u8]) -> bool;
    /// Calls the request's `Runner::on_wake` at or after `due_ms` (unix ms).
    fn wake_at(&mut self, due_ms: u64);
    /// Sets the stream property that asks the hold instance to stop this request
    /// (`crate::http::HOLD_MARK`); `false` when the host refuses.
    fn mark_for_hold(&mut self) -> bool;
    /// Whether the hold instance confirmed it stopped this request (`crate::http::HOLD_TAKEN`).
    fn hold_taken(&mut self) -> bool;
}

/// What the root context adds: its timer.
pub trait RootHost: Host {
    /// Calls `Maintenance::on_tick` every `period`.
    fn set_tick_period(&mut self, period: std::time::Duration);
}

/// What the hold instance reads and writes of a request: the filter's mark, and its own
/// confirmation that it stopped the request.
pub trait HoldHost {
    fn marked(&mut self) -> bool;
    /// Sets `crate::http::HOLD_TAKEN`. If the host refuses, the filter finds no confirmation
    /// and refuses the request itself.
    fn confirm_hold(&mut self);
}

/// A callout's answer. Without headers the call failed (refused, reset, torn body, timed out):
/// the host then has no answer maps to read, so they are only read when there are headers.
pub fn callout_answer<H: Host>(
    host: &mut H,
    num_headers: usize,
    body_size: usize,
    elapsed_ms: u64,
) -> CalloutResult {
    if num_headers == 0 {
        return CalloutResult::Failed { elapsed_ms };
    }
    let headers = host.callout_headers();
    let status = headers
        .iter()
        .find(|(n, _)| n == ":status")
        .and_then(|(_, v)| v.parse::<u16>().ok())
        .unwrap_or(502);
    let body = host.callout_body(body_size);
    CalloutResult::Answered {
        status,
        headers,
        body,
    }
}
