//! Flows driven end to end with an in-memory session store and scripted Auth0 answers.

use std::collections::VecDeque;

use base64::Engine;

use super::*;
use crate::digest::SessionKey;
use crate::store::{JwksCache, ManagementTokenLease, SessionRecord, Sessions};
use crate::testing::config_with;
use crate::testing::MemKv;

pub(super) const NOW: Timestamp = Timestamp {
    secs: 1_700_000_000,
    nanos: 0,
};

pub(super) fn jwt(sub: &str, salt: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig{salt}",
        b64.encode("{}"),
        b64.encode(format!(r#"{{"sub":"{sub}"}}"#))
    )
}

pub(super) fn token_answer(access: &str, refresh: Option<&str>) -> CalloutResult {
    let mut body = serde_json::json!({"access_token": access, "id_token": jwt("auth0|u1", "id"), "expires_in": 3600, "token_type": "Bearer"});
    if let Some(r) = refresh {
        body["refresh_token"] = r.into();
    }
    CalloutResult::Answered {
        status: 200,
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

fn error_answer(status: u16, error: &str) -> CalloutResult {
    let body = serde_json::json!({"error": error, "error_description": "nope"});
    CalloutResult::Answered {
        status,
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

/// Plays the host: executes actions until a reply.
pub(super) struct Driver {
    pub(super) config: Config,
    pub(super) kv: MemKv,
    pub(super) answers: VecDeque<CalloutResult>,
    pub(super) callouts: Vec<Callout>,
    pub(super) logs: Vec<LogLine>,
    /// Every stat change the exchanges asked for.
    pub(super) metrics: Vec<crate::metrics::MetricEvent>,
    pub(super) store_down: bool,
    /// Puts and deletes fail, reads work.
    writes_down: bool,
    /// When a request waits for the Management API token, "another worker" saves this one.
    pub(super) token_from_elsewhere: Option<String>,
    pub(super) waits: usize,
    entropy_counter: u64,
    pub(super) verifier: crate::tokens::verifier::Verifier,
    /// The identity headers of the last request forwarded upstream.
    pub(super) forwarded: Option<Vec<(String, String)>>,
    /// With the Redis backend configured, Webdis calls are answered by this in-memory Redis.
    pub(super) redis: crate::testing::FakeRedis,
    /// The next Auth0 call first ends this token's session, like a logout on another replica
    /// landing while Auth0 answers.
    pub(super) end_session_during_auth0: Option<String>,
}

impl Driver {
    pub(super) fn new(overrides: serde_json::Value) -> Self {
        let mut json = serde_json::json!({"apiKeys": [{"key": "web-key", "clientType": "web"}, {"key": "app-key", "clientType": "app"}]});
        if let (Some(base), Some(extra)) = (json.as_object_mut(), overrides.as_object()) {
            base.extend(extra.clone());
        }
        Driver {
            config: config_with(json),
            kv: MemKv::default(),
            answers: VecDeque::new(),
            callouts: vec![],
            logs: vec![],
            metrics: vec![],
            store_down: false,
            writes_down: false,
            token_from_elsewhere: None,
            waits: 0,
            entropy_counter: 0,
            verifier: Default::default(),
            forwarded: None,
            redis: Default::default(),
            end_session_during_auth0: None,
        }
    }

    /// Different random bytes for every request, like the host's.
    fn next_entropy(&mut self) -> [u8; ENTROPY_BYTES] {
        self.entropy_counter += 1;
        let mut bytes = [0u8; ENTROPY_BYTES];
        for (i, chunk) in bytes.chunks_mut(32).enumerate() {
            chunk.copy_from_slice(&hmac_sha256::Hash::hash(
                &[self.entropy_counter.to_le_bytes(), (i as u64).to_le_bytes()].concat(),
            ));
        }
        bytes
    }

    pub(super) fn sessions(&self) -> Sessions<'_, MemKv> {
        Sessions::new(&self.kv, &self.config.session_scope)
    }

    pub(super) fn lease(&self) -> ManagementTokenLease<'_, MemKv> {
        ManagementTokenLease::new(&self.kv, &self.config.session_scope)
    }

    pub(super) fn jwks(&self) -> JwksCache<'_, MemKv> {
        JwksCache::new(&self.kv, &self.config.session_scope)
    }

    pub(super) fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Option<Reply> {
        let mut all = vec![
            (":method", method),
            (":path", path),
            (":authority", "gw.example.org"),
            (":scheme", "https"),
        ];
        all.extend_from_slice(headers);
        let mut head = RequestHead::from_headers(&all);
        head.client_ip = Some("198.51.100.23".into());
        let entropy = self.next_entropy();
        let (mut exchange, mut action) = match Exchange::start(&self.config, &head, NOW, entropy) {
            Start::PassThrough => return None,
            Start::Respond(reply, logs, metrics) => {
                self.logs.extend(logs);
                self.metrics.extend(metrics);
                return Some(reply);
            }
            Start::Exchange(exchange, action) => (exchange, action),
        };
        for _ in 0..80 {
            self.logs.extend(exchange.take_logs());
            self.metrics.extend(exchange.take_metrics());
            for token in exchange.take_ended_tokens() {
                self.verifier.forget_session_read(&token);
            }
            action = match action {
                Action::Respond(reply) => return Some(reply),
                Action::PassThrough => return None,
                Action::Forward { set_headers } => {
                    let named = set_headers.into_iter().map(|(n, v)| (n.to_string(), v));
                    self.forwarded = Some(named.collect());
                    return None;
                }
                Action::Verify {
                    token,
                    against,
                    waiting,
                } => {
                    let store = JwksCache::new(&self.kv, &self.config.session_scope);
                    let source = |issuer: &str| store.source(issuer);
                    let result = match waiting {
                        false => self
                            .verifier
                            .verify(&token, &against, &self.config, &source, NOW),
                        true => self.verifier.verify_waiting(
                            &token,
                            &against,
                            &self.config,
                            &source,
                            NOW,
                        ),
                    };
                    exchange.on_verified(&self.config, NOW, result)
                }
                Action::Wait { millis } => {
                    assert!(millis > 0 && millis < 1_000);
                    self.waits += 1;
                    if let Some(token) = self.token_from_elsewhere.take() {
                        self.lease().save(&token, NOW.secs + 3_600).unwrap();
                    }
                    exchange.on_wake(&self.config, NOW)
                }
                Action::ReadBody { max_bytes } if body.len() > max_bytes => {
                    exchange.on_body_too_large(&self.config, NOW, max_bytes)
                }
                Action::ReadBody { .. } => exchange.on_body(&self.config, NOW, body),
                Action::Store(op) => {
                    let write = !matches!(op, crate::store::StoreOp::Get(_));
                    let outcome = if self.store_down || (self.writes_down && write) {
                        StoreOutcome::Unavailable("down".into())
                    } else {
                        crate::store::execute(&self.kv, &self.config.session_scope, &op, NOW)
                    };
                    exchange.on_store(&self.config, NOW, outcome)
                }
                Action::Call(callout) => {
                    if callout.cluster == "webdis" {
                        *self.redis.now.borrow_mut() = NOW.secs;
                        let answer = self.redis.answer(&callout);
                        action = exchange.on_callout(&self.config, NOW, answer);
                        continue;
                    }
                    if let Some(token) = self.end_session_during_auth0.take() {
                        let key = SessionKey::for_token(&token);
                        self.sessions().delete(&key, NOW.secs + 600).unwrap();
                        self.redis.forget(&format!("s:{}", key.as_str()));
                    }
                    self.callouts.push(callout);
                    let answer = self.answers.pop_front().expect("a scripted Auth0 answer");
                    exchange.on_callout(&self.config, NOW, answer)
                }
            };
        }
        panic!("exchange did not finish");
    }

    pub(super) fn form(&self, index: usize) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.callouts[index].body.as_deref().unwrap())
            .into_owned()
            .collect()
    }

    pub(super) fn session(&self, token: &str) -> Option<SessionRecord> {
        self.sessions()
            .get(&SessionKey::for_token(token), NOW)
            .unwrap()
            .filter(|record| !record.ended)
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

pub(super) fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_slice(&reply.body).unwrap()
}

pub(super) const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
pub(super) const LOGIN: &[u8] = b"grant_type=password&username=alice&password=s3cret-pw";

#[test]
fn password_login_answers_token_json_and_stores_a_session() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "a1");
    d.answers.push_back(token_answer(&access, Some("rt-1")));
    let reply = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "app-key"), FORM],
            LOGIN,
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    let body = json(&reply);
    assert_eq!(body["accessToken"], access.as_str());
    assert_eq!(body["refreshToken"], "rt-1");
    assert_eq!(body["idToken"], jwt("auth0|u1", "id").as_str());
    assert_eq!(body["expireAt"], "2023-11-14T23:13:20Z");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    // `app` supports exactly one connection and has no default: that one is used.
    let form = d.form(0);
    assert_eq!(
        field(&form, "grant_type"),
        Some(crate::auth0::PASSWORD_REALM_GRANT)
    );
    assert_eq!(field(&form, "realm"), Some("db-a"));
    // Auth0's brute-force protection sees the end user's address, not the gateway's.
    assert!(d.callouts[0]
        .headers
        .contains(&("auth0-forwarded-for".into(), "198.51.100.23".into())));
    let session = d.session(&access).unwrap();
    assert_eq!(
        (session.user_id.as_str(), session.client.as_str()),
        ("auth0|u1", "app")
    );
    assert_eq!(session.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(session.expires_at, NOW.secs + 86_400);
}

