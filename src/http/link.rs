//! The transport seam: a user's connection to an origin, whichever protocol it speaks.
//!
//! HTTP/1.1 goes over the lean hand-written connection (`conn.rs`), which is what keeps
//! stampede's cost per request below every peer's; HTTP/2 over the `h2` crate (`h2.rs`). Which one
//! a connection is follows from ALPN over TLS, or `--http2-prior-knowledge` on cleartext.
//! Connecting — directly or through a proxy, TLS or not — is the same for both, and so is
//! everything above (`client.rs`: cookies, redirects, decoding, timeouts, failure kinds).

use std::fmt;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::conn::{Conn, ConnError, Stream};
use super::h2::{H2Conn, H2Error};
use super::proxy::Route;
use super::target::Origin;
use super::{HttpVersion, TransportError, TransportKind};

/// The HTTP version a response came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Http1,
    Http2,
}

impl Protocol {
    /// As k6's `res.proto`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http1 => "HTTP/1.1",
            Self::Http2 => "HTTP/2.0",
        }
    }
}

/// A TLS version, as k6 names them in `res.tls_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
    Other,
}

impl TlsVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls12 => "tls1.2",
            Self::Tls13 => "tls1.3",
            Self::Other => "tls",
        }
    }
}

/// What was negotiated for a connection: the protocol, and the TLS version and ALPN
/// protocol if it is TLS. Three bytes: it travels with every response, and a wider one
/// showed in callgrind as copies on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkInfo {
    pub protocol: Protocol,
    /// `None` on cleartext.
    pub tls: Option<TlsVersion>,
    /// The protocol ALPN agreed on (`h2` or `http/1.1`); `None` if none was.
    pub alpn: Option<Protocol>,
}

impl LinkInfo {
    /// How the requests over it are counted in the results: the protocol and TLS version.
    pub fn label(&self) -> &'static str {
        match (self.protocol, self.tls) {
            (Protocol::Http1, None) => "HTTP/1.1",
            (Protocol::Http1, Some(TlsVersion::Tls12)) => "HTTP/1.1 over tls1.2",
            (Protocol::Http1, Some(_)) => "HTTP/1.1 over tls1.3",
            (Protocol::Http2, None) => "HTTP/2.0 (h2c)",
            (Protocol::Http2, Some(TlsVersion::Tls12)) => "HTTP/2.0 over tls1.2",
            (Protocol::Http2, Some(_)) => "HTTP/2.0 over tls1.3",
        }
    }

    /// `"tls1.2"`, `"tls1.3"`; `""` on cleartext.
    pub fn tls_version(&self) -> &'static str {
        self.tls.map_or("", TlsVersion::as_str)
    }

    /// ALPN's name for the protocol agreed on (`"h2"`, `"http/1.1"`), or `""`.
    pub fn alpn(&self) -> &'static str {
        match self.alpn {
            Some(Protocol::Http2) => "h2",
            Some(Protocol::Http1) => "http/1.1",
            None => "",
        }
    }
}

impl fmt::Display for LinkInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.protocol.as_str())?;
        if let Some(v) = self.tls {
            write!(f, " over {}", v.as_str())?;
            if self.alpn.is_some() {
                write!(f, " (ALPN {})", self.alpn())?;
            }
        }
        Ok(())
    }
}

pub(crate) enum Via {
    /// HTTP/1.1; through a proxy that forwards it, the request goes in absolute form with
    /// the proxy's `Proxy-Authorization`, if any.
    H1 {
        conn: Conn,
        forward: Option<Box<Route>>,
    },
    /// Boxed: h2's connection state is over a kilobyte, and every idle HTTP/1.1 link would
    /// be as large, and moved as often.
    H2(Box<H2Conn>),
}

pub(crate) struct Link {
    pub via: Via,
    pub info: LinkInfo,
    /// How long opening it took (TCP with any proxy tunnel, then TLS), until the first
    /// request on it takes that into its timing breakdown.
    pub opened: Option<(Duration, Duration)>,
}

/// Why an exchange on a link failed.
pub(crate) enum LinkError {
    H1(ConnError),
    H2(H2Error),
}

impl LinkError {
    /// Whether the server saw nothing of the request, so it can go again on a fresh
    /// connection.
    pub fn before_response(&self) -> bool {
        match self {
            Self::H1(e) => e.before_response(),
            Self::H2(e) => e.before_response(),
        }
    }

    /// Whether the server said it did not process the request (HTTP/2's refused stream or
    /// graceful GOAWAY): it may go again whatever its method.
    pub fn unprocessed(&self) -> bool {
        match self {
            Self::H1(_) => false,
            Self::H2(e) => e.unprocessed(),
        }
    }
}

impl Link {
    /// When the last request on it was written out and its response began.
    pub fn marks(&self) -> super::conn::Marks {
        match &self.via {
            Via::H1 { conn, .. } => conn.marks,
            Via::H2(h2) => h2.marks,
        }
    }

