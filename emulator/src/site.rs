//! The sample login site that the echo upstream serves next to its echo (`make run` and
//! docker-compose.yml reach it through Envoy's catch-all route, where the filter is off): `/`
//! with a "Log in" link to the gateway's `/authorize?redirect=/`, and `/web-login/callback`
//! (the website client's `redirectUrl`), whose script posts `{code, state}` to `/oauth/token`
//! and shows the `/userinfo` answer. The pages are in `emulator/site/`, built into the binary.

use crate::server::{Request, Response};

const INDEX: &str = include_str!("../site/index.html");
const CALLBACK: &str = include_str!("../site/callback.html");
const SCRIPT: &str = include_str!("../site/site.js");

/// Scripts only from the site itself (no inline script), requests only to it, never framed.
const POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The site's answer to `request`, if it is one of its pages.
pub fn page(request: &Request) -> Option<Response> {
    if request.method != "GET" && request.method != "HEAD" {
        return None;
    }
    let (content_type, body) = match request.path.as_str() {
        "/" => ("text/html; charset=utf-8", INDEX),
        "/web-login/callback" => ("text/html; charset=utf-8", CALLBACK),
        "/web-login/site.js" => ("text/javascript; charset=utf-8", SCRIPT),
        _ => return None,
    };
    Some(
        Response::text(200, content_type, body)
            .with_header("content-security-policy", POLICY)
            .with_header("cache-control", "no-store")
            .with_header("x-content-type-options", "nosniff"),
    )
}
