//! Protected routes: a request under a configured prefix needs a valid Bearer or `sid` token,
//! verified locally, whose session was not ended: a `sid` needs its live session; a Bearer
//! token is refused once its session was ended (logout, refresh), and is otherwise taken on its
//! own claims if this gateway never stored a session for it. On success it goes upstream with
//! identity headers (user id, groups, client type); any client-sent copies of those headers are
//! removed by the host on every request the filter sees, so they cannot be forged.

use super::identity::{groups, issuer, KeyWaits};
use super::shared::presented_token_and_source;
use super::{Action, Ctx, Flow, Step};
use crate::config::routes::RouteKind;
use crate::config::Config;
use crate::http::error::FilterError;
use crate::http::{Reply, RequestHead};
use crate::jwt::{Verified, VerifyError};
use crate::store::{StoreOp, StoreOutcome};
use crate::time::Timestamp;
use crate::tokens::verifier::{Verifier, VerifyAgainst};
use std::rc::Rc;
use std::sync::Arc;

struct ProtectedFlow {
    /// Shared with the `Verify` actions that check it.
    token: Rc<str>,
    /// The token came in the `sid` cookie: it must still have a session (logout ends it).
    from_cookie: bool,
    browser: bool,
    path: String,
    waits: KeyWaits,
    /// The verification and the groups of the token's own claims (comma-joined), while the
    /// session is read.
    verified: Option<(Verified, String)>,
}

/// An API caller wants JSON (`Accept: application/json` or an XHR); a browser navigation
/// accepts HTML.
fn is_browser_navigation(head: &RequestHead) -> bool {
    let accept = head.header("accept").unwrap_or("");
    let xhr = head
        .header("x-requested-with")
        .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"));
    !xhr && !contains_ignoring_case(accept, "application/json")
        && contains_ignoring_case(accept, "text/html")
}

/// ASCII case-insensitive `contains`, without a lower-cased copy (every protected request
/// asks it).
fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

/// 401 JSON, or for browser navigations (when configured) a 302 to `/authorize`.
fn deny(ctx: &Ctx<'_>, browser: bool, path: &str, error: FilterError) -> Step {
    let redirect = ctx
        .config
        .protected
        .as_ref()
        .is_some_and(|p| p.redirect_to_login);
    let authorize = ctx
        .config
        .routes
        .first_path(RouteKind::Authorize)
        .filter(|_| redirect && browser);
    let Some(authorize) = authorize else {
        return Err(error);
    };
    let target: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("redirect", path)
        .finish();
    let mut reply = Reply::new(302);
    reply.push_header("location", &format!("{authorize}?{target}"));
    reply.push_header("cache-control", "no-store");
    Ok(Action::Respond(reply))
}

pub(crate) fn start(
    ctx: &mut Ctx<'_>,
    head: &RequestHead,
) -> Result<(Box<dyn Flow>, Action), FilterError> {
    let browser = is_browser_navigation(head);
    let path = head.path.clone();
    let Some((token, from_cookie)) = presented_token_and_source(head) else {
        let action = deny(ctx, browser, &path, missing())?;
        return Ok((Box::new(Denied), action));
    };
    let token: Rc<str> = Rc::from(token);
    let flow = ProtectedFlow {
        token: Rc::clone(&token),
        from_cookie,
        browser,
        path,
        waits: KeyWaits::new(),
        verified: None,
    };
    // The client (which says what the token must satisfy) is the one its `azp` names; a
    // repeat check finds it from the cached verification.
    let against = VerifyAgainst::TokenClient;
    let action = Action::Verify {
        token,
        against,
        waiting: false,
    };
    Ok((Box::new(flow), action))
}

/// No token, or one issued to no configured client.
fn missing() -> FilterError {
    FilterError::unauthorized("this route needs a valid token")
}

struct Denied;
impl Flow for Denied {}

impl ProtectedFlow {
    /// The check again after a wait for the keys.
    fn verify_again(&self) -> Step {
        Ok(Action::Verify {
            token: Rc::clone(&self.token),
            against: VerifyAgainst::TokenClient,
            waiting: true,
        })
    }

    /// Lets the request go with its identity headers; `user_groups` comma-joined.
    fn forward(&self, ctx: &Ctx<'_>, verified: &Verified, user_groups: String) -> Step {
        Ok(Action::Forward {
            set_headers: identity_headers(ctx.config, verified, user_groups)?,
        })
    }
}

/// The identity headers a verified request goes upstream with; `user_groups` comma-joined.
fn identity_headers(
    config: &Config,
    verified: &Verified,
    user_groups: String,
) -> Result<Vec<(Arc<str>, String)>, FilterError> {
    let protected = config
        .protected
        .as_ref()
        .ok_or_else(|| FilterError::internal("protected routes are not configured"))?;
    // Verification found the client from the token's `azp`.
    let client = verified
        .authorized_party()
        .and_then(|azp| config.client_by_id(azp))
        .ok_or_else(|| FilterError::internal("the verified token names no client"))?;
    Ok(vec![
        (
            Arc::clone(&protected.user_id_header),
            verified.subject.to_string(),
        ),
        (Arc::clone(&protected.groups_header), user_groups),
        (
            Arc::clone(&protected.client_type_header),
            client.name.clone(),
        ),
    ])
}

