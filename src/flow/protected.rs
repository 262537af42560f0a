//! Protected routes: a request under a configured prefix needs a valid Bearer or `sid` token,
//! verified locally. On success it goes upstream with identity headers (user id, groups,
//! client type); any client-sent copies of those headers are removed by the host on every
//! request the filter sees, so they cannot be forged.

use super::identity::{groups, issuer, KeyWaits};
use super::shared::presented_token_and_source;
use super::{Action, Ctx, Flow, Step};
use crate::error::FilterError;
use crate::http::{Reply, RequestHead};
use crate::jwt::{Verified, VerifyError};
use crate::routes::RouteKind;
use crate::session::{StoreOp, StoreOutcome};
use crate::verifier::VerifyAgainst;
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

pub(super) fn start(
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
    Ok((Box::new(flow), Action::Verify { token, against }))
}

/// No token, or one issued to no configured client.
fn missing() -> FilterError {
    FilterError::unauthorized("this route needs a valid token")
}

struct Denied;
impl Flow for Denied {}

impl ProtectedFlow {
    fn verify(&self) -> Step {
        Ok(Action::Verify {
            token: Rc::clone(&self.token),
            against: VerifyAgainst::TokenClient,
        })
    }

    /// Lets the request go with its identity headers; `user_groups` comma-joined.
    fn forward(&self, ctx: &Ctx<'_>, verified: &Verified, user_groups: String) -> Step {
        let protected = ctx
            .config
            .protected
            .as_ref()
            .ok_or_else(|| FilterError::internal("protected routes are not configured"))?;
        // Verification found the client from the token's `azp`.
        let client = verified
            .authorized_party()
            .and_then(|azp| ctx.config.client_by_id(azp))
            .ok_or_else(|| FilterError::internal("the verified token names no client"))?;
        Ok(Action::Forward {
            set_headers: vec![
                (
                    Arc::clone(&protected.user_id_header),
                    verified.subject.to_string(),
                ),
                (Arc::clone(&protected.groups_header), user_groups),
                (
                    Arc::clone(&protected.client_type_header),
                    client.name.clone(),
                ),
            ],
        })
    }
}

impl Flow for ProtectedFlow {
    fn on_verified(&mut self, ctx: &mut Ctx<'_>, result: Result<Verified, VerifyError>) -> Step {
        match result {
            Ok(verified) => {
                let own_groups = verified
                    .own_groups
                    .get_or_init(|| groups(ctx.config, &verified.claims).join(","))
                    .clone();
                if !self.from_cookie {
                    // A Bearer token that carries its groups needs nothing more: no store
                    // call, so it keeps working at full speed while the store is slow or down.
                    if !own_groups.is_empty() {
                        return self.forward(ctx, &verified, own_groups);
                    }
                    // Groups usually live in the ID token, whose profile the session keeps:
                    // read once per token and worker, then remembered with its verification
                    // until it expires. A Bearer token does not need its session (a logout
                    // does not end it), so this is what a token carrying its groups gets.
                    if let Some(remembered) = verified.session_groups.get() {
                        return self.forward(ctx, &verified, remembered.clone());
                    }
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
        let profile = match outcome {
            StoreOutcome::Record(Some(session)) => session.profile,
            StoreOutcome::Record(None) if self.from_cookie => {
                return deny(
                    ctx,
                    self.browser,
                    &self.path,
                    FilterError::unauthorized("the session has ended"),
                );
            }
            StoreOutcome::Unavailable(_) if self.from_cookie => {
                return Err(FilterError::unavailable("the session store is unavailable"));
            }
            // No session (or no store) for a Bearer token: no groups this time, and nothing
            // remembered, so a later request looks again.
            StoreOutcome::Record(None) | StoreOutcome::Unavailable(_) => {
                return self.forward(ctx, &verified, own_groups);
            }
            // A lookup answers nothing else; if it did, no request goes on without its check.
            _ => return Err(FilterError::internal("unexpected session store answer")),
        };
        if !own_groups.is_empty() {
            return self.forward(ctx, &verified, own_groups);
        }
        let profile_groups = profile
            .map(|claims| groups(ctx.config, &claims).join(","))
            .unwrap_or_default();
        if !self.from_cookie {
            // Remembered also when the profile has no groups: the session was found. Another
            // request of this token may have set it first: same session, same groups.
            let _ = verified.session_groups.set(profile_groups.clone());
        }
        self.forward(ctx, &verified, profile_groups)
    }

    fn on_wake(&mut self, _ctx: &mut Ctx<'_>) -> Step {
        self.verify()
    }
}

#[cfg(test)]
mod tests {
    use super::contains_ignoring_case;

    #[test]
    fn contains_ignoring_case_matches_any_case_anywhere() {
        assert!(contains_ignoring_case(
            "Text/HTML,application/xhtml+xml",
            "text/html"
        ));
        assert!(contains_ignoring_case(
            "*/*; q=0.8, APPLICATION/JSON",
            "application/json"
        ));
        assert!(!contains_ignoring_case("text/htm", "text/html"));
        assert!(!contains_ignoring_case("", "text/html"));
        assert!(contains_ignoring_case("anything", ""));
    }
}
