//! `/authorize` and the hosted login page behave as Auth0's Universal Login: the form, its
//! errors on the page, the tenant session (single sign-on, `prompt=none`, `prompt=login`,
//! ended by `/v2/logout`), and the emulator's `login_hint` shortcut.

use std::collections::HashMap;
use std::time::Duration;

mod common;

use common::Emulator;

struct Answer {
    status: u16,
    location: String,
    set_cookie: String,
    body: String,
}

impl Answer {
    fn callback_params(&self) -> HashMap<String, String> {
        url::Url::parse(&self.location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }
}

fn call(emu: &Emulator, method: &str, path: &str, cookie: &str, form: &[(&str, &str)]) -> Answer {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(10))
        .build();
    let mut req = agent.request(method, &format!("{}{path}", emu.base));
    if !cookie.is_empty() {
        req = req.set("cookie", cookie);
    }
    let result = match method {
        "POST" => req.send_form(form),
        _ => req.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    Answer {
        status: response.status(),
        location: response.header("location").unwrap_or("").to_string(),
        set_cookie: response.header("set-cookie").unwrap_or("").to_string(),
        body: response.into_string().unwrap_or_default(),
    }
}

const CALLBACK: &str = "http://localhost:8080/web-login/callback";

fn authorize(extra: &str) -> String {
    format!(
        "/authorize?response_type=code&client_id=website-client-id&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fweb-login%2Fcallback&scope=openid%20profile&state=s1{extra}"
    )
}

/// The form's fields as the browser would post them, with these credentials.
fn form<'a>(username: &'a str, password: &'a str, state: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", "website-client-id"),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("state", state),
        ("scope", "openid profile"),
        ("username", username),
        ("password", password),
    ]
}

#[test]
fn the_form_escapes_what_it_reflects_and_shows_errors_on_the_page() {
    let emu = Emulator::start();
    let page = call(
        &emu,
        "GET",
        &authorize("&login_hint=%22%3E%3Cscript%3Ex"),
        "",
        &[],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page
        .body
        .contains("<form method=\"post\" action=\"/u/login\">"));
    assert!(
        page.body.contains("name=\"state\" value=\"s1\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("value=\"&quot;&gt;&lt;script&gt;x\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script"), "{}", page.body);

    let state = "\"><img src=x>";
    let wrong = call(&emu, "POST", "/u/login", "", &form("alice", "nope", state));
    assert_eq!(wrong.status, 200, "the form again");
    assert!(
        wrong.body.contains("Wrong username or password"),
        "{}",
        wrong.body
    );
    assert!(
        wrong.body.contains("value=\"alice\""),
        "the username is kept"
    );
    assert!(
        wrong.body.contains("&quot;&gt;&lt;img src=x&gt;"),
        "{}",
        wrong.body
    );
    assert!(!wrong.body.contains("<img"), "{}", wrong.body);
    assert!(wrong.set_cookie.is_empty(), "no session");

    // Hidden fields are checked again: an unknown callback is Auth0's error page, not a redirect.
    let mut evil = form("alice", "Alice-Passw0rd!", "s");
    evil[1] = ("redirect_uri", "https://evil.example/cb");
    let refused = call(&emu, "POST", "/u/login", "", &evil);
    assert_eq!((refused.status, refused.location.as_str()), (400, ""));
}

#[test]
fn a_form_login_redirects_with_a_code_and_starts_a_tenant_session() {
    let emu = Emulator::start();
    let done = call(
        &emu,
        "POST",
        "/u/login",
        "",
        &form("alice", "Alice-Passw0rd!", "s2"),
    );
    assert_eq!(done.status, 302, "{}", done.body);
    assert!(done.location.starts_with(CALLBACK), "{}", done.location);
    let params = done.callback_params();
    assert_eq!(params["state"], "s2");
    let code = params["code"].clone();
    let tokens = emu.form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("client_id", "website-client-id"),
            ("client_secret", "website-client-secret-0123456789"),
        ],
    );
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    assert!(tokens.json["id_token"].is_string());

    let session = done.set_cookie.split(';').next().unwrap().to_string();
    assert!(session.starts_with("auth0="), "{}", done.set_cookie);
    assert!(done.set_cookie.contains("HttpOnly"));
    // Single sign-on: the session answers at once, with prompt=none too.
    for extra in ["", "&prompt=none"] {
        let again = call(&emu, "GET", &authorize(extra), &session, &[]);
        assert_eq!(again.status, 302, "{extra}: {}", again.body);
        assert!(again.callback_params().contains_key("code"), "{extra}");
    }
    // prompt=login asks again, whatever the session.
    let forced = call(&emu, "GET", &authorize("&prompt=login"), &session, &[]);
    assert_eq!(forced.status, 200);
    assert!(forced.body.contains("name=\"password\""));
    // Logging out at the tenant ends the session.
    let logout = call(&emu, "GET", "/v2/logout", &session, &[]);
    assert_eq!(logout.status, 302);
    assert!(
        logout.set_cookie.starts_with("auth0=;"),
        "{}",
        logout.set_cookie
    );
    assert!(logout.set_cookie.contains("Max-Age=0"));
    let after = call(&emu, "GET", &authorize("&prompt=none"), &session, &[]);
    assert_eq!(after.callback_params()["error"], "login_required");
}

#[test]
fn prompt_none_without_a_session_and_the_login_hint_shortcut() {
    let emu = Emulator::start();
    let silent = call(&emu, "GET", &authorize("&prompt=none"), "", &[]);
    assert_eq!(silent.status, 302);
    let params = silent.callback_params();
    assert_eq!(
        (params["error"].as_str(), params["state"].as_str()),
        ("login_required", "s1")
    );
    // Auth0 only fills the form in with login_hint; the emulator logs a known user in at once.
    let hinted = call(&emu, "GET", &authorize("&login_hint=alice"), "", &[]);
    assert_eq!(hinted.status, 302);
    assert!(hinted.callback_params().contains_key("code"));
    assert!(
        hinted.set_cookie.is_empty(),
        "the shortcut starts no session"
    );
    let unknown = call(&emu, "GET", &authorize("&login_hint=nobody"), "", &[]);
    assert_eq!(unknown.status, 200);
    assert!(unknown.body.contains("value=\"nobody\""));
    // With prompt=login the hint only fills the form in.
    let forced = call(
        &emu,
        "GET",
        &authorize("&login_hint=alice&prompt=login"),
        "",
        &[],
    );
    assert_eq!(forced.status, 200);
    assert!(forced.body.contains("value=\"alice\""));
}
