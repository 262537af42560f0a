//! Per-request state machines. A flow never performs I/O: it returns an `Action` for the host
//! to execute and is fed the result (body, callout answer, store outcome) to decide the next.
//! A new route is a new `Flow` plus a route-table entry; the host does not change.

mod authorize;
pub(crate) mod identity;
mod logout;
pub(crate) mod management;
mod management_call;
pub(crate) mod protected;
mod refresh;
mod shared;
mod token;
mod userinfo;

use crate::config::Config;
use crate::error::FilterError;
use crate::http::{Callout, CalloutResult, Reply, RequestHead};
use crate::metrics::{LoginGrant, MetricEvent};
use crate::routes::RouteKind;
use crate::session::{StoreOp, StoreOutcome};
use crate::timefmt::Timestamp;

/// Random bytes the host gives each owned request: 16 for a state, 32 for a PKCE verifier.
pub const ENTROPY_BYTES: usize = 64;

/// What the host must do next for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Let the request go upstream untouched.
    PassThrough,
    /// Buffer the whole request body (up to `max_bytes`), then call `on_body`.
    ReadBody { max_bytes: usize },
    /// Make this callout, then call `on_callout` with its result.
    Call(Callout),
    /// Run this session-store operation, then call `on_store` with its outcome.
    Store(StoreOp),
    /// Answer the request with this response; the exchange is over.
    Respond(Reply),
    /// Call `on_wake` after about this many milliseconds (another request is fetching
    /// something this one needs).
    Wait { millis: u64 },
    /// Verify a token against the stored JWKS, then call `on_verified`. `waiting`: the request
    /// is checking again after waiting for the keys (it already has its place among the
    /// requests waiting for them).
    Verify {
        token: std::rc::Rc<str>,
        against: crate::verifier::VerifyAgainst,
        waiting: bool,
    },
    /// Let the request go upstream with these headers set (identity headers).
    Forward {
        set_headers: Vec<(std::sync::Arc<str>, String)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// What a flow step can see and where it writes its log lines.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub now: Timestamp,
    /// Fresh random bytes from the host, for states and PKCE verifiers.
    pub entropy: [u8; ENTROPY_BYTES],
    logs: &'a mut Vec<LogLine>,
    grant: &'a mut Option<LoginGrant>,
    ended_tokens: &'a mut Vec<String>,
}

impl Ctx<'_> {
    /// Logs a line. Callers never put secrets, passwords or tokens in it.
    pub fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.logs.push(LogLine {
            level,
            message: message.into(),
        });
    }

    /// Names the grant of the login under way, counted if the request succeeds.
    pub fn login_grant(&mut self, grant: LoginGrant) {
        *self.grant = Some(grant);
    }

    /// Says that the session of `token` is being ended, so this worker forgets what it last
    /// read of it at once (`flow::protected`), instead of within `sessionRecheckSeconds`.
    pub fn session_ended(&mut self, token: &str) {
        self.ended_tokens.push(token.to_string());
    }
}

type Step = Result<Action, FilterError>;

/// One route's state machine. Every event it does not expect is an internal error.
trait Flow {
    fn on_body(&mut self, _ctx: &mut Ctx<'_>, _body: &[u8]) -> Step {
        Err(unexpected("body"))
    }
    fn on_callout(&mut self, _ctx: &mut Ctx<'_>, _result: CalloutResult) -> Step {
        Err(unexpected("callout answer"))
    }
    fn on_store(&mut self, _ctx: &mut Ctx<'_>, _outcome: StoreOutcome) -> Step {
        Err(unexpected("store outcome"))
    }
    fn on_wake(&mut self, _ctx: &mut Ctx<'_>) -> Step {
        Err(unexpected("wake-up"))
    }
    fn on_verified(
        &mut self,
        _ctx: &mut Ctx<'_>,
        _result: Result<crate::jwt::Verified, crate::jwt::VerifyError>,
    ) -> Step {
        Err(unexpected("verification"))
    }
}