#[test]
fn website_login_sets_the_sid_cookie_with_an_empty_body() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "w1");
    d.answers.push_back(token_answer(&access, Some("rt-w")));
    let body =
        br#"{"grant_type":"password","username":"alice","password":"pw","connection":"db-b"}"#;
    let reply = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), ("content-type", "application/json")],
            body,
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(
        reply.header("set-cookie").unwrap(),
        format!("sid={access}; Path=/; HttpOnly; Secure; Max-Age=86400; SameSite=Lax")
    );
    assert_eq!(field(&d.form(0), "realm"), Some("db-b"));
    assert_eq!(d.session(&access).unwrap().client, "web");
}

#[test]
fn login_input_errors_never_reach_auth0() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [u8], u16);
    let cases: &[Case] = &[
        (
            &[("secret", "web-key"), FORM],
            b"grant_type=password&username=a&password=b&connection=other",
            400,
        ),
        (
            &[("secret", "web-key"), FORM],
            b"grant_type=client_credentials",
            400,
        ),
        (
            &[("secret", "web-key"), FORM],
            b"grant_type=password&username=a",
            400,
        ),
        (
            &[("secret", "web-key"), FORM],
            b"grant_type=password&username=a&username=b&password=c",
            400,
        ),
        (
            &[("secret", "web-key"), ("content-type", "text/plain")],
            b"grant_type=password",
            415,
        ),
        (
            &[("secret", "web-key"), ("content-type", "application/json")],
            b"{\"grant_type\":",
            400,
        ),
        (&[("secret", "wrong-key"), FORM], LOGIN, 401),
        (&[("secret", "web-key"), FORM], &[b'a'; 20_000], 413),
    ];
    for (headers, body, status) in cases {
        let mut d = Driver::new(serde_json::json!({}));
        let reply = d.request("POST", "/oauth/token", headers, body).unwrap();
        assert_eq!(
            reply.status,
            *status,
            "{headers:?} {}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        assert_eq!(json(&reply)["statusCode"], *status);
        assert!(d.callouts.is_empty());
    }
}

