//! Where a request goes, parsed once: the origin (scheme, host, port) that picks the
//! connection, and the path and query sent on it. Relative paths are joined to the base
//! without any URL parsing, which keeps the per-request cost of the common case small.

use std::fmt;
use std::sync::Arc;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Scheme, host and port: one keep-alive connection pool entry per origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub https: bool,
    pub host: Arc<str>,
    pub port: u16,
    /// The `Host` header, built once per origin rather than per request.
    pub host_header: http::HeaderValue,
}

impl Origin {
    fn new(https: bool, host: &str, port: u16) -> Result<Self, String> {
        let default = if https { 443 } else { 80 };
        // An IPv6 literal keeps its brackets in `Host`, with or without a port (RFC 9110
        // §7.2, RFC 3986 §3.2.2).
        let host_part = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let authority = if port == default {
            host_part
        } else {
            format!("{host_part}:{port}")
        };
        let host_header = http::HeaderValue::from_str(&authority)
            .map_err(|_| format!("invalid host `{host}`"))?;
        Ok(Self {
            https,
            host: Arc::from(host),
            port,
            host_header,
        })
    }

    /// The `Host` header value (port omitted when it is the scheme's default).
    pub fn authority(&self) -> &str {
        self.host_header.to_str().unwrap_or_default()
    }
}

/// The `--host` base, parsed once per run.
#[derive(Debug, Clone)]
pub struct Base {
    origin: Origin,
    /// Path prefix without a trailing slash (`""` for a bare host).
    prefix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("`{0}` is not a valid http(s) URL: {1}")]
    Invalid(String, String),
    #[error("`{0}` is a relative URL but no host is set (use --host or `host` in options)")]
    NoHost(String),
    #[error(
        "`{0}` has credentials in it: they are never used nor written anywhere; use the \
         request option `auth: [user, password]` (HTTP basic authentication) instead"
    )]
    Credentials(String),
}

/// `url` with any `user:password@` replaced by `***@`, for messages: a URL given with
/// credentials must not carry them into errors, logs or reports.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_owned(),
    }
}