/// The flow of a request answered at once: it expects nothing more.
struct Answered;

impl Flow for Answered {}

fn unexpected(what: &str) -> FilterError {
    FilterError::internal(format!("unexpected {what} for this request"))
}

/// Whether the filter owns a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Neither answered nor guarded: it passes through untouched.
    Foreign,
    /// A route the filter answers itself.
    Route(crate::routes::RouteMatch),
    /// Under a protected prefix: it needs a valid token.
    Protected,
}

/// The stat name of requests refused for their path.
pub const UNREADABLE_PATH: &str = "unreadable_path";

/// Who owns a request, decided on its normalised path (`crate::path`). A path without one
/// reading is refused, whatever route it might be: with protected prefixes, any such path could
/// be one in disguise. A protected prefix covers the raw path or the normalised one, in any
/// case.
pub fn ownership(config: &Config, method: &str, raw_path: &str) -> Result<Ownership, FilterError> {
    let path = crate::path::normalized(raw_path).map_err(FilterError::bad_request)?;
    if let Some(route) = config.routes.classify(method, &path) {
        return Ok(Ownership::Route(route));
    }
    // The raw path is another reading only when normalising changed it.
    let changed = matches!(path, std::borrow::Cow::Owned(_));
    let protected = config
        .protected
        .as_ref()
        .is_some_and(|p| p.covers(&path) || (changed && p.covers(raw_path)));
    Ok(match protected {
        true => Ownership::Protected,
        false => Ownership::Foreign,
    })
}

/// A request the filter owns, from its headers to its answer.
pub struct Exchange {
    flow: Box<dyn Flow>,
    logs: Vec<LogLine>,
    entropy: [u8; ENTROPY_BYTES],
    /// A store operation under way on Redis (through Webdis callouts).
    redis: Option<crate::redis_store::RedisOp>,
    /// The route's stat name, and whether it is a user-management route.
    route: &'static str,
    management: bool,
    grant: Option<LoginGrant>,
    /// Tokens whose session a flow ended, for the host to forget their session reads.
    ended_tokens: Vec<String>,
    metrics: Vec<MetricEvent>,
    /// When the Auth0 callout under way was made.
    call_started: Option<Timestamp>,
}

/// How a request starts: passed through, answered at once, or an exchange under way.
pub enum Start {
    PassThrough,
    /// Answered at once, with the lines logged and the stats counted on the way.
    Respond(Reply, Vec<LogLine>, Vec<MetricEvent>),
    /// Boxed: an exchange is large, and a `Start` is moved around on every owned request.
    Exchange(Box<Exchange>, Action),
}

impl Exchange {
    /// Decides what to do with a request from its head. Cheap for requests the filter does not
    /// own: only the method and path are looked at.
    pub fn start(
        config: &Config,
        head: &RequestHead,
        now: Timestamp,
        entropy: [u8; ENTROPY_BYTES],
    ) -> Start {
        Self::start_owned(
            config,
            head,
            ownership(config, &head.method, &head.path),
            now,
            entropy,
        )
    }

