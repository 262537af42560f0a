//! The store operations each route makes, counted on both backends: the Redis commands (one
//! Webdis call each) and the shared-data reads and writes. docs/scaling.md states these
//! numbers and builds its capacity model on them; a change here must change that page.

use super::driver::{Driver, NOW};
use super::identity::{sign, token_json, website_login, ISSUER};
use super::*;
use crate::testing::jwks_json;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Shared,
    Redis,
}

fn driver(backend: Backend, extra: serde_json::Value) -> Driver {
    let mut config = serde_json::json!({
        "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata"],
        "protectedRoutes": {"prefixes": ["/api/"]},
        "tokenLeewaySeconds": 0,
        "managementAccess": {"apiKeys": ["admin-key"]}
    });
    if backend == Backend::Redis {
        config["sessionStore"] = serde_json::json!(
            {"backend": "redis", "webdisCluster": "webdis", "keyPrefix": "gw1:"}
        );
    }
    if let (Some(base), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    let d = Driver::new(config);
    d.jwks()
        .put(ISSUER, jwks_json(&["k1"]).as_bytes(), NOW)
        .unwrap();
    d
}

/// What one step (usually one request) cost the store: the Redis commands sent, in order,
/// and the shared-data reads and writes.
#[derive(Debug, PartialEq, Eq)]
struct Ops {
    redis: Vec<String>,
    reads: usize,
    writes: usize,
}

fn ops(d: &mut Driver, step: impl FnOnce(&mut Driver)) -> Ops {
    d.redis.sent.borrow_mut().clear();
    d.kv.reads.set(0);
    d.kv.writes.set(0);
    step(d);
    Ops {
        redis: d.redis.sent.borrow().clone(),
        reads: d.kv.reads.get(),
        writes: d.kv.writes.get(),
    }
}

fn expect(redis: &[&str], reads: usize, writes: usize) -> Ops {
    Ops {
        redis: redis.iter().map(|c| c.to_string()).collect(),
        reads,
        writes,
    }
}

/// A session write: one CAS on its slot, or four Redis commands (the session, then the
/// `active` index: add, prune, extend its TTL).
const PUT: [&str; 4] = ["SETEX", "ZADD", "ZREMRANGEBYSCORE", "EXPIRE"];
/// Ending a session: swap it for its marker (`SET … GET`), then drop it from the index.
const DELETE: [&str; 2] = ["SET", "ZREM"];

fn both(check: impl Fn(Backend)) {
    check(Backend::Shared);
    check(Backend::Redis);
}

/// Per backend: (Redis commands, shared-data reads, shared-data writes).
fn per_backend(backend: Backend, redis: &[&str], shared: (usize, usize)) -> Ops {
    match backend {
        Backend::Shared => expect(&[], shared.0, shared.1),
        Backend::Redis => expect(redis, 0, 0),
    }
}

fn access_token() -> String {
    sign(
        "k1",
        &[
            "https://api.example.org",
            "https://tenant.eu.auth0.com/userinfo",
        ],
        "web-client-id",
        600,
    )
}

#[test]
fn a_login_writes_one_session() {
    both(|backend| {
        let mut d = driver(backend, serde_json::json!({}));
        let access = access_token();
        let login = ops(&mut d, |d| website_login(d, &access));
        assert_eq!(login, per_backend(backend, &PUT, (1, 1)));
        // A client without the `website` scope (no cookie) stores its session all the same.
        d.answers
            .push_back(token_json(&access_token(), "x.y.z", "rt"));
        let app = ops(&mut d, |d| {
            let form = ("content-type", "application/x-www-form-urlencoded");
            let body = b"grant_type=password&username=alice&password=s3cret-pw";
            let reply = d.request("POST", "/oauth/token", &[("secret", "app-key"), form], body);
            assert_eq!(reply.unwrap().status, 200);
        });
        assert_eq!(app, per_backend(backend, &PUT, (1, 1)));
    });
}

