//! `GET /logout`: delete the session, revoke its refresh token at Auth0, clear `sid`, and
//! redirect to Auth0's `/v2/logout`.

use super::shared::{configured_client, ended_until, presented_token};
use super::{Action, Ctx, Flow, LogLevel, Step};
use crate::auth0::revoke_request;
use crate::config::clients::select_client;
use crate::digest::SessionKey;
use crate::flows::redirect::logout_location;
use crate::http::cookie::clear_session_cookie;
use crate::http::error::FilterError;
use crate::http::{CalloutResult, Reply, RequestHead};
use crate::store::{SessionRecord, StoreOp, StoreOutcome};

enum State {
    LookingUp,
    Deleting(SessionRecord),
    Revoking,
}

struct LogoutFlow {
    reply: Reply,
    state: State,
    key: SessionKey,
    token: String,
    /// Until when the ended session's marker stays.
    ended_until: u64,
}

pub(crate) fn start(
    ctx: &mut Ctx<'_>,
    head: &RequestHead,
) -> Result<(Box<dyn Flow>, Action), FilterError> {
    let client = select_client(ctx.config, head)?;
    // Validate the redirect before touching the session: a bad one changes nothing.
    let location = logout_location(ctx.config, client, head)?;
    let mut reply = Reply::new(302);
    reply.push_header("location", &location);
    reply.push_header("set-cookie", &clear_session_cookie(client.same_site));
    reply.push_header("cache-control", "no-store");
    let Some(token) = presented_token(head) else {
        return Ok((Box::new(NoSession), Action::Respond(reply)));
    };
    let key = SessionKey::for_token(&token);
    let flow = LogoutFlow {
        reply,
        state: State::LookingUp,
        key: key.clone(),
        ended_until: ended_until(ctx.config, Some(&token), ctx.now),
        token,
    };
    Ok((Box::new(flow), Action::Store(StoreOp::Get(key))))
}

/// Logout without a session to end: answered at once.
struct NoSession;
impl Flow for NoSession {}

impl Flow for LogoutFlow {
    fn on_store(&mut self, ctx: &mut Ctx<'_>, outcome: StoreOutcome) -> Step {
        if let StoreOutcome::Unavailable(why) = &outcome {
            ctx.log(
                LogLevel::Warn,
                format!("session store failed during logout: {why}"),
            );
            return Err(FilterError::unavailable("the session store is unavailable"));
        }
        match (&self.state, outcome) {
            (State::LookingUp, StoreOutcome::Record(Some(record))) => {
                self.state = State::Deleting(record);
                ctx.session_ended(&self.token);
                Ok(Action::Store(StoreOp::Delete(
                    self.key.clone(),
                    self.ended_until,
                )))
            }
            // Already ended, or never a session of this gateway: nothing to end.
            (State::LookingUp, StoreOutcome::Record(None) | StoreOutcome::Ended) => {
                Ok(Action::Respond(self.reply.clone()))
            }
            // Gone meanwhile (a concurrent logout or refresh): its refresh token is revoked anyway.
            (State::Deleting(record), StoreOutcome::Deleted(_)) => {
                let revoke = record.refresh_token.as_deref().and_then(|refresh| {
                    configured_client(ctx.config, &record.client)
                        .ok()
                        .map(|client| {
                            revoke_request(client, refresh, ctx.config.callout_timeout_ms)
                        })
                });
                match revoke {
                    Some(callout) => {
                        self.state = State::Revoking;
                        Ok(Action::Call(callout))
                    }
                    None => Ok(Action::Respond(self.reply.clone())),
                }
            }
            _ => Err(super::unexpected("store outcome")),
        }
    }

    fn on_callout(&mut self, ctx: &mut Ctx<'_>, result: CalloutResult) -> Step {
        if !matches!(self.state, State::Revoking) {
            return Err(super::unexpected("callout answer"));
        }
        // A failed revoke is logged; the user is logged out all the same.
        match &result {
            CalloutResult::Answered { status: 200, .. } => {
                ctx.log(LogLevel::Debug, "refresh token revoked at Auth0");
            }
            CalloutResult::Answered { status, .. } => {
                ctx.log(
                    LogLevel::Warn,
                    format!("revoking the refresh token at Auth0 failed: status {status}"),
                );
            }
            CalloutResult::Failed { .. } => {
                ctx.log(
                    LogLevel::Warn,
                    "revoking the refresh token at Auth0 failed: no answer",
                );
            }
        }
        Ok(Action::Respond(self.reply.clone()))
    }
}
