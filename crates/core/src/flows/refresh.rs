//! `POST /refreshtoken`: the refresh token comes from the JSON body, or from the session found
//! through the `sid` cookie or the Bearer token.

use super::shared::{
    configured_client, ended_until, parse_body, presented_token, read_body, session_for,
    token_reply,
};
use super::{Action, Ctx, Flow, LogLevel, Step};
use crate::auth0::{token_answer, token_request, Grant, TokenPurpose};
use crate::config::clients::select_client;
use crate::digest::SessionKey;
use crate::http::error::FilterError;
use crate::http::{CalloutResult, Reply, RequestHead};
use crate::store::{SessionRecord, StoreOp, StoreOutcome};

enum State {
    AwaitBody,
    AwaitSession {
        body_refresh: Option<String>,
    },
    AwaitAuth0 {
        old_session: Option<SessionKey>,
        refresh_token: String,
    },
    AwaitDelete {
        next: Option<(SessionKey, SessionRecord)>,
        reply: Reply,
    },
    AwaitSave {
        reply: Reply,
    },
    Done,
}

struct RefreshFlow {
    client: String,
    content_type: Option<String>,
    presented: Option<String>,
    state: State,
}

pub(crate) fn start(
    ctx: &mut Ctx<'_>,
    head: &RequestHead,
) -> Result<(Box<dyn Flow>, Action), FilterError> {
    let client = select_client(ctx.config, head)?;
    let flow = RefreshFlow {
        client: client.name.clone(),
        content_type: head.header("content-type").map(str::to_string),
        presented: presented_token(head),
        state: State::AwaitBody,
    };
    Ok((Box::new(flow), read_body(ctx.config)))
}

impl RefreshFlow {
    fn call(
        &mut self,
        ctx: &Ctx<'_>,
        old_session: Option<SessionKey>,
        refresh_token: String,
    ) -> Step {
        let client = configured_client(ctx.config, &self.client)?;
        let grant = Grant::RefreshToken {
            refresh_token: refresh_token.clone(),
        };
        self.state = State::AwaitAuth0 {
            old_session,
            refresh_token,
        };
        Ok(Action::Call(token_request(
            client,
            &grant,
            None,
            ctx.config.callout_timeout_ms,
        )))
    }
}

impl RefreshFlow {
    fn after_delete(&mut self, next: Option<(SessionKey, SessionRecord)>, reply: Reply) -> Step {
        match next {
            Some((key, record)) => {
                self.state = State::AwaitSave { reply };
                Ok(Action::Store(StoreOp::Put(key, record)))
            }
            None => Ok(Action::Respond(reply)),
        }
    }
}

fn no_refresh_token() -> FilterError {
    FilterError::bad_request("no refresh token: send {\"refresh_token\": ...} or a session cookie")
}

fn store_unavailable(ctx: &mut Ctx<'_>, why: &str) -> FilterError {
    ctx.log(LogLevel::Warn, format!("session store failed: {why}"));
    FilterError::unavailable("the session store is unavailable")
}

impl Flow for RefreshFlow {
    fn on_body(&mut self, ctx: &mut Ctx<'_>, body: &[u8]) -> Step {
        if !matches!(self.state, State::AwaitBody) {
            return Err(super::unexpected("body"));
        }
        let fields = parse_body(self.content_type.as_deref(), body)?;
        let body_refresh = fields.text("refresh_token")?.map(str::to_string);
        match (&self.presented, body_refresh) {
            (Some(token), body_refresh) => {
                let key = SessionKey::for_token(token);
                self.state = State::AwaitSession { body_refresh };
                Ok(Action::Store(StoreOp::Get(key)))
            }
            (None, Some(refresh_token)) => self.call(ctx, None, refresh_token),
            (None, None) => Err(no_refresh_token()),
        }
    }