#[test]
fn wrong_credentials_are_403_and_nothing_is_stored() {
    let mut d = Driver::new(serde_json::json!({}));
    d.answers.push_back(error_answer(403, "invalid_grant"));
    let reply = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "app-key"), FORM],
            LOGIN,
        )
        .unwrap();
    assert_eq!(reply.status, 403);
    assert!(d.kv.data.borrow().keys().all(|k| !k.contains("s/")));
}

#[test]
fn website_login_needs_the_store() {
    let mut d = Driver::new(serde_json::json!({}));
    d.store_down = true;
    d.answers
        .push_back(token_answer(&jwt("auth0|u1", "x"), None));
    let reply = d
        .request(
            "POST",
            "/oauth/token",
            &[("secret", "web-key"), FORM],
            LOGIN,
        )
        .unwrap();
    assert_eq!(reply.status, 503);
}

pub(super) fn logged_in(d: &mut Driver, key: &str, access: &str, refresh: &str) {
    d.answers.push_back(token_answer(access, Some(refresh)));
    let reply = d
        .request("POST", "/oauth/token", &[("secret", key), FORM], LOGIN)
        .unwrap();
    assert_eq!(reply.status, 200);
}

#[test]
fn refresh_through_the_cookie_rotates_the_session() {
    let mut d = Driver::new(serde_json::json!({}));
    let (old, new) = (jwt("auth0|u1", "old"), jwt("auth0|u1", "new"));
    logged_in(&mut d, "web-key", &old, "rt-old");
    d.answers.push_back(token_answer(&new, Some("rt-new")));
    let cookie = format!("other=1; sid={old}");
    let reply = d
        .request(
            "POST",
            "/refreshtoken",
            &[("secret", "web-key"), ("cookie", &cookie)],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("set-cookie")
        .unwrap()
        .starts_with(&format!("sid={new};")));
    let form = d.form(1);
    assert_eq!(field(&form, "grant_type"), Some("refresh_token"));
    assert_eq!(field(&form, "refresh_token"), Some("rt-old"));
    assert!(d.session(&old).is_none(), "the old session is dropped");
    assert_eq!(
        d.session(&new).unwrap().refresh_token.as_deref(),
        Some("rt-new")
    );
    // The old cookie no longer finds a session.
    let again = d
        .request(
            "POST",
            "/refreshtoken",
            &[("secret", "web-key"), ("cookie", &cookie)],
            b"",
        )
        .unwrap();
    assert_eq!(again.status, 401);
}

