//! `GET /userinfo` and `GET /users/me`: the profile the session keeps from its ID token (see
//! `SessionRecord::profile`), once the access token verifies, without calling Auth0's
//! rate-limited `/userinfo`. An expired access token in the `sid` cookie is
//! refreshed transparently when the session holds a refresh token: the session rotates and the
//! answer sets the new cookie. A Bearer caller holds its own refresh token and gets 401, to
//! refresh at `/refreshtoken` (a rotation here would leave it with a token it never sees).

use super::identity::{unauthorized, userinfo_body, KeyWaits};
use super::shared::{configured_client, ended_until, presented_token_and_source, session_for};
use super::{Action, Ctx, Flow, LogLevel, Step};
use crate::auth0::{token_answer, token_request, Grant, TokenPurpose};
use crate::digest::SessionKey;
use crate::http::cookie::session_cookie;
use crate::http::error::FilterError;
use crate::http::{CalloutResult, Reply, RequestHead};
use crate::jwt::{Verified, VerifyError};
use crate::store::{SessionRecord, StoreOp, StoreOutcome};
use crate::tokens::verifier::VerifyAgainst;

enum Stage {
    LookingUp,
    CheckingAccess(SessionRecord),
    Refreshing(SessionRecord),
    /// The old session is dropped first: if another request ended it meanwhile (a logout on
    /// another replica), the refreshed one is not saved, so a logout always wins.
    DroppingOld {
        next: (SessionKey, SessionRecord),
        cookie: Option<String>,
    },
    SavingNew {
        next: SessionRecord,
        cookie: Option<String>,
    },
    Done,
}

struct UserinfoFlow {
    token: std::rc::Rc<str>,
    /// The token came in the `sid` cookie, so a refresh can hand back a new cookie.
    from_cookie: bool,
    stage: Stage,
    waits: KeyWaits,
}

pub(crate) fn start(
    _ctx: &mut Ctx<'_>,
    head: &RequestHead,
) -> Result<(Box<dyn Flow>, Action), FilterError> {
    let (token, from_cookie) = presented_token_and_source(head).ok_or_else(|| {
        FilterError::unauthorized("no session: send the sid cookie or a Bearer token")
    })?;
    let key = SessionKey::for_token(token);
    let flow = UserinfoFlow {
        token: std::rc::Rc::from(token),
        from_cookie,
        stage: Stage::LookingUp,
        waits: KeyWaits::new(),
    };
    Ok((Box::new(flow), Action::Store(StoreOp::Get(key))))
}

impl UserinfoFlow {
    /// The verification the current stage needs (`waiting`: asked again after a wait for keys).
    fn verification(&self, ctx: &Ctx<'_>, waiting: bool) -> Step {
        let Stage::CheckingAccess(session) = &self.stage else {
            return Err(super::unexpected("verification"));
        };
        let client = configured_client(ctx.config, &session.client)?;
        Ok(Action::Verify {
            token: std::rc::Rc::clone(&self.token),
            against: VerifyAgainst::Expectation(std::sync::Arc::clone(&client.access_expectation)),
            waiting,
        })
    }

    fn refresh(&mut self, ctx: &Ctx<'_>, session: SessionRecord) -> Step {
        if !self.from_cookie {
            return Err(FilterError::unauthorized(
                "the access token has expired: refresh it at /refreshtoken",
            ));
        }
        let client = configured_client(ctx.config, &session.client)?;
        let refresh_token = session
            .refresh_token
            .clone()
            .ok_or_else(|| FilterError::unauthorized("the session has expired"))?;
        self.stage = Stage::Refreshing(session);
        let grant = Grant::RefreshToken { refresh_token };
        Ok(Action::Call(token_request(
            client,
            &grant,
            None,
            ctx.config.callout_timeout_ms,
        )))
    }

    /// The profile of a session whose access token is good (or was just refreshed).
    fn answer(ctx: &Ctx<'_>, record: &SessionRecord, cookie: Option<String>) -> Step {
        let profile = record
            .profile
            .as_ref()
            .ok_or_else(|| FilterError::unauthorized("the session has no ID token"))?;
        let body = userinfo_body(ctx.config, profile, &record.user_id);
        let mut reply = Reply::json(200, &body);
        reply.push_header("cache-control", "no-store");
        if let Some(cookie) = cookie {
            reply.push_header("set-cookie", &cookie);
        }
        Ok(Action::Respond(reply))
    }
}

