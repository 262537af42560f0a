//! Plain values that describe HTTP: the request head the core decides on, the reply the filter
//! sends, and the callout it asks the host to make. No proxy-wasm types here.

pub mod body;
pub mod cookie;
pub mod error;
pub mod host;
pub mod multipart;
pub mod path;
pub mod strict_json;

/// The downstream request as the core sees it. Header names are lower-case (HTTP/2 style, as
/// Envoy hands them over); a name may repeat.
#[derive(Debug, Clone, Default)]
pub struct RequestHead {
    pub method: String,
    /// `:path` as received, query string included.
    pub path: String,
    pub scheme: String,
    pub authority: String,
    /// The other headers' names and values, one after another in one buffer: every request
    /// the filter answers or guards builds a head, and one allocation costs less than two per
    /// header.
    text: String,
    /// Where each header is in `text`: name start, value start, value end.
    spans: Vec<(usize, usize, usize)>,
    /// IP address of the downstream peer (Envoy's `source.address`, port removed).
    pub client_ip: Option<String>,
}

impl RequestHead {
    /// Builds a head from a header list, pseudo-headers included.
    #[cfg(test)]
    pub fn from_headers(headers: &[(&str, &str)]) -> Self {
        Self::from_pairs(
            headers
                .iter()
                .map(|(name, value)| (*name, value.as_bytes())),
        )
    }

    /// Builds a head from Envoy's header list as read (values not always UTF-8: lossily
    /// converted), pseudo-headers included.
    pub fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a [u8])> + Clone) -> Self {
        let (count, size) = pairs.clone().fold((0, 0), |(count, size), (name, value)| {
            (count + 1, size + name.len() + value.len())
        });
        let mut head = RequestHead {
            text: String::with_capacity(size),
            spans: Vec::with_capacity(count),
            ..RequestHead::default()
        };
        for (name, value) in pairs {
            // `from_utf8` checks ASCII a word at a time; the lossy path only for bad bytes.
            match std::str::from_utf8(value) {
                Ok(value) => head.push_header(name, value),
                Err(_) => head.push_header(name, &String::from_utf8_lossy(value)),
            }
        }
        head
    }

    /// Adds a header (a pseudo-header sets its field). Pseudo-header names are matched as
    /// Envoy hands them over, in lower case; other names are stored lower-cased.
    pub fn push_header(&mut self, name: &str, value: &str) {
        let field = match name {
            ":method" => &mut self.method,
            ":path" => &mut self.path,
            ":scheme" => &mut self.scheme,
            ":authority" => &mut self.authority,
            _ => {
                let start = self.text.len();
                self.text.push_str(name);
                if let Some(pushed) = self.text.get_mut(start..) {
                    pushed.make_ascii_lowercase();
                }
                let value_start = self.text.len();
                self.text.push_str(value);
                self.spans.push((start, value_start, self.text.len()));
                return;
            }
        };
        *field = value.to_string();
    }

    /// Every header but the pseudo-headers, names lower-cased, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans.iter().filter_map(|&(name, value, end)| {
            Some((self.text.get(name..value)?, self.text.get(value..end)?))
        })
    }

    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        let &(_, value, end) = self.spans.iter().find(|span| self.is_named(span, name))?;
        self.text.get(value..end)
    }

    /// The value of a header that must not repeat, if present. A repeated one is 400: the
    /// filter would read one copy and the upstream (or another filter) maybe the other.
    pub fn single_header(
        &self,
        name: &str,
    ) -> Result<Option<&str>, crate::http::error::FilterError> {
        let mut named = self.spans.iter().filter(|span| self.is_named(span, name));
        let first = named.next();
        if named.next().is_some() {
            return Err(crate::http::error::FilterError::bad_request(format!(
                "the `{}` header is given more than once",
                crate::http::error::sanitize(name)
            )));
        }
        Ok(first.and_then(|&(_, value, end)| self.text.get(value..end)))
    }

    /// Every value of a header, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.spans
            .iter()
            .filter(move |span| self.is_named(span, name))
            .filter_map(|&(_, value, end)| self.text.get(value..end))
    }

    /// Whether a header's name is `name`, compared as bytes (`eq_ignore_ascii_case` looks at
    /// the lengths first): a protected request looks up half a dozen headers, each a scan of
    /// the whole head, and only a matching header's value is sliced out.
    fn is_named(&self, &(start, value, _): &(usize, usize, usize), name: &str) -> bool {
        self.text
            .as_bytes()
            .get(start..value)
            .is_some_and(|stored| stored.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        split_path(&self.path).0
    }

    /// The raw query string (without `?`), if any.
    pub fn query(&self) -> Option<&str> {
        split_path(&self.path).1
    }

    /// The `Bearer` token of the `Authorization` header, if any. A repeated `Authorization`
    /// presents none: which copy the upstream would read is not known, so neither vouches.
    pub fn bearer_token(&self) -> Option<&str> {
        bearer_of(self.single_header("authorization").ok()??)
    }
}