#[test]
fn refresh_from_the_body_with_a_bearer_token_as_the_seed_curl_does() {
    let mut d = Driver::new(serde_json::json!({}));
    let (old, new) = (jwt("auth0|u1", "o"), jwt("auth0|u1", "n"));
    logged_in(&mut d, "app-key", &old, "rt-1");
    d.answers.push_back(token_answer(&new, None));
    let bearer = format!("Bearer {old}");
    let reply = d
        .request(
            "POST",
            "/refreshtoken",
            &[
                ("secret", "app-key"),
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            br#"{"refresh_token":"rt-1"}"#,
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    let body = json(&reply);
    assert_eq!(body["accessToken"], new.as_str());
    // No rotation at Auth0: the refresh token in use stays the answer and the stored one.
    assert_eq!(body["refreshToken"], "rt-1");
    assert_eq!(
        d.session(&new).unwrap().refresh_token.as_deref(),
        Some("rt-1")
    );
    assert!(d.session(&old).is_none());
}

#[test]
fn refresh_errors() {
    let mut d = Driver::new(serde_json::json!({}));
    assert_eq!(
        d.request("POST", "/refreshtoken", &[("secret", "app-key")], b"")
            .unwrap()
            .status,
        400
    );
    d.answers.push_back(error_answer(403, "invalid_grant"));
    let refused = d
        .request(
            "POST",
            "/refreshtoken",
            &[("secret", "app-key"), ("content-type", "application/json")],
            br#"{"refresh_token":"bad"}"#,
        )
        .unwrap();
    assert_eq!(refused.status, 401);
    // A session of another client cannot be refreshed with this client's key.
    let access = jwt("auth0|u1", "x");
    logged_in(&mut d, "web-key", &access, "rt");
    let cookie = format!("sid={access}");
    let other = d
        .request(
            "POST",
            "/refreshtoken",
            &[("secret", "app-key"), ("cookie", &cookie)],
            b"",
        )
        .unwrap();
    assert_eq!(other.status, 401);
}

#[test]
fn logout_deletes_the_session_revokes_and_redirects() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "l");
    logged_in(&mut d, "web-key", &access, "rt-l");
    d.answers.push_back(CalloutResult::Answered {
        status: 200,
        headers: vec![],
        body: vec![],
    });
    let cookie = format!("sid={access}");
    let reply = d
        .request(
            "GET",
            "/logout?redirect=/bye",
            &[
                ("secret", "web-key"),
                ("cookie", &cookie),
                ("x-forwarded-host", "app.example.org"),
                ("x-forwarded-proto", "https"),
            ],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 302);
    assert_eq!(
        reply.header("location"),
        Some("https://tenant.eu.auth0.com/v2/logout?returnTo=https%3A%2F%2Fapp.example.org%2Fbye")
    );
    assert!(reply
        .header("set-cookie")
        .unwrap()
        .contains("Expires=Thu, 01 Jan 1970"));
    assert!(d.session(&access).is_none());
    let revoke = &d.callouts[1];
    assert_eq!(revoke.path, "/oauth/revoke");
    assert!(String::from_utf8_lossy(revoke.body.as_deref().unwrap()).contains("\"token\":\"rt-l\""));
}

