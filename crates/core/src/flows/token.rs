//! `POST /oauth/token`: the password grant, or the redemption of a browser login started at
//! `/authorize` (`{code, state}` with the login's cookie).

use super::shared::{
    configured_client, parse_body, read_body, resolve_connection, session_for, token_reply,
};
use super::{Action, Ctx, Flow, LogLevel, Step};
use crate::auth0::{token_answer, token_request, Grant, TokenPurpose};
use crate::config::clients::select_client;
use crate::http::error::FilterError;
use crate::http::{CalloutResult, Reply, RequestHead};
use crate::store::{StoreOp, StoreOutcome};

enum State {
    AwaitBody,
    AwaitAuth0,
    /// The session is being stored; the reply goes out once it is.
    AwaitSave(Reply),
}

struct TokenFlow {
    client: String,
    content_type: Option<String>,
    end_user_ip: Option<String>,
    state: State,
    /// Where the browser login asked to land, returned with the tokens.
    redirect: Option<String>,
    /// The request's login cookies (`crate::tokens::login_state`), by name.
    login_cookies: Vec<(String, String)>,
    /// The redeemed login's cookie, cleared by the answer.
    redeemed_cookie: Option<String>,
}

pub(crate) fn start(
    ctx: &mut Ctx<'_>,
    head: &RequestHead,
) -> Result<(Box<dyn Flow>, Action), FilterError> {
    let client = select_client(ctx.config, head)?;
    let flow = TokenFlow {
        client: client.name.clone(),
        content_type: head.header("content-type").map(str::to_string),
        end_user_ip: head.client_ip.clone(),
        state: State::AwaitBody,
        redirect: None,
        login_cookies: crate::tokens::login_state::login_cookies(head),
        redeemed_cookie: None,
    };
    Ok((Box::new(flow), read_body(ctx.config)))
}

impl Flow for TokenFlow {
    fn on_body(&mut self, ctx: &mut Ctx<'_>, body: &[u8]) -> Step {
        if !matches!(self.state, State::AwaitBody) {
            return Err(super::unexpected("body"));
        }
        let client = configured_client(ctx.config, &self.client)?;
        let fields = parse_body(self.content_type.as_deref(), body)?;
        // The login site sends `{code, state}` after the callback, with or without a
        // grant_type.
        let grant_type = fields.text("grant_type")?;
        let code_flow = grant_type == Some("authorization_code")
            || (grant_type.is_none() && fields.text("code")?.is_some());
        if code_flow {
            let code = fields.required("code")?.to_string();
            let state = fields.required("state")?;
            return self.redeem_login(ctx, client, code, state);
        }
        match grant_type {
            Some("password") => {}
            None => return Err(FilterError::bad_request("`grant_type` is required")),
            Some(other) => {
                return Err(FilterError::bad_request(format!(
                    "grant_type `{}` is not supported: use `password` or `authorization_code`",
                    crate::http::error::sanitize(other)
                )))
            }
        }
        let grant = Grant::Password {
            username: fields.required("username")?.to_string(),
            password: fields.required("password")?.to_string(),
            realm: resolve_connection(client, fields.text("connection")?)?,
        };
        self.state = State::AwaitAuth0;
        ctx.login_grant(crate::metrics::LoginGrant::Password);
        Ok(Action::Call(token_request(
            client,
            &grant,
            self.end_user_ip.as_deref(),
            ctx.config.callout_timeout_ms,
        )))
    }

    fn on_callout(&mut self, ctx: &mut Ctx<'_>, result: CalloutResult) -> Step {
        if !matches!(self.state, State::AwaitAuth0) {
            return Err(super::unexpected("callout answer"));
        }
        let client = configured_client(ctx.config, &self.client)?;
        let tokens = token_answer(
            &result,
            TokenPurpose::Login,
            ctx.config.callout_timeout_ms,
            ctx.now,
        )?;
        let refresh = tokens.refresh_token.clone();
        let mut reply = token_reply(ctx.config, client, &tokens, refresh.as_deref(), ctx.now)?;
        if let Some(redirect) = &self.redirect {
            add_redirect(&mut reply, redirect);
        }
        if let Some(name) = &self.redeemed_cookie {
            let clear = crate::tokens::login_state::clear_cookie(name, client.same_site);
            reply.push_header("set-cookie", &clear);
        }
        match session_for(ctx.config, client, &tokens, refresh.as_deref(), ctx.now) {
            Some((key, record)) => {
                self.state = State::AwaitSave(reply);
                Ok(Action::Store(StoreOp::Put(key, record)))
            }
            None if client.is_website() => Err(FilterError::bad_gateway(
                "Auth0's answer names no user (no `sub` in the tokens)",
            )),
            None => Ok(Action::Respond(reply)),
        }
    }

    fn on_store(&mut self, ctx: &mut Ctx<'_>, outcome: StoreOutcome) -> Step {
        let State::AwaitSave(reply) = std::mem::replace(&mut self.state, State::AwaitAuth0) else {
            return Err(super::unexpected("store outcome"));
        };
        match outcome {
            StoreOutcome::Unavailable(why) => {
                ctx.log(LogLevel::Warn, format!("storing the session failed: {why}"));
                if configured_client(ctx.config, &self.client)?.is_website() {
                    return Err(FilterError::unavailable("the session store is unavailable"));
                }
                Ok(Action::Respond(reply))
            }
            _ => Ok(Action::Respond(reply)),
        }
    }
}

impl TokenFlow {
    /// The authorization-code exchange of a login started in this browser: its cookie gives
    /// the redirect and the nonce the PKCE verifier is derived from.
    fn redeem_login(
        &mut self,
        ctx: &mut Ctx<'_>,
        client: &crate::config::Client,
        code: String,
        state: &str,
    ) -> Step {
        let name = crate::tokens::login_state::cookie_name(state);
        let cookie = self
            .login_cookies
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| {
                FilterError::bad_request(
                    "the login was not started in this browser, has expired or is already used",
                )
            })?;
        let login = crate::tokens::login_state::open(client, state, cookie, ctx.now)
            .map_err(FilterError::bad_request)?;
        let (code_verifier, _) = crate::tokens::login_state::pkce(client, &login.nonce);
        let grant = Grant::AuthorizationCode {
            code,
            redirect_uri: client.redirect_url.clone(),
            code_verifier,
        };
        self.redirect = login.redirect;
        self.redeemed_cookie = Some(name);
        self.state = State::AwaitAuth0;
        ctx.login_grant(crate::metrics::LoginGrant::Code);
        Ok(Action::Call(token_request(
            client,
            &grant,
            None,
            ctx.config.callout_timeout_ms,
        )))
    }
}

/// The browser login's redirect: a `redirect` field in the token JSON, or a `Location`
/// header (with the 200) for website clients, whose body is empty.
fn add_redirect(reply: &mut Reply, redirect: &str) {
    if reply.body.is_empty() {
        reply.push_header("location", redirect);
        return;
    }
    if let Ok(serde_json::Value::Object(mut body)) =
        serde_json::from_slice::<serde_json::Value>(&reply.body)
    {
        body.insert("redirect".into(), redirect.into());
        reply.body = serde_json::Value::Object(body).to_string().into_bytes();
    }
}
