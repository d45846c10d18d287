//! A lean HTTP/1.1 client, one per virtual user: its own keep-alive connections and
//! cookie jar (Locust's session semantics), redirects, gzip, timeouts and TLS (rustls).
//!
//! Built directly on hyper's connection API because reqwest's general-purpose layers (URL
//! re-parsing, proxy matching, pool bookkeeping, boxed services) cost more CPU per request
//! than the rest of stampede together; see docs/performance.md.

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::target::{Origin, Target};
use super::{Exchange, TransportError};
use crate::metrics::FailureKind;

/// What every user's client shares: TLS setup and defaults, built once per worker.
pub struct Shared {
    pub tls: tokio_rustls::TlsConnector,
    pub timeout: Duration,
    pub user_agent: HeaderValue,
}

/// A request ready to send.
pub struct Prepared {
    pub method: Method,
    pub target: Target,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub timeout: Option<Duration>,
}

const MAX_REDIRECTS: usize = 10;

/// One user's connections and cookies.
pub struct Client {
    shared: Rc<Shared>,
    /// Idle keep-alive connections by origin; a user rarely talks to more than one.
    idle: RefCell<Vec<(Origin, SendRequest<Full<Bytes>>)>>,
    cookies: RefCell<cookie_store::CookieStore>,
}

fn transport(kind: FailureKind, message: impl Into<String>) -> TransportError {
    TransportError {
        kind,
        message: message.into(),
        elapsed: Duration::ZERO,
    }
}

fn io_kind(e: &std::io::Error) -> FailureKind {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => FailureKind::Reset,
        TimedOut => FailureKind::Timeout,
        _ => FailureKind::Connect,
    }
}