/// The token of an `Authorization: Bearer` value.
pub fn bearer_of(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The Bearer token of a request's header list when it is the request's only credential: one
/// `Authorization` header and no `Cookie` header (a `sid` cookie would win over it). `None`
/// does not mean there is no token, only that `RequestHead` has to tell.
pub fn sole_bearer<'a>(pairs: &[(&str, &'a [u8])]) -> Option<&'a str> {
    let mut token = None;
    for (name, value) in pairs {
        if name.eq_ignore_ascii_case("cookie") {
            return None;
        }
        if name.eq_ignore_ascii_case("authorization") {
            if token.is_some() {
                return None;
            }
            token = Some(bearer_of(std::str::from_utf8(value).ok()?)?);
        }
    }
    token
}

/// The IP of an Envoy address (`1.2.3.4:5678`, `[::1]:5678`), or `None` if it is not one.
pub fn ip_of_address(address: &str) -> Option<String> {
    let ip = if let Some(rest) = address.strip_prefix('[') {
        rest.split(']').next()?
    } else if address.matches(':').count() == 1 {
        address.split(':').next()?
    } else {
        address
    };
    let valid = !ip.is_empty()
        && ip.len() <= 45
        && ip
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':');
    valid.then(|| ip.to_string())
}

pub fn split_path(path: &str) -> (&str, Option<&str>) {
    match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    }
}

/// True when a value may be sent as an HTTP header value: no CR, LF, NUL or other control
/// characters except horizontal tab.
pub fn is_safe_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// A response the filter answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut reply = Reply::new(status);
        reply.push_header("content-type", "application/json");
        reply.body = value.to_string().into_bytes();
        reply
    }

    /// Adds a header. Values are produced by this crate after validation; a value that would
    /// still carry a control character is dropped rather than sent (no header injection).
    pub fn push_header(&mut self, name: &str, value: &str) {
        if is_safe_header_value(value) {
            self.headers.push((name.to_string(), value.to_string()));
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP call to Auth0 (or another configured upstream) made through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    pub cluster: String,
    pub method: String,
    pub path: String,
    pub authority: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
}

/// The stream property (Envoy filter state) with which the filter, in the hold mode, marks a
/// request whose body it reads: the hold instance after it stops exactly those requests.
pub const HOLD_MARK: &str = "auth0_filter_hold";
/// The stream property the hold instance sets when it stops a marked request, so the filter
/// can tell that its headers did not go on to the router.
pub const HOLD_TAKEN: &str = "auth0_filter_held";

/// The tag of a request's log lines: its `x-request-id` (as sent or as Envoy generated it,
/// cut to 64 characters of `[A-Za-z0-9._:-]`, anything else shown as `_`, so a client cannot
/// forge log lines) and the route's name.
pub fn log_tag(request_id: &str, route: &str) -> String {
    let id: String = request_id
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let id = if id.is_empty() { "-" } else { id.as_str() };
    format!("[request_id={id} route={route}]")
}

/// Envoy's serialised header map, as the proxy-wasm ABI hands it over
/// (`proxy_get_header_map_pairs`): a little-endian `u32` count, a `u32` name length and value
/// length per header, then each name and each value followed by a NUL. Borrowed from the
/// buffer: a request the filter lets through costs no allocation per header. `None` when the
/// buffer does not follow the format; a name that is not UTF-8 (Envoy only accepts token
/// characters) drops that header.
pub fn header_pairs(buffer: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    let word = |at: usize| -> Option<usize> {
        let bytes: [u8; 4] = buffer.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(bytes)).ok()
    };
    let count = word(0)?;
    let mut lengths_at = 4usize;
    let mut data_at = count.checked_mul(8)?.checked_add(4)?;
    // A count the buffer cannot hold is refused before anything is allocated for it.
    if data_at > buffer.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let (name_len, value_len) = (word(lengths_at)?, word(lengths_at.checked_add(4)?)?);
        lengths_at = lengths_at.checked_add(8)?;
        let name = nul_terminated(buffer, data_at, name_len)?;
        let value_at = data_at.checked_add(name_len)?.checked_add(1)?;
        let value = nul_terminated(buffer, value_at, value_len)?;
        data_at = value_at.checked_add(value_len)?.checked_add(1)?;
        if let Ok(name) = std::str::from_utf8(name) {
            pairs.push((name, value));
        }
    }
    Some(pairs)
}

/// The other side of `header_pairs`: a header map in the ABI's format, as Envoy writes it (for
/// the tests and the `header_map` fuzz target). `None` when a count or length exceeds `u32`.
pub fn serialise_header_map(headers: &[(&str, &[u8])]) -> Option<Vec<u8>> {
    let word = |n: usize| u32::try_from(n).ok().map(u32::to_le_bytes);
    let mut out = word(headers.len())?.to_vec();
    for (name, value) in headers {
        out.extend(word(name.len())?);
        out.extend(word(value.len())?);
    }
    for (name, value) in headers {
        out.extend(name.as_bytes());
        out.push(0);
        out.extend(*value);
        out.push(0);
    }
    Some(out)
}

/// `len` bytes at `at`, which the buffer must follow with a NUL.
fn nul_terminated(buffer: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    let end = at.checked_add(len)?;
    (buffer.get(end) == Some(&0)).then_some(())?;
    buffer.get(at..end)
}

/// What came back from a callout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalloutResult {
    Answered {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The host reported no response (connection failure, reset, or timeout).
    Failed { elapsed_ms: u64 },
}

impl CalloutResult {
    pub fn header(&self, name: &str) -> Option<&str> {
        match self {
            CalloutResult::Answered { headers, .. } => headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
            CalloutResult::Failed { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests;
