//! A hand-written HTTP/1.1 server for the framings and connection behaviours that a
//! well-behaved framework never produces: bodies ended by closing, interim responses,
//! connections closed right after a keep-alive response, truncated bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the server counted, independently of the tool.
#[derive(Default)]
pub struct RawCounts {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
}

pub struct RawServer {
    pub url: String,
    pub counts: Arc<RawCounts>,
}

/// What to send for `path`, and whether to close the connection afterwards.
fn answer(path: &str) -> (&'static [u8], bool) {
    match path {
        "/chunked" => (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
            false,
        ),
        "/interim" => (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
            false,
        ),
        "/until-close" => (b"HTTP/1.1 200 OK\r\n\r\nuntil close body", true),
        // Looks like keep-alive, but the server closes at once: the client's next request
        // finds a dead connection in its pool.
        "/close-after" => (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true),
        "/truncated" => (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", true),
        _ => (
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
    }
}

/// Heads of responses whose bodies never end (or end after a gigabyte).
fn endless(path: &str) -> Option<&'static [u8]> {
    match path {
        "/endless" => Some(b"HTTP/1.1 200 OK\r\n\r\n"),
        "/endless-chunked" => Some(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        "/huge-length" => Some(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n"),
        _ => None,
    }
}

/// A few kilobytes of gzip that inflate to 4 MiB.
fn gzip_bomb() -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 4 << 20]).unwrap();
    let body = gz.finish().unwrap();
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

fn serve<S: Read + Write>(stream: S, counts: &RawCounts) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        // The tests send no request bodies: the head ends at the first blank line.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        counts.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(head) = endless(&path) {
            // Streams until the client gives up and closes.
            let writer = reader.get_mut();
            let block = vec![b'z'; 64 * 1024];
            let chunked = path == "/endless-chunked";
            let mut ok = writer.write_all(head).is_ok();
            while ok {
                ok = if chunked {
                    write!(writer, "{:x}\r\n", block.len()).is_ok()
                        && writer.write_all(&block).is_ok()
                        && writer.write_all(b"\r\n").is_ok()
                } else {
                    writer.write_all(&block).is_ok()
                };
            }
            return;
        }
        if path == "/gzip-bomb" {
            let _ = reader.get_mut().write_all(&gzip_bomb());
            continue;
        }
        let (bytes, close) = answer(&path);
        let writer = reader.get_mut();
        if writer
            .write_all(bytes)
            .and_then(|()| writer.flush())
            .is_err()
            || close
        {
            return;
        }
    }
}

pub fn start_raw() -> RawServer {
    start(None)
}

/// The same server behind TLS, with a freshly generated self-signed certificate.
pub fn start_raw_tls() -> RawServer {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    start(Some(Arc::new(config)))
}

fn start(tls: Option<Arc<rustls::ServerConfig>>) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let counts = Arc::new(RawCounts::default());
    let c = counts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            c.connections.fetch_add(1, Ordering::SeqCst);
            let c = c.clone();
            let tls = tls.clone();
            std::thread::spawn(move || match tls {
                None => serve(stream, &c),
                Some(config) => {
                    // A failed handshake (a client that rejects the certificate) just ends
                    // this connection.
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    serve(rustls::StreamOwned::new(conn, stream), &c);
                }
            });
        }
    });
    RawServer { url, counts }
}
