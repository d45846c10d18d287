//! The HTTP client behind the script's `http::*` functions.
//!
//! Kept behind this one small interface (a per-user [`Client`], a [`Prepared`] request,
//! an [`Exchange`] or a classified [`TransportError`]) so the script layer does not depend
//! on how requests are sent.

mod chunked;
mod client;
mod conn;
mod deadline;
mod digest;
mod h2;
mod headers;
mod link;
mod proxy;
pub(crate) mod stamped;
pub use stamped::warm_up as warm_up_timestamps;
mod target;
mod tls;
mod wire;

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

pub use client::{Client, Prepared, Shared, set_header};
pub use headers::Headers;
pub use link::{LinkInfo, Protocol};
pub use proxy::{ProxyError, ProxySetting};
pub use target::{Base, Origin, Target, TargetError, redact};
pub use tls::TlsOptions;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{}: not a usable PEM {what}: {message}", path.display())]
    Pem {
        path: std::path::PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("--ca-native: no usable certificate in the system's trust store {0}")]
    NativeRoots(String),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

/// Which HTTP versions connections may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/2 where TLS's ALPN agrees on it, else HTTP/1.1 (browsers, curl and k6 alike).
    #[default]
    Auto,
    /// HTTP/1.1 only (`--http1.1`): ALPN offers nothing else.
    Http1,
    /// HTTP/2 only (`--http2`): required of ALPN over TLS, and spoken from the first byte
    /// on cleartext (prior knowledge, "h2c"; curl's `--http2-prior-knowledge`).
    Http2,
}

impl HttpVersion {
    /// The protocols offered by ALPN, most wanted first.
    fn alpn(self) -> &'static [&'static [u8]] {
        match self {
            Self::Auto => &[b"h2", b"http/1.1"],
            Self::Http1 => &[b"http/1.1"],
            Self::Http2 => &[b"h2"],
        }
    }
}

pub const USER_AGENT: &str = concat!("stampede/", env!("CARGO_PKG_VERSION"));

/// Makes one [`Client`] per virtual user on a worker, all sharing one TLS connector.
pub struct ClientFactory {
    shared: Rc<Shared>,
}

/// How every user's client behaves in a run.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Per-request timeout unless the request sets its own.
    pub timeout: Duration,
    /// Trust anchors, client certificate, `--insecure`.
    pub tls: TlsOptions,
    pub version: HttpVersion,
    pub proxy: ProxySetting,
    /// Hosts never proxied, added to `NO_PROXY` (curl's `--noproxy`).
    pub no_proxy: Option<String>,
    /// The largest response body read; a bigger one fails the request (kind `body`) rather
    /// than the process's memory.
    pub max_body: u64,
    /// Redirects followed before a request fails (`--max-redirects`, k6's
    /// `maxRedirects`); a request's `redirects` option overrides it.
    pub max_redirects: usize,
}

/// Redirects followed unless told otherwise: 10, the limit of curl and of requests.
pub const DEFAULT_MAX_REDIRECTS: usize = 10;

/// The request timeout unless a flag, the options or the request set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// 64 MiB: far above an API response, low enough that a target streaming garbage to a few
/// hundred users cannot exhaust memory before the timeout.
pub const DEFAULT_MAX_BODY: u64 = 64 * 1024 * 1024;

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            tls: TlsOptions {
                verify: true,
                ..TlsOptions::default()
            },
            version: HttpVersion::Auto,
            proxy: ProxySetting::Environment,
            no_proxy: None,
            max_body: DEFAULT_MAX_BODY,
            max_redirects: DEFAULT_MAX_REDIRECTS,
        }
    }
}

impl ClientFactory {
    pub fn new(options: &ClientOptions) -> Result<Self, ClientError> {
        Ok(Self {
            shared: Rc::new(client::shared(
                tls::config(&options.tls, options.version.alpn())?,
                proxy::Proxies::new(&options.proxy, options.no_proxy.as_deref())?,
                options,
            )),
        })
    }

    /// A client with its own cookie jar and connections.
    pub fn build(&self) -> Client {
        Client::new(self.shared.clone())
    }
}

/// A completed exchange: the response fully read.
#[derive(Debug)]
pub struct Exchange {
    pub status: u16,
    pub headers: Headers,
    pub body: Bytes,
    pub elapsed: Duration,
    /// Where the response came from (after any redirects).
    pub target: Option<Target>,
    /// The redirects followed on the way, in order.
    pub hops: Vec<Hop>,
    /// The connection the (last) response came over.
    pub link: LinkInfo,
}

/// Where a request's time went, k6's breakdown, in microseconds: connecting,
/// tls_handshaking, sending, waiting, receiving (`http_req_connecting` …), summed over its
/// redirects; then queueing, which is not part of the latency: how long the response's
/// last bytes waited in the socket for the generator (its user's task busy or not yet
/// run). Connecting and the TLS handshake are zero on a reused connection. Over HTTP/2,
/// sending is the time to hand the request to the connection, waiting lasts until the
/// response's head, and queueing is not known (0). Twenty-four bytes: it is copied on every
/// request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases(pub [u32; 6]);

impl Phases {
    pub(crate) fn add(&mut self, other: [std::time::Duration; 6]) {
        for (total, d) in self.0.iter_mut().zip(other) {
            let us = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
            *total = total.saturating_add(us);
        }
    }
}

/// One redirect followed: the response that asked for it.
#[derive(Debug, Clone)]
pub struct Hop {
    pub status: u16,
    /// The URL that answered with the redirect.
    pub url: String,
    /// Its `Location` header, as sent.
    pub location: String,
}

/// Why a request got no complete response: the HTTP layer's own classification, which
/// the metrics map to their failure kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The connection could not be opened (refused, unreachable, DNS, proxy).
    Connect,
    /// The TLS handshake failed (certificate, protocol version, client certificate).
    Tls,
    /// The request or its response did not complete within the timeout.
    Timeout,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// The peer broke the protocol, or the request could not be sent as asked.
    Protocol,
    /// The body could not be read: too large, bad framing or content coding.
    Body,
}

/// A request that got no complete response.
#[derive(Debug)]
pub struct TransportError {
    pub kind: TransportKind,
    pub message: String,
    pub elapsed: Duration,
}

impl TransportError {
    pub fn new(kind: TransportKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            elapsed: Duration::ZERO,
        }
    }
}
