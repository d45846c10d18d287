//! The HTTP client behind the script's `http::*` functions.
//!
//! Kept behind this one small interface (a per-user [`Client`], a [`Prepared`] request,
//! an [`Exchange`] or a classified [`TransportError`]) so the script layer does not depend
//! on how requests are sent.

mod chunked;
mod client;
mod conn;
mod headers;
mod target;
mod tls;
mod wire;

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

pub use client::{Client, Prepared, Shared, set_header};
pub use headers::Headers;
pub use target::{Base, Origin, Target, TargetError, redact};

use crate::metrics::FailureKind;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not set up TLS: {0}")]
    Tls(#[from] rustls::Error),
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
    /// `false` accepts any server certificate (`--insecure`).
    pub verify_tls: bool,
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
            verify_tls: true,
            max_body: DEFAULT_MAX_BODY,
            max_redirects: DEFAULT_MAX_REDIRECTS,
        }
    }
}

impl ClientFactory {
    pub fn new(options: &ClientOptions) -> Result<Self, ClientError> {
        Ok(Self {
            shared: Rc::new(client::shared(tls::config(options.verify_tls)?, options)),
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

/// A request that got no complete response.
#[derive(Debug)]
pub struct TransportError {
    pub kind: FailureKind,
    pub message: String,
    pub elapsed: Duration,
}
