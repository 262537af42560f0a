//! Runs the filter's requests and its root behind the `host` traits: who owns a request, the
//! exchange that drives the flow of one the filter owns (feeding it the host's results and
//! counting what its actions mean), the `runner` that executes its actions, and the root's
//! `maintenance`.

pub mod host;
pub mod maintenance;
pub mod runner;

pub use host::{HoldHost, Host, RequestHost, RootHost, Verdict};
pub use maintenance::{Maintenance, Role};
pub use runner::{HoldInstance, Runner};

use crate::config::routes::{RouteKind, RouteMatch};
use crate::config::Config;
use crate::flows::{
    authorize, logout, management, protected, refresh, token, userinfo, Action, Answered, Ctx,
    Flow, LogLevel, LogLine, Step, ENTROPY_BYTES,
};
use crate::http::error::FilterError;
use crate::http::{CalloutResult, Reply, RequestHead};
use crate::metrics::{LoginGrant, MetricEvent};
use crate::store::StoreOutcome;
use crate::time::Timestamp;

/// Whether the filter owns a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Neither answered nor guarded: it passes through untouched.
    Foreign,
    /// A route the filter answers itself.
    Route(crate::config::routes::RouteMatch),
    /// Under a protected prefix: it needs a valid token.
    Protected,
}

/// The stat name of requests refused for their path.
pub const UNREADABLE_PATH: &str = "unreadable_path";

/// The stat name of requests under a protected prefix.
pub const PROTECTED: &str = "protected";

/// Who owns a request, decided on its normalised path (`crate::http::path`). A path without one
/// reading is refused, whatever route it might be: with protected prefixes, any such path could
/// be one in disguise. A protected prefix covers the raw path or the normalised one, in any
/// case.
pub fn ownership(config: &Config, method: &str, raw_path: &str) -> Result<Ownership, FilterError> {
    let path = crate::http::path::normalized(raw_path).map_err(FilterError::bad_request)?;
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

/// How a request the filter owns starts: answered at once, or an exchange under way.
pub enum Start {
    /// Answered at once, with the lines logged and the stats counted on the way.
    Respond(Reply, Vec<LogLine>, Vec<MetricEvent>),
    /// Boxed: an exchange is large, and a `Start` is moved around on every owned request.
    Exchange(Box<Exchange>, Action),
}

impl Exchange {
    /// Starts the exchange of a request the filter owns: `route` is the route it answers, or
    /// `None` for a request under a protected prefix (`ownership` decided which).
    pub fn start(
        config: &Config,
        head: &RequestHead,
        route: Option<RouteMatch>,
        now: Timestamp,
        entropy: [u8; ENTROPY_BYTES],
    ) -> Start {
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
            None => (PROTECTED, false),
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
                    Action::Respond(crate::flows::documentation::documentation_reply()),
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
            action => Start::Exchange(Box::new(exchange), action),
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
        action
    }
}

#[cfg(test)]
mod tests;
