//! A lean HTTP/1.1 client, one per virtual user: its own keep-alive connections and
//! cookie jar (Locust's session semantics), redirects, gzip, timeouts and TLS (rustls).
//!
//! Neither reqwest nor hyper's client: their general-purpose layers (URL re-parsing,
//! proxy matching, pool bookkeeping, a task and channels per connection, header maps)
//! cost more CPU per request than the rest of stampede together. The user's task drives
//! its connection itself (`conn.rs`); the bytes on the wire are `wire.rs`'s business.
//! See docs/performance.md for the measurements behind this.

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use super::conn::{Conn, ConnError, RawResponse};
use super::deadline::Deadline;
use super::h2::{H2Error, H2Request};
use super::headers::{Headers, Notable};
use super::link::{Connector, Link, LinkError, Via};
use super::proxy::{Proxies, Route};
use super::target::{Origin, Target};
use super::wire::{self, RequestHead, WireError};
use super::{Exchange, Hop, HttpVersion, Phases, TransportError, TransportKind};

/// What every user's client shares: TLS setup and defaults, built once per worker.
pub struct Shared {
    pub tls: tokio_rustls::TlsConnector,
    pub version: HttpVersion,
    pub proxies: Proxies,
    pub timeout: Duration,
    pub max_body: usize,
    pub user_agent: HeaderValue,
    pub max_redirects: usize,
}

/// A request ready to send.
pub struct Prepared {
    pub method: Method,
    pub target: Target,
    /// Headers in the order written; a name appears once (see [`set_header`]).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub timeout: Option<Duration>,
    /// At most this many redirects are followed, and the response after them is returned
    /// as it is (k6's per-request `redirects`); `None`: the run's limit, past which the
    /// request fails.
    pub redirects: Option<usize>,
    /// User and password for HTTP Digest authentication: a 401 with a Digest challenge is
    /// answered once, on the same request.
    pub digest: Option<Rc<(String, String)>>,
}

/// Sets `name` in a request's header list, replacing any earlier value.
pub fn set_header(
    headers: &mut Vec<(HeaderName, HeaderValue)>,
    name: HeaderName,
    value: HeaderValue,
) {
    headers.retain(|(n, _)| *n != name);
    headers.push((name, value));
}

/// One user's connections and cookies.
pub struct Client {
    shared: Rc<Shared>,
    /// Idle keep-alive connections by origin; a user rarely talks to more than one.
    /// Boxed: a link moves out and back for every request, and is a few hundred bytes.
    idle: RefCell<Vec<(Origin, Box<Link>)>>,
    cookies: RefCell<cookie_store::CookieStore>,
    /// Attempts sent again during the current request (see [`Client::retries`]).
    retries: Cell<u32>,
    /// When the current (or last) request started.
    started: Cell<Option<Instant>>,
    /// When the current hop (the request, or a redirect's) started.
    hop_started: Cell<Option<Instant>>,
    /// Where the current request's latency starts: just before its first write on a reused
    /// connection, or before connecting on a new one; `None` until its first hop is noted.
    latency_start: Cell<Option<Instant>>,
    /// Where the current (or last) request's time went, summed over its hops.
    phases: Cell<Phases>,
    /// The timer that bounds its requests by their timeout.
    deadline: Deadline,
}

fn transport(kind: TransportKind, message: impl Into<String>) -> TransportError {
    TransportError::new(kind, message)
}

/// Classifies a failure on an open HTTP/1.1 connection.
fn exchange_error(e: ConnError) -> TransportError {
    use std::io::ErrorKind::*;
    let kind = match &e {
        ConnError::Io { error, .. } => match error.kind() {
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                TransportKind::Reset
            }
            TimedOut => TransportKind::Timeout,
            _ => TransportKind::Protocol,
        },
        ConnError::Closed { .. } => TransportKind::Reset,
        ConnError::TooLarge(_) => TransportKind::Body,
        ConnError::Wire(WireError::Chunk | WireError::ChunkLine(_) | WireError::Trailers) => {
            TransportKind::Body
        }
        ConnError::Wire(_) => TransportKind::Protocol,
    };
    transport(kind, e.to_string())
}

/// Classifies a failure on an HTTP/2 connection.
fn h2_error(e: H2Error) -> TransportError {
    let kind = match &e {
        H2Error::TooLarge(_) => TransportKind::Body,
        e if e.is_protocol() => TransportKind::Protocol,
        _ => TransportKind::Reset,
    };
    transport(kind, e.to_string())
}