    /// Whether the idle link can carry another request: nothing arrived unasked on an
    /// HTTP/1.1 connection, an HTTP/2 connection is not closing.
    pub fn is_usable(&mut self) -> bool {
        match &mut self.via {
            Via::H1 { conn, .. } => conn.is_quiet(),
            Via::H2(h2) => h2.is_usable(),
        }
    }
}

/// What connecting needs from the run's settings.
pub(crate) struct Connector<'a> {
    pub tls: &'a tokio_rustls::TlsConnector,
    pub version: HttpVersion,
    pub route: Option<Route>,
}

fn failed(kind: TransportKind, message: impl Into<String>) -> TransportError {
    TransportError::new(kind, message)
}

/// Classifies a failure to connect.
fn connect_error(e: &std::io::Error) -> TransportError {
    let kind = match e.kind() {
        std::io::ErrorKind::TimedOut => TransportKind::Timeout,
        _ => TransportKind::Connect,
    };
    failed(kind, e.to_string())
}

impl Connector<'_> {
    /// Opens a connection to `origin` (through the proxy, if any), with TLS for https, and
    /// the protocol ALPN or the settings chose.
    pub async fn connect(self, origin: &Origin) -> Result<Link, TransportError> {
        let start = Instant::now();
        let mut link = self.open(origin, start).await?;
        if let (true, Some((tcp, tls))) = (origin.https, &mut link.opened) {
            // `open` noted when TCP was up; the rest was TLS (and the HTTP/2 preface).
            *tls = start.elapsed().saturating_sub(*tcp);
        }
        Ok(link)
    }

    async fn open(self, origin: &Origin, start: Instant) -> Result<Link, TransportError> {
        let tcp = match &self.route {
            None => TcpStream::connect((&*origin.host, origin.port))
                .await
                .map_err(|e| connect_error(&e))?,
            Some(route) if origin.https => route
                .tunnel(origin)
                .await
                .map_err(|e| failed(TransportKind::Connect, e))?,
            Some(route) => route.dial().await.map_err(|e| connect_error(&e))?,
        };
        let _ = tcp.set_nodelay(true);
        let connected = Some((start.elapsed(), Duration::ZERO));
        // HTTP/1.1 reads take the kernel's receive stamps; HTTP/2 (the h2 crate reads for
        // itself) is timed when the user's task sees the response.
        let tcp = super::stamped::Stamped::new(tcp);
        if !origin.https {
            let mut link = self.cleartext(tcp).await?;
            link.opened = connected;
            return Ok(link);
        }
        let name = rustls::pki_types::ServerName::try_from(origin.host.to_string())
            .map_err(|e| failed(TransportKind::Connect, e.to_string()))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| failed(TransportKind::Tls, format!("TLS: {e}")))?;
        let session = tls.get_ref().1;
        let alpn = match session.alpn_protocol() {
            Some(b"h2") => Some(Protocol::Http2),
            Some(b"http/1.1") => Some(Protocol::Http1),
            _ => None,
        };
        let version = Some(match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
            Some(rustls::ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
            _ => TlsVersion::Other,
        });
        if alpn == Some(Protocol::Http2) {
            let info = LinkInfo {
                protocol: Protocol::Http2,
                tls: version,
                alpn,
            };
            return h2_link(Box::new(tls), info, connected).await;
        }
        if self.version == HttpVersion::Http2 {
            return Err(failed(
                TransportKind::Connect,
                "the server did not agree to HTTP/2 (ALPN), and --http2 requires it",
            ));
        }
        Ok(Link {
            via: Via::H1 {
                conn: Conn::new(Stream::Tls(Box::new(tls))),
                forward: None,
            },
            info: LinkInfo {
                protocol: Protocol::Http1,
                tls: version,
                alpn,
            },
            opened: connected,
        })
    }

    async fn cleartext(self, tcp: super::stamped::Stamped) -> Result<Link, TransportError> {
        // Prior knowledge does not go through a forwarding proxy: it speaks HTTP/1.1.
        if self.version == HttpVersion::Http2 && self.route.is_none() {
            let info = LinkInfo {
                protocol: Protocol::Http2,
                ..LinkInfo::default()
            };
            return h2_link(Box::new(tcp), info, None).await;
        }
        Ok(Link {
            via: Via::H1 {
                conn: Conn::new(Stream::Plain(tcp)),
                forward: self.route.map(Box::new),
            },
            info: LinkInfo::default(),
            opened: None,
        })
    }
}

/// An HTTP/2 link on `io`, once the preface and settings are exchanged.
async fn h2_link(
    io: Box<dyn super::h2::Io>,
    info: LinkInfo,
    opened: Option<(Duration, Duration)>,
) -> Result<Link, TransportError> {
    let h2 = H2Conn::handshake(io).await.map_err(handshake_error)?;
    Ok(Link {
        via: Via::H2(Box::new(h2)),
        info,
        opened,
    })
}

fn handshake_error(e: h2::Error) -> TransportError {
    failed(
        TransportKind::Protocol,
        format!("HTTP/2 handshake: {}", super::h2::with_causes(&e)),
    )
}
