//! A sample upstream that answers every request with a JSON echo of it, so tests can check
//! that pass-through requests arrive untouched.

use crate::server::{run as serve, Response};

pub fn run(host: &str, port: u16, threads: usize) -> Result<(), String> {
    serve(host, port, threads, |request| {
        Response::json(
            200,
            serde_json::json!({
                "upstream": "echo",
                "method": request.method,
                "path": request.path,
                "url": request.url,
                "query": request.query,
                "headers": request.headers.iter().map(|(n, v)| serde_json::json!([n, v])).collect::<Vec<_>>(),
                "body": String::from_utf8_lossy(&request.body),
            }),
        )
    })
}