#[test]
fn failed_revoke_is_logged_and_still_logs_out() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "f");
    logged_in(&mut d, "app-key", &access, "rt-f");
    d.answers.push_back(CalloutResult::Failed { elapsed_ms: 1 });
    let bearer = format!("Bearer {access}");
    let reply = d
        .request(
            "GET",
            "/logout",
            &[("secret", "app-key"), ("authorization", &bearer)],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 302);
    assert!(d.session(&access).is_none());
    assert!(d
        .logs
        .iter()
        .any(|l| l.level == LogLevel::Warn && l.message.contains("revoking")));
}

#[test]
fn bad_logout_redirect_is_400_and_keeps_the_session() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "k");
    logged_in(&mut d, "web-key", &access, "rt");
    let cookie = format!("sid={access}");
    let reply = d
        .request(
            "GET",
            "/logout?redirect=//evil.com",
            &[("secret", "web-key"), ("cookie", &cookie)],
            b"",
        )
        .unwrap();
    assert_eq!(reply.status, 400);
    assert!(d.session(&access).is_some());
}

#[test]
fn requests_the_filter_does_not_own_pass_through() {
    let mut d = Driver::new(serde_json::json!({}));
    assert!(d.request("GET", "/oauth/token", &[], b"").is_none());
    assert!(d.request("POST", "/api/things", &[], b"x").is_none());
    assert!(d.request("GET", "/logoutx", &[], b"").is_none());
}

#[test]
fn no_secret_password_or_token_in_any_reply_or_log() {
    let mut d = Driver::new(serde_json::json!({}));
    let access = jwt("auth0|u1", "secretish");
    d.answers.push_back(error_answer(401, "access_denied"));
    d.answers.push_back(error_answer(500, "server_error"));
    d.answers
        .push_back(CalloutResult::Failed { elapsed_ms: 4_999 });
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(
            d.request(
                "POST",
                "/oauth/token",
                &[("secret", "app-key"), FORM],
                LOGIN,
            )
            .unwrap(),
        );
    }
    logged_in(&mut d, "app-key", &access, "rt-secret");
    d.answers.push_back(CalloutResult::Answered {
        status: 400,
        headers: vec![],
        body: vec![],
    });
    let bearer = format!("Bearer {access}");
    replies.push(
        d.request(
            "GET",
            "/logout",
            &[("secret", "app-key"), ("authorization", &bearer)],
            b"",
        )
        .unwrap(),
    );
    assert_eq!(
        replies.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![502, 502, 504, 302]
    );
    let mut text: Vec<String> = replies
        .iter()
        .map(|r| format!("{:?} {}", r.headers, String::from_utf8_lossy(&r.body)))
        .collect();
    text.extend(d.logs.iter().map(|l| l.message.clone()));
    for t in &text {
        for secret in [
            "app-client-secret",
            "s3cret-pw",
            "rt-secret",
            access.as_str(),
            "app-key",
        ] {
            assert!(!t.contains(secret), "{secret} leaked in {t}");
        }
    }
}

#[test]
fn refreshed_tokens_survive_a_store_that_cannot_write() {
    // Auth0 has rotated the refresh token by the time the store fails: a token client still
    // gets its new tokens; a website client cannot use a cookie without a session, so 503.
    for (key, status) in [("app-key", 200), ("web-key", 503)] {
        let mut d = Driver::new(serde_json::json!({}));
        let old = jwt("auth0|u1", key);
        logged_in(&mut d, key, &old, "rt-1");
        d.writes_down = true;
        d.answers
            .push_back(token_answer(&jwt("auth0|u1", "new"), Some("rt-2")));
        let bearer = format!("Bearer {old}");
        let reply = d
            .request(
                "POST",
                "/refreshtoken",
                &[("secret", key), ("authorization", &bearer)],
                b"",
            )
            .unwrap();
        assert_eq!(reply.status, status, "{key}");
        if status == 200 {
            assert_eq!(json(&reply)["refreshToken"], "rt-2");
        }
        assert!(
            d.logs.iter().any(|l| l.level == LogLevel::Warn),
            "{key}: the failure is logged"
        );
    }
}