    fn on_store(&mut self, ctx: &mut Ctx<'_>, outcome: StoreOutcome) -> Step {
        // An ended session is no session: the body's refresh token still decides.
        let outcome = match outcome {
            StoreOutcome::Ended => StoreOutcome::Record(None),
            outcome => outcome,
        };
        match (std::mem::replace(&mut self.state, State::Done), outcome) {
            // Auth0 has not been called yet: nothing is lost by failing.
            (State::AwaitSession { .. }, StoreOutcome::Unavailable(why)) => {
                Err(store_unavailable(ctx, &why))
            }
            // Auth0 has already rotated the refresh token, so the new tokens must reach the
            // caller where they can: an old session that could not be deleted just expires.
            (State::AwaitDelete { next, reply }, StoreOutcome::Unavailable(why)) => {
                ctx.log(
                    LogLevel::Warn,
                    format!("dropping the old session failed: {why}"),
                );
                self.after_delete(next, reply)
            }
            (State::AwaitSave { reply }, StoreOutcome::Unavailable(why)) => {
                if configured_client(ctx.config, &self.client)?.is_website() {
                    // A cookie without a stored session would not work.
                    return Err(store_unavailable(ctx, &why));
                }
                ctx.log(
                    LogLevel::Warn,
                    format!("storing the refreshed session failed: {why}"),
                );
                Ok(Action::Respond(reply))
            }
            (State::AwaitSession { body_refresh }, StoreOutcome::Record(found)) => {
                let key = self.presented.as_deref().map(SessionKey::for_token);
                match found {
                    Some(session) => {
                        if session.client != self.client {
                            return Err(FilterError::unauthorized(
                                "the session belongs to another client",
                            ));
                        }
                        let refresh = body_refresh
                            .or(session.refresh_token)
                            .ok_or_else(no_refresh_token)?;
                        self.call(ctx, key, refresh)
                    }
                    // A token without a session: the body still decides; with no body token
                    // the session has expired or was logged out, so the caller must log in.
                    None => match body_refresh {
                        Some(refresh) => self.call(ctx, None, refresh),
                        None => Err(FilterError::unauthorized(
                            "the session has expired or does not exist",
                        )),
                    },
                }
            }
            (State::AwaitDelete { next, reply }, StoreOutcome::Deleted(true)) => {
                self.after_delete(next, reply)
            }
            // Another request ended the session while Auth0 answered (a logout, or a refresh
            // on another replica): saving the new one would bring a logged-out session back.
            (State::AwaitDelete { .. }, StoreOutcome::Deleted(false)) => Err(
                FilterError::unauthorized("the session ended while it was being refreshed"),
            ),
            (State::AwaitSave { reply }, StoreOutcome::Done) => Ok(Action::Respond(reply)),
            _ => Err(super::unexpected("store outcome")),
        }
    }

    fn on_callout(&mut self, ctx: &mut Ctx<'_>, result: CalloutResult) -> Step {
        let State::AwaitAuth0 {
            old_session,
            refresh_token,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(super::unexpected("callout answer"));
        };
        let client = configured_client(ctx.config, &self.client)?;
        let tokens = token_answer(
            &result,
            TokenPurpose::Refresh,
            ctx.config.callout_timeout_ms,
            ctx.now,
        )?;
        // With rotation Auth0 returns a new refresh token; without, the old one stays valid.
        let refresh = tokens.refresh_token.clone().unwrap_or(refresh_token);
        let reply = token_reply(ctx.config, client, &tokens, Some(&refresh), ctx.now)?;
        let next = session_for(ctx.config, client, &tokens, Some(&refresh), ctx.now);
        if next.is_none() && client.is_website() {
            return Err(FilterError::bad_gateway(
                "Auth0's answer names no user (no `sub` in the tokens)",
            ));
        }
        match (old_session, next) {
            (Some(old), next) => {
                self.state = State::AwaitDelete { next, reply };
                let until = ended_until(ctx.config, self.presented.as_deref(), ctx.now);
                if let Some(token) = &self.presented {
                    ctx.session_ended(token);
                }
                Ok(Action::Store(StoreOp::Delete(old, until)))
            }
            (None, Some((key, record))) => {
                self.state = State::AwaitSave { reply };
                Ok(Action::Store(StoreOp::Put(key, record)))
            }
            (None, None) => Ok(Action::Respond(reply)),
        }
    }
}
