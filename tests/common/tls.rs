//! A private certificate authority (rcgen) and servers that speak HTTP/1.1 and HTTP/2 —
//! over TLS with ALPN, optionally requiring a client certificate, or on cleartext with
//! prior knowledge — keeping their own record of what arrived over which protocol.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Version;
use axum::routing::any;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

/// A CA, a server certificate it signed (for `localhost` and 127.0.0.1) and a client
/// certificate it signed (CN `stampede-vu`), written as PEM files.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: PathBuf,
    pub client_cert_pem: PathBuf,
    pub client_key_pem: PathBuf,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key_der: Vec<u8>,
}

pub fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "stampede test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "stampede-vu");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca_pem: write("ca.pem", ca.pem()),
        client_cert_pem: write("client.pem", client.pem()),
        client_key_pem: write("client-key.pem", client_key.serialize_pem()),
        ca_der: ca.der().clone(),
        server_chain: vec![server.der().clone()],
        server_key_der: server_key.serialize_der(),
        dir,
    }
}

/// What a server saw: connections accepted, requests by HTTP version, and the client
/// certificates presented.
#[derive(Default)]
pub struct Seen {
    pub connections: AtomicU64,
    pub http1: AtomicU64,
    pub http2: AtomicU64,
    pub client_certs: Mutex<Vec<Vec<u8>>>,
}

impl Seen {
    pub fn requests(&self) -> u64 {
        self.http1.load(Ordering::SeqCst) + self.http2.load(Ordering::SeqCst)
    }
}

/// Answers any path with `{"version": "..."}` and counts the request by version; `/echo`
/// answers with the request's body, `/big` with 1 MiB.
fn app(seen: Arc<Seen>) -> Router {
    Router::new()
        .route(
            "/echo",
            axum::routing::post(|body: axum::body::Bytes| async move { body }),
        )
        .route("/big", any(|| async { vec![b'x'; 1 << 20] }))
        .fallback(any(
            |State(seen): State<Arc<Seen>>, req: Request| async move {
                let version = req.version();
                match version {
                    Version::HTTP_2 => seen.http2.fetch_add(1, Ordering::SeqCst),
                    _ => seen.http1.fetch_add(1, Ordering::SeqCst),
                };
                format!("{{\"version\": \"{version:?}\"}}")
            },
        ))
        .with_state(seen)
}

pub enum Mode {
    /// TLS with ALPN offering h2 and http/1.1.
    Tls,
    /// TLS that requires a client certificate signed by the CA.
    MutualTls,
    /// Cleartext: HTTP/1.1, or HTTP/2 with prior knowledge.
    Cleartext,
}

/// Starts a server on 127.0.0.1 in a thread of its own; returns its base URL (with the
/// host name `localhost` for TLS, which its certificate names) and its record.
pub fn serve(pki: &Pki, mode: Mode) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let tls = match mode {
        Mode::Cleartext => None,
        Mode::Tls => Some(server_config(pki, false)),
        Mode::MutualTls => Some(server_config(pki, true)),
    };
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    let record = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                record.connections.fetch_add(1, Ordering::SeqCst);
                let service = hyper_util::service::TowerToHyperService::new(app(record.clone()));
                let acceptor = acceptor.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(acceptor) => {
                            // A failed handshake (no client certificate) ends the connection.
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            if let Some(certs) = tls.get_ref().1.peer_certificates() {
                                let mut seen = record.client_certs.lock().unwrap();
                                seen.extend(certs.iter().map(|c| c.to_vec()));
                            }
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                });
            }
        });
    });
    let addr = rx.recv().unwrap();
    let url = match mode {
        Mode::Cleartext => format!("http://{addr}"),
        _ => format!("https://localhost:{}", addr.port()),
    };
    (url, seen)
}

fn server_config(pki: &Pki, require_client: bool) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::Pkcs8(pki.server_key_der.clone().into());
    let mut config = builder
        .with_single_cert(pki.server_chain.clone(), key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}
