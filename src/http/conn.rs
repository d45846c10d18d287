//! One HTTP/1.1 connection, driven by the user's own task: write the request, read the
//! response, in place.
//!
//! hyper's client runs each connection as a separate task and hands requests and
//! responses over channels; for a load tester that makes one request at a time per
//! connection that hand-off (two task wake-ups, two channels, a boxed body) cost more than
//! the HTTP itself. Here the user's task does the I/O directly into buffers the connection
//! keeps, and a response's head and body are slices of the read buffer (no copies).

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::headers::Headers;
use super::wire::{self, Chunked, Framing, WireError};

/// Bytes asked of the socket per read while a head or an unframed body arrives.
const READ_CHUNK: usize = 4096;
/// The most a single read reserves for a body of known length; bigger ones grow.
const BODY_CHUNK: usize = 1 << 20;

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes).await,
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read_buf(buf).await,
            Stream::Tls(s) => s.read_buf(buf).await,
        }
    }
}

/// Why an exchange on a connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("{error}")]
    Io { error: io::Error, responded: bool },
    #[error("connection closed before the response completed")]
    Closed { responded: bool },
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl ConnError {
    /// Whether the server sent nothing at all: on a reused connection that means it had
    /// closed the connection while idle, and the request can go again on a fresh one.
    pub fn before_response(&self) -> bool {
        matches!(
            self,
            ConnError::Io {
                responded: false,
                ..
            } | ConnError::Closed { responded: false }
        )
    }
}

/// A response read in full.
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: Headers,
    pub body: Bytes,
    /// Whether the connection can carry the next request.
    pub reusable: bool,
}

pub(crate) struct Conn {
    stream: Stream,
    /// Received bytes not yet handed out.
    input: BytesMut,
    /// The request being sent; kept to reuse its allocation.
    pub output: Vec<u8>,
}

impl Conn {
    pub fn new(stream: Stream) -> Self {
        Self {
            stream,
            input: BytesMut::new(),
            output: Vec::new(),
        }
    }

    /// Reads once more into the input buffer; end of stream is an error.
    async fn fill(&mut self, want: usize, responded: bool) -> Result<(), ConnError> {
        self.input.reserve(want);
        match self.stream.read_buf(&mut self.input).await {
            Ok(0) => Err(ConnError::Closed { responded }),
            Ok(_) => Ok(()),
            Err(error) => Err(ConnError::Io { error, responded }),
        }
    }

    /// Sends `self.output` and reads the response to it. `head_request` says the request
    /// was a HEAD (no body follows the response head); `close` that the request asked to
    /// close the connection.
    pub async fn exchange(
        &mut self,
        head_request: bool,
        close: bool,
    ) -> Result<RawResponse, ConnError> {
        if let Err(error) = self.stream.write_all(&self.output).await {
            return Err(ConnError::Io {
                error,
                responded: false,
            });
        }
        let mut responded = false;
        let head = loop {
            if !self.input.is_empty() {
                match wire::parse_head(&self.input, head_request)? {
                    Some(head) if head.is_interim() => {
                        let _ = self.input.split_to(head.len);
                        continue;
                    }
                    Some(head) => break head,
                    None => {}
                }
            }
            self.fill(READ_CHUNK, responded).await?;
            responded = true;
        };
        let raw_head = self.input.split_to(head.len).freeze();
        let body = match head.framing {
            Framing::Empty => Bytes::new(),
            Framing::Length(n) => self.read_length(n).await?,
            Framing::Chunked => self.read_chunked().await?,
            Framing::UntilClose => self.read_to_close().await?,
        };
        Ok(RawResponse {
            status: head.status,
            headers: Headers::new(raw_head, head.fields),
            body,
            // Bytes beyond the response mean the server and client disagree on framing.
            reusable: head.keep_alive && !close && self.input.is_empty(),
        })
    }

    async fn read_length(&mut self, length: u64) -> Result<Bytes, ConnError> {
        let length = usize::try_from(length).map_err(|_| WireError::ContentLength)?;
        while self.input.len() < length {
            let want = (length - self.input.len()).clamp(READ_CHUNK, BODY_CHUNK);
            self.fill(want, true).await?;
        }
        Ok(self.input.split_to(length).freeze())
    }

    async fn read_chunked(&mut self) -> Result<Bytes, ConnError> {
        let mut body = BytesMut::new();
        let mut decoder = Chunked::default();
        while !decoder.decode(&mut self.input, &mut body)? {
            self.fill(READ_CHUNK.max(body.len()), true).await?;
        }
        Ok(body.freeze())
    }

    async fn read_to_close(&mut self) -> Result<Bytes, ConnError> {
        loop {
            self.input.reserve(READ_CHUNK.max(self.input.len()));
            match self.stream.read_buf(&mut self.input).await {
                Ok(0) => return Ok(self.input.split().freeze()),
                Ok(_) => {}
                Err(error) => {
                    return Err(ConnError::Io {
                        error,
                        responded: true,
                    });
                }
            }
        }
    }
}
