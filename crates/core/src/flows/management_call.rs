//! One Management API call: get the shared token (waiting while another request fetches it,
//! or fetching it under the lease), make the call, and on a 401 drop the token, fetch a fresh
//! one and retry once.

use super::{Action, Ctx, LogLevel};
use crate::auth0::{
    management_answer, management_request, management_token_request, token_answer,
    ManagementRequest, TokenPurpose,
};
use crate::http::error::FilterError;
use crate::http::{CalloutResult, Reply};
use crate::store::management_token::use_until;
use crate::store::{StoreOp, StoreOutcome, TokenGrant};

/// How long a waiting request sleeps before asking for the token again.
const WAIT_MS: u64 = 25;

enum State {
    Acquiring,
    Fetching,
    Saving,
    Calling,
    Dropping,
    /// The fetch failed: the lease is being released, then this error is the answer.
    Releasing(FilterError),
}

pub(super) struct ManagementCall {
    request: ManagementRequest,
    token: Option<String>,
    retried: bool,
    waits: u64,
    state: State,
}

pub(super) enum Progress {
    Next(Action),
    Done(Reply),
}

type Step = Result<Progress, FilterError>;

fn lease_ms(ctx: &Ctx<'_>) -> u64 {
    ctx.config.callout_timeout_ms + 1_000
}

impl ManagementCall {
    pub(super) fn start(ctx: &Ctx<'_>, request: ManagementRequest) -> (ManagementCall, Action) {
        let call = ManagementCall {
            request,
            token: None,
            retried: false,
            waits: 0,
            state: State::Acquiring,
        };
        (
            call,
            Action::Store(StoreOp::AcquireManagementToken {
                lease_ms: lease_ms(ctx),
            }),
        )
    }

    fn call(&mut self, ctx: &Ctx<'_>, token: String) -> Step {
        let management = &ctx.config.management;
        let callout = management_request(
            management,
            &self.request,
            &token,
            ctx.config.callout_timeout_ms,
        );
        self.token = Some(token);
        self.state = State::Calling;
        Ok(Progress::Next(Action::Call(callout)))
    }

    pub(super) fn on_store(&mut self, ctx: &mut Ctx<'_>, outcome: StoreOutcome) -> Step {
        let state = std::mem::replace(&mut self.state, State::Acquiring);
        match (state, outcome) {
            (State::Releasing(error), _) => Err(error),
            (_, StoreOutcome::Unavailable(why)) => {
                ctx.log(
                    LogLevel::Warn,
                    format!("management token store failed: {why}"),
                );
                Err(FilterError::unavailable("the token store is unavailable"))
            }
            (State::Acquiring, StoreOutcome::ManagementToken(TokenGrant::Ready(token))) => {
                self.call(ctx, token)
            }
            (State::Acquiring, StoreOutcome::ManagementToken(TokenGrant::FetchIt)) => {
                self.state = State::Fetching;
                let callout =
                    management_token_request(&ctx.config.management, ctx.config.callout_timeout_ms);
                Ok(Progress::Next(Action::Call(callout)))
            }
            (State::Acquiring, StoreOutcome::ManagementToken(TokenGrant::Wait)) => {
                self.waits += 1;
                // The lease ends after `lease_ms`, so waiting longer than that means the
                // holder vanished without releasing; the next acquire takes over then.
                if self.waits > lease_ms(ctx) / WAIT_MS + 40 {
                    return Err(FilterError::unavailable(
                        "timed out waiting for the Management API token",
                    ));
                }
                Ok(Progress::Next(Action::Wait { millis: WAIT_MS }))
            }
            (State::Saving, StoreOutcome::Done) => {
                let token = self.token.take().unwrap_or_default();
                self.call(ctx, token)
            }
            (State::Dropping, StoreOutcome::Done) => Ok(Progress::Next(Action::Store(
                StoreOp::AcquireManagementToken {
                    lease_ms: lease_ms(ctx),
                },
            ))),
            _ => Err(super::unexpected("store outcome")),
        }
    }

    pub(super) fn on_wake(&mut self, ctx: &Ctx<'_>) -> Step {
        match self.state {
            State::Acquiring => Ok(Progress::Next(Action::Store(
                StoreOp::AcquireManagementToken {
                    lease_ms: lease_ms(ctx),
                },
            ))),
            _ => Err(super::unexpected("wake-up")),
        }
    }

    pub(super) fn on_callout(&mut self, ctx: &mut Ctx<'_>, result: CalloutResult) -> Step {
        let state = std::mem::replace(&mut self.state, State::Acquiring);
        match state {
            State::Fetching => match token_answer(
                &result,
                TokenPurpose::Management,
                ctx.config.callout_timeout_ms,
                ctx.now,
            ) {
                Ok(tokens) => {
                    let until = use_until(ctx.now, tokens.expires_in.unwrap_or(86_400));
                    self.token = Some(tokens.access_token.clone());
                    self.state = State::Saving;
                    Ok(Progress::Next(Action::Store(
                        StoreOp::SaveManagementToken {
                            token: tokens.access_token,
                            use_until: until,
                        },
                    )))
                }
                Err(error) => {
                    ctx.log(
                        LogLevel::Warn,
                        format!("fetching the Management API token failed: {error}"),
                    );
                    self.state = State::Releasing(error);
                    Ok(Progress::Next(Action::Store(
                        StoreOp::ReleaseManagementToken,
                    )))
                }
            },
            State::Calling => {
                let refused = matches!(result, CalloutResult::Answered { status: 401, .. });
                if refused && !self.retried {
                    // The cached token was revoked or rotated early: fetch a fresh one once.
                    self.retried = true;
                    self.state = State::Dropping;
                    let token = self.token.take().unwrap_or_default();
                    return Ok(Progress::Next(Action::Store(
                        StoreOp::DropManagementToken { token },
                    )));
                }
                if refused {
                    return Err(FilterError::bad_gateway(
                        "the Management API refused a fresh token",
                    ));
                }
                Ok(Progress::Done(management_answer(
                    &result,
                    ctx.config.callout_timeout_ms,
                    ctx.now,
                )?))
            }
            _ => Err(super::unexpected("callout answer")),
        }
    }
}
