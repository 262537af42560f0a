//! A host in memory for the engine's `Runner` and `Maintenance`: it performs each call the way
//! the proxy would, records it, and counts the calls that cost a request something.

use std::collections::VecDeque;
use std::time::Duration;

use crate::engine::{HoldHost, Host, RequestHost, RootHost, Runner, Verdict};
use crate::flows::{LogLevel, LogLine};
use crate::http::{Callout, CalloutResult, Reply};
use crate::metrics::MetricEvent;
use crate::store::kv::{CasKv, KvError};
use crate::time::Timestamp;

/// How many times each host call that costs a request something was made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reads {
    pub(crate) headers: usize,
    pub(crate) clock: usize,
    pub(crate) address: usize,
    pub(crate) random: usize,
    pub(crate) body: usize,
}

pub(crate) struct FakeHost<K> {
    pub(crate) kv: K,
    pub(crate) now: Timestamp,
    /// The request's header map; `None`: the host refuses to read it.
    pub(crate) headers: Option<Vec<(String, String)>>,
    pub(crate) body: Vec<u8>,
    pub(crate) client_address: Option<String>,
    /// Seeds the random bytes (different for every request, like the host's); `None`: the
    /// host has none.
    pub(crate) entropy: Option<u64>,
    pub(crate) refuse_callouts: bool,
    pub(crate) refuse_hold_mark: bool,
    /// The hold instance's confirmation, as the filter reads it.
    pub(crate) hold_taken: bool,
    /// The stream property the filter sets for the hold instance.
    pub(crate) hold_marked: bool,
    pub(crate) reply: Option<Reply>,
    /// Headers the filter set on the request, in order.
    pub(crate) set_headers: Vec<(String, String)>,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) metrics: Vec<MetricEvent>,
    /// Callouts made and not answered yet, with their tokens.
    pub(crate) calls: VecDeque<(u32, Callout)>,
    /// The wake-ups asked for (unix ms), not delivered yet.
    pub(crate) wakes: Vec<u64>,
    pub(crate) tick: Option<Duration>,
    pub(crate) reads: Reads,
    /// The callout answer being handed over.
    answer: Option<CalloutResult>,
    next_token: u32,
}

impl<K: CasKv> FakeHost<K> {
    pub(crate) fn new(kv: K, now: Timestamp) -> Self {
        FakeHost {
            kv,
            now,
            headers: Some(Vec::new()),
            body: Vec::new(),
            client_address: None,
            entropy: Some(0),
            refuse_callouts: false,
            refuse_hold_mark: false,
            hold_taken: false,
            hold_marked: false,
            reply: None,
            set_headers: Vec::new(),
            logs: Vec::new(),
            metrics: Vec::new(),
            calls: VecDeque::new(),
            wakes: Vec::new(),
            tick: None,
            reads: Reads::default(),
            answer: None,
            next_token: 1,
        }
    }

    /// A request with these headers (pseudo-headers included).
    pub(crate) fn with_request(kv: K, now: Timestamp, headers: &[(&str, &str)]) -> Self {
        let mut host = FakeHost::new(kv, now);
        host.headers = Some(
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        );
        host
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .as_ref()?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The callout answer the next `callout_headers` and `callout_body` read.
    pub(crate) fn set_answer(&mut self, result: CalloutResult) {
        self.answer = Some(result);
    }

    /// Hands `runner` the answer to its oldest callout, as the proxy reports it: the clock
    /// moves on by a failed call's `elapsed_ms` for the time of that event, since the runner
    /// measures the wait itself.
    pub(crate) fn answer(&mut self, runner: &mut Runner, result: CalloutResult) -> Verdict {
        let (num_headers, body_size) = match &result {
            CalloutResult::Answered { headers, body, .. } => (headers.len() + 1, body.len()),
            CalloutResult::Failed { .. } => (0, 0),
        };
        let before = self.now;
        if let CalloutResult::Failed { elapsed_ms } = &result {
            let at = before.millis() + elapsed_ms;
            self.now = Timestamp {
                secs: at / 1_000,
                nanos: (at % 1_000) as u32 * 1_000_000,
            };
        }
        self.calls.pop_front().expect("a callout to answer");
        self.set_answer(result);
        let verdict = runner.on_callout_answer(self, num_headers, body_size);
        self.answer = None;
        self.now = before;
        verdict
    }
}

impl<K: CasKv> Host for FakeHost<K> {
    type Kv = K;

    fn now(&mut self) -> Timestamp {
        self.reads.clock += 1;
        self.now
    }

