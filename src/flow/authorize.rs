//! `GET /authorize`: start a browser login at Auth0 with the authorization-code flow and PKCE.
//! The state is stored server-side for 10 minutes with the client, the requested redirect and
//! the code verifier; `/oauth/token` redeems it once.

use super::shared::resolve_connection;
use super::{Action, Ctx, Flow, Step};
use crate::clients::select_client;
use crate::error::FilterError;
use crate::http::{Reply, RequestHead};
use crate::login_state::{new_pkce, new_state, LoginState};
use crate::redirect::validate_relative_path;
use crate::session::{StoreOp, StoreOutcome};

struct AuthorizeFlow {
    location: String,
}

const PROMPTS: [&str; 4] = ["none", "login", "consent", "select_account"];

pub(super) fn start(
    ctx: &mut Ctx<'_>,
    head: &RequestHead,
) -> Result<(Box<dyn Flow>, Action), FilterError> {
    let client = select_client(ctx.config, head)?;
    let mut params = crate::small_map::SmallMap::<String>::new();
    for (name, value) in url::form_urlencoded::parse(head.query().unwrap_or("").as_bytes()) {
        if params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(FilterError::bad_request(format!(
                "`{}` is given more than once",
                crate::body::sanitize(&name)
            )));
        }
        if params.len() > crate::body::MAX_FIELDS {
            return Err(crate::body::too_many("query parameters"));
        }
    }
    let param = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    // With `authorizeStateRequired` the caller's state is used (the login site checks it on
    // the callback); otherwise any given state is ignored and a random one generated.
    let state = if client.authorize_state_required {
        let state = param("state")
            .ok_or_else(|| FilterError::bad_request("`state` is required for this client"))?;
        // Short states could be guessed and collide with another user's.
        if !(16..=512).contains(&state.len()) || !state.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(FilterError::bad_request(
                "`state` must be 16 to 512 printable ASCII characters",
            ));
        }
        state.to_string()
    } else {
        new_state(ctx.entropy.get(..16).unwrap_or_default())
    };
    let redirect = param("redirect").map(str::to_string);
    if let Some(redirect) = &redirect {
        validate_relative_path(redirect)?;
    }
    let connection = resolve_connection(client, param("connection"))?;
    let prompt = param("prompt");
    if prompt.is_some_and(|p| !PROMPTS.contains(&p)) {
        return Err(FilterError::bad_request(format!(
            "`prompt` must be one of {}",
            PROMPTS.join(", ")
        )));
    }
    // The original's `action`; Auth0 names it `screen_hint`.
    let screen_hint = match param("action") {
        None => None,
        Some("signup") => Some("signup"),
        Some("login") => Some("login"),
        Some(_) => return Err(FilterError::bad_request("`action` must be signup or login")),
    };
    let (verifier, challenge) = new_pkce(ctx.entropy.get(32..).unwrap_or_default());
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("response_type", "code");
    query.append_pair("client_id", &client.client_id);
    query.append_pair("redirect_uri", &client.redirect_url);
    query.append_pair("scope", &client.auth0_scope());
    if let Some(audience) = &client.audience {
        query.append_pair("audience", audience);
    }
    query.append_pair("state", &state);
    query.append_pair("code_challenge", &challenge);
    query.append_pair("code_challenge_method", "S256");
    if let Some(connection) = &connection {
        query.append_pair("connection", connection);
    }
    if let Some(prompt) = prompt {
        query.append_pair("prompt", prompt);
    }
    if let Some(hint) = screen_hint {
        query.append_pair("screen_hint", hint);
    }
    let flow = AuthorizeFlow {
        location: format!(
            "{}?{}",
            client.auth0.public_url("/authorize"),
            query.finish()
        ),
    };
    let record = LoginState {
        client: client.name.clone(),
        redirect,
        code_verifier: verifier,
        expires_at: ctx.now.secs + ctx.config.login_state_ttl_seconds,
    };
    Ok((
        Box::new(flow),
        Action::Store(StoreOp::PutLoginState { state, record }),
    ))
}

impl Flow for AuthorizeFlow {
    fn on_store(&mut self, _ctx: &mut Ctx<'_>, outcome: StoreOutcome) -> Step {
        match outcome {
            StoreOutcome::Refused(why) if why.contains("in use") => {
                Err(FilterError::bad_request(why))
            }
            StoreOutcome::Refused(why) => Err(FilterError::unavailable(why)),
            StoreOutcome::Done => {
                let mut reply = Reply::new(302);
                reply.push_header("location", &self.location);
                reply.push_header("cache-control", "no-store");
                Ok(Action::Respond(reply))
            }
            _ => Err(FilterError::unavailable(
                "the login state could not be stored",
            )),
        }
    }
}
