//! The hold mode (`bodyReading: holdFilter`), for platforms that cannot set
//! `allow_on_headers_stop_iteration`. The hold instance, a second instance of the module
//! configured as `{"role": "hold"}` and placed after the filter, stops exactly the requests
//! the filter marked (those whose body it reads before answering). A stop holds only the
//! stopping filter and those after it, so the filter before it still gets the body, while the
//! router never sees the request. Both sides are here.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

use super::{log, now, stats, HttpState};
use auth0_filter_core::config::BodyReading;
use auth0_filter_core::flows::{Action as FlowAction, LogLevel};
use auth0_filter_core::http::{HOLD_MARK, HOLD_TAKEN};

#[derive(Default)]
pub(super) struct HoldHttp {
    holding: bool,
}

impl Context for HoldHttp {}

// Exported callbacks: tools/wasm-exports.json (as for the filter).
impl HttpContext for HoldHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if !matches!(hostcalls::get_property(vec![HOLD_MARK]), Ok(Some(_))) {
            return Action::Continue;
        }
        self.holding = true;
        // Tells the filter its headers stopped here. If the host refuses, the filter finds no
        // confirmation and refuses the request itself.
        let _ = hostcalls::set_property(vec![HOLD_TAKEN], Some(b"1"));
        Action::Pause
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        if self.holding {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.holding {
            Action::Pause
        } else {
            Action::Continue
        }
    }
}

// The filter's side of the hold mode.

/// Request headers that carry a caller's credentials besides the API-key headers.
const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "cookie"];

/// A request the filter answers after reading its body, in the hold mode (`bodyReading:
/// holdFilter`): its headers go on to the hold instance, which stops them before the router.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// Not held: the flag mode, or a request whose body the filter does not read.
    No,
    /// Marked for the hold instance; whether it stopped the request is checked when the body
    /// arrives.
    Marked,
    /// The hold instance confirmed it stopped the request.
    Confirmed,
}

impl HttpState {
    /// In the hold mode a request whose body the filter waits for is not paused in the
    /// request-headers callback (Envoy would then withhold the body): it is marked and its
    /// headers go on to the hold instance, which stops them.
    pub(super) fn hold_instead_of_pause(&mut self, verdict: Action, end_of_stream: bool) -> Action {
        let hold_mode = self
            .config
            .as_ref()
            .is_some_and(|c| c.body_reading == BodyReading::HoldFilter);
        if !hold_mode
            || end_of_stream
            || self.reading_body.is_none()
            || !matches!(verdict, Action::Pause)
        {
            return verdict;
        }
        if hostcalls::set_property(vec![auth0_filter_core::http::HOLD_MARK], Some(b"1")).is_err() {
            log(LogLevel::Error, "the host refused the hold mark");
            let error = auth0_filter_core::http::error::FilterError::internal(
                "the request could not be held",
            );
            return self.run(FlowAction::Respond(error.to_reply()), true, now());
        }
        // The filter has read what it needs of the headers. Its credentials leave the header
        // map, so a chain that lacks the hold instance forwards none of them before the filter
        // notices and refuses the request.
        for name in CREDENTIAL_HEADERS
            .iter()
            .chain(auth0_filter_core::config::clients::API_KEY_HEADERS.iter())
        {
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
        }
        self.held = Held::Marked;
        Action::Continue
    }

    /// The first body callback of a marked request: if no hold instance stopped its headers,
    /// they have reached the router, and the request is refused before its body follows.
    pub(super) fn hold_confirmed(&mut self) -> Option<Action> {
        if self.held != Held::Marked {
            return None;
        }
        self.held = Held::Confirmed;
        if let Ok(Some(_)) = hostcalls::get_property(vec![auth0_filter_core::http::HOLD_TAKEN]) {
            return None;
        }
        log(
            LogLevel::Error,
            "bodyReading is holdFilter but no hold instance ({\"role\": \"hold\"}) follows \
             the filter: the request was refused",
        );
        if let Some(config) = self.config.as_deref() {
            stats::apply(vec![auth0_filter_core::metrics::hold_missing(
                &config.stat_prefix,
            )]);
        }
        self.reading_body = None;
        self.held = Held::No;
        let error =
            auth0_filter_core::http::error::FilterError::internal("the request could not be held");
        Some(self.run(FlowAction::Respond(error.to_reply()), true, now()))
    }
}
