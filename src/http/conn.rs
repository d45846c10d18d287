//! One HTTP/1.1 connection, driven by the user's own task: write the request, read the
//! response, in place.
//!
//! hyper's client runs each connection as a separate task and hands requests and
//! responses over channels; for a load tester that makes one request at a time per
//! connection that hand-off (two task wake-ups, two channels, a boxed body) cost more than
//! the HTTP itself. Here the user's task does the I/O directly into buffers the connection
//! keeps, and a response's head and body are slices of the read buffer (no copies).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::stamped::{Arrival, Stamped};

use super::chunked::Chunked;
use super::headers::Headers;
use super::wire::{self, Framing, HeadScan, WireError};

/// Bytes asked of the socket per read while a head or an unframed body arrives.
const READ_CHUNK: usize = 4096;
/// The most a single read reserves for a body of known length; bigger ones grow.
const BODY_CHUNK: usize = 1 << 20;
/// Buffers that grew past this for one big request or response are not kept for the next:
/// thousands of idle connections each holding the largest response they ever saw would add
/// up. (The response itself keeps its bytes as long as the script holds it.)
const KEEP_BUFFER: usize = 64 * 1024;

pub(crate) enum Stream {
    Plain(Stamped),
    Tls(Box<tokio_rustls::client::TlsStream<Stamped>>),
}

impl Stream {
    /// When the bytes of the last read reached the socket (through TLS: the last read of
    /// the encrypted bytes that held them).
    fn arrival(&self) -> Option<Arrival> {
        match self {
            Stream::Plain(s) => s.arrival(),
            Stream::Tls(s) => s.get_ref().0.arrival(),
        }
    }

    fn forget(&mut self) {
        match self {
            Stream::Plain(s) => s.forget(),
            Stream::Tls(s) => s.get_mut().0.forget(),
        }
    }

    /// Polls a read once without a task to wake: what the server sent since the last read,
    /// if the reactor has seen anything; `Pending` when it has not.
    fn poll_read_now(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = ReadBuf::new(buf);
        let polled = match self {
            Stream::Plain(s) => Pin::new(s).poll_read(&mut cx, &mut buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(&mut cx, &mut buf),
        };
        polled.map_ok(|()| buf.filled().len())
    }

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
    #[error("response body larger than {} (raise the limit with --max-body)", bytesize::ByteSize(*.0 as u64))]
    TooLarge(usize),
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
    /// When the last request was written out, and when its response's first bytes were
    /// read: the timing breakdown's marks, kept here rather than carried with the response.
    pub marks: Marks,
}

/// When a request was written out and its response began to arrive (at the socket, where
/// the kernel stamped it), and when its last bytes arrived.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Marks {
    /// Just before the request's first write: where the latency of a request on a reused
    /// connection starts (the script's and the client's work before it is not the server's).
    pub writing: Option<std::time::Instant>,
    pub written: Option<std::time::Instant>,
    pub first_byte: Option<std::time::Instant>,
    /// The socket's stamps of the response's first and last bytes; `None` where it gave
    /// none (the response is then timed when the task read it).
    pub first_arrival: Option<Arrival>,
    pub last_arrival: Option<Arrival>,
}

impl Conn {
    pub fn new(stream: Stream) -> Self {
        Self {
            stream,
            input: BytesMut::new(),
            output: Vec::new(),
            marks: Marks::default(),
        }
    }

