//! TLS for the client: webpki roots (or a CA file, or the system's store), ring, client
//! certificates, the protocols offered by ALPN, and an opt-in that skips
//! certificate verification for test systems with self-signed certificates (`--insecure`,
//! as curl's `-k`, k6's `insecureSkipTLSVerify` or Locust's `verify=False`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::ClientError;

/// Where server certificates are checked against, and who the client says it is.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// `false` accepts any server certificate (`--insecure`).
    pub verify: bool,
    /// PEM certificates trusted instead of the built-in roots (`--cacert`, as curl's).
    pub ca_file: Option<PathBuf>,
    /// The operating system's trust store instead of the built-in roots (`--ca-native`,
    /// as curl's).
    pub ca_native: bool,
    /// A client certificate chain and its private key, PEM, for servers that ask for one
    /// (mutual TLS; curl's `--cert` and `--key`).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// The run's TLS configuration, built once. `verify: false` accepts any certificate (the
/// handshake's signatures are still checked, so the connection is encrypted to whoever
/// holds the key — just not authenticated). `alpn` lists the protocols offered.
pub fn config(
    options: &TlsOptions,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(options)?);
    let mut tls = match &options.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| ClientError::Pem {
                path: key.clone(),
                what: "private key",
                message: e.to_string(),
            })?;
            builder.with_client_auth_cert(chain, key)?
        }
    };
    if !options.verify {
        tls.dangerous()
            .set_certificate_verifier(Arc::new(AnyCertificate(provider)));
    }
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(tls))
}

/// The trust anchors: a CA file, the system's store, or the built-in (webpki) roots.
fn roots(options: &TlsOptions) -> Result<rustls::RootCertStore, ClientError> {
    if let Some(path) = &options.ca_file {
        let mut store = rustls::RootCertStore::empty();
        for cert in certificates(path)? {
            store.add(cert)?;
        }
        return Ok(store);
    }
    if options.ca_native {
        let found = rustls_native_certs::load_native_certs();
        let mut store = rustls::RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found.errors.first().map(|e| e.to_string());
            return Err(ClientError::NativeRoots(why.unwrap_or_default()));
        }
        return Ok(store);
    }
    Ok(rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
}

/// Every certificate in a PEM file; none is an error.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let pem = |message: String| ClientError::Pem {
        path: path.to_owned(),
        what: "certificate",
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("no certificate in it".into()));
    }
    Ok(certs)
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