impl Flow for UserinfoFlow {
    fn on_store(&mut self, ctx: &mut Ctx<'_>, outcome: StoreOutcome) -> Step {
        match (std::mem::replace(&mut self.stage, Stage::Done), outcome) {
            (Stage::LookingUp, StoreOutcome::Record(Some(session))) => {
                self.stage = Stage::CheckingAccess(session);
                self.verification(ctx, false)
            }
            (Stage::LookingUp, StoreOutcome::Record(None) | StoreOutcome::Ended) => Err(
                FilterError::unauthorized("the session has expired or does not exist"),
            ),
            (Stage::LookingUp, _) => {
                Err(FilterError::unavailable("the session store is unavailable"))
            }
            // The JWKS refetch was asked for: wait for it, then verify again.
            (stage @ Stage::CheckingAccess(_), _) => {
                self.stage = stage;
                Ok(Action::Wait { millis: 100 })
            }
            (
                Stage::DroppingOld {
                    next: (key, next),
                    cookie,
                },
                StoreOutcome::Deleted(true),
            ) => {
                self.stage = Stage::SavingNew {
                    next: next.clone(),
                    cookie,
                };
                Ok(Action::Store(StoreOp::Put(key, next)))
            }
            (Stage::DroppingOld { .. }, StoreOutcome::Deleted(false)) => Err(
                FilterError::unauthorized("the session ended while it was being refreshed"),
            ),
            (Stage::SavingNew { next, cookie }, StoreOutcome::Done) => {
                Self::answer(ctx, &next, cookie)
            }
            (Stage::DroppingOld { .. } | Stage::SavingNew { .. }, outcome) => {
                if let StoreOutcome::Unavailable(why) = outcome {
                    ctx.log(
                        LogLevel::Warn,
                        format!("replacing the refreshed session failed: {why}"),
                    );
                }
                Err(FilterError::unavailable("the session store is unavailable"))
            }
            _ => Err(super::unexpected("store outcome")),
        }
    }

    fn on_wake(&mut self, ctx: &mut Ctx<'_>) -> Step {
        self.verification(ctx, true)
    }

    fn on_verified(&mut self, ctx: &mut Ctx<'_>, result: Result<Verified, VerifyError>) -> Step {
        match (std::mem::replace(&mut self.stage, Stage::Done), result) {
            // An opaque access token (no audience configured) cannot be checked locally: the
            // live session vouches for it.
            (Stage::CheckingAccess(session), Ok(_) | Err(VerifyError::Malformed)) => {
                Self::answer(ctx, &session, None)
            }
            (Stage::CheckingAccess(session), Err(VerifyError::Expired)) => {
                self.refresh(ctx, session)
            }
            (Stage::CheckingAccess(session), Err(error)) => {
                let issuer =
                    super::identity::issuer(configured_client(ctx.config, &session.client)?);
                self.stage = Stage::CheckingAccess(session);
                self.waits
                    .on_error(ctx, &issuer, &error)
                    .ok_or_else(|| unauthorized(&error))
            }
            _ => Err(super::unexpected("verification")),
        }
    }

    fn on_callout(&mut self, ctx: &mut Ctx<'_>, result: CalloutResult) -> Step {
        let Stage::Refreshing(session) = std::mem::replace(&mut self.stage, Stage::Done) else {
            return Err(super::unexpected("callout answer"));
        };
        let client = configured_client(ctx.config, &session.client)?;
        let tokens = token_answer(
            &result,
            TokenPurpose::Refresh,
            ctx.config.callout_timeout_ms,
            ctx.now,
        )?;
        let refresh = tokens
            .refresh_token
            .clone()
            .or(session.refresh_token.clone());
        let (key, mut next) = session_for(ctx.config, client, &tokens, refresh.as_deref(), ctx.now)
            .ok_or_else(|| FilterError::bad_gateway("Auth0's answer names no user"))?;
        // Auth0 may leave the ID token out of a refresh answer: keep the session's profile.
        if next.profile.is_none() {
            next.profile = session.profile.clone();
        }
        let cookie = session_cookie(
            &tokens.access_token,
            ctx.config.session_duration_seconds,
            client.same_site,
        );
        let old = SessionKey::for_token(&self.token);
        let until = ended_until(ctx.config, Some(&self.token), ctx.now);
        ctx.session_ended(&self.token);
        self.token = std::rc::Rc::from(tokens.access_token);
        self.stage = Stage::DroppingOld {
            next: (key, next),
            cookie,
        };
        Ok(Action::Store(StoreOp::Delete(old, until)))
    }
}