fn hyper_error(e: hyper::Error) -> TransportError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return transport(io_kind(io), io.to_string());
        }
        source = s.source();
    }
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return transport(
            FailureKind::Reset,
            "connection closed before the response completed",
        );
    }
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        return transport(FailureKind::Request, format!("invalid HTTP response: {e}"));
    }
    transport(FailureKind::Request, e.to_string())
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
        }
    }

    /// Sends `req`, following redirects, and reads the whole body; bounded by the timeout.
    pub async fn execute(self: Rc<Self>, req: Prepared) -> Result<Exchange, TransportError> {
        let start = Instant::now();
        let limit = req.timeout.unwrap_or(self.shared.timeout);
        let result = tokio::time::timeout(limit, self.follow(req)).await;
        let mut outcome = match result {
            Ok(r) => r,
            Err(_) => Err(transport(FailureKind::Timeout, "request timed out")),
        };
        let elapsed = start.elapsed();
        match &mut outcome {
            Ok(x) => x.elapsed = elapsed,
            Err(e) => e.elapsed = elapsed,
        }
        outcome
    }

    async fn follow(&self, mut req: Prepared) -> Result<Exchange, TransportError> {
        for _ in 0..MAX_REDIRECTS {
            let mut exchange = self.send_once(&req).await?;
            let location = exchange
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let status = StatusCode::from_u16(exchange.status).unwrap_or(StatusCode::OK);
            let Some(location) = location.filter(|_| is_redirect(status)) else {
                exchange.target = Some(req.target);
                return Ok(exchange);
            };
            req.target = req
                .target
                .join(location)
                .map_err(|e| transport(FailureKind::Request, e.to_string()))?;
            // 303, and 301/302 after a POST, become GETs without a body, as browsers do.
            if status == StatusCode::SEE_OTHER
                || (matches!(status.as_u16(), 301 | 302) && req.method == Method::POST)
            {
                req.method = Method::GET;
                req.body = Bytes::new();
                req.headers.remove(header::CONTENT_TYPE);
            }
        }
        Err(transport(
            FailureKind::Request,
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }

    fn request(&self, req: &Prepared) -> Result<Request<Full<Bytes>>, TransportError> {
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(req.target.path_and_query.as_str());
        let headers = builder.headers_mut().expect("a fresh builder has headers");
        headers.extend(req.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        headers
            .entry(header::HOST)
            .or_insert_with(|| req.target.origin.host_header.clone());
        headers
            .entry(header::USER_AGENT)
            .or_insert_with(|| self.shared.user_agent.clone());
        headers
            .entry(header::ACCEPT_ENCODING)
            .or_insert(HeaderValue::from_static("gzip"));
        if !req.body.is_empty() || matches!(req.method, Method::POST | Method::PUT | Method::PATCH)
        {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(req.body.len()));
        }
        if let Some(cookie) = self.cookie_header(&req.target) {
            headers.insert(header::COOKIE, cookie);
        }
        builder
            .body(Full::new(req.body.clone()))
            .map_err(|e| transport(FailureKind::Request, e.to_string()))
    }

    async fn send_once(&self, req: &Prepared) -> Result<Exchange, TransportError> {
        let origin = &req.target.origin;
        // A pooled connection may have been closed by the server while idle; then the
        // request is retried once on a fresh connection, as browsers and reqwest do.
        let (mut sender, reused) = match self.take_idle(origin).await {
            Some(s) => (s, true),
            // Boxed: connecting (TCP, TLS) is rare next to reusing a connection, and inline
            // its state would make every request's future ~10 KB to allocate and move.
            None => (Box::pin(self.connect(origin)).await?, false),
        };
        let response = match sender.send_request(self.request(req)?).await {
            Ok(r) => r,
            Err(e) if reused && (e.is_canceled() || e.is_incomplete_message() || e.is_closed()) => {
                sender = Box::pin(self.connect(origin)).await?;
                sender
                    .send_request(self.request(req)?)
                    .await
                    .map_err(hyper_error)?
            }
            Err(e) => return Err(hyper_error(e)),
        };
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| {
                let mut t = hyper_error(e);
                if t.kind == FailureKind::Request {
                    t.kind = FailureKind::Body;
                }
                t
            })?
            .to_bytes();
        if !sender.is_closed() {
            self.idle.borrow_mut().push((origin.clone(), sender));
        }
        self.store_cookies(&req.target, &parts.headers);
        let body = decode(&parts.headers, body)?;
        Ok(Exchange {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            elapsed: Duration::ZERO,
            target: None,
        })
    }

    /// An idle connection to `origin` that is still usable.
    async fn take_idle(&self, origin: &Origin) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let sender = {
                let mut idle = self.idle.borrow_mut();
                let i = idle.iter().position(|(o, _)| o == origin)?;
                idle.swap_remove(i).1
            };
            let mut sender = sender;
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        let tcp = TcpStream::connect((&*origin.host, origin.port))
            .await
            .map_err(|e| transport(io_kind(&e), e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        if origin.https {
            let name = rustls::pki_types::ServerName::try_from(origin.host.to_string())
                .map_err(|e| transport(FailureKind::Connect, e.to_string()))?;
            let tls = self
                .shared
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| transport(FailureKind::Connect, format!("TLS: {e}")))?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
    }

    fn cookie_header(&self, target: &Target) -> Option<HeaderValue> {
        let store = self.cookies.borrow();
        store.iter_any().next()?;
        let url = url::Url::parse(&target.to_string()).ok()?;
        let pairs: Vec<String> = store
            .get_request_values(&url)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        HeaderValue::from_str(&pairs.join("; ")).ok()
    }

    fn store_cookies(&self, target: &Target, headers: &HeaderMap) {
        let mut set = headers.get_all(header::SET_COOKIE).iter().peekable();
        if set.peek().is_none() {
            return;
        }
        let Ok(url) = url::Url::parse(&target.to_string()) else {
            return;
        };
        let cookies = set
            .filter_map(|v| v.to_str().ok())
            .filter_map(|s| cookie::Cookie::parse(s.to_owned()).ok());
        self.cookies
            .borrow_mut()
            .store_response_cookies(cookies, &url);
    }
}

async fn handshake<T>(io: TokioIo<T>) -> Result<SendRequest<Full<Bytes>>, TransportError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let (sender, conn) = http1::handshake(io).await.map_err(hyper_error)?;
    // The connection task lives as long as the connection; it ends when the sender is
    // dropped or the server closes.
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Undoes `Content-Encoding: gzip`; other bodies pass through.
fn decode(headers: &HeaderMap, body: Bytes) -> Result<Bytes, TransportError> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    if !gzip || body.is_empty() {
        return Ok(body);
    }
    let mut out = Vec::with_capacity(body.len() * 4);
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut out)
        .map_err(|e| transport(FailureKind::Body, format!("invalid gzip body: {e}")))?;
    Ok(Bytes::from(out))
}

/// Builds the shared part from the run's TLS configuration.
pub fn shared(tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Shared {
    Shared {
        tls: tokio_rustls::TlsConnector::from(tls),
        timeout,
        user_agent: HeaderValue::from_static(super::USER_AGENT),
    }
}
