//! `GET /authorize`: start a browser login at Auth0 with the authorization-code flow and PKCE.
//! The login travels in a signed cookie of the browser that started it (`crate::tokens::login_state`),
//! live for `loginStateTtlSeconds`; `/oauth/token` redeems `{code, state}` only with it.

use super::shared::resolve_connection;
use super::{Action, Answered, Ctx, Flow};
use crate::config::clients::select_client;
use crate::flows::redirect::validate_relative_path;
use crate::http::error::FilterError;
use crate::http::{Reply, RequestHead};
use crate::tokens::login_state::{cookie_name, pkce, random_token, seal, set_cookie, LoginState};

const PROMPTS: [&str; 4] = ["none", "login", "consent", "select_account"];

pub(crate) fn start(
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
                crate::http::error::sanitize(&name)
            )));
        }
        if params.len() > crate::http::body::MAX_FIELDS {
            return Err(crate::http::body::too_many("query parameters"));
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
        random_token(ctx.entropy.get(..16).unwrap_or_default())
    };
    let redirect = param("redirect").map(str::to_string);
    if let Some(redirect) = &redirect {
        if redirect.len() > crate::tokens::login_state::MAX_REDIRECT_BYTES {
            return Err(FilterError::bad_request(format!(
                "`redirect` must be at most {} bytes",
                crate::tokens::login_state::MAX_REDIRECT_BYTES
            )));
        }
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
    let nonce = random_token(ctx.entropy.get(32..48).unwrap_or_default());
    let (_, challenge) = pkce(client, &nonce);
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
    let ttl = ctx.config.login_state_ttl_seconds;
    let login = LoginState {
        client: client.name.clone(),
        redirect,
        nonce,
        expires_at: ctx.now.secs.saturating_add(ttl),
    };
    let value = seal(client, &state, &login)
        .ok_or_else(|| FilterError::internal("the login cookie could not be made"))?;
    let mut reply = Reply::new(302);
    reply.push_header(
        "location",
        &format!(
            "{}?{}",
            client.auth0.public_url("/authorize"),
            query.finish()
        ),
    );
    reply.push_header(
        "set-cookie",
        &set_cookie(&cookie_name(&state), &value, ttl, client.same_site),
    );
    reply.push_header("cache-control", "no-store");
    Ok((Box::new(Answered), Action::Respond(reply)))
}
