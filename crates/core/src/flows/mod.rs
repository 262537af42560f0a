//! Per-request state machines. A flow never performs I/O: it returns an `Action` for the host
//! to execute and is fed the result (body, callout answer, store outcome) to decide the next.
//! A new route is a new `Flow` plus a route-table entry; the host does not change.

pub(crate) mod authorize;
pub mod documentation;
pub(crate) mod identity;
pub(crate) mod logout;
pub(crate) mod management;
mod management_call;
pub(crate) mod protected;
pub mod redirect;
pub(crate) mod refresh;
mod shared;
pub(crate) mod token;
pub(crate) mod userinfo;

use crate::config::Config;
use crate::http::error::FilterError;
use crate::http::{Callout, CalloutResult, Reply};
use crate::metrics::LoginGrant;
use crate::store::{StoreOp, StoreOutcome};
use crate::time::Timestamp;

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
        against: crate::tokens::verifier::VerifyAgainst,
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
    pub(crate) logs: &'a mut Vec<LogLine>,
    pub(crate) grant: &'a mut Option<LoginGrant>,
    pub(crate) ended_tokens: &'a mut Vec<String>,
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
    /// read of it at once (`flows::protected`), instead of within `sessionRecheckSeconds`.
    pub fn session_ended(&mut self, token: &str) {
        self.ended_tokens.push(token.to_string());
    }
}

pub(crate) type Step = Result<Action, FilterError>;

/// One route's state machine. Every event it does not expect is an internal error.
pub(crate) trait Flow {
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
pub(crate) struct Answered;

impl Flow for Answered {}

pub(crate) fn unexpected(what: &str) -> FilterError {
    FilterError::internal(format!("unexpected {what} for this request"))
}
