//! The HTTP client behind the script's `http::*` functions.
//!
//! Kept behind this one small interface (build a per-user client, run one exchange, classify
//! a failure) so a leaner client can be measured against reqwest without touching the script
//! layer.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::HeaderMap;

use crate::metrics::FailureKind;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("could not build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// Builds one client per virtual user, all sharing one TLS configuration (root store and
/// crypto provider are built once per run, not per user).
#[derive(Clone)]
pub struct ClientFactory {
    tls: rustls::ClientConfig,
    timeout: Duration,
}

pub const USER_AGENT: &str = concat!("stampede/", env!("CARGO_PKG_VERSION"));

impl ClientFactory {
    pub fn new(timeout: Duration) -> Result<Self, ClientError> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self { tls, timeout })
    }

    /// A client with its own cookie jar and connection pool.
    pub fn build(&self) -> Result<reqwest::Client, ClientError> {
        Ok(reqwest::Client::builder()
            .use_preconfigured_tls(self.tls.clone())
            .cookie_store(true)
            .timeout(self.timeout)
            .user_agent(USER_AGENT)
            .tcp_nodelay(true)
            .build()?)
    }
}

/// A completed exchange: the response fully read.
#[derive(Debug)]
pub struct Exchange {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub elapsed: Duration,
}

/// A request that got no complete response.
#[derive(Debug)]
pub struct TransportError {
    pub kind: FailureKind,
    pub message: String,
    pub elapsed: Duration,
}

/// Sends `request` and reads the whole body; the time includes the body download, as
/// Locust's and k6's request durations do.
pub async fn execute(
    client: reqwest::Client,
    request: reqwest::Request,
) -> Result<Exchange, TransportError> {
    let start = Instant::now();
    let fail = |e: reqwest::Error| {
        let (kind, message) = classify(&e);
        TransportError {
            kind,
            message,
            elapsed: start.elapsed(),
        }
    };
    let response = client.execute(request).await.map_err(fail)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(fail)?;
    Ok(Exchange {
        status,
        headers,
        body,
        elapsed: start.elapsed(),
    })
}

/// Sorts a transport error into a [`FailureKind`] with a short message that groups well.
pub fn classify(e: &reqwest::Error) -> (FailureKind, String) {
    let root = root_cause(e);
    if e.is_timeout() {
        return (FailureKind::Timeout, "request timed out".into());
    }
    if is_reset(e) {
        return (FailureKind::Reset, root);
    }
    if e.is_connect() {
        return (FailureKind::Connect, root);
    }
    if e.is_body() || e.is_decode() {
        return (FailureKind::Body, root);
    }
    (FailureKind::Request, root)
}

fn root_cause(e: &reqwest::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn is_reset(e: &reqwest::Error) -> bool {
    let mut cur = e.source();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ) {
                return true;
            }
        }
        let text = err.to_string();
        if text.contains("connection closed") || text.contains("connection reset") {
            return true;
        }
        cur = err.source();
    }
    false
}
