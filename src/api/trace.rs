//! `--trace`: every request and response of the run, as the script made them, for trying a
//! script once (k6's `--http-debug`). Written with the script's log (stderr or
//! `--log-file`). Secrets are redacted unless `--trace-secrets`.

use std::fmt::Write as _;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

use crate::http::{Headers, Target};
use crate::vu::Trace;

/// Headers whose values are secrets.
fn is_secret(name: &str) -> bool {
    [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ]
    .iter()
    .any(|s| name.eq_ignore_ascii_case(s))
}

fn header(out: &mut String, trace: &Trace, name: &str, value: &[u8]) {
    let value = if is_secret(name) && !trace.secrets {
        "[redacted]".into()
    } else {
        String::from_utf8_lossy(value)
    };
    let _ = write!(out, "\n    {name}: {value}");
}

fn body(out: &mut String, trace: &Trace, body: &[u8]) {
    if body.is_empty() {
        return;
    }
    let shown = &body[..body.len().min(trace.body_limit)];
    let _ = write!(out, "\n    {}", String::from_utf8_lossy(shown));
    if body.len() > shown.len() {
        let _ = write!(out, " … ({} more bytes)", body.len() - shown.len());
    }
}

/// The request as the script made it. The client adds `Host`, `User-Agent`,
/// `Accept-Encoding`, `Content-Length` and the user's cookies.
pub fn request(
    trace: &Trace,
    method: &Method,
    target: &Target,
    headers: &[(HeaderName, HeaderValue)],
    payload: &[u8],
) -> String {
    let mut out = format!("→ {method} {}", crate::http::redact(&target.to_string()));
    for (name, value) in headers {
        header(&mut out, trace, name.as_str(), value.as_bytes());
    }
    body(&mut out, trace, payload);
    out
}

/// The response, with how long the exchange took.
pub fn response(
    trace: &Trace,
    link: crate::http::LinkInfo,
    status: u16,
    elapsed: Duration,
    headers: &Headers,
    payload: &[u8],
) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut out = format!(
        "← {status} {reason} in {:.2} ms, {link}",
        elapsed.as_secs_f64() * 1e3
    );
    for (name, value) in headers.iter() {
        header(&mut out, trace, name, value);
    }
    body(&mut out, trace, payload);
    out
}

/// A request that got no response.
pub fn failed(kind: &str, message: &str, elapsed: Duration) -> String {
    format!(
        "← no response ({kind}: {message}) after {:.2} ms",
        elapsed.as_secs_f64() * 1e3
    )
}