    /// Whether the connection is still quiet since its last response, so a request can go
    /// on it. A server that closed it while idle, or sent something unasked (a `408` before
    /// closing, say), has made it unusable: its bytes would be read as the next response.
    /// Costs no system call unless the reactor saw the socket become readable.
    pub fn is_quiet(&mut self) -> bool {
        let mut probe = [0u8; 1];
        self.stream.poll_read_now(&mut probe).is_pending()
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
    /// close the connection; a body over `max_body` bytes is an error.
    pub async fn exchange(
        &mut self,
        head_request: bool,
        close: bool,
        max_body: usize,
    ) -> Result<RawResponse, ConnError> {
        self.stream.forget();
        self.marks.first_byte = None;
        self.marks.writing = Some(std::time::Instant::now());
        if let Err(error) = self.stream.write_all(&self.output).await {
            return Err(ConnError::Io {
                error,
                responded: false,
            });
        }
        self.marks.written = Some(std::time::Instant::now());
        let mut responded = false;
        let mut scan = HeadScan::default();
        let head = loop {
            if !self.input.is_empty() && scan.worth_parsing(&self.input)? {
                match wire::parse_head(&self.input, head_request)? {
                    Some(head) if head.is_interim() => {
                        let _ = self.input.split_to(head.len);
                        scan.reset();
                        continue;
                    }
                    Some(head) => break head,
                    None => {}
                }
            }
            self.fill(READ_CHUNK, responded).await?;
            if !responded {
                self.marks.first_arrival = self.stream.arrival();
                if self.marks.first_arrival.is_none() {
                    self.marks.first_byte = Some(std::time::Instant::now());
                }
            }
            responded = true;
        };
        let raw_head = self.input.split_to(head.len).freeze();
        let body = match head.framing {
            Framing::Empty => Bytes::new(),
            Framing::Length(n) => self.read_length(n, max_body).await?,
            Framing::Chunked => self.read_chunked(max_body).await?,
            Framing::UntilClose => self.read_to_close(max_body).await?,
        };
        // The last read took the response's last bytes.
        self.marks.last_arrival = self.stream.arrival();
        if raw_head.len() + body.len() > KEEP_BUFFER && self.input.is_empty() {
            self.input = BytesMut::new();
        }
        if self.output.capacity() > KEEP_BUFFER {
            self.output = Vec::new();
        }
        Ok(RawResponse {
            status: head.status,
            headers: Headers::new(raw_head, head.fields, head.notable),
            body,
            // Bytes beyond the response mean the server and client disagree on framing.
            reusable: head.keep_alive && !close && self.input.is_empty(),
        })
    }

    async fn read_length(&mut self, length: u64, max_body: usize) -> Result<Bytes, ConnError> {
        let length = usize::try_from(length).map_err(|_| WireError::ContentLength)?;
        if length > max_body {
            return Err(ConnError::TooLarge(max_body));
        }
        while self.input.len() < length {
            let want = (length - self.input.len()).clamp(READ_CHUNK, BODY_CHUNK);
            self.fill(want, true).await?;
        }
        Ok(self.input.split_to(length).freeze())
    }

    async fn read_chunked(&mut self, max_body: usize) -> Result<Bytes, ConnError> {
        let mut body = BytesMut::new();
        let mut decoder = Chunked::default();
        loop {
            let done = decoder.decode(&mut self.input, &mut body)?;
            if body.len() > max_body {
                return Err(ConnError::TooLarge(max_body));
            }
            if done {
                break;
            }
            self.fill(READ_CHUNK.max(body.len()), true).await?;
        }
        Ok(body.freeze())
    }

    async fn read_to_close(&mut self, max_body: usize) -> Result<Bytes, ConnError> {
        loop {
            self.input.reserve(READ_CHUNK.max(self.input.len()));
            match self.stream.read_buf(&mut self.input).await {
                Ok(0) => return Ok(self.input.split().freeze()),
                Ok(_) if self.input.len() > max_body => {
                    return Err(ConnError::TooLarge(max_body));
                }
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A server on 127.0.0.1 that reads two requests of `request_len` bytes and answers
    /// each with `response`.
    fn serve_twice(request_len: usize, response: Vec<u8>) -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = vec![0u8; request_len];
            for _ in 0..2 {
                s.read_exact(&mut request).unwrap();
                s.write_all(&response).unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_connection_the_server_spoke_on_while_idle_is_not_quiet() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (go, send_408) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = [0u8; 18];
            s.read_exact(&mut request).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            // Later, unasked: what some servers send before closing an idle connection.
            send_408.recv().unwrap();
            s.write_all(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
                .unwrap();
        });
        let mut conn = Conn::new(Stream::Plain(Stamped::new(
            tokio::net::TcpStream::connect(addr).await.unwrap(),
        )));
        conn.output = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        let r = conn.exchange(false, false, usize::MAX).await.unwrap();
        assert_eq!((r.status, r.reusable), (200, true));
        assert!(conn.is_quiet(), "nothing arrived after the response");
        go.send(()).unwrap();
        // Let the reactor see the 408 arrive, as it does while a user waits between tasks.
        let Stream::Plain(stamped) = &conn.stream else {
            unreachable!()
        };
        stamped.get_ref().readable().await.unwrap();
        assert!(
            !conn.is_quiet(),
            "the 408 must not be read as the next response"
        );
    }

    #[tokio::test]
    async fn big_messages_do_not_leave_big_buffers_on_the_connection() {
        let body = vec![b'x'; 1 << 20];
        let mut response =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        response.extend_from_slice(&body);
        let mut request = b"POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n".to_vec();
        request.resize(request.len() + 100_000, b'y');
        let addr = serve_twice(request.len(), response);
        let mut conn = Conn::new(Stream::Plain(Stamped::new(
            tokio::net::TcpStream::connect(addr).await.unwrap(),
        )));
        for _ in 0..2 {
            conn.output = request.clone();
            let r = conn.exchange(false, false, usize::MAX).await.unwrap();
            assert_eq!((r.status, r.body.len(), r.reusable), (200, 1 << 20, true));
            // Once the response is gone, what would the next read reuse?
            drop(r);
            conn.input.reserve(1);
            assert!(
                conn.input.capacity() <= KEEP_BUFFER,
                "{}",
                conn.input.capacity()
            );
            assert!(conn.output.capacity() <= KEEP_BUFFER);
        }
    }
}
