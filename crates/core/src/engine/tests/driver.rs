//! The engine tests' worker: requests driven through the `Runner` by a host in memory, with
//! an in-memory session store, scripted Auth0 answers and Redis behind Webdis in memory.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use base64::Engine;

use super::*;
use crate::digest::SessionKey;
use crate::store::{JwksCache, ManagementTokenLease, SessionRecord, Sessions};
use crate::testing::{config_with, FakeHost, FlakyKv, MemKv};

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

/// A worker's requests, each driven through the `Runner` by a host in memory that answers its
/// callouts (Auth0 from a script, Webdis from an in-memory Redis) and wakes it at once.
pub(super) struct Driver {
    pub(super) config: Config,
    pub(super) kv: MemKv,
    pub(super) answers: VecDeque<CalloutResult>,
    /// The Auth0 calls made (Webdis calls are answered without being recorded).
    pub(super) callouts: Vec<Callout>,
    pub(super) logs: Vec<LogLine>,
    /// Every stat change the requests asked for.
    pub(super) metrics: Vec<crate::metrics::MetricEvent>,
    /// The session store (sessions, the management token) cannot be reached.
    pub(super) store_down: bool,
    /// Writes to the session store fail, reads work.
    pub(super) writes_down: bool,
    /// When a request waits for the Management API token, "another worker" saves this one.
    pub(super) token_from_elsewhere: Option<String>,
    pub(super) waits: usize,
    entropy_counter: u64,
    pub(super) verifier: Rc<RefCell<crate::tokens::verifier::Verifier>>,
    /// The identity headers of the last request forwarded upstream.
    pub(super) forwarded: Option<Vec<(String, String)>>,
    /// Every header of the last request forwarded upstream, as the host holds them then.
    pub(super) upstream_headers: Vec<(String, String)>,
    /// With the Redis backend configured, Webdis calls are answered by this in-memory Redis.
    pub(super) redis: crate::testing::FakeRedis,
    /// The next Auth0 call first ends this token's session, like a logout on another replica
    /// landing while Auth0 answers.
    pub(super) end_session_during_auth0: Option<String>,
    /// The worker's clock (`NOW` unless a test moves it on).
    pub(super) now: Timestamp,
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
            upstream_headers: vec![],
            redis: Default::default(),
            end_session_during_auth0: None,
            now: NOW,
        }
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

    /// One request, from its headers (and body, if any) to its reply; `None` when it went
    /// upstream.
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
        self.entropy_counter += 1;
        let kv = FlakyKv {
            kv: &self.kv,
            down: self.store_down,
            writes_down: self.writes_down,
        };
        let mut host = FakeHost::with_request(kv, self.now, &all);
        host.body = body.to_vec();
        host.client_address = Some("198.51.100.23:50314".into());
        host.entropy = Some(self.entropy_counter);
        let config = Rc::new(self.config.clone());
        let mut runner = Runner::new(Some(config), Rc::clone(&self.verifier));
        let mut verdict = runner.on_request_headers(&mut host, body.is_empty());
        if !body.is_empty() && host.reply.is_none() {
            verdict = runner.on_request_body(&mut host, body.len(), true);
        }
        for _ in 0..80 {
            if host.reply.is_some() {
                break;
            }
            if let Some((_, callout)) = host.calls.front().cloned() {
                let answer = if callout.cluster == "webdis" {
                    *self.redis.now.borrow_mut() = self.now.secs;
                    self.redis.answer(&callout)
                } else {
                    if let Some(token) = self.end_session_during_auth0.take() {
                        let key = SessionKey::for_token(&token);
                        let sessions = Sessions::new(&self.kv, &self.config.session_scope);
                        sessions.delete(&key, NOW.secs + 600).unwrap();
                        self.redis.forget(&format!("s:{}", key.as_str()));
                    }
                    self.callouts.push(callout);
                    self.answers.pop_front().expect("a scripted Auth0 answer")
                };
                verdict = host.answer(&mut runner, answer);
            } else if let Some(due) = host.wakes.pop() {
                let millis = due - self.now.millis();
                assert!(millis > 0 && millis < 1_000);
                self.waits += 1;
                if let Some(token) = self.token_from_elsewhere.take() {
                    let lease = ManagementTokenLease::new(&self.kv, &self.config.session_scope);
                    lease.save(&token, NOW.secs + 3_600).unwrap();
                }
                verdict = runner.on_wake(&mut host);
            } else {
                break;
            }
        }
        self.logs.append(&mut host.logs);
        self.metrics.append(&mut host.metrics);
        if let Some(reply) = host.reply {
            return Some(reply);
        }
        assert_ne!(verdict, Verdict::Pause, "the exchange did not finish");
        self.upstream_headers = host.headers.clone().unwrap_or_default();
        if !host.set_headers.is_empty() {
            self.forwarded = Some(host.set_headers);
        }
        None
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

pub(super) fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_slice(&reply.body).unwrap()
}

pub(super) const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
pub(super) const LOGIN: &[u8] = b"grant_type=password&username=alice&password=s3cret-pw";
