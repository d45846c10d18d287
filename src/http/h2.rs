//! HTTP/2, served by hyper's HTTP/2 client connection (the `h2` crate underneath): one
//! connection per user and origin, as browsers and k6 do, negotiated by ALPN over TLS or
//! spoken from the first byte on cleartext (`--http2-prior-knowledge`, h2c).
//!
//! HTTP/2's framing, flow control and HPACK are a protocol of their own, not a variation of
//! HTTP/1.1's; a hand-written one would be the general-purpose client the lean HTTP/1.1
//! path exists to avoid. hyper's connection-level API is used rather than reqwest or
//! hyper-util's pooled client: the user's [`Client`](super::Client) already owns pooling,
//! cookies, redirects, decoding and timeouts, and those layers would add their cost to
//! every request (docs/architecture.md, "Transports").

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::RawResponse;
use super::headers::Headers;

/// A user's HTTP/2 connection to one origin. The connection itself is driven by a task of
/// its own (HTTP/2 has frames to answer — pings, settings, window updates — while no
/// request is waiting); dropping this closes it.
pub(crate) struct H2Conn {
    send: SendRequest<Full<Bytes>>,
}

/// Why an exchange on an HTTP/2 connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H2Error {
    #[error("HTTP/2: {}", with_causes(.0))]
    Hyper(#[from] hyper::Error),
    #[error("HTTP/2: invalid request: {0}")]
    Request(#[from] http::Error),
    #[error("response body larger than {} (raise the limit with --max-body)", bytesize::ByteSize(*.0 as u64))]
    TooLarge(usize),
}

impl H2Error {
    /// Whether the server never took the request (the connection was already closing, or
    /// it refused the stream), so it may be sent again on a fresh connection.
    pub fn before_response(&self) -> bool {
        match self {
            Self::Hyper(e) => {
                e.is_canceled() || e.is_closed() || refused_stream(e) || goaway_before(e)
            }
            _ => false,
        }
    }
}

/// An error and its causes, `: `-separated: hyper's own text ("connection error") says
/// little without the TLS alert or h2 reason under it.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

fn h2_reason(e: &hyper::Error) -> Option<h2::Reason> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            return h2.reason();
        }
        source = s.source();
    }
    None
}

fn refused_stream(e: &hyper::Error) -> bool {
    h2_reason(e) == Some(h2::Reason::REFUSED_STREAM)
}

/// A GOAWAY with NO_ERROR reaching a new stream: the server was closing the connection
/// gracefully and did not process the stream (RFC 9113 §6.8).
fn goaway_before(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            return h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR);
        }
        source = s.source();
    }
    false
}

/// What a request on an HTTP/2 connection is made of; the same fields the HTTP/1.1 encoder
/// takes.
pub(crate) struct H2Request<'a> {
    pub method: &'a http::Method,
    /// `https://authority/path?query`: HTTP/2 sends scheme and authority as pseudo-headers.
    pub uri: String,
    pub headers: &'a [(HeaderName, HeaderValue)],
    pub user_agent: &'a HeaderValue,
    pub cookie: Option<&'a [u8]>,
    pub body: Bytes,
}

impl H2Conn {
    /// The HTTP/2 preface and settings exchange on `io`.
    pub async fn handshake<T>(io: T) -> Result<Self, hyper::Error>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (send, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(io))
            .await?;
        tokio::spawn(async move {
            // Its errors reach the request in flight, if any.
            let _ = connection.await;
        });
        Ok(Self { send })
    }

    /// Whether a request can still go on this connection (not closed nor going away).
    pub fn is_usable(&self) -> bool {
        !self.send.is_closed()
    }

    /// Sends the request and reads the whole response, at most `max_body` bytes of body.
    pub async fn exchange(
        &mut self,
        r: H2Request<'_>,
        max_body: usize,
    ) -> Result<RawResponse, H2Error> {
        let request = build(r)?;
        self.send.ready().await?;
        let response = self.send.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = match Limited::new(body, max_body).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => match e.downcast::<hyper::Error>() {
                Ok(e) => return Err(H2Error::Hyper(*e)),
                Err(_) => return Err(H2Error::TooLarge(max_body)),
            },
        };
        Ok(RawResponse {
            status: parts.status.as_u16(),
            headers: Headers::from_map(&parts.headers),
            body,
            reusable: self.is_usable(),
        })
    }
}

/// Headers HTTP/2 forbids (RFC 9113 §8.2.2) or sends otherwise (`Host` is `:authority`);
/// a script's own would make the h2 crate refuse the request.
fn is_connection_specific(name: &HeaderName) -> bool {
    *name == header::HOST
        || *name == header::CONNECTION
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
        || *name == header::CONTENT_LENGTH
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

fn build(r: H2Request<'_>) -> Result<http::Request<Full<Bytes>>, http::Error> {
    let mut builder = http::Request::builder()
        .method(r.method.clone())
        .uri(r.uri)
        .version(http::Version::HTTP_2);
    let has = |n: &HeaderName| r.headers.iter().any(|(name, _)| name == n);
    for (name, value) in r.headers {
        if !is_connection_specific(name) {
            builder = builder.header(name, value);
        }
    }
    if !has(&header::USER_AGENT) {
        builder = builder.header(header::USER_AGENT, r.user_agent);
    }
    if !has(&header::ACCEPT_ENCODING) {
        builder = builder.header(header::ACCEPT_ENCODING, super::wire::OFFERED_CODINGS);
    }
    if let Some(cookie) = r.cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    let sized = !r.body.is_empty()
        || matches!(
            *r.method,
            http::Method::POST | http::Method::PUT | http::Method::PATCH
        );
    if sized {
        builder = builder.header(header::CONTENT_LENGTH, r.body.len());
    }
    builder.body(Full::new(r.body))
}
