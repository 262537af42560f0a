//! `/authorize` and the hosted login page, as Auth0's Universal Login behaves:
//!
//! - `GET /authorize` checks the client, `redirect_uri` (one of the client's callbacks) and
//!   `response_type=code`; errors there are Auth0's HTML error page (400), never a redirect to
//!   an unchecked URI.
//! - `prompt=none`: the tenant session (cookie `auth0`) answers with a code at once; without one
//!   the answer is `error=login_required` on the callback (Auth0's silent authentication).
//! - `prompt=login`: the login form, whatever the session (Auth0 then asks again).
//! - Otherwise a tenant session answers with a code (single sign-on); else the login form,
//!   with `login_hint` filled in as the username. Emulator-only shortcut, for tests and curl:
//!   a `login_hint` naming a user of the connection logs that user in at once.
//! - `POST /u/login` (the form) checks the username and password against the connection, then
//!   starts a tenant session and redirects to `redirect_uri` with `code` and `state`; wrong
//!   credentials show the form again with the error (200), as Universal Login does.
//!
//! The form carries the authorize parameters in hidden fields, which the POST checks again as
//! on the GET: they come from the browser. Everything reflected in the page is HTML-escaped.

use std::collections::BTreeMap;

use crate::authn::{Code, Emulator, Grant};
use crate::server::{Request, Response};
use crate::tenant::{Client, User};
use crate::tokens::random_token;

type Answer = Result<Response, Response>;

/// The tenant session cookie (Auth0's name for its own).
const SESSION_COOKIE: &str = "auth0";

/// The authorize parameters a login carries from `/authorize` through the form.
const CARRIED: [&str; 10] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "scope",
    "audience",
    "connection",
    "code_challenge",
    "code_challenge_method",
    "prompt",
];

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn error_page(message: &str) -> Response {
    Response::text(
        400,
        "text/html; charset=utf-8",
        &format!(
            "<h1>Oops!, something went wrong</h1><p>{}</p>",
            html_escape(message)
        ),
    )
}

/// Headers of the emulator's own pages: no scripts, not framed, not cached.
fn page(status: u16, body: &str) -> Response {
    Response::text(status, "text/html; charset=utf-8", body)
        .with_header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        )
        .with_header("cache-control", "no-store")
}

/// One login in progress: the checked client and the parameters it carries.
struct Login<'a> {
    client: &'a Client,
    params: &'a BTreeMap<String, String>,
    redirect_uri: &'a str,
    connection: String,
}

impl Login<'_> {
    fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }

    /// `redirect_uri` with these query parameters added.
    fn callback(&self, extra: &[(&str, &str)]) -> Answer {
        let mut url =
            url::Url::parse(self.redirect_uri).map_err(|_| error_page("invalid redirect_uri"))?;
        url.query_pairs_mut().extend_pairs(extra);
        Ok(Response::redirect(url.as_str()))
    }

    fn form(&self, username: &str, error: Option<&str>) -> Response {
        let hidden: String = CARRIED
            .iter()
            .filter_map(|name| {
                self.params.get(*name).map(|value| {
                    format!(
                        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
                        html_escape(value)
                    )
                })
            })
            .collect();
        let error = error
            .map(|e| format!("<p id=\"error\" role=\"alert\">{}</p>\n", html_escape(e)))
            .unwrap_or_default();
        let body = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Log in | Auth0 emulator</title>\
             <style>body{{font-family:sans-serif;max-width:22em;margin:4em auto}}\
             label,input,button{{display:block;width:100%;margin:.4em 0}}\
             #error{{color:#b00020}}</style></head>\n<body>\n\
             <h1>Log in</h1>\n<p>to {client}</p>\n{error}\
             <form method=\"post\" action=\"/u/login\">\n{hidden}\
             <label for=\"username\">Username or email</label>\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" required value=\"{username}\">\n\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
             <button id=\"submit\" type=\"submit\">Continue</button>\n</form>\n\
             <p><small>Connection: {connection}</small></p>\n</body></html>\n",
            client = html_escape(&self.client.name),
            username = html_escape(username),
            connection = html_escape(&self.connection),
        );
        page(200, &body)
    }
}

