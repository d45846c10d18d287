//! HTTP/1.1 on the wire: a request's head written into a buffer, a response's head parsed
//! (with `httparse`) and its body's framing decided as RFC 9112 §6.3 says (chunked bodies are
//! `chunked.rs`'s). No I/O here, so every rule is unit-tested on bytes.

use http::Method;
use http::header::{HeaderName, HeaderValue};

use super::headers::{Field, Fields, Notable};

/// The most header fields a response may have, and the most bytes its head may take.
pub const MAX_FIELDS: usize = 128;
pub const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("invalid HTTP response: {0}")]
    Invalid(httparse::Error),
    #[error("invalid HTTP response: head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("invalid HTTP response: bad Content-Length")]
    ContentLength,
    #[error("invalid chunked body")]
    Chunk,
    #[error("invalid chunked body: a chunk-size line longer than {0} bytes")]
    ChunkLine(usize),
    #[error("invalid chunked body: trailers over {MAX_HEAD} bytes or {MAX_FIELDS} fields")]
    Trailers,
}

/// What the client writes for one request; the parts it adds itself are filled in here.
pub struct RequestHead<'a> {
    pub method: &'a Method,
    pub path_and_query: &'a str,
    pub host: &'a [u8],
    pub user_agent: &'a [u8],
    /// The user's and the request's own headers, later ones overriding earlier ones of
    /// the same name is the caller's business; they are written as given.
    pub headers: &'a [(HeaderName, HeaderValue)],
    pub cookie: Option<&'a [u8]>,
    pub body: &'a [u8],
    /// Credentials for a forwarding proxy, sent as `Proxy-Authorization`.
    pub proxy_authorization: Option<&'a [u8]>,
}