    /// `start` for a request whose ownership the caller has already decided.
    pub fn start_owned(
        config: &Config,
        head: &RequestHead,
        ownership: Result<Ownership, FilterError>,
        now: Timestamp,
        entropy: [u8; ENTROPY_BYTES],
    ) -> Start {
        let route = match ownership {
            Ok(Ownership::Foreign) => return Start::PassThrough,
            Ok(Ownership::Route(route)) => Some(route),
            Ok(Ownership::Protected) => None,
            Err(refused) => {
                let mut metrics = Vec::new();
                let reply = refused.to_reply();
                let prefix = config.stat_prefix.as_str();
                crate::metrics::request_end(
                    &mut metrics,
                    prefix,
                    UNREADABLE_PATH,
                    reply.status,
                    None,
                );
                return Start::Respond(reply, Vec::new(), metrics);
            }
        };
        let mut logs = Vec::new();
        let mut grant = None;
        let mut ended_tokens = Vec::new();
        let mut ctx = Ctx {
            config,
            now,
            entropy,
            logs: &mut logs,
            grant: &mut grant,
            ended_tokens: &mut ended_tokens,
        };
        let (route_name, management) = match &route {
            None => ("protected", false),
            Some(route) => (route.kind.metric_name(), route.kind.is_management()),
        };
        let started = match route {
            None => protected::start(&mut ctx, head),
            Some(route) => match route.kind {
                RouteKind::Token => token::start(&mut ctx, head),
                RouteKind::RefreshToken => {
                    ctx.login_grant(LoginGrant::Refresh);
                    refresh::start(&mut ctx, head)
                }
                RouteKind::Logout => logout::start(&mut ctx, head),
                RouteKind::Authorize => authorize::start(&mut ctx, head),
                RouteKind::Userinfo => userinfo::start(&mut ctx, head),
                // Public and static, as the original's: no client, no body, no store.
                RouteKind::Documentation => Ok((
                    Box::new(Answered) as Box<dyn Flow>,
                    Action::Respond(crate::openapi::documentation_reply()),
                )),
                _ => management::start(&mut ctx, head, route),
            },
        };
        let (flow, action): (Box<dyn Flow>, Action) = match started {
            Ok(started) => started,
            Err(error) => (Box::new(Answered), Action::Respond(error.to_reply())),
        };
        let mut exchange = Exchange {
            flow,
            logs,
            entropy,
            redis: None,
            route: route_name,
            management,
            grant,
            ended_tokens,
            metrics: Vec::new(),
            call_started: None,
        };
        exchange.count_action(config, now, &action);
        match action {
            Action::Respond(reply) => Start::Respond(reply, exchange.logs, exchange.metrics),
            action => {
                let action = exchange.route_store(config, now, action);
                Start::Exchange(Box::new(exchange), action)
            }
        }
    }

    pub fn on_body(&mut self, config: &Config, now: Timestamp, body: &[u8]) -> Action {
        self.step(config, now, |flow, ctx| flow.on_body(ctx, body))
    }

    /// The body went past the `max_bytes` of the `ReadBody` that asked for it.
    pub fn on_body_too_large(&mut self, config: &Config, now: Timestamp, limit: usize) -> Action {
        let action = Action::Respond(FilterError::payload_too_large(limit).to_reply());
        self.count_action(config, now, &action);
        action
    }

    pub fn on_callout(&mut self, config: &Config, now: Timestamp, result: CalloutResult) -> Action {
        if let (Some(redis), Some(op)) = (&config.redis, self.redis.as_mut()) {
            return match op.on_answer(redis, &result, now) {
                crate::redis_store::RedisStep::Call(callout) => Action::Call(callout),
                crate::redis_store::RedisStep::Done(outcome) => {
                    self.redis = None;
                    self.on_store(config, now, outcome)
                }
            };
        }
        let elapsed_ms = match (&result, self.call_started.take()) {
            (CalloutResult::Failed { elapsed_ms }, _) => *elapsed_ms,
            (_, Some(started)) => now.millis().saturating_sub(started.millis()),
            (_, None) => 0,
        };
        let prefix = config.stat_prefix.as_str();
        self.metrics.extend(crate::metrics::callout_answered(
            prefix,
            &result,
            elapsed_ms,
            config.callout_timeout_ms,
        ));
        let usable_status = matches!(
            &result,
            CalloutResult::Answered { status, .. } if *status < 500 && *status != 429
        );
        let action = self.step(config, now, |flow, ctx| flow.on_callout(ctx, result));
        if usable_status && matches!(&action, Action::Respond(reply) if reply.status == 502) {
            self.metrics.push(crate::metrics::invalid_answer(prefix));
        }
        action
    }

    pub fn on_store(&mut self, config: &Config, now: Timestamp, outcome: StoreOutcome) -> Action {
        self.step(config, now, |flow, ctx| flow.on_store(ctx, outcome))
    }

