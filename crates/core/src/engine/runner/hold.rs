//! The hold mode (`bodyReading: holdFilter`), for platforms that cannot set
//! `allow_on_headers_stop_iteration`. The hold instance, a second instance of the module
//! configured as `{"role": "hold"}` and placed after the filter, stops exactly the requests
//! the filter marked (those whose body it reads before answering). A stop holds only the
//! stopping filter and those after it, so the filter before it still gets the body, while the
//! router never sees the request. Both sides are here.

use super::Runner;
use crate::config::BodyReading;
use crate::engine::host::{HoldHost, RequestHost, Verdict};
use crate::flows::{Action, LogLevel};
use crate::http::error::FilterError;
use crate::time::Timestamp;

/// Request headers that carry a caller's credentials besides the API-key headers.
const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "cookie"];

/// Whether a request's headers went on to the hold instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// Not held: the flag mode, or a request whose body the filter does not read.
    No,
    /// Marked for the hold instance; whether it stopped the request is checked when the body
    /// arrives.
    Marked,
    /// The hold instance confirmed it stopped the request.
    Confirmed,
}

impl Runner {
    /// In the hold mode a request whose body the filter waits for is not paused in the
    /// request-headers callback (Envoy would then withhold the body): it is marked and its
    /// headers go on to the hold instance, which stops them.
    pub(super) fn hold_instead_of_pause<H: RequestHost>(
        &mut self,
        host: &mut H,
        verdict: Verdict,
        end_of_stream: bool,
        at: Timestamp,
    ) -> Verdict {
        let hold_mode = self
            .config
            .as_ref()
            .is_some_and(|c| c.body_reading == BodyReading::HoldFilter);
        if !hold_mode || end_of_stream || self.reading_body.is_none() || verdict != Verdict::Pause {
            return verdict;
        }
        if !host.mark_for_hold() {
            host.log(LogLevel::Error, "the host refused the hold mark");
            let error = FilterError::internal("the request could not be held");
            return self.run(host, Action::Respond(error.to_reply()), true, at);
        }
        // The filter has read what it needs of the headers. Its credentials leave the header
        // map, so a chain that lacks the hold instance forwards none of them before the filter
        // notices and refuses the request.
        for name in CREDENTIAL_HEADERS
            .iter()
            .chain(crate::config::clients::API_KEY_HEADERS.iter())
        {
            host.remove_request_header(name);
        }
        self.held = Held::Marked;
        Verdict::Continue
    }

    /// The first body callback of a marked request: if no hold instance stopped its headers,
    /// they have reached the router, and the request is refused before its body follows.
    pub(super) fn hold_confirmed<H: RequestHost>(&mut self, host: &mut H) -> Option<Verdict> {
        if self.held != Held::Marked {
            return None;
        }
        self.held = Held::Confirmed;
        if host.hold_taken() {
            return None;
        }
        host.log(
            LogLevel::Error,
            "bodyReading is holdFilter but no hold instance ({\"role\": \"hold\"}) follows \
             the filter: the request was refused",
        );
        if let Some(config) = self.config.as_deref() {
            host.record(vec![crate::metrics::hold_missing(&config.stat_prefix)]);
        }
        self.reading_body = None;
        self.held = Held::No;
        let error = FilterError::internal("the request could not be held");
        let at = host.now();
        Some(self.run(host, Action::Respond(error.to_reply()), true, at))
    }
}

/// The hold instance's side of a request: it stops the requests the filter marked, headers,
/// body and trailers, and lets every other one go on.
#[derive(Default)]
pub struct HoldInstance {
    holding: bool,
}

impl HoldInstance {
    pub fn on_request_headers<H: HoldHost>(&mut self, host: &mut H) -> Verdict {
        if !host.marked() {
            return Verdict::Continue;
        }
        self.holding = true;
        // Tells the filter its headers stopped here.
        host.confirm_hold();
        Verdict::Pause
    }

    /// The verdict on the body and the trailers.
    pub fn on_rest(&self) -> Verdict {
        match self.holding {
            true => Verdict::Pause,
            false => Verdict::Continue,
        }
    }
}
