//! A small threaded HTTP server over tiny_http, and the request/response values handlers use.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

pub struct Request {
    pub method: String,
    /// The request target as received, query string included.
    pub url: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Form or JSON body fields as strings (Auth0 accepts both on its token endpoints).
    pub fn fields(&self) -> Result<BTreeMap<String, String>, String> {
        let content_type = self
            .header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("application/json") {
            let value: serde_json::Value = serde_json::from_slice(&self.body)
                .map_err(|_| "malformed JSON body".to_string())?;
            let object = value.as_object().ok_or("JSON body must be an object")?;
            Ok(object
                .iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(s) => Some((k.clone(), s.clone())),
                    serde_json::Value::Bool(b) => Some((k.clone(), b.to_string())),
                    serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
                    _ => None,
                })
                .collect())
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            Ok(url::form_urlencoded::parse(&self.body)
                .into_owned()
                .collect())
        } else {
            Err("Content-Type must be application/x-www-form-urlencoded or application/json".into())
        }
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: value.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, content_type: &str, body: &str) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn redirect(location: &str) -> Response {
        Response {
            status: 302,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
        }
    }

    /// Auth0 Authentication API error: `{"error": ..., "error_description": ...}`.
    pub fn auth_error(status: u16, error: &str, description: &str) -> Response {
        Response::json(
            status,
            serde_json::json!({"error": error, "error_description": description}),
        )
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub fn run<F>(port: u16, threads: usize, handler: F) -> Result<(), String>
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let server = tiny_http::Server::http(("127.0.0.1", port))
        .map_err(|e| format!("cannot listen on {port}: {e}"))?;
    let server = Arc::new(server);
    let handler = Arc::new(handler);
    eprintln!("auth0-emulator listening on 127.0.0.1:{port}");
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let server = Arc::clone(&server);
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || loop {
                let Ok(mut raw) = server.recv() else { return };
                let url = raw.url().to_string();
                let (path, query) = match url.split_once('?') {
                    Some((p, q)) => (
                        p.to_string(),
                        url::form_urlencoded::parse(q.as_bytes())
                            .into_owned()
                            .collect(),
                    ),
                    None => (url.clone(), BTreeMap::new()),
                };
                let headers = raw
                    .headers()
                    .iter()
                    .map(|h| {
                        (
                            h.field.as_str().as_str().to_ascii_lowercase(),
                            h.value.as_str().to_string(),
                        )
                    })
                    .collect();
                let mut body = Vec::new();
                let _ = raw.as_reader().take(2 * 1024 * 1024).read_to_end(&mut body);
                let request = Request {
                    method: raw.method().as_str().to_string(),
                    url: url.clone(),
                    path,
                    query,
                    headers,
                    body,
                };
                let response = handler(&request);
                let mut out =
                    tiny_http::Response::from_data(response.body).with_status_code(response.status);
                for (name, value) in response.headers {
                    if let Ok(header) =
                        tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                    {
                        out.add_header(header);
                    }
                }
                let _ = raw.respond(out);
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}