impl Emulator {
    /// Checks what Auth0 checks before it shows anything: the client, the callback URL and the
    /// response type.
    fn login<'a>(&'a self, params: &'a BTreeMap<String, String>) -> Result<Login<'a>, Response> {
        let client = params
            .get("client_id")
            .and_then(|id| self.tenant.client(id))
            .ok_or_else(|| error_page("invalid_request: Unknown client"))?;
        let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
            error_page("invalid_request: Missing required parameter: redirect_uri")
        })?;
        if !client.callbacks.contains(redirect_uri) {
            return Err(error_page("Callback URL mismatch"));
        }
        if params.get("response_type").map(String::as_str) != Some("code") {
            return Err(error_page("unsupported_response_type"));
        }
        let connection = params
            .get("connection")
            .filter(|c| !c.is_empty())
            .cloned()
            .or_else(|| client.connections.first().cloned())
            .unwrap_or_default();
        if !client.connections.contains(&connection) {
            return Err(error_page("the connection is not enabled for this client"));
        }
        Ok(Login {
            client,
            params,
            redirect_uri,
            connection,
        })
    }

    /// `GET /authorize`.
    pub(crate) fn authorize(&self, request: &Request) -> Answer {
        let login = self.login(&request.query)?;
        let session = self
            .session_user(request)
            .filter(|u| login.client.connections.contains(&u.connection));
        let hint = login.param("login_hint");
        match (login.param("prompt"), session) {
            ("none", Some(user)) => self.code(&login, &user),
            ("none", None) => login.callback(&[
                ("error", "login_required"),
                ("error_description", "Login required"),
                ("state", login.param("state")),
            ]),
            ("login", _) => Ok(login.form(hint, None)),
            (_, Some(user)) => self.code(&login, &user),
            (_, None) => match self.users.by_login(&login.connection, hint) {
                Some(user) if !hint.is_empty() && !user.blocked => self.code(&login, &user),
                _ => Ok(login.form(hint, None)),
            },
        }
    }

    /// `POST /u/login`: the form.
    pub(crate) fn login_form_posted(&self, request: &Request) -> Answer {
        let fields = request.fields().map_err(|e| error_page(&e))?;
        let login = self.login(&fields)?;
        let username = login.param("username").trim().to_string();
        let user = self
            .users
            .by_login(&login.connection, &username)
            .filter(|u| !u.password.is_empty() && u.password == login.param("password"));
        let Some(user) = user else {
            return Ok(login.form(&username, Some("Wrong username or password")));
        };
        if user.blocked {
            return Ok(login.form(&username, Some("Your account has been blocked")));
        }
        self.users.with(|users| {
            if let Some(stored) = users.get_mut(&user.user_id) {
                stored.logins_count += 1;
            }
        });
        let session = random_token(24);
        self.with_sessions(|sessions| sessions.insert(session.clone(), user.user_id.clone()));
        Ok(self.code(&login, &user)?.with_header(
            "set-cookie",
            &format!("{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax"),
        ))
    }

    /// Ends the tenant session, if any (Auth0's `/v2/logout` does), on the way out.
    pub(crate) fn end_session(&self, request: &Request, answer: Response) -> Response {
        if let Some(session) = session_cookie(request) {
            self.with_sessions(|sessions| sessions.remove(session));
        }
        answer.with_header(
            "set-cookie",
            &format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
        )
    }

    fn session_user(&self, request: &Request) -> Option<User> {
        let session = session_cookie(request)?;
        let user_id = self.with_sessions(|sessions| sessions.get(session).cloned())??;
        self.users.by_id(&user_id).filter(|u| !u.blocked)
    }

    /// A single-use authorization code for this login, on the callback.
    fn code(&self, login: &Login, user: &User) -> Answer {
        let code = random_token(24);
        let scope = Some(login.param("scope"))
            .filter(|s| !s.is_empty())
            .unwrap_or("openid");
        let grant = Grant {
            client_id: login.client.client_id.clone(),
            user_id: user.user_id.clone(),
            scope: scope.to_string(),
            audience: login.params.get("audience").cloned(),
            family: random_token(9),
        };
        self.store_code(
            code.clone(),
            Code {
                grant,
                redirect_uri: login.redirect_uri.to_string(),
                code_challenge: login.params.get("code_challenge").cloned(),
            },
        );
        login.callback(&[("code", &code), ("state", login.param("state"))])
    }
}

fn session_cookie(request: &Request) -> Option<&str> {
    request
        .headers
        .iter()
        .filter(|(name, _)| name == "cookie")
        .flat_map(|(_, value)| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests;
