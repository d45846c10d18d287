//! The HTTP client behind the script's `http::*` functions.
//!
//! Kept behind this one small interface (a per-user [`Client`], a [`Prepared`] request,
//! an [`Exchange`] or a classified [`TransportError`]) so the script layer does not depend
//! on how requests are sent.

mod client;
mod conn;
mod headers;
mod target;
mod wire;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use client::{Client, Prepared, Shared, set_header};
pub use headers::Headers;
pub use target::{Base, Origin, Target, TargetError};

use crate::metrics::FailureKind;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not set up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

pub const USER_AGENT: &str = concat!("stampede/", env!("CARGO_PKG_VERSION"));

/// The run's TLS configuration: webpki roots, ring, HTTP/1.1 by ALPN. Built once.
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// Makes one [`Client`] per virtual user on a worker, all sharing one TLS connector.
pub struct ClientFactory {
    shared: Rc<Shared>,
}

impl ClientFactory {
    pub fn new(timeout: Duration) -> Result<Self, ClientError> {
        Ok(Self {
            shared: Rc::new(client::shared(tls_config()?, timeout)),
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
}

/// A request that got no complete response.
#[derive(Debug)]
pub struct TransportError {
    pub kind: FailureKind,
    pub message: String,
    pub elapsed: Duration,
}
