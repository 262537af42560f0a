//! One request's life in the filter, from its headers to the verdict the host hands Envoy: the
//! identity headers a client sent are stripped, the route is classified once, the exchange is
//! started and fed what the host brings back (body, callout answers, wake-ups), and the loop
//! executes its actions until one has to wait.
//!
//! Store operations run on one of two executors: the shared key-value store, answering at once
//! (`store::execute`), or, with `sessionStore.backend: redis`, Redis through Webdis callouts
//! (`store::redis::RedisOp`), whose answers come back here. JWKS wants always go to the shared
//! store: the root contexts that fetch the keys read them there.

use std::cell::RefCell;
use std::rc::Rc;

use super::host::{callout_answer, RequestHost, Verdict};
use super::{ownership, Exchange, Ownership, Start, PROTECTED, UNREADABLE_PATH};
use crate::config::Config;
use crate::flows::protected::remembered_bearer;
use crate::flows::{Action, LogLevel, LogLine, ENTROPY_BYTES};
use crate::http::error::FilterError;
use crate::http::{CalloutResult, RequestHead};
use crate::metrics::MetricEvent;
use crate::store::redis::{RedisOp, RedisStep};
use crate::store::{JwksCache, StoreOp};
use crate::time::Timestamp;
use crate::tokens::verifier::Verifier;
use hold::Held;

mod hold;
pub use hold::HoldInstance;

/// A request seen by the filter.
pub struct Runner {
    /// `None` before the plugin is configured: every request then goes on untouched.
    config: Option<Rc<Config>>,
    /// The worker's parsed keys and verification cache, shared by its requests.
    verifier: Rc<RefCell<Verifier>>,
    exchange: Option<Exchange>,
    /// A store operation under way on Redis: the callout answers are its.
    redis: Option<RedisOp>,
    /// `Some(limit)` while the body is being buffered for the exchange.
    reading_body: Option<usize>,
    /// Paused while the flow decides (callout, wait, verification): nothing of the request,
    /// body or trailers, may go upstream until it has.
    undecided: bool,
    held: Held,
    /// When the callout under way was made (unix ms).
    callout_started_ms: u64,
    /// `x-request-id` and route, made into the tag of the request's log lines only when one is
    /// written (most requests write none).
    request_id: String,
    route: &'static str,
}

impl Runner {
    pub fn new(config: Option<Rc<Config>>, verifier: Rc<RefCell<Verifier>>) -> Runner {
        Runner {
            config,
            verifier,
            exchange: None,
            redis: None,
            reading_body: None,
            undecided: false,
            held: Held::No,
            callout_started_ms: 0,
            request_id: String::new(),
            route: "",
        }
    }

