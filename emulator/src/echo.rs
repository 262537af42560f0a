//! A sample upstream that answers every request with a JSON echo of it, so tests can check
//! that pass-through requests arrive untouched; but `GET /`, `/web-login/callback` and
//! `/web-login/site.js`, which are the sample login site's pages (`site`).
//!
//! The echo also shows the headers as a WSGI application reads them (`wsgi`: `HTTP_` + name
//! upper-cased with `-` as `_`, repeated names joined with `,`, as CGI, PHP and Rack do too),
//! so a test can tell whether any spelling of a header reached the application as a given name.
//! It keeps the method and target of every request whose head it received, with or without a
//! body (a request Envoy forwarded and then reset is kept too): `GET /__echo/received` answers
//! them, `GET /__echo/received-headers` the same with each one's header names (these two
//! requests are not kept), so a test can check that the requests the filter answers never
//! reach the upstream, not even their headers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::server::{run_observed as serve, Head, Request, Response};

/// At most this many requests are kept (the oldest go first).
const KEPT: usize = 10_000;

/// The headers as a WSGI `environ` holds them.
pub fn wsgi_environ(headers: &[(String, String)]) -> BTreeMap<String, String> {
    let mut environ: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let key = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
        environ
            .entry(key)
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    environ
}

fn echo(request: &Request) -> Response {
    Response::json(
        200,
        serde_json::json!({
            "upstream": "echo",
            "method": request.method,
            "path": request.path,
            "url": request.url,
            "query": request.query,
            "headers": request.headers.iter().map(|(n, v)| serde_json::json!([n, v])).collect::<Vec<_>>(),
            "wsgi": wsgi_environ(&request.headers),
            "body": String::from_utf8_lossy(&request.body),
        }),
    )
}

/// A request's `METHOD target` and header names.
type ReceivedHead = (String, Vec<String>);

/// The echo's own routes, which are not kept.
const RECEIVED: &str = "/__echo/received";
const RECEIVED_HEADERS: &str = "/__echo/received-headers";

pub fn run(host: &str, port: u16, threads: usize) -> Result<(), String> {
    let received: Arc<Mutex<Vec<ReceivedHead>>> = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&received);
    let on_head = move |head: &Head| {
        if head.method == "GET" && (head.url == RECEIVED || head.url == RECEIVED_HEADERS) {
            return;
        }
        let Ok(mut kept) = kept.lock() else { return };
        if kept.len() >= KEPT {
            kept.remove(0);
        }
        let names = head.headers.iter().map(|(n, _)| n.clone()).collect();
        kept.push((format!("{} {}", head.method, head.url), names));
    };
    serve(host, port, threads, on_head, move |request| {
        if request.method == "GET" && (request.url == RECEIVED || request.url == RECEIVED_HEADERS) {
            let Ok(received) = received.lock() else {
                return Response::json(500, serde_json::json!({"error": "lock"}));
            };
            let list: Vec<serde_json::Value> = received
                .iter()
                .map(|(line, names)| match request.url == RECEIVED {
                    true => serde_json::json!(line),
                    false => serde_json::json!([line, names]),
                })
                .collect();
            return Response::json(200, serde_json::json!(list));
        }
        crate::site::page(request).unwrap_or_else(|| echo(request))
    })
}

#[cfg(test)]
mod tests;