fn has(headers: &[(HeaderName, HeaderValue)], name: &HeaderName) -> bool {
    headers.iter().any(|(n, _)| n == name)
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes the whole request (head and body) into `out`, replacing what was there.
/// Returns whether the request asks to close the connection afterwards.
/// The content codings offered: exactly those the client decodes (`client.rs`).
pub const OFFERED_CODINGS: &str = "gzip, deflate, br, zstd";

pub fn encode_request(out: &mut Vec<u8>, r: &RequestHead) -> bool {
    use http::header::{
        ACCEPT_ENCODING, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, USER_AGENT,
    };
    out.clear();
    out.extend_from_slice(r.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(r.path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !has(r.headers, &HOST) {
        field(out, b"Host", r.host);
    }
    let mut close = false;
    for (name, value) in r.headers {
        // The body's framing is ours to decide; a script's own would desynchronise the
        // connection.
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        if name == CONNECTION && has_token(value.as_bytes(), b"close") {
            close = true;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !has(r.headers, &USER_AGENT) {
        field(out, b"User-Agent", r.user_agent);
    }
    if !has(r.headers, &ACCEPT_ENCODING) {
        field(out, b"Accept-Encoding", OFFERED_CODINGS.as_bytes());
    }
    if !r.body.is_empty() || matches!(*r.method, Method::POST | Method::PUT | Method::PATCH) {
        let mut n = itoa_buf();
        field(out, b"Content-Length", format_len(&mut n, r.body.len()));
    }
    if let Some(cookie) = r.cookie {
        field(out, b"Cookie", cookie);
    }
    if let Some(credentials) = r.proxy_authorization {
        field(out, b"Proxy-Authorization", credentials);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(r.body);
    close
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn format_len(buf: &mut [u8; 20], mut n: usize) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Whether a comma-separated header value (like `Connection`) holds `token`, any case.
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// How the body after a response's head ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    /// Bytes the head takes in the buffer, final blank line included.
    pub len: usize,
    pub fields: Fields,
    /// Bits of the [`Notable`] fields present.
    pub notable: u8,
    pub framing: Framing,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
}

impl Head {
    /// A `100 Continue` or `103 Early Hints` that the real response follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

fn span(buf: &[u8], part: &[u8]) -> (u32, u32) {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    (start as u32, (start + part.len()) as u32)
}

/// Parses the head at the start of `buf`; `Ok(None)` when more bytes are needed.
/// `head_request` tells that the request was a HEAD, whose response has no body.
pub fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<Head>, WireError> {
    let mut uninit = [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut uninit,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(WireError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(WireError::Invalid(e)),
    };
    let status = response.code.unwrap_or_default();
    let http10 = response.version == Some(0);
    let mut fields = Fields::with_capacity(response.headers.len());
    let mut length: Option<u64> = None;
    let mut chunked = None;
    let mut connection_close = http10;
    let mut notable = 0;
    for h in response.headers.iter() {
        fields.push(Field {
            name: span(buf, h.name.as_bytes()),
            value: span(buf, h.value),
        });
        // Dispatch on the length first: most fields are none of these three.
        let name = h.name.as_bytes();
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let n = std::str::from_utf8(h.value.trim_ascii())
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or(WireError::ContentLength)?;
                if length.is_some_and(|l| l != n) {
                    return Err(WireError::ContentLength);
                }
                length = Some(n);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                // Only the last coding says how the message ends.
                let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                if has_token(h.value, b"close") {
                    connection_close = true;
                } else if http10 && has_token(h.value, b"keep-alive") {
                    connection_close = false;
                }
            }
            _ => notable |= Notable::of(name).map_or(0, |n| n as u8),
        }
    }
    let framing = if head_request || (100..200).contains(&status) || matches!(status, 204 | 304) {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
        }
    };
    Ok(Some(Head {
        status,
        len,
        fields,
        notable,
        framing,
        // A message framed by both lengths is suspect: do not reuse its connection.
        // After `101 Switching Protocols` the connection speaks something else.
        keep_alive: !connection_close
            && status != 101
            && framing != Framing::UntilClose
            && !(chunked.is_some() && length.is_some()),
    }))
}

/// Where a response head ends, searched incrementally as its bytes arrive: after a first
/// try (the common case: the whole head came in one read), `parse_head` is only tried
/// again once the blank line is there, so a head dripping in byte by byte costs linear
/// time rather than a full parse per read.
#[derive(Debug, Default)]
pub struct HeadScan {
    tried: bool,
    scanned: usize,
}

impl HeadScan {
    /// Whether `buf` is worth parsing: on the first call, always; later, once the head's
    /// blank line has arrived. An error once `buf` is over [`MAX_HEAD`] without one.
    pub fn worth_parsing(&mut self, buf: &[u8]) -> Result<bool, WireError> {
        if !self.tried {
            self.tried = true;
            return Ok(true);
        }
        // Back up three bytes: the blank line may straddle the previous end.
        let found = blank_line(&buf[self.scanned.saturating_sub(3)..]);
        self.scanned = buf.len();
        if !found && buf.len() >= MAX_HEAD {
            return Err(WireError::HeadTooLarge);
        }
        Ok(found)
    }

    /// Starts over, for the head after an interim response.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Whether `bytes` hold an empty line (`\n\n` or `\n\r\n`).
fn blank_line(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'\n'
            && match bytes.get(i + 1) {
                Some(b'\n') => true,
                Some(b'\r') => bytes.get(i + 2) == Some(&b'\n'),
                _ => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head {
        parse_head(raw.as_bytes(), false).unwrap().unwrap()
    }

    /// Encodes a request to `127.0.0.1:8080` with the given parts; returns the bytes as text
    /// and whether the request asked to close.
    fn encode(
        method: Method,
        target: &str,
        headers: &[(&'static str, &'static str)],
        cookie: Option<&[u8]>,
        body: &[u8],
    ) -> (String, bool) {
        let headers: Vec<_> = headers
            .iter()
            .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
            .collect();
        let mut out = Vec::new();
        let close = encode_request(
            &mut out,
            &RequestHead {
                method: &method,
                path_and_query: target,
                host: b"127.0.0.1:8080",
                user_agent: b"stampede/test",
                headers: &headers,
                cookie,
                body,
                proxy_authorization: None,
            },
        );
        (String::from_utf8(out).unwrap(), close)
    }

    #[test]
    fn request_head_has_host_agent_length_and_cookie() {
        let headers = [("authorization", "Bearer t")];
        let (text, close) = encode(
            Method::POST,
            "/items?x=1",
            &headers,
            Some(b"a=1; b=2"),
            b"{}",
        );
        assert!(!close);
        assert_eq!(
            text,
            "POST /items?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nauthorization: Bearer t\r\n\
             User-Agent: stampede/test\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nContent-Length: 2\r\n\
             Cookie: a=1; b=2\r\n\r\n{}"
        );
    }

    #[test]
    fn script_headers_override_defaults_but_not_framing() {
        let headers = [
            ("host", "example.test"),
            ("user-agent", "me"),
            ("content-length", "99"),
            ("connection", "Close"),
        ];
        let (text, close) = encode(Method::GET, "/", &headers, None, b"");
        assert!(close);
        assert_eq!(
            text,
            "GET / HTTP/1.1\r\nhost: example.test\r\nuser-agent: me\r\nconnection: Close\r\n\
             Accept-Encoding: gzip, deflate, br, zstd\r\n\r\n"
        );
    }

    #[test]
    fn lengths_are_written_in_decimal() {
        let mut b = itoa_buf();
        assert_eq!(format_len(&mut b, 0), b"0");
        assert_eq!(format_len(&mut b, 1234567), b"1234567");
        assert_eq!(
            format_len(&mut b, usize::MAX),
            usize::MAX.to_string().as_bytes()
        );
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (200, Framing::Length(5), true)
        );
        assert_eq!(h.len, 38);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, true));
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = head("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n");
        assert_eq!(h.framing, Framing::Empty);
        let h = head("HTTP/1.1 304 Not Modified\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Empty, true));
        let h = head("HTTP/1.1 100 Continue\r\n\r\n");
        assert!(h.is_interim());
        let h = head("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
        assert!(!h.is_interim() && !h.keep_alive && h.framing == Framing::Empty);
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(
            h.framing,
            Framing::Empty,
            "the response to HEAD has no body"
        );
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        assert!(
            !head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive
        );
        assert!(!head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(
            head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
    }

    #[test]
    fn fields_point_into_the_buffer() {
        let raw = "HTTP/1.1 200 OK\r\nX-A: one\r\nSet-Cookie: s=1\r\nContent-Length: 0\r\n\r\n";
        let h = head(raw);
        let raw = bytes::Bytes::copy_from_slice(raw.as_bytes());
        let headers = super::super::Headers::new(raw, h.fields, h.notable);
        assert!(headers.has(Notable::SetCookie));
        assert!(!headers.has(Notable::Location) && !headers.has(Notable::ContentEncoding));
        assert_eq!(headers.get_str("x-a"), Some("one"));
        assert_eq!(headers.get_str("set-cookie"), Some("s=1"));
        assert_eq!(headers.len(), 3);
    }

    #[test]
    fn partial_bad_and_oversized_heads() {
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            parse_head(b"garbage\r\n\r\n", false),
            Err(WireError::Invalid(_))
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false),
            Err(WireError::ContentLength)
        ));
        assert!(matches!(
            parse_head(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false
            ),
            Err(WireError::ContentLength)
        ));
        let mut big = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert!(matches!(
            parse_head(&big, false),
            Err(WireError::HeadTooLarge)
        ));
    }

    #[test]
    fn a_head_is_parsed_again_only_once_its_blank_line_arrived() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let mut scan = HeadScan::default();
        let mut buf = Vec::new();
        let mut tries = 0;
        for &b in raw.iter() {
            buf.push(b);
            if scan.worth_parsing(&buf).unwrap() {
                tries += 1;
                if parse_head(&buf, false).unwrap().is_some() {
                    break;
                }
            }
        }
        assert_eq!(tries, 2, "the first byte, then the complete head");
        let mut scan = HeadScan::default();
        let mut buf = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        assert!(scan.worth_parsing(&buf).unwrap());
        buf.resize(MAX_HEAD, b'a');
        assert!(matches!(
            scan.worth_parsing(&buf),
            Err(WireError::HeadTooLarge)
        ));
    }
}