    /// The request's headers. Every request the filter sees comes here, so a pass-through one
    /// costs one read of the header map and nothing else.
    pub fn on_request_headers<H: RequestHost>(
        &mut self,
        host: &mut H,
        end_of_stream: bool,
    ) -> Verdict {
        let Some(config) = self.config.clone() else {
            return Verdict::Continue;
        };
        let buffer = host.request_headers();
        if buffer.as_ref().is_some_and(Vec::is_empty) {
            return Verdict::Continue;
        }
        // Refused or out of format: answered, never let through unchecked.
        let Some(pairs) = buffer.as_deref().and_then(crate::http::header_pairs) else {
            host.log(LogLevel::Error, "the host gave no readable request headers");
            let error = FilterError::internal("unreadable request headers");
            let at = host.now();
            return self.run(host, Action::Respond(error.to_reply()), end_of_stream, at);
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
                    host.remove_request_header(name);
                    forged = true;
                }
                _ => {}
            }
        }
        let (Some(method), Some(path)) = (method, path) else {
            return Verdict::Continue;
        };
        let route = match ownership(&config, &method, &path) {
            Ok(Ownership::Foreign) => return Verdict::Continue,
            Ok(Ownership::Route(route)) => Some(route),
            Ok(Ownership::Protected) => None,
            Err(refused) => return self.refuse_path(host, &config, refused, end_of_stream),
        };
        let at = host.now();
        if route.is_none() && self.forward_remembered_bearer(host, &config, &pairs, at) {
            return Verdict::Continue;
        }
        let kept = pairs
            .iter()
            .filter(|(name, _)| !forged || !is_identity(name))
            .copied();
        let mut head = RequestHead::from_pairs(kept);
        let mut entropy = [0u8; ENTROPY_BYTES];
        // The client address and random bytes serve the routes the filter answers (logins,
        // states, boundaries); a protected route only verifies a token, so it skips these two
        // host calls on what is the hot path of an API behind the gateway.
        let owned = route.is_some();
        if owned {
            head.client_ip = host
                .client_address()
                .and_then(|address| crate::http::ip_of_address(&address));
        }
        if owned && !host.fill_random(&mut entropy) {
            host.log(LogLevel::Error, "the host gave no random bytes");
            let error = FilterError::internal("no randomness");
            return self.run(host, Action::Respond(error.to_reply()), end_of_stream, at);
        }
        self.request_id = head.header("x-request-id").unwrap_or_default().to_string();
        self.route = route.as_ref().map_or(PROTECTED, |r| r.kind.metric_name());
        match Exchange::start(&config, &head, route, at, entropy) {
            Start::Respond(reply, logs, metrics) => {
                self.emit(host, logs, metrics);
                self.run(host, Action::Respond(reply), end_of_stream, at)
            }
            Start::Exchange(exchange, action) => {
                self.exchange = Some(*exchange);
                let verdict = self.run(host, action, end_of_stream, at);
                self.hold_instead_of_pause(host, verdict, end_of_stream, at)
            }
        }
    }

    /// A protected request answered from the worker's memory of its Bearer token
    /// (`flows::protected::remembered_bearer`): its identity headers are set and it goes on,
    /// counted as the exchange would count it. `false`: the exchange decides.
    fn forward_remembered_bearer<H: RequestHost>(
        &self,
        host: &mut H,
        config: &Config,
        pairs: &[(&str, &[u8])],
        at: Timestamp,
    ) -> bool {
        let Some(token) = crate::http::sole_bearer(pairs) else {
            return false;
        };
        let Ok(mut verifier) = self.verifier.try_borrow_mut() else {
            return false;
        };
        let remembered = remembered_bearer(config, &mut verifier, token, at);
        drop(verifier);
        let Some(headers) = remembered else {
            return false;
        };
        for (name, value) in &headers {
            host.set_request_header(name, value);
        }
        let mut metrics = Vec::with_capacity(1);
        let prefix = config.stat_prefix.as_str();
        crate::metrics::request_end(&mut metrics, prefix, PROTECTED, 200, None);
        host.record(metrics);
        true
    }

    /// A path without one reading: refused, whatever route it might be.
    fn refuse_path<H: RequestHost>(
        &mut self,
        host: &mut H,
        config: &Config,
        refused: FilterError,
        end_of_stream: bool,
    ) -> Verdict {
        let reply = refused.to_reply();
        let mut metrics = Vec::new();
        let prefix = config.stat_prefix.as_str();
        crate::metrics::request_end(&mut metrics, prefix, UNREADABLE_PATH, reply.status, None);
        self.route = UNREADABLE_PATH;
        self.emit(host, Vec::new(), metrics);
        let at = host.now();
        self.run(host, Action::Respond(reply), end_of_stream, at)
    }

    /// A part of the request body; `body_size` is all of it buffered so far.
    pub fn on_request_body<H: RequestHost>(
        &mut self,
        host: &mut H,
        body_size: usize,
        end_of_stream: bool,
    ) -> Verdict {
        if let Some(refused) = self.hold_confirmed(host) {
            return refused;
        }
        let Some(limit) = self.reading_body else {
            // A body arriving while the flow decides waits with the headers.
            return self.waiting_verdict();
        };
        if body_size > limit {
            self.reading_body = None;
            let at = host.now();
            let action = self.step(|ex, config| ex.on_body_too_large(config, at, limit));
            return self.run(host, action, true, at);
        }
        if !end_of_stream {
            return Verdict::Pause;
        }
        self.reading_body = None;
        let body = host.request_body(body_size);
        let at = host.now();
        let action = self.step(|ex, config| ex.on_body(config, at, &body));
        self.run(host, action, true, at)
    }

    /// Trailers wait, like the body, while the flow decides.
    pub fn on_request_trailers(&self) -> Verdict {
        self.waiting_verdict()
    }

    fn waiting_verdict(&self) -> Verdict {
        match self.undecided {
            true => Verdict::Pause,
            false => Verdict::Continue,
        }
    }

    /// The answer to this request's callout (`num_headers` and `body_size` as the host reports
    /// them). The request is paused: `Resume` lets it go on.
    pub fn on_callout_answer<H: RequestHost>(
        &mut self,
        host: &mut H,
        num_headers: usize,
        body_size: usize,
    ) -> Verdict {
        let at = host.now();
        let elapsed_ms = at.millis().saturating_sub(self.callout_started_ms);
        let result = callout_answer(host, num_headers, body_size, elapsed_ms);
        let action = self.on_callout_result(result, at);
        self.run_resumed(host, action, at)
    }

    /// The wake-up asked for by `RequestHost::wake_at`. The request is paused: `Resume` lets
    /// it go on.
    pub fn on_wake<H: RequestHost>(&mut self, host: &mut H) -> Verdict {
        let at = host.now();
        let action = self.step(|ex, config| ex.on_wake(config, at));
        self.run_resumed(host, action, at)
    }

    /// The request ended with `abandoned` callouts unanswered (the client hung up).
    pub fn on_end<H: RequestHost>(&self, host: &mut H, abandoned: usize) {
        if let (true, Some(config)) = (abandoned > 0, self.config.as_deref()) {
            let count = u64::try_from(abandoned).unwrap_or(u64::MAX);
            let event = crate::metrics::callouts_abandoned(&config.stat_prefix, count);
            host.record(vec![event]);
        }
    }

    fn run_resumed<H: RequestHost>(
        &mut self,
        host: &mut H,
        action: Action,
        at: Timestamp,
    ) -> Verdict {
        match self.run(host, action, true, at) {
            Verdict::Continue | Verdict::Resume => Verdict::Resume,
            Verdict::Pause => Verdict::Pause,
        }
    }

    fn on_callout_result(&mut self, result: CalloutResult, at: Timestamp) -> Action {
        let redis = self.config.as_deref().and_then(|c| c.redis.as_ref());
        if let (Some(redis), Some(op)) = (redis, self.redis.as_mut()) {
            return match op.on_answer(redis, &result, at) {
                RedisStep::Call(callout) => Action::Call(callout),
                RedisStep::Done(outcome) => {
                    self.redis = None;
                    self.step(|ex, config| ex.on_store(config, at, outcome))
                }
            };
        }
        self.step(|ex, config| ex.on_callout(config, at, result))
    }

    fn step(&mut self, event: impl FnOnce(&mut Exchange, &Config) -> Action) -> Action {
        match (self.exchange.as_mut(), self.config.as_deref()) {
            (Some(exchange), Some(config)) => event(exchange, config),
            _ => Action::Respond(FilterError::internal("no exchange under way").to_reply()),
        }
    }

    /// Runs actions until one has to wait. `at` is the time of the host event being handled:
    /// the actions run within it, and each clock read is a host call.
    fn run<H: RequestHost>(
        &mut self,
        host: &mut H,
        mut action: Action,
        body_ended: bool,
        at: Timestamp,
    ) -> Verdict {
        let Some(config) = self.config.clone() else {
            return Verdict::Continue;
        };
        loop {
            self.flush(host);
            action = match action {
                // The hold instance keeps a held request from the router for good: one that
                // should go on is a bug, answered rather than left hanging.
                Action::PassThrough | Action::Forward { .. } if self.held != Held::No => {
                    let error = FilterError::internal("a held request cannot go on");
                    Action::Respond(error.to_reply())
                }
                Action::PassThrough => {
                    self.undecided = false;
                    return Verdict::Continue;
                }
                Action::Respond(reply) => {
                    if let Err(status) = host.send_reply(&reply) {
                        host.log(
                            LogLevel::Error,
                            &format!("sending the reply failed: {status}"),
                        );
                    }
                    self.reading_body = None;
                    self.undecided = false;
                    return Verdict::Pause;
                }
                Action::ReadBody { max_bytes } => {
                    if body_ended {
                        self.step(|ex, config| ex.on_body(config, at, &[]))
                    } else {
                        self.reading_body = Some(max_bytes);
                        self.undecided = true;
                        return Verdict::Pause;
                    }
                }
                Action::Store(op) => self.store(host, &config, op, at),
                Action::Verify {
                    token,
                    against,
                    waiting,
                } => {
                    let jwks = JwksCache::new(host.shared_data(), &config.session_scope);
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
                        host.set_request_header(name, value);
                    }
                    self.undecided = false;
                    return Verdict::Continue;
                }
                Action::Wait { millis } => {
                    host.wake_at(at.millis().saturating_add(millis));
                    self.undecided = true;
                    return Verdict::Pause;
                }
                Action::Call(callout) => {
                    self.callout_started_ms = at.millis();
                    match host.dispatch(&callout) {
                        Ok(_) => {
                            self.undecided = true;
                            return Verdict::Pause;
                        }
                        Err(status) => {
                            let cluster = &callout.cluster;
                            host.log(
                                LogLevel::Warn,
                                &format!("callout to cluster {cluster} refused: {status}"),
                            );
                            let failed = CalloutResult::Failed { elapsed_ms: 0 };
                            self.on_callout_result(failed, at)
                        }
                    }
                }
            };
        }
    }

    /// Runs a store operation on its executor: Redis (its first Webdis call, or at once when
    /// it needs none) or the shared key-value store.
    fn store<H: RequestHost>(
        &mut self,
        host: &mut H,
        config: &Config,
        op: StoreOp,
        at: Timestamp,
    ) -> Action {
        let outcome = match &config.redis {
            Some(redis) if !matches!(op, StoreOp::WantJwks { .. }) => {
                let (op, step) = RedisOp::start(redis, op, at);
                match step {
                    RedisStep::Call(callout) => {
                        self.redis = Some(op);
                        return Action::Call(callout);
                    }
                    RedisStep::Done(outcome) => outcome,
                }
            }
            _ => crate::store::execute(host.shared_data(), &config.session_scope, &op, at),
        };
        self.step(|ex, config| ex.on_store(config, at, outcome))
    }

    /// Hands the host what the exchange wrote since the last call: log lines, stats, and the
    /// tokens whose session it ended (this worker forgets their session reads at once).
    fn flush<H: RequestHost>(&mut self, host: &mut H) {
        let Some(exchange) = self.exchange.as_mut() else {
            return;
        };
        let (logs, metrics) = (exchange.take_logs(), exchange.take_metrics());
        let ended = exchange.take_ended_tokens();
        if let Ok(verifier) = self.verifier.try_borrow() {
            for token in &ended {
                verifier.forget_session_read(token);
            }
        }
        self.emit(host, logs, metrics);
    }

    fn emit<H: RequestHost>(&self, host: &mut H, logs: Vec<LogLine>, metrics: Vec<MetricEvent>) {
        if !logs.is_empty() {
            let tag = crate::http::log_tag(&self.request_id, self.route);
            for LogLine { level, message } in logs {
                host.log(level, &format!("{tag} {message}"));
            }
        }
        if !metrics.is_empty() {
            host.record(metrics);
        }
    }
}

#[cfg(test)]
mod tests;