    fn shared_data(&self) -> &K {
        &self.kv
    }

    fn dispatch(&mut self, callout: &Callout) -> Result<u32, String> {
        if self.refuse_callouts {
            return Err("BadArgument".into());
        }
        let token = self.next_token;
        self.next_token += 1;
        self.calls.push_back((token, callout.clone()));
        Ok(token)
    }

    fn callout_headers(&mut self) -> Vec<(String, String)> {
        match &self.answer {
            Some(CalloutResult::Answered {
                status, headers, ..
            }) => {
                let mut all = vec![(":status".to_string(), status.to_string())];
                all.extend(headers.iter().cloned());
                all
            }
            _ => panic!("no answer maps without an answer"),
        }
    }

    fn callout_body(&mut self, size: usize) -> Vec<u8> {
        match &self.answer {
            Some(CalloutResult::Answered { body, .. }) => body[..size.min(body.len())].to_vec(),
            _ => panic!("no answer body without an answer"),
        }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.logs.push(LogLine {
            level,
            message: message.to_string(),
        });
    }

    fn record(&mut self, metrics: Vec<MetricEvent>) {
        self.metrics.extend(metrics);
    }
}

impl<K: CasKv> RequestHost for FakeHost<K> {
    fn request_headers(&mut self) -> Option<Vec<u8>> {
        self.reads.headers += 1;
        let headers = self.headers.as_ref()?;
        let pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        crate::http::serialise_header_map(&pairs)
    }

    fn set_request_header(&mut self, name: &str, value: &str) {
        self.remove_request_header(name);
        if let Some(headers) = self.headers.as_mut() {
            headers.push((name.to_string(), value.to_string()));
        }
        self.set_headers.push((name.to_string(), value.to_string()));
    }

    fn remove_request_header(&mut self, name: &str) {
        if let Some(headers) = self.headers.as_mut() {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
    }

    fn request_body(&mut self, size: usize) -> Vec<u8> {
        self.reads.body += 1;
        self.body[..size.min(self.body.len())].to_vec()
    }

    fn send_reply(&mut self, reply: &Reply) -> Result<(), String> {
        assert!(self.reply.is_none(), "a second reply: {reply:?}");
        self.reply = Some(reply.clone());
        Ok(())
    }

    fn client_address(&mut self) -> Option<String> {
        self.reads.address += 1;
        self.client_address.clone()
    }

    fn fill_random(&mut self, bytes: &mut [u8]) -> bool {
        self.reads.random += 1;
        let Some(seed) = self.entropy else {
            return false;
        };
        for (i, chunk) in bytes.chunks_mut(32).enumerate() {
            let block =
                hmac_sha256::Hash::hash(&[seed.to_le_bytes(), (i as u64).to_le_bytes()].concat());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        true
    }

    fn wake_at(&mut self, due_ms: u64) {
        self.wakes.push(due_ms);
    }

    fn mark_for_hold(&mut self) -> bool {
        self.hold_marked = !self.refuse_hold_mark;
        self.hold_marked
    }

    fn hold_taken(&mut self) -> bool {
        self.hold_taken
    }
}

impl<K: CasKv> RootHost for FakeHost<K> {
    fn set_tick_period(&mut self, period: Duration) {
        self.tick = Some(period);
    }
}

impl<K> HoldHost for FakeHost<K> {
    fn marked(&mut self) -> bool {
        self.hold_marked
    }

    fn confirm_hold(&mut self) {
        self.hold_taken = true;
    }
}

/// A shared store that can be made unreachable, or read-only, for the session and lease
/// records. The tenants' JWKS stay readable: they live in the proxy's shared data whatever the
/// session store, and the tests that take the store down mean the session store.
pub(crate) struct FlakyKv<'a, K> {
    pub(crate) kv: &'a K,
    pub(crate) down: bool,
    pub(crate) writes_down: bool,
}

impl<K: CasKv> FlakyKv<'_, K> {
    fn affected(&self, key: &str) -> bool {
        !key.contains("jwks/")
    }
}

impl<K: CasKv> CasKv for FlakyKv<'_, K> {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), KvError> {
        if self.down && self.affected(key) {
            return Err(KvError::Failed("down".into()));
        }
        self.kv.get(key)
    }

    fn set(&self, key: &str, value: Option<&[u8]>, cas: Option<u32>) -> Result<(), KvError> {
        if (self.down || self.writes_down) && self.affected(key) {
            return Err(KvError::Failed("down".into()));
        }
        self.kv.set(key, value, cas)
    }
}