/// The groups of a Bearer token's session as this worker last read them, while that read is
/// within `protectedRoutes.sessionRecheckSeconds`: the request needs no store read. A `sid`
/// cookie has its session read on every request.
fn recent_session_groups(
    config: &Config,
    verified: &Verified,
    from_cookie: bool,
    now: Timestamp,
) -> Option<String> {
    let recheck = config
        .protected
        .as_ref()
        .map_or(0, |p| p.session_recheck_seconds);
    let seen = verified.session_seen.borrow();
    seen.as_ref()
        .filter(|seen| !from_cookie && now.secs < seen.at.saturating_add(recheck))
        .map(|seen| seen.groups.clone())
}

/// The identity headers of a protected request whose only credential is the Bearer `token`,
/// when this worker can answer it from memory alone: it verified the token (for the client its
/// `azp` names, unexpired) and read its session within `sessionRecheckSeconds`. That is what
/// `start` would conclude without a store read, and the hot path of an API behind the
/// gateway, so it skips building the request's head and exchange. `None`: `start` decides.
pub fn remembered_bearer(
    config: &Config,
    verifier: &mut Verifier,
    token: &str,
    now: Timestamp,
) -> Option<Vec<(Arc<str>, String)>> {
    let verified = verifier.remembered(token, config, now)?;
    let user_groups = recent_session_groups(config, &verified, false, now)?;
    identity_headers(config, &verified, user_groups).ok()
}

impl Flow for ProtectedFlow {
    fn on_verified(&mut self, ctx: &mut Ctx<'_>, result: Result<Verified, VerifyError>) -> Step {
        match result {
            Ok(verified) => {
                let own_groups = verified
                    .own_groups
                    .get_or_init(|| groups(ctx.config, &verified.claims).join(","))
                    .clone();
                // A Bearer token's session read within `sessionRecheckSeconds` answers again,
                // so a hot token costs no store read on every request; a `sid` is read always.
                if let Some(groups) =
                    recent_session_groups(ctx.config, &verified, self.from_cookie, ctx.now)
                {
                    return self.forward(ctx, &verified, groups);
                }
                let key = verified.session_key.clone();
                self.verified = Some((verified, own_groups));
                Ok(Action::Store(StoreOp::Get(key)))
            }
            Err(VerifyError::NoClient) => deny(ctx, self.browser, &self.path, missing()),
            Err(error) => {
                let Some(client) = ctx.config.client_of_token(&self.token) else {
                    return deny(ctx, self.browser, &self.path, missing());
                };
                match self.waits.on_error(ctx, &issuer(client), &error) {
                    Some(action) => Ok(action),
                    // Missing keys are not the caller's fault: no login redirect (it would loop).
                    None if error == VerifyError::NoKeys => {
                        Err(super::identity::unauthorized(&error))
                    }
                    None => deny(
                        ctx,
                        self.browser,
                        &self.path,
                        super::identity::unauthorized(&error),
                    ),
                }
            }
        }
    }

    fn on_store(&mut self, ctx: &mut Ctx<'_>, outcome: StoreOutcome) -> Step {
        let Some((verified, own_groups)) = self.verified.clone() else {
            // The JWKS refetch was asked for: wait for it, then verify again.
            return Ok(Action::Wait { millis: 100 });
        };
        let ended = || FilterError::unauthorized("the session has ended");
        let profile = match outcome {
            StoreOutcome::Record(Some(session)) => session.profile,
            // Logged out (or refreshed away): the token is refused however it is presented.
            StoreOutcome::Ended => return deny(ctx, self.browser, &self.path, ended()),
            StoreOutcome::Record(None) if self.from_cookie => {
                return deny(ctx, self.browser, &self.path, ended());
            }
            // No session here for a Bearer token: one issued elsewhere, on its own claims.
            StoreOutcome::Record(None) => None,
            // Whether the token was logged out cannot be told: refused, never let through.
            StoreOutcome::Unavailable(_) => {
                return Err(FilterError::unavailable("the session store is unavailable"));
            }
            // A lookup answers nothing else; if it did, no request goes on without its check.
            _ => return Err(FilterError::internal("unexpected session store answer")),
        };
        let user_groups = if own_groups.is_empty() {
            profile
                .map(|claims| groups(ctx.config, &claims).join(","))
                .unwrap_or_default()
        } else {
            own_groups
        };
        if !self.from_cookie {
            *verified.session_seen.borrow_mut() = Some(crate::jwt::SessionSeen {
                at: ctx.now.secs,
                groups: user_groups.clone(),
            });
        }
        self.forward(ctx, &verified, user_groups)
    }

    fn on_wake(&mut self, _ctx: &mut Ctx<'_>) -> Step {
        self.verify_again()
    }
}

#[cfg(test)]
mod tests;
