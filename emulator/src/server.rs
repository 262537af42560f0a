//! A small HTTP/1.1 server (thread per connection, keep-alive, Content-Length and chunked
//! bodies), and the request/response values handlers use.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use serde_json::json;

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
    /// A fault: announce the whole body's length but send only this many bytes of it, then
    /// close the connection (a truncated answer).
    pub truncate_to: Option<usize>,
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
            truncate_to: None,
        }
    }

    pub fn text(status: u16, content_type: &str, body: &str) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
            truncate_to: None,
        }
    }

    pub fn redirect(location: &str) -> Response {
        Response {
            status: 302,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
            truncate_to: None,
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

/// Serves HTTP/1.1 on `host` (127.0.0.1 unless `--host` says otherwise, e.g. 0.0.0.0 in a
/// container) with one thread per connection, so keep-alive connections (Envoy keeps its
/// upstream connections open) never starve a new one. `threads` is accepted for
/// compatibility and ignored.
pub fn run<F>(host: &str, port: u16, threads: usize, handler: F) -> Result<(), String>
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    run_observed(host, port, threads, |_: &Head| {}, handler)
}

/// A request's method, target and headers, as soon as its head is read (before its body).
pub struct Head<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(String, String)],
}

/// `run`, also telling `on_head` of every request as soon as its head is read: a request whose
/// body never comes (its sender reset it) is seen there and nowhere else.
pub fn run_observed<H, F>(
    host: &str,
    port: u16,
    _threads: usize,
    on_head: H,
    handler: F,
) -> Result<(), String>
where
    H: Fn(&Head) + Send + Sync + 'static,
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let listener = TcpListener::bind((host, port))
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
    let handlers = Arc::new((on_head, handler));
    eprintln!("auth0-emulator listening on {host}:{port}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let handlers = Arc::clone(&handlers);
        std::thread::spawn(move || {
            let (on_head, handler) = handlers.as_ref();
            let _ = serve_connection(stream, on_head, handler);
        });
    }
    Ok(())
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 4 * 1024 * 1024;

fn serve_connection<H, F>(stream: TcpStream, on_head: &H, handler: &F) -> std::io::Result<()>
where
    H: Fn(&Head),
    F: Fn(&Request) -> Response,
{
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut head = Vec::new();
        loop {
            let read = reader.read_until(b'\n', &mut head)?;
            if read == 0 {
                return Ok(());
            }
            if head == b"\r\n" {
                head.clear();
            }
            if head.ends_with(b"\r\n\r\n") {
                break;
            }
            if head.len() > MAX_HEAD {
                return write_simple(&mut writer, 431);
            }
        }
        let mut header_slots = [httparse::EMPTY_HEADER; 96];
        let mut parsed = httparse::Request::new(&mut header_slots);
        if !matches!(parsed.parse(&head), Ok(httparse::Status::Complete(_))) {
            return write_simple(&mut writer, 400);
        }
        let method = parsed.method.unwrap_or("GET").to_string();
        let url = parsed.path.unwrap_or("/").to_string();
        let keep_alive_default = parsed.version == Some(1);
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        on_head(&Head {
            method: &method,
            url: &url,
            headers: &headers,
        });
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_ascii_lowercase())
        };
        let body = if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
            read_chunked(&mut reader)?
        } else {
            let length: usize = header("content-length")
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(0);
            if length > MAX_BODY {
                return write_simple(&mut writer, 413);
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body)?;
            body
        };
        let close = match header("connection") {
            Some(c) if c.contains("close") => true,
            Some(c) if c.contains("keep-alive") => false,
            _ => !keep_alive_default,
        };
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (
                p.to_string(),
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect(),
            ),
            None => (url.clone(), BTreeMap::new()),
        };
        let request = Request {
            method,
            url,
            path,
            query,
            headers,
            body,
        };
        let response = handler(&request);
        write_response(&mut writer, &response, close, request.method == "HEAD")?;
        // A truncated answer can only end by closing the connection.
        if close || response.truncate_to.is_some() {
            return Ok(());
        }
    }
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk");
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| invalid())?;
        if size == 0 {
            // Trailers, then the final empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer == "\r\n" {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid());
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_response(
    writer: &mut impl Write,
    response: &Response,
    close: bool,
    head_only: bool,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    )
    .into_bytes();
    for (name, value) in &response.headers {
        if !value.contains(['\r', '\n']) {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    // 204 and 304 carry no body and no length (RFC 9110 §8.6).
    if response.status != 204 && response.status != 304 {
        out.extend_from_slice(format!("content-length: {}\r\n", response.body.len()).as_bytes());
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only && response.status != 204 && response.status != 304 {
        let sent = response
            .truncate_to
            .map_or(response.body.len(), |n| n.min(response.body.len()));
        out.extend_from_slice(response.body.get(..sent).unwrap_or_default());
    }
    writer.write_all(&out)?;
    writer.flush()
}

fn write_simple(writer: &mut impl Write, status: u16) -> std::io::Result<()> {
    write_response(
        writer,
        &Response::text(status, "text/plain", reason(status)),
        true,
        false,
    )
}

#[cfg(test)]
mod tests;

/// Auth0's Management API error body.
pub fn mgmt_error(status: u16, message: &str, error_code: &str) -> Response {
    let error = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    Response::json(
        status,
        json!({"statusCode": status, "error": error, "message": message, "errorCode": error_code}),
    )
}

pub fn no_content() -> Response {
    Response {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
        truncate_to: None,
    }
}
