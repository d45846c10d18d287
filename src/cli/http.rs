//! The flags that shape the HTTP client: versions, proxies, TLS trust and client
//! certificates. Names are curl's, which users of every peer already know.

use std::path::PathBuf;

use clap::Args;

use crate::http::{HttpVersion, ProxySetting, TlsOptions};

/// Shown under their own heading in `--help` (per argument: a struct-level heading would
/// carry over to the flags declared after these).
#[derive(Debug, Args, Clone, Default)]
pub struct HttpFlags {
    /// Speak HTTP/1.1 only: TLS's ALPN offers nothing else [default: HTTP/2 where ALPN
    /// agrees on it, else HTTP/1.1].
    #[arg(long = "http1.1", conflicts_with = "http2", help_heading = "HTTP")]
    pub http1: bool,
    /// Speak HTTP/2 only: required of ALPN over TLS, and spoken from the first byte on
    /// cleartext http:// (prior knowledge, "h2c").
    #[arg(long = "http2", alias = "http2-prior-knowledge", help_heading = "HTTP")]
    pub http2: bool,
    /// Send every request through this HTTP proxy (http://[user:password@]host:port);
    /// HTTPS goes through a CONNECT tunnel [default: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY].
    #[arg(long, value_name = "URL", help_heading = "HTTP")]
    pub proxy: Option<String>,
    /// Hosts reached directly, not through a proxy: comma-separated names (a name also
    /// covers its subdomains), IP addresses or networks, `*` for all; adds to NO_PROXY.
    #[arg(long, value_name = "LIST", help_heading = "HTTP")]
    pub noproxy: Option<String>,
    /// Trust the certificates in this PEM file instead of the built-in roots.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "ca_native",
        help_heading = "HTTP"
    )]
    pub cacert: Option<PathBuf>,
    /// Trust the operating system's certificate store instead of the built-in roots.
    #[arg(long, help_heading = "HTTP")]
    pub ca_native: bool,
    /// Client certificate chain (PEM) for servers that require one (mutual TLS); with --key.
    #[arg(long, value_name = "FILE", requires = "key", help_heading = "HTTP")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "cert", help_heading = "HTTP")]
    pub key: Option<PathBuf>,
}

impl HttpFlags {
    /// The HTTP version the flags ask for, else the script's `http_version` option.
    pub fn version(&self, option: Option<HttpVersion>) -> HttpVersion {
        if self.http1 {
            HttpVersion::Http1
        } else if self.http2 {
            HttpVersion::Http2
        } else {
            option.unwrap_or_default()
        }
    }

    pub fn proxy(&self) -> ProxySetting {
        match &self.proxy {
            Some(url) => ProxySetting::Url(url.clone()),
            None => ProxySetting::Environment,
        }
    }

    pub fn tls(&self, verify: bool) -> TlsOptions {
        TlsOptions {
            verify,
            ca_file: self.cacert.clone(),
            ca_native: self.ca_native,
            client_cert: self.cert.clone().zip(self.key.clone()),
        }
    }
}

/// The script's `http_version` option: `"1.1"`, `"2"` or `"auto"`.
pub fn http_version(text: &str) -> Result<HttpVersion, String> {
    match text {
        "1.1" | "HTTP/1.1" => Ok(HttpVersion::Http1),
        "2" | "2.0" | "HTTP/2" | "HTTP/2.0" => Ok(HttpVersion::Http2),
        "auto" => Ok(HttpVersion::Auto),
        _ => Err(format!("expected \"1.1\", \"2\" or \"auto\", not `{text}`")),
    }
}