#[test]
fn a_browser_login_stores_nothing_until_its_code_is_redeemed() {
    both(|backend| {
        let mut d = driver(backend, serde_json::json!({}));
        let mut start = None;
        let authorize = ops(&mut d, |d| {
            start = d.request("GET", "/authorize", &[("secret", "web-key")], b"");
        });
        assert_eq!(authorize, expect(&[], 0, 0));
        let start = start.unwrap();
        let location = start.header("location").unwrap();
        let state = url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let cookie = start.header("set-cookie").unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let id = sign("k1", &["web-client-id"], "web-client-id", 600);
        d.answers.push_back(token_json(&access_token(), &id, "rt"));
        let body = serde_json::json!({"code": "c", "state": state}).to_string();
        let redeem = ops(&mut d, |d| {
            let headers = [
                ("secret", "web-key"),
                ("content-type", "application/json"),
                ("cookie", cookie.as_str()),
            ];
            let reply = d.request("POST", "/oauth/token", &headers, body.as_bytes());
            assert_eq!(reply.unwrap().status, 200);
        });
        assert_eq!(redeem, per_backend(backend, &PUT, (1, 1)));
    });
}

#[test]
fn a_sid_is_one_session_read_per_request() {
    both(|backend| {
        let mut d = driver(backend, serde_json::json!({}));
        let access = access_token();
        website_login(&mut d, &access);
        let cookie = format!("sid={access}");
        let sid = [("cookie", cookie.as_str()), ("accept", "application/json")];
        // The first check of a token on a worker reads the tenant's keys (shared data, both
        // backends); later ones hit the worker's verification cache.
        for (round, jwks_reads) in [(0, 1), (1, 0)] {
            let protected = ops(&mut d, |d| {
                assert!(d.request("GET", "/api/orders", &sid, b"").is_none());
            });
            let mut wanted = per_backend(backend, &["GET"], (1, 0));
            wanted.reads += jwks_reads;
            assert_eq!(protected, wanted, "protected, request {round}");
        }
        // /userinfo the same, with another session.
        let other = sign(
            "k1",
            &[
                "https://api.example.org",
                "https://tenant.eu.auth0.com/userinfo",
            ],
            "web-client-id",
            700,
        );
        website_login(&mut d, &other);
        let cookie = format!("sid={other}");
        for (round, jwks_reads) in [(0, 1), (1, 0)] {
            let userinfo = ops(&mut d, |d| {
                let reply = d.request("GET", "/userinfo", &[("cookie", &cookie)], b"");
                assert_eq!(reply.unwrap().status, 200);
            });
            let mut wanted = per_backend(backend, &["GET"], (1, 0));
            wanted.reads += jwks_reads;
            assert_eq!(userinfo, wanted, "userinfo, request {round}");
        }
    });
}

#[test]
fn a_bearer_token_reads_its_session_once_per_recheck_interval() {
    both(|backend| {
        let mut d = driver(backend, serde_json::json!({}));
        let access = access_token();
        website_login(&mut d, &access);
        let bearer = format!("Bearer {access}");
        let api = [("authorization", bearer.as_str())];
        let first = ops(&mut d, |d| {
            assert!(d.request("GET", "/api/orders", &api, b"").is_none());
        });
        let mut wanted = per_backend(backend, &["GET"], (1, 0));
        wanted.reads += 1; // the tenant's keys
        assert_eq!(first, wanted);
        // Within `sessionRecheckSeconds` (default 5 s) of that read, on the same worker: no
        // store operation at all.
        let repeat = ops(&mut d, |d| {
            assert!(d.request("GET", "/api/orders", &api, b"").is_none());
        });
        assert_eq!(repeat, expect(&[], 0, 0));
        // With `sessionRecheckSeconds: 0`, one session read per request.
        d.config = driver(
            backend,
            serde_json::json!({"protectedRoutes": {"prefixes": ["/api/"], "sessionRecheckSeconds": 0}}),
        )
        .config;
        let every = ops(&mut d, |d| {
            assert!(d.request("GET", "/api/orders", &api, b"").is_none());
        });
        assert_eq!(every, per_backend(backend, &["GET"], (1, 0)));
    });
}

