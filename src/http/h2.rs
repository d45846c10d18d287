//! HTTP/2 on the `h2` crate (hyper's HTTP/2 underneath): one connection per user and
//! origin, as browsers and k6 do, negotiated by ALPN over TLS or spoken from the first byte
//! on cleartext (`--http2`, h2c).
//!
//! HTTP/2's framing, flow control and HPACK are a protocol of their own, not a variation of
//! HTTP/1.1's; a hand-written one would be the general-purpose client the lean HTTP/1.1
//! path exists to avoid. As with HTTP/1.1, the user's own task drives its connection: the
//! connection is polled while the user waits for its response, not by a task of its own,
//! so a request costs no hand-over between tasks (hyper's client, which spawns one per
//! connection and feeds it over channels, cost 1.8 × h2load's CPU per request, and this
//! 1.3 ×: docs/performance.md, "HTTP/2 over TLS"). Between requests nobody reads the connection; a
//! GOAWAY or PING that arrived meanwhile is handled when the user next looks at it.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use h2::client::{Connection, SendRequest};
use http::header::{self, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::RawResponse;
use super::headers::Headers;

/// Any byte stream a connection runs on: TCP, TLS, a proxy's tunnel.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A user's HTTP/2 connection to one origin.
pub(crate) struct H2Conn {
    send: SendRequest<Bytes>,
    connection: Connection<Box<dyn Io>, Bytes>,
    /// The connection has ended (closed, GOAWAY handled, or failed).
    ended: bool,
    /// When the last request was handed to the connection, and its response's head came.
    pub marks: super::conn::Marks,
}

/// Why an exchange on an HTTP/2 connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H2Error {
    #[error("HTTP/2: {}", with_causes(.0))]
    Protocol(#[from] h2::Error),
    /// The connection broke (I/O error, reset) before the response's head came.
    #[error("HTTP/2: {}", with_causes(.0))]
    BeforeHead(h2::Error),
    #[error("HTTP/2: invalid request: {0}")]
    Request(#[from] http::Error),
    #[error("HTTP/2: the connection has closed")]
    Ended,
    #[error("HTTP/2: the connection closed before the response completed")]
    Closed,
    #[error("response body larger than {} (raise the limit with --max-body)", bytesize::ByteSize(*.0 as u64))]
    TooLarge(usize),
}

impl H2Error {
    /// Whether the server never took the request (the connection had already ended, it
    /// refused the stream, or was going away gracefully before it: RFC 9113 §6.8, §8.7),
    /// so it may be sent again on a fresh connection.
    pub fn before_response(&self) -> bool {
        match self {
            // An idle connection the server (or a balancer) closed without a GOAWAY: the
            // request found it broken, as HTTP/1.1's does with a closed socket.
            Self::BeforeHead(e) => e.is_io() || unprocessed(e),
            _ => self.unprocessed(),
        }
    }

    /// Whether the server said it did not process the request (RFC 9113 §8.7: a refused
    /// stream, or one above a graceful GOAWAY's last stream), so it may go again whatever
    /// its method.
    pub fn unprocessed(&self) -> bool {
        match self {
            Self::Ended => true,
            Self::Protocol(e) | Self::BeforeHead(e) => unprocessed(e),
            _ => false,
        }
    }

    /// Whether the peer broke the protocol (as opposed to the connection breaking).
    pub fn is_protocol(&self) -> bool {
        match self {
            Self::Protocol(e) | Self::BeforeHead(e) => {
                !e.is_io() && e.reason() != Some(h2::Reason::CANCEL)
            }
            Self::Request(_) => true,
            _ => false,
        }
    }
}

fn unprocessed(e: &h2::Error) -> bool {
    e.reason() == Some(h2::Reason::REFUSED_STREAM)
        || (e.is_go_away() && e.reason() == Some(h2::Reason::NO_ERROR))
}

/// An error and its causes, `: `-separated: the outer text alone often says little
/// without the TLS alert or I/O error under it.
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
    /// The HTTP/2 preface and settings on `io`.
    pub async fn handshake(io: Box<dyn Io>) -> Result<Self, h2::Error> {
        let (send, connection) = h2::client::handshake(io).await?;
        Ok(Self {
            send,
            connection,
            ended: false,
            marks: super::conn::Marks::default(),
        })
    }

    /// Whether a request can still go on this connection. Not polled here (a poll of h2's
    /// connection costs as much as a tenth of a request): a GOAWAY that arrived while the
    /// user was idle is read as the next request starts, refuses its stream, and the
    /// request goes again on a fresh connection (counted as a retry).
    pub fn is_usable(&self) -> bool {
        !self.ended
    }

    /// Sends the request and reads the whole response, at most `max_body` bytes of body.
    pub async fn exchange(
        &mut self,
        r: H2Request<'_>,
        max_body: usize,
    ) -> Result<RawResponse, H2Error> {
        if self.ended {
            return Err(H2Error::Ended);
        }
        let body = r.body.clone();
        let request = build(r)?;
        let send = &mut self.send;
        let marks = &mut self.marks;
        marks.writing = Some(std::time::Instant::now());
        let exchange = async move {
            let before_head = H2Error::BeforeHead;
            poll_fn(|cx| send.poll_ready(cx))
                .await
                .map_err(before_head)?;
            let (response, mut stream) = send
                .send_request(request, body.is_empty())
                .map_err(before_head)?;
            if !body.is_empty() {
                // Flow control: h2 holds what the window does not allow yet and sends it
                // as the server opens the window.
                stream.send_data(body, true).map_err(before_head)?;
            }
            marks.written = Some(std::time::Instant::now());
            let response = response.await.map_err(before_head)?;
            marks.first_byte = Some(std::time::Instant::now());
            let (parts, mut incoming) = response.into_parts();
            let body = read_body(&mut incoming, max_body).await?;
            Ok::<_, H2Error>((parts, body))
        };
        let (parts, body) = drive(&mut self.connection, &mut self.ended, exchange).await?;
        Ok(RawResponse {
            status: parts.status.as_u16(),
            headers: Headers::from_map(&parts.headers),
            body,
            reusable: !self.ended,
        })
    }
}

/// Polls `exchange` to its end, and the connection beside it so that its frames are sent
/// and received: the user's task is the connection's driver. The connection is polled once
/// a wake-up (each poll of h2's connection runs its whole send and receive machinery,
/// ~9,000 instructions), between two polls of the exchange: the first queues what it has
/// to send, the second finds what the connection received. What an exchange queues as it
/// ends (a window update) goes out with the next request.
async fn drive<T>(
    connection: &mut Connection<Box<dyn Io>, Bytes>,
    ended: &mut bool,
    exchange: impl Future<Output = Result<T, H2Error>>,
) -> Result<T, H2Error> {
    let mut exchange = pin!(exchange);
    poll_fn(|cx| {
        if let Poll::Ready(out) = exchange.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if !*ended && Pin::new(&mut *connection).poll(cx).is_ready() {
            *ended = true;
        }
        match exchange.as_mut().poll(cx) {
            Poll::Ready(out) => Poll::Ready(out),
            // The streams were told why as the connection ended; this is the fallback.
            Poll::Pending if *ended => Poll::Ready(Err(H2Error::Closed)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// The body, its window given back as it is read; one frame stays the same bytes.
async fn read_body(incoming: &mut h2::RecvStream, max_body: usize) -> Result<Bytes, H2Error> {
    let mut first: Option<Bytes> = None;
    let mut more = BytesMut::new();
    while let Some(chunk) = incoming.data().await {
        let chunk = chunk?;
        let _ = incoming.flow_control().release_capacity(chunk.len());
        let so_far = first.as_ref().map_or(0, Bytes::len) + more.len();
        if so_far + chunk.len() > max_body {
            return Err(H2Error::TooLarge(max_body));
        }
        match &first {
            None => first = Some(chunk),
            Some(f) => {
                if more.is_empty() {
                    more.extend_from_slice(f);
                }
                more.extend_from_slice(&chunk);
            }
        }
    }
    Ok(match first {
        Some(f) if more.is_empty() => f,
        Some(_) => more.freeze(),
        None => Bytes::new(),
    })
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

fn build(r: H2Request<'_>) -> Result<http::Request<()>, http::Error> {
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
    builder.body(())
}
