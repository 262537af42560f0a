//! The hold instance's context (`{"role": "hold"}`, `bodyReading: holdFilter`): the core's
//! `HoldInstance` over the two stream properties it shares with the filter.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host_action;
use auth0_filter_core::engine::{HoldHost, HoldInstance};
use auth0_filter_core::http::{HOLD_MARK, HOLD_TAKEN};

#[derive(Default)]
pub(super) struct HoldHttp {
    instance: HoldInstance,
}

struct Properties;

impl HoldHost for Properties {
    fn marked(&mut self) -> bool {
        matches!(hostcalls::get_property(vec![HOLD_MARK]), Ok(Some(_)))
    }

    fn confirm_hold(&mut self) {
        let _ = hostcalls::set_property(vec![HOLD_TAKEN], Some(b"1"));
    }
}

impl Context for HoldHttp {}

// Exported callbacks: tools/wasm-exports.json (as for the filter).
impl HttpContext for HoldHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        host_action(self.instance.on_request_headers(&mut Properties))
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        host_action(self.instance.on_rest())
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        host_action(self.instance.on_rest())
    }
}