    pub fn on_wake(&mut self, config: &Config, now: Timestamp) -> Action {
        self.step(config, now, |flow, ctx| flow.on_wake(ctx))
    }

    pub fn on_verified(
        &mut self,
        config: &Config,
        now: Timestamp,
        result: Result<crate::jwt::Verified, crate::jwt::VerifyError>,
    ) -> Action {
        self.step(config, now, |flow, ctx| flow.on_verified(ctx, result))
    }

    /// Log lines written since the last call.
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.logs)
    }

    /// Tokens whose session was ended since the last call.
    pub fn take_ended_tokens(&mut self) -> Vec<String> {
        std::mem::take(&mut self.ended_tokens)
    }

    /// Stat changes since the last call.
    pub fn take_metrics(&mut self) -> Vec<MetricEvent> {
        std::mem::take(&mut self.metrics)
    }

    /// The route's stat name (`token`, `users_search`, `protected`, ...), for log lines.
    pub fn route(&self) -> &'static str {
        self.route
    }

    /// Counts what an action of the flow means: an Auth0 callout made, or the request's end.
    fn count_action(&mut self, config: &Config, now: Timestamp, action: &Action) {
        let prefix = config.stat_prefix.as_str();
        match action {
            Action::Call(callout) => {
                self.call_started = Some(now);
                self.metrics.extend(crate::metrics::callout_made(
                    prefix,
                    self.route,
                    callout,
                    self.management,
                ));
            }
            Action::Respond(reply) => crate::metrics::request_end(
                &mut self.metrics,
                prefix,
                self.route,
                reply.status,
                self.grant,
            ),
            Action::PassThrough | Action::Forward { .. } => {
                crate::metrics::request_end(&mut self.metrics, prefix, self.route, 200, self.grant)
            }
            Action::ReadBody { .. }
            | Action::Store(_)
            | Action::Wait { .. }
            | Action::Verify { .. } => {}
        }
    }

    fn step(
        &mut self,
        config: &Config,
        now: Timestamp,
        event: impl FnOnce(&mut dyn Flow, &mut Ctx<'_>) -> Step,
    ) -> Action {
        let mut ctx = Ctx {
            config,
            now,
            entropy: self.entropy,
            logs: &mut self.logs,
            grant: &mut self.grant,
            ended_tokens: &mut self.ended_tokens,
        };
        let action = match event(self.flow.as_mut(), &mut ctx) {
            Ok(action) => action,
            Err(error) => {
                if error.status >= 500 {
                    ctx.log(LogLevel::Warn, format!("answering {error}"));
                }
                Action::Respond(error.to_reply())
            }
        };
        self.count_action(config, now, &action);
        self.route_store(config, now, action)
    }

    /// With the Redis backend, a store operation becomes Webdis callouts (the answers come back
    /// through `on_callout`); JWKS wants stay with the host's shared data, per Envoy.
    fn route_store(&mut self, config: &Config, now: Timestamp, action: Action) -> Action {
        let Some(redis) = &config.redis else {
            return action;
        };
        match action {
            Action::Store(op) if !matches!(op, StoreOp::WantJwks { .. }) => {
                let (op, step) = crate::redis_store::RedisOp::start(redis, op, now);
                match step {
                    crate::redis_store::RedisStep::Call(callout) => {
                        self.redis = Some(op);
                        Action::Call(callout)
                    }
                    crate::redis_store::RedisStep::Done(outcome) => {
                        self.on_store(config, now, outcome)
                    }
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod identity_tests;
#[cfg(test)]
mod logout_tests;
#[cfg(test)]
mod management_tests;
#[cfg(test)]
mod native_cost;
#[cfg(test)]
mod race_tests;
#[cfg(test)]
mod redis_flow_tests;
#[cfg(test)]
mod telemetry_tests;
#[cfg(test)]
mod tests;
