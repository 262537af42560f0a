//! The flows with the Redis backend: the same behaviour as with shared data, with every store
//! operation going through Webdis calls (answered by an in-memory Redis).

use super::driver::{json, jwt, token_answer, Driver, FORM, LOGIN};
use super::*;

fn redis_driver() -> Driver {
    Driver::new(serde_json::json!({
        "sessionStore": {"backend": "redis", "webdisCluster": "webdis", "keyPrefix": "gw1:"},
        "managementAccess": {"apiKeys": ["admin-key"]}
    }))
}

#[test]
fn login_refresh_active_users_and_logout_live_in_redis() {
    let mut d = redis_driver();
    let (first, second) = (jwt("auth0|u1", "1"), jwt("auth0|u1", "2"));
    d.answers.push_back(token_answer(&first, Some("rt-1")));
    let login = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), FORM],
            LOGIN,
        )
        .unwrap();
    assert_eq!(login.status, 200);
    assert!(
        d.kv.data
            .borrow()
            .keys()
            .all(|k| !k.starts_with("s/") || d.kv.data.borrow()[k].0.is_empty()),
        "nothing in shared data"
    );
    let active = d
        .request("GET", "/users/active", &[("secret", "admin-key")], b"")
        .unwrap();
    assert_eq!(json(&active), serde_json::json!([{"userId": "auth0|u1"}]));
    d.answers.push_back(token_answer(&second, Some("rt-2")));
    let cookie = format!("sid={first}");
    let refreshed = d
        .request(
            "POST",
            "/refreshtoken",
            &[("secret", "web-key"), ("cookie", &cookie)],
            b"",
        )
        .unwrap();
    assert_eq!(refreshed.status, 200);
    assert_eq!(
        d.form(1)
            .iter()
            .find(|(k, _)| k == "refresh_token")
            .map(|(_, v)| v.as_str()),
        Some("rt-1")
    );
    assert_eq!(
        d.request(
            "POST",
            "/refreshtoken",
            &[("secret", "web-key"), ("cookie", &cookie)],
            b""
        )
        .unwrap()
        .status,
        401
    );
    d.answers.push_back(CalloutResult::Answered {
        status: 200,
        headers: vec![],
        body: vec![],
    });
    let new_cookie = format!("sid={second}");
    let out = d
        .request(
            "GET",
            "/logout",
            &[("secret", "web-key"), ("cookie", &new_cookie)],
            b"",
        )
        .unwrap();
    assert_eq!(out.status, 302);
    assert!(
        String::from_utf8_lossy(d.callouts[2].body.as_deref().unwrap()).contains("rt-2"),
        "revoked at Auth0"
    );
    let active = d
        .request("GET", "/users/active", &[("secret", "admin-key")], b"")
        .unwrap();
    assert_eq!(json(&active), serde_json::json!([]));
}

#[test]
fn an_unreachable_redis_is_503_on_session_routes_and_nothing_else() {
    let mut d = redis_driver();
    *d.redis.down.borrow_mut() = true;
    d.answers
        .push_back(token_answer(&jwt("auth0|u1", "x"), Some("rt")));
    assert_eq!(
        d.request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), FORM],
            LOGIN
        )
        .unwrap()
        .status,
        503
    );
    let cookie = format!("sid={}", jwt("auth0|u1", "y"));
    assert_eq!(
        d.request(
            "POST",
            "/refreshtoken",
            &[("secret", "web-key"), ("cookie", &cookie)],
            b""
        )
        .unwrap()
        .status,
        503
    );
    assert_eq!(
        d.request(
            "GET",
            "/logout",
            &[("secret", "web-key"), ("cookie", &cookie)],
            b""
        )
        .unwrap()
        .status,
        503
    );
    assert_eq!(
        d.request("GET", "/users/active", &[("secret", "admin-key")], b"")
            .unwrap()
            .status,
        503
    );
    assert!(
        d.request("GET", "/anything", &[], b"").is_none(),
        "pass-through is unaffected"
    );
    // Redis back: recovered, no restart.
    *d.redis.down.borrow_mut() = false;
    d.answers
        .push_back(token_answer(&jwt("auth0|u1", "z"), Some("rt")));
    assert_eq!(
        d.request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), FORM],
            LOGIN
        )
        .unwrap()
        .status,
        200
    );
}

#[test]
fn browser_logins_need_no_store_and_the_management_token_lives_in_redis() {
    let mut d = redis_driver();
    let start = d
        .request("GET", "/authorize", &[("secret", "web-key")], b"")
        .unwrap();
    let location = start.header("location").unwrap().to_string();
    let state: String = url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let cookie = start.header("set-cookie").unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    d.answers
        .push_back(token_answer(&jwt("auth0|u1", "c"), Some("rt")));
    let body = serde_json::json!({"code": "c", "state": state}).to_string();
    let json_type = ("content-type", "application/json");
    assert_eq!(
        d.request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), json_type, ("cookie", &cookie)],
            body.as_bytes()
        )
        .unwrap()
        .status,
        200
    );
    assert_eq!(
        d.request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), json_type],
            body.as_bytes()
        )
        .unwrap()
        .status,
        400
    );
    // One management token fetch, then the cached one.
    d.answers.push_back(CalloutResult::Answered {
        status: 200,
        headers: vec![],
        body: br#"{"access_token":"m1","expires_in":86400}"#.to_vec(),
    });
    d.answers.push_back(CalloutResult::Answered {
        status: 200,
        headers: vec![],
        body: b"[]".to_vec(),
    });
    d.answers.push_back(CalloutResult::Answered {
        status: 200,
        headers: vec![],
        body: b"[]".to_vec(),
    });
    assert_eq!(
        d.request("GET", "/users", &[("secret", "admin-key")], b"")
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        d.request("GET", "/users", &[("secret", "admin-key")], b"")
            .unwrap()
            .status,
        200
    );
    let fetches = d
        .callouts
        .iter()
        .filter(|c| {
            c.path == "/oauth/token"
                && String::from_utf8_lossy(c.body.as_deref().unwrap())
                    .contains("client_credentials")
        })
        .count();
    assert_eq!(fetches, 1);
}
