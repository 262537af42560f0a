//! The root context: hands the configuration, the timer and its callout answers to the core's
//! `Maintenance`, and wakes the requests that wait.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use super::SharedData;
use super::{buffer, callout_headers, dispatch, log, now, stats, FilterHttp, HttpHost, HttpState};
use auth0_filter_core::engine::{Host, Maintenance, Role, RootHost, Runner};
use auth0_filter_core::flows::LogLevel;
use auth0_filter_core::http::Callout;
use auth0_filter_core::metrics::MetricEvent;
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
    /// A request set the tick to `WAIT_TICK` since the root's last tick.
    pub(super) tick_raised: bool,
}

pub(super) type Waiters = Rc<RefCell<Registry>>;

pub(super) struct Waiter {
    pub(super) context_id: u32,
    pub(super) due_ms: u64,
    pub(super) state: Weak<RefCell<HttpState>>,
}

pub(super) struct FilterRoot {
    maintenance: Maintenance,
    /// A hold instance (`{"role": "hold"}`): its requests only stop the filter's marked ones.
    hold: bool,
    waiters: Waiters,
    /// This worker's parsed keys and verification cache, shared with its requests.
    verifier: Rc<RefCell<Verifier>>,
}

/// The root's hostcalls.
struct RootCalls;

impl Host for RootCalls {
    type Kv = SharedData;

    fn now(&mut self) -> Timestamp {
        now()
    }

    fn shared_data(&self) -> &SharedData {
        &SharedData
    }

    fn dispatch(&mut self, callout: &Callout) -> Result<u32, String> {
        dispatch(callout)
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

impl RootHost for RootCalls {
    fn set_tick_period(&mut self, period: std::time::Duration) {
        let _ = hostcalls::set_tick_period(period);
    }
}

impl FilterRoot {
    pub(super) fn new() -> Self {
        FilterRoot {
            maintenance: Maintenance::default(),
            hold: false,
            waiters: Rc::new(RefCell::new(Registry::default())),
            verifier: Rc::new(RefCell::new(Verifier::default())),
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
            state.borrow_mut().on_wake();
        }
    }
}

// Exported callbacks: tools/wasm-exports.json.
impl Context for FilterRoot {
    /// The root's JWKS fetches, and the answers to callouts made while it woke a request:
    /// handed on to that request.
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if self
            .maintenance
            .on_callout_answer(&mut RootCalls, token, num_headers, body_size)
        {
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
        let bytes = buffer(BufferType::PluginConfiguration, usize::MAX);
        match self.maintenance.configure(&mut RootCalls, &bytes) {
            Role::Filter => self.hold = false,
            Role::Hold => self.hold = true,
            Role::Refused => return false,
        }
        true
    }

    fn on_tick(&mut self) {
        stats::flush();
        if !self.waiters.borrow().waiters.is_empty() {
            self.wake_due_requests();
        }
        let (waiting, raised) = {
            let mut registry = self.waiters.borrow_mut();
            let raised = std::mem::take(&mut registry.tick_raised);
            (!registry.waiters.is_empty(), raised)
        };
        if raised {
            self.maintenance.tick_raised();
        }
        self.maintenance.on_tick(&mut RootCalls, waiting);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        if self.hold {
            return Some(Box::new(super::hold::HoldHttp::default()));
        }
        let state = Rc::new_cyclic(|me| {
            RefCell::new(HttpState {
                runner: Runner::new(self.maintenance.config(), Rc::clone(&self.verifier)),
                host: HttpHost {
                    context_id,
                    me: me.clone(),
                    waiters: Rc::clone(&self.waiters),
                    registered: false,
                },
            })
        });
        Some(Box::new(FilterHttp { state }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