fn link_error(e: LinkError) -> TransportError {
    match e {
        LinkError::H1(e) => exchange_error(e),
        LinkError::H2(e) => h2_error(e),
    }
}

/// Whether a header carries credentials, so it is not sent on to another origin (scheme,
/// host or port) after a redirect: `Authorization`, `Proxy-Authorization`, `Cookie` and
/// `Cookie2` (as curl, requests and Go drop them), and, stricter than they are, any header
/// whose name contains `auth`, `token`, `key`, `secret`, `session`, `password`,
/// `credential`, `csrf` or `xsrf` (`X-Api-Key`, `X-Auth-Token`…). The cookie jar sends its
/// own cookies by their domain, as browsers do. Documented in docs/reliability.md.
pub fn is_credential(name: &HeaderName) -> bool {
    const WORDS: [&str; 9] = [
        "auth",
        "token",
        "key",
        "secret",
        "session",
        "password",
        "credential",
        "csrf",
        "xsrf",
    ];
    let name = name.as_str();
    matches!(name, "cookie" | "cookie2") || WORDS.iter().any(|w| name.contains(w))
}

/// The `Authorization` answering a response's Digest challenge, if it has one we answer.
fn digest_answer(
    headers: &Headers,
    req: &Prepared,
    credentials: &(String, String),
) -> Option<HeaderValue> {
    let answer = headers
        .get_all("www-authenticate")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .find_map(|challenge| {
            super::digest::authorization(
                challenge,
                &credentials.0,
                &credentials.1,
                req.method.as_str(),
                req.target.path_and_query.as_str(),
            )
        })?;
    let mut value = HeaderValue::from_str(&answer).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

impl Client {
    pub fn new(shared: Rc<Shared>) -> Self {
        Self {
            shared,
            idle: RefCell::new(Vec::new()),
            cookies: RefCell::new(cookie_store::CookieStore::default()),
            retries: Cell::new(0),
            started: Cell::new(None),
            hop_started: Cell::new(None),
            latency_start: Cell::new(None),
            phases: Cell::new(Phases::default()),
            deadline: Deadline::default(),
        }
    }

    /// Sends `req`, following redirects, and reads the whole body; bounded by the timeout.
    pub async fn execute(self: Rc<Self>, req: Prepared) -> Result<Exchange, TransportError> {
        let start = Instant::now();
        self.started.set(Some(start));
        self.hop_started.set(Some(start));
        self.latency_start.set(None);
        self.phases.set(Phases::default());
        self.retries.set(0);
        let limit = req.timeout.unwrap_or(self.shared.timeout);
        let result = self.deadline.run(start, limit, self.follow(req)).await;
        let mut outcome = match result {
            Ok(r) => r,
            Err(_) => Err(transport(TransportKind::Timeout, "request timed out")),
        };
        match &mut outcome {
            // The last hop noted when it ended; reading the clock again would cost as much
            // as the timing breakdown's own marks.
            Ok(x) => {
                let from = self.latency_start.get().unwrap_or(start);
                x.elapsed = self
                    .hop_started
                    .get()
                    .unwrap_or(from)
                    .saturating_duration_since(from);
            }
            Err(e) => e.elapsed = start.elapsed(),
        }
        outcome
    }

    /// When the request now in flight (or the last one) started.
    pub fn started(&self) -> Option<Instant> {
        self.started.get()
    }

    /// Where the last request's time went (k6's timing breakdown), summed over the hops
    /// that got a response (its redirects, a Digest challenge).
    pub fn phases(&self) -> Phases {
        self.phases.get()
    }

    /// Times the request now in flight (or the last one) was sent again on a fresh
    /// connection because a pooled one turned out dead; the server may have received
    /// every attempt.
    pub fn retries(&self) -> u32 {
        self.retries.get()
    }

    /// Sends `req` and follows its redirects: up to the request's own `redirects` (then the
    /// last response is returned as it is), or the run's `max_redirects` (then it fails, as
    /// curl and requests do). A chain of exactly the limit is followed to its end.
    async fn follow(&self, mut req: Prepared) -> Result<Exchange, TransportError> {
        let limit = req.redirects.unwrap_or(self.shared.max_redirects);
        let mut hops = Vec::new();
        // Digest credentials stay with the origin they were given for; each hop's 401 is
        // answered once, for that hop's URI.
        let mut digest = req.digest.take();
        let mut answered = false;
        loop {
            let mut exchange = self.send_once(&req).await?;
            if exchange.status == 401
                && !answered
                && let Some(credentials) = &digest
                && let Some(answer) = digest_answer(&exchange.headers, &req, credentials)
            {
                set_header(&mut req.headers, header::AUTHORIZATION, answer);
                answered = true;
                continue;
            }
            let status = StatusCode::from_u16(exchange.status).unwrap_or(StatusCode::OK);
            let location = (exchange.headers.has(Notable::Location) && is_redirect(status))
                .then(|| exchange.headers.get_str("location"))
                .flatten();
            let Some(location) = location else {
                exchange.target = Some(req.target);
                exchange.hops = hops;
                return Ok(exchange);
            };
            if hops.len() == limit {
                if req.redirects.is_some() {
                    exchange.target = Some(req.target);
                    exchange.hops = hops;
                    return Ok(exchange);
                }
                return Err(transport(
                    TransportKind::Protocol,
                    format!("more than {limit} redirects"),
                ));
            }
            let next = req
                .target
                .join(location)
                .map_err(|e| transport(TransportKind::Protocol, e.to_string()))?;
            hops.push(Hop {
                status: exchange.status,
                url: req.target.to_string(),
                location: location.to_owned(),
            });
            if std::mem::take(&mut answered) {
                // Our answer was for the last URI; the next one gets its own, if asked.
                req.headers
                    .retain(|(name, _)| name != header::AUTHORIZATION);
            }
            if next.origin != req.target.origin {
                // A script's own `Host` named the first origin, not this one.
                req.headers
                    .retain(|(name, _)| !is_credential(name) && name != header::HOST);
                digest = None;
            }
            req.target = next;
            // 303, and 301/302 after a POST, become GETs without a body, as browsers do.
            if status == StatusCode::SEE_OTHER
                || (matches!(status.as_u16(), 301 | 302) && req.method == Method::POST)
            {
                req.method = Method::GET;
                req.body = Bytes::new();
                req.headers.retain(|(n, _)| n != header::CONTENT_TYPE);
            }
        }
    }

    /// Writes `req` into the connection's output buffer; returns whether it asks to close.
    /// Through a forwarding proxy the request line carries the whole URL.
    fn encode(
        &self,
        req: &Prepared,
        cookie: Option<&[u8]>,
        conn: &mut Conn,
        forward: Option<&Route>,
    ) -> bool {
        let absolute;
        let path_and_query = match forward {
            None => req.target.path_and_query.as_str(),
            Some(_) => {
                absolute = req.target.to_string();
                absolute.as_str()
            }
        };
        wire::encode_request(
            &mut conn.output,
            &RequestHead {
                method: &req.method,
                path_and_query,
                host: req.target.origin.host_header.as_bytes(),
                user_agent: self.shared.user_agent.as_bytes(),
                headers: &req.headers,
                cookie,
                body: &req.body,
                proxy_authorization: forward
                    .and_then(|r| r.authorization.as_ref())
                    .map(|v| v.as_bytes()),
            },
        )
    }

    /// One request and its response on `link`.
    async fn exchange_on(
        &self,
        link: &mut Link,
        req: &Prepared,
        cookie: Option<&[u8]>,
    ) -> Result<RawResponse, LinkError> {
        let max_body = self.shared.max_body;
        match &mut link.via {
            Via::H1 { conn, forward } => {
                let close = self.encode(req, cookie, conn, forward.as_deref());
                conn.exchange(req.method == Method::HEAD, close, max_body)
                    .await
                    .map_err(LinkError::H1)
            }
            Via::H2(h2) => {
                let request = H2Request {
                    method: &req.method,
                    uri: req.target.to_string(),
                    headers: &req.headers,
                    user_agent: &self.shared.user_agent,
                    cookie,
                    body: req.body.clone(),
                };
                // Boxed: inline, h2's large future would widen every HTTP/1.1 request's.
                Box::pin(h2.exchange(request, max_body))
                    .await
                    .map_err(LinkError::H2)
            }
        }
    }

    async fn send_once(&self, req: &Prepared) -> Result<Exchange, TransportError> {
        let origin = &req.target.origin;
        let cookie = self.cookie_header(&req.target);
        let cookie = cookie.as_deref().map(str::as_bytes);
        // A pooled connection may have been closed by the server while idle; then an
        // idempotent request is sent once more on a fresh connection, as browsers and
        // reqwest do, and the retry is counted (the server may have seen both). A
        // non-idempotent one (POST, PATCH) whose bytes may have reached the server fails
        // instead (RFC 9110 §9.2.2, RFC 9112 §9.3.1), unless HTTP/2's server said it did
        // not process it (a refused stream, a graceful GOAWAY: RFC 9113 §8.7).
        // The pooled origin goes back with its link: no clone per request.
        let (pooled, mut link, reused) = match self.take_idle(origin) {
            Some((pooled, link)) => (pooled, link, true),
            // Boxed: connecting (TCP, TLS) is rare next to reusing a connection, and inline
            // its state would make every request's future several KB to allocate and move.
            None => (origin.clone(), Box::pin(self.connect(origin)).await?, false),
        };
        let raw: RawResponse = match self.exchange_on(&mut link, req, cookie).await {
            Ok(r) => r,
            Err(e)
                if reused
                    && e.before_response()
                    && (req.method.is_idempotent() || e.unprocessed()) =>
            {
                self.retries.set(self.retries.get() + 1);
                link = Box::pin(self.connect(origin)).await?;
                self.exchange_on(&mut link, req, cookie)
                    .await
                    .map_err(link_error)?
            }
            Err(e) if reused && e.before_response() => {
                let mut err = link_error(e);
                err.message = format!(
                    "{} (on a reused connection; not retried: {} is not idempotent)",
                    err.message, req.method
                );
                return Err(err);
            }
            Err(e) => return Err(link_error(e)),
        };
        self.note_phases(&mut link);
        let info = link.info;
        if raw.reusable {
            self.idle.borrow_mut().push((pooled, link));
        }
        if raw.headers.has(Notable::SetCookie) {
            self.store_cookies(&req.target, &raw.headers);
        }
        let body = decode(&raw.headers, raw.body, self.shared.max_body)?;
        Ok(Exchange {
            status: raw.status,
            headers: raw.headers,
            body,
            elapsed: Duration::ZERO,
            target: None,
            hops: Vec::new(),
            link: info,
        })
    }

    /// Adds this hop's timing breakdown to the request's, from the marks the link took.
    fn note_phases(&self, link: &mut Link) {
        let now = Instant::now();
        let marks = link.marks();
        // The response ended when its last bytes reached the socket (where the kernel
        // stamped them); from there to now it waited for the generator.
        let ended = marks.last_arrival.map_or(now, |a| a.at(now));
        let queueing = now - ended;
        // The first byte by its distance from the last: one conversion a response.
        let first_byte = match (marks.first_arrival, marks.last_arrival) {
            (Some(first), Some(last)) => {
                Some(ended.checked_sub(last.since(first)).unwrap_or(ended))
            }
            (Some(first), None) => Some(first.at(now)),
            (None, _) => marks.first_byte,
        };
        let mut started = self.hop_started.replace(Some(ended)).unwrap_or(ended);
        if self.latency_start.get().is_none() {
            // The first hop: on a reused connection the latency starts at the write.
            if link.opened.is_none()
                && let Some(writing) = marks.writing
            {
                started = writing;
            }
            self.latency_start.set(Some(started));
        }
        let (written, first_byte) = match (marks.written, first_byte) {
            (Some(w), Some(f)) => (w, f),
            _ => return,
        };
        let (connecting, tls_handshaking) = link.opened.take().unwrap_or_default();
        let sending = written
            .saturating_duration_since(started)
            .saturating_sub(connecting + tls_handshaking);
        let mut total = self.phases.get();
        total.add([
            connecting,
            tls_handshaking,
            sending,
            first_byte.saturating_duration_since(written),
            ended.saturating_duration_since(first_byte),
            queueing,
        ]);
        self.phases.set(total);
    }

    /// An idle connection to `origin` that is still usable, most recently used first; the
    /// others are closed.
    fn take_idle(&self, origin: &Origin) -> Option<(Origin, Box<Link>)> {
        let mut idle = self.idle.borrow_mut();
        loop {
            let i = idle.iter().rposition(|(o, _)| o == origin)?;
            let (pooled, mut link) = idle.swap_remove(i);
            if link.is_usable() {
                return Some((pooled, link));
            }
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<Box<Link>, TransportError> {
        let route = self
            .shared
            .proxies
            .route(origin)
            .map_err(|e| transport(TransportKind::Connect, e.to_string()))?;
        Connector {
            tls: &self.shared.tls,
            version: self.shared.version,
            route,
        }
        .connect(origin)
        .await
        .map(Box::new)
    }

    fn cookie_header(&self, target: &Target) -> Option<String> {
        let store = self.cookies.borrow();
        store.iter_any().next()?;
        let url = url::Url::parse(&target.to_string()).ok()?;
        let pairs: Vec<String> = store
            .get_request_values(&url)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    fn store_cookies(&self, target: &Target, headers: &Headers) {
        let mut set = headers.get_all("set-cookie").peekable();
        if set.peek().is_none() {
            return;
        }
        let Ok(url) = url::Url::parse(&target.to_string()) else {
            return;
        };
        let cookies = set
            .filter_map(|v| std::str::from_utf8(v).ok())
            .filter_map(|s| cookie::Cookie::parse(s.to_owned()).ok());
        self.cookies
            .borrow_mut()
            .store_response_cookies(cookies, &url);
    }
}

/// The content codings a response may come in, decoded here; `Accept-Encoding` (in
/// `wire.rs`) offers exactly these.
#[derive(Clone, Copy)]
enum Coding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    fn of(headers: &Headers) -> Option<Self> {
        if !headers.has(Notable::ContentEncoding) {
            return None;
        }
        let value = headers.get("content-encoding")?.trim_ascii();
        let is = |name: &[u8]| value.eq_ignore_ascii_case(name);
        Some(if is(b"gzip") || is(b"x-gzip") {
            Self::Gzip
        } else if is(b"deflate") {
            Self::Deflate
        } else if is(b"br") {
            Self::Brotli
        } else if is(b"zstd") {
            Self::Zstd
        } else {
            return None;
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Brotli => "br",
            Self::Zstd => "zstd",
        }
    }

    /// Decodes into `out`, at most `limit` bytes (one more tells the caller it was cut).
    fn read(self, body: &[u8], limit: u64, out: &mut Vec<u8>) -> std::io::Result<usize> {
        match self {
            Self::Gzip => flate2::read::GzDecoder::new(body)
                .take(limit)
                .read_to_end(out),
            // RFC 9110's "deflate" is zlib-wrapped; some servers send it raw.
            Self::Deflate => flate2::read::ZlibDecoder::new(body)
                .take(limit)
                .read_to_end(out)
                .or_else(|_| {
                    out.clear();
                    flate2::read::DeflateDecoder::new(body)
                        .take(limit)
                        .read_to_end(out)
                }),
            Self::Brotli => brotli_decompressor::Decompressor::new(body, 4096)
                .take(limit)
                .read_to_end(out),
            Self::Zstd => ruzstd::decoding::StreamingDecoder::new(body)
                .map_err(std::io::Error::other)?
                .take(limit)
                .read_to_end(out),
        }
    }
}

/// The body with its content coding undone (gzip, deflate, br, zstd), up to `max_body`
/// bytes of output (a small body can inflate to gigabytes). A coding not listed is left as
/// it came.
fn decode(headers: &Headers, body: Bytes, max_body: usize) -> Result<Bytes, TransportError> {
    let coding = match Coding::of(headers) {
        Some(c) if !body.is_empty() => c,
        _ => return Ok(body),
    };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max_body));
    coding
        .read(&body, max_body as u64 + 1, &mut out)
        .map_err(|e| {
            transport(
                TransportKind::Body,
                format!("invalid {} body: {e}", coding.name()),
            )
        })?;
    if out.len() > max_body {
        return Err(exchange_error(ConnError::TooLarge(max_body)));
    }
    Ok(Bytes::from(out))
}

/// Builds the shared part from the run's TLS configuration.
pub fn shared(
    tls: Arc<rustls::ClientConfig>,
    proxies: Proxies,
    options: &super::ClientOptions,
) -> Shared {
    Shared {
        tls: tokio_rustls::TlsConnector::from(tls),
        version: options.version,
        proxies,
        timeout: options.timeout,
        max_body: usize::try_from(options.max_body).unwrap_or(usize::MAX),
        user_agent: HeaderValue::from_static(super::USER_AGENT),
        max_redirects: options.max_redirects,
    }
}
