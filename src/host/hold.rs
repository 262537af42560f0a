//! The hold instance: a second instance of the module, configured as `{"role": "hold"}` and
//! placed after the filter, for platforms that cannot set `allow_on_headers_stop_iteration`.
//! It stops exactly the requests the filter marked (those whose body it reads before
//! answering). A stop holds only the stopping filter and those after it, so the filter before
//! it still gets the body, while the router never sees the request.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::http::{HOLD_MARK, HOLD_TAKEN};

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