#[test]
fn refresh_and_logout_end_the_old_session() {
    both(|backend| {
        let mut d = driver(backend, serde_json::json!({}));
        let access = access_token();
        website_login(&mut d, &access);
        let fresh = sign("k1", &["https://api.example.org"], "web-client-id", 900);
        let id = sign("k1", &["web-client-id"], "web-client-id", 600);
        d.answers.push_back(token_json(&fresh, &id, "rt-2"));
        let cookie = format!("sid={access}");
        let refresh = ops(&mut d, |d| {
            let headers = [("secret", "web-key"), ("cookie", cookie.as_str())];
            let reply = d.request("POST", "/refreshtoken", &headers, b"");
            assert_eq!(reply.unwrap().status, 200);
        });
        let redis: Vec<&str> = [&["GET"][..], &DELETE, &PUT].concat();
        assert_eq!(refresh, per_backend(backend, &redis, (3, 2)));
        d.answers.push_back(CalloutResult::Answered {
            status: 200,
            headers: vec![],
            body: vec![],
        });
        let cookie = format!("sid={fresh}");
        let logout = ops(&mut d, |d| {
            let headers = [("secret", "web-key"), ("cookie", cookie.as_str())];
            assert_eq!(
                d.request("GET", "/logout", &headers, b"").unwrap().status,
                302
            );
        });
        let redis: Vec<&str> = [&["GET"][..], &DELETE].concat();
        assert_eq!(logout, per_backend(backend, &redis, (2, 1)));
        // A refresh token in the body and no session presented: only the new session.
        d.answers
            .push_back(token_json(&access_token(), &id, "rt-3"));
        let body_only = ops(&mut d, |d| {
            let headers = [("secret", "web-key"), ("content-type", "application/json")];
            let body = br#"{"refresh_token": "rt-2"}"#;
            let reply = d.request("POST", "/refreshtoken", &headers, body);
            assert_eq!(reply.unwrap().status, 200);
        });
        assert_eq!(body_only, per_backend(backend, &PUT, (1, 1)));
    });
}

#[test]
fn userinfo_with_an_expired_token_refreshes_its_session() {
    both(|backend| {
        let mut d = driver(backend, serde_json::json!({}));
        let stale = sign(
            "k1",
            &[
                "https://api.example.org",
                "https://tenant.eu.auth0.com/userinfo",
            ],
            "web-client-id",
            1,
        );
        website_login(&mut d, &stale);
        let id = sign("k1", &["web-client-id"], "web-client-id", 600);
        d.answers
            .push_back(token_json(&access_token(), &id, "rt-2"));
        let cookie = format!("sid={stale}");
        let userinfo = ops(&mut d, |d| {
            let reply = d.request("GET", "/userinfo", &[("cookie", &cookie)], b"");
            assert_eq!(reply.unwrap().status, 200);
        });
        let redis: Vec<&str> = [&["GET"][..], &DELETE, &PUT].concat();
        let mut wanted = per_backend(backend, &redis, (3, 2));
        wanted.reads += 1; // the tenant's keys
        assert_eq!(userinfo, wanted);
    });
}

#[test]
fn management_calls_share_one_token_and_active_users_read_the_index() {
    both(|backend| {
        let mut d = driver(backend, serde_json::json!({}));
        let answer = |body: &str| CalloutResult::Answered {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        d.answers
            .push_back(answer(r#"{"access_token":"m1","expires_in":86400}"#));
        d.answers.push_back(answer("[]"));
        let search = |d: &mut Driver| {
            let reply = d.request("GET", "/users", &[("secret", "admin-key")], b"");
            assert_eq!(reply.unwrap().status, 200);
        };
        // The first call takes the lease, fetches the token, saves it and ends the lease.
        let first = ops(&mut d, search);
        let redis = ["GET", "SET", "GET", "SETEX", "DEL"];
        assert_eq!(first, per_backend(backend, &redis, (3, 3)));
        d.answers.push_back(answer("[]"));
        let cached = ops(&mut d, search);
        assert_eq!(cached, per_backend(backend, &["GET"], (1, 0)));
        // Shared data has no index: every slot is read.
        let active = ops(&mut d, |d| {
            let reply = d.request("GET", "/users/active", &[("secret", "admin-key")], b"");
            assert_eq!(reply.unwrap().status, 200);
        });
        let slots = crate::store::SLOTS as usize;
        let redis = ["ZREMRANGEBYSCORE", "ZRANGEBYSCORE"];
        assert_eq!(active, per_backend(backend, &redis, (slots, 0)));
    });
}

#[test]
fn a_request_the_filter_does_not_own_touches_no_store() {
    both(|backend| {
        let mut d = driver(backend, serde_json::json!({}));
        let through = ops(&mut d, |d| {
            assert!(d.request("GET", "/elsewhere", &[], b"").is_none());
        });
        assert_eq!(through, expect(&[], 0, 0));
    });
}
