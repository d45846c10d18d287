//! Forward proxies: which requests go through one (`--proxy`, or `HTTP_PROXY`,
//! `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` as curl reads them), and the tunnel an HTTPS
//! request takes through it (`CONNECT`). A plain-HTTP request is sent to the proxy in
//! absolute form instead (RFC 9112 §3.2.2).
//!
//! The rules are hyper-util's (the ones reqwest follows); the tunnel is its `Tunnel`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::target::Origin;

/// Where proxies come from for a run.
#[derive(Debug, Clone, Default)]
pub enum ProxySetting {
    /// `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY` (either case), as curl reads them.
    #[default]
    Environment,
    /// One proxy for every request (`--proxy URL`), except the hosts `NO_PROXY` names.
    Url(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("proxy `{0}`: only http:// proxies are supported")]
    Scheme(String),
    #[error("proxy `{0}` is not a valid URL")]
    Invalid(String),
}

/// The run's proxy rules, built once.
pub struct Proxies {
    matcher: Matcher,
}

/// The proxy one origin's connections go through.
#[derive(Debug, Clone)]
pub struct Route {
    pub uri: Uri,
    /// `Proxy-Authorization`, from credentials in the proxy's URL.
    pub authorization: Option<HeaderValue>,
}

impl Proxies {
    /// `no_proxy` (`--noproxy`, curl's) adds to `NO_PROXY`; `*` turns proxies off.
    pub fn new(setting: &ProxySetting, no_proxy: Option<&str>) -> Result<Self, ProxyError> {
        let env_no = std::env::var("NO_PROXY")
            .or_else(|_| std::env::var("no_proxy"))
            .unwrap_or_default();
        let no = match no_proxy {
            Some(extra) if env_no.is_empty() => extra.to_owned(),
            Some(extra) => format!("{env_no},{extra}"),
            None => env_no,
        };
        let matcher = match setting {
            ProxySetting::Environment => Matcher::builder()
                .all(env_first(&["ALL_PROXY", "all_proxy"]))
                .http(env_first(&["HTTP_PROXY", "http_proxy"]))
                .https(env_first(&["HTTPS_PROXY", "https_proxy"]))
                .no(no)
                .build(),
            ProxySetting::Url(url) => {
                let uri: Uri = url.parse().map_err(|_| ProxyError::Invalid(url.clone()))?;
                if uri.host().is_none() {
                    return Err(ProxyError::Invalid(url.clone()));
                }
                Matcher::builder().all(url.clone()).no(no).build()
            }
        };
        Ok(Self { matcher })
    }

    /// The proxy for `origin`, if any. Only http:// proxies are spoken to.
    pub fn route(&self, origin: &Origin) -> Result<Option<Route>, ProxyError> {
        let scheme = if origin.https { "https" } else { "http" };
        let Ok(destination) = format!("{scheme}://{}/", origin.authority()).parse::<Uri>() else {
            return Ok(None);
        };
        let Some(intercept) = self.matcher.intercept(&destination) else {
            return Ok(None);
        };
        let uri = intercept.uri().clone();
        if uri.scheme_str() != Some("http") {
            return Err(ProxyError::Scheme(super::redact(&uri.to_string())));
        }
        Ok(Some(Route {
            uri,
            authorization: intercept.basic_auth().cloned(),
        }))
    }
}

fn env_first(names: &[&str]) -> String {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}

/// Host and port of a URI, without the brackets of an IPv6 literal.
fn host_port(uri: &Uri, default: u16) -> (String, u16) {
    let host = uri.host().unwrap_or_default();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    (host, uri.port_u16().unwrap_or(default))
}

impl Route {
    /// A TCP connection to the proxy itself.
    pub async fn dial(&self) -> io::Result<TcpStream> {
        let (host, port) = host_port(&self.uri, 80);
        TcpStream::connect((host.as_str(), port)).await
    }

    /// A TCP connection through the proxy to `origin`: `CONNECT host:port`, answered 200.
    pub async fn tunnel(&self, origin: &Origin) -> Result<TcpStream, String> {
        let mut tunnel = Tunnel::new(self.uri.clone(), Dial);
        if let Some(auth) = &self.authorization {
            tunnel = tunnel.with_auth(auth.clone());
        }
        let destination: Uri = format!("https://{}:{}/", bracketed(&origin.host), origin.port)
            .parse()
            .map_err(|e: http::uri::InvalidUri| e.to_string())?;
        let proxy = super::redact(&self.uri.to_string());
        match tunnel.call(destination).await {
            Ok(io) => Ok(io.into_inner()),
            Err(e) => {
                let cause = std::error::Error::source(&e)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                Err(format!(
                    "CONNECT {}:{} through proxy {proxy}: {e}{cause}",
                    origin.host, origin.port
                ))
            }
        }
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Opens the TCP connection a tunnel starts from.
#[derive(Clone, Copy)]
struct Dial;

impl Service<Uri> for Dial {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (host, port) = host_port(&uri, 80);
        Box::pin(async move {
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            Ok(TokioIo::new(tcp))
        })
    }
}