fn parse_absolute(url: &str) -> Result<(Origin, String), TargetError> {
    let invalid = |why: String| TargetError::Invalid(redact(url), why);
    let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(TargetError::Credentials(redact(url)));
    }
    let https = match parsed.scheme() {
        "http" => false,
        "https" => true,
        other => return Err(invalid(format!("unsupported scheme `{other}`"))),
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| invalid("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| invalid("no port".into()))?;
    let mut path = parsed.path().to_owned();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok((Origin::new(https, host, port).map_err(invalid)?, path))
}

impl Base {
    pub fn parse(host: &str) -> Result<Self, TargetError> {
        let (origin, path) = parse_absolute(host)?;
        let prefix = path.split('?').next().unwrap_or("").trim_end_matches('/');
        Ok(Self {
            origin,
            prefix: prefix.to_owned(),
        })
    }
}

/// Bytes a request target may not carry as they are: controls (a CR LF would end the
/// request line early), space, non-ASCII (encoded by `utf8_percent_encode` regardless), and
/// the characters RFC 3986 leaves out of URIs. `%`, `?`, `&`, `=`, `/` pass: the script
/// means them.
const NOT_IN_TARGET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^');

/// Appends `url` to `path`, percent-encoding what may not be sent as it is (as browsers and
/// Python's requests do with a space in a path); the usual all-ASCII path is copied as is.
fn push_request_target(path: &mut String, url: &str) {
    // One pass finds the fragment (not sent) and whether anything needs encoding; the
    // encoder and `split('#')` cost ~200 instructions per request even when they change
    // nothing.
    let mut end = url.len();
    let mut plain = true;
    for (i, b) in url.bytes().enumerate() {
        if b == b'#' {
            end = i;
            break;
        }
        plain &= b.is_ascii_graphic()
            && !matches!(
                b,
                b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'\\' | b'^'
            );
    }
    let url = &url[..end];
    if plain {
        path.push_str(url);
    } else {
        path.extend(utf8_percent_encode(url, NOT_IN_TARGET));
    }
}

/// Whether `url` is absolute (`http://…` or `https://…`): schemes are case-insensitive
/// (RFC 3986 §3.1), so `HTTP://host/` is not a relative path.
fn is_absolute(url: &str) -> bool {
    let starts = |prefix: &str| {
        url.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    starts("http://") || starts("https://")
}

/// A resolved request target.
#[derive(Debug, Clone)]
pub struct Target {
    pub origin: Origin,
    /// Origin-form request target: path plus `?query`, as sent on the request line.
    pub path_and_query: String,
}

impl Target {
    /// Resolves `url` (absolute, or relative to `base`, appended as Locust does) and adds
    /// `query` pairs, URL-encoded.
    pub fn resolve(
        base: Option<&Base>,
        url: &str,
        query: &[(String, String)],
    ) -> Result<Self, TargetError> {
        let (origin, mut path_and_query) = if is_absolute(url) {
            parse_absolute(url)?
        } else {
            let base = base.ok_or_else(|| TargetError::NoHost(url.to_owned()))?;
            // Not `format!`: this runs for every request and the formatter costs more
            // than the rest of resolving.
            let mut path = String::with_capacity(base.prefix.len() + 1 + url.len());
            path.push_str(&base.prefix);
            if !url.starts_with('/') {
                path.push('/');
            }
            push_request_target(&mut path, url);
            (base.origin.clone(), path)
        };
        if !query.is_empty() {
            path_and_query.push(if path_and_query.contains('?') {
                '&'
            } else {
                '?'
            });
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                ser.append_pair(k, v);
            }
            path_and_query.push_str(&ser.finish());
        }
        Ok(Self {
            origin,
            path_and_query,
        })
    }

    /// The path without the query, for naming requests.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split('?')
            .next()
            .unwrap_or(&self.path_and_query)
    }

    /// Resolves a redirect's `Location` against this target.
    pub fn join(&self, location: &str) -> Result<Self, TargetError> {
        if is_absolute(location) {
            let (origin, path_and_query) = parse_absolute(location)?;
            return Ok(Self {
                origin,
                path_and_query,
            });
        }
        let base = url::Url::parse(&self.to_string())
            .map_err(|e| TargetError::Invalid(self.to_string(), e.to_string()))?;
        let joined = base
            .join(location)
            .map_err(|e| TargetError::Invalid(location.to_owned(), e.to_string()))?;
        let (origin, path_and_query) = parse_absolute(joined.as_str())?;
        Ok(Self {
            origin,
            path_and_query,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.origin.https { "https" } else { "http" };
        let host = if self.origin.host.contains(':') {
            format!("[{}]", self.origin.host)
        } else {
            self.origin.host.to_string()
        };
        let default = if self.origin.https { 443 } else { 80 };
        if self.origin.port == default {
            write!(f, "{scheme}://{host}{}", self.path_and_query)
        } else {
            write!(
                f,
                "{scheme}://{host}:{}{}",
                self.origin.port, self.path_and_query
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_the_base_and_keep_its_prefix() {
        let base = Base::parse("http://127.0.0.1:8000/api/").unwrap();
        let t = Target::resolve(Some(&base), "/items", &[("q".into(), "a b".into())]).unwrap();
        assert_eq!(t.to_string(), "http://127.0.0.1:8000/api/items?q=a+b");
        assert_eq!(t.path(), "/api/items");
        let t = Target::resolve(Some(&base), "items?x=1", &[("y".into(), "2".into())]).unwrap();
        assert_eq!(t.path_and_query, "/api/items?x=1&y=2");
        assert!(Target::resolve(None, "/x", &[]).is_err());
    }

    #[test]
    fn request_targets_cannot_break_the_request_line() {
        let base = Base::parse("http://127.0.0.1:8000").unwrap();
        let t = |url| {
            Target::resolve(Some(&base), url, &[])
                .unwrap()
                .path_and_query
        };
        assert_eq!(t("/a b?q=x y"), "/a%20b?q=x%20y");
        assert_eq!(t("/x\r\nHost: evil"), "/x%0D%0AHost:%20evil");
        assert_eq!(t("/café"), "/caf%C3%A9");
        assert_eq!(t("/page#section"), "/page");
        assert_eq!(
            t("/already%20encoded?a=1&b=2"),
            "/already%20encoded?a=1&b=2"
        );
    }

    #[test]
    fn absolute_urls_and_redirects() {
        let t = Target::resolve(None, "https://example.test/a/b?c=d", &[]).unwrap();
        assert_eq!((t.origin.https, t.origin.port), (true, 443));
        assert_eq!(t.origin.authority(), "example.test");
        assert_eq!(
            t.join("../x").unwrap().to_string(),
            "https://example.test/x"
        );
        let other = t.join("http://other.test:81/y").unwrap();
        assert_eq!(other.origin.authority(), "other.test:81");
        let upper = t.join("HTTP://Other.test/z").unwrap();
        assert_eq!(upper.to_string(), "http://other.test/z");
    }

    #[test]
    fn ipv6_literals_keep_their_brackets_and_schemes_any_case() {
        let t = Target::resolve(None, "http://[::1]/a", &[]).unwrap();
        assert_eq!(t.origin.authority(), "[::1]");
        assert_eq!(t.to_string(), "http://[::1]/a");
        let t = Target::resolve(None, "http://[::1]:8080/a", &[]).unwrap();
        assert_eq!(t.origin.authority(), "[::1]:8080");
        let t = Target::resolve(None, "HTTPS://Example.test/x", &[]).unwrap();
        assert!(t.origin.https);
        assert_eq!(t.to_string(), "https://example.test/x");
        let base = Base::parse("HTTP://127.0.0.1:9").unwrap();
        assert_eq!(
            Target::resolve(Some(&base), "/y", &[]).unwrap().to_string(),
            "http://127.0.0.1:9/y"
        );
    }
}
