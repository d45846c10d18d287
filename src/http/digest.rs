//! HTTP Digest authentication (RFC 7616): the answer to a server's `WWW-Authenticate:
//! Digest …` challenge, for `qop=auth` (or none, RFC 2069) with MD5, SHA-256 and their
//! `-sess` forms. `auth-int` and `userhash` are not offered; a challenge that asks only for
//! them gets no answer and its 401 stands.
//!
//! Written here rather than taken from a crate: the one candidate, `digest_auth`, was last
//! released in 2023 and pulls older RustCrypto versions beside ours; what it does is the
//! sixty lines below on top of `md-5` and `sha2`.

use md5::Md5;
use sha2::{Digest, Sha256};

/// What a challenge asks for.
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    /// `qop=auth` offered (else the RFC 2069 form without qop).
    qop_auth: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn hash(self, text: &str) -> String {
        match self {
            Self::Md5 => hex::encode(Md5::digest(text.as_bytes())),
            Self::Sha256 => hex::encode(Sha256::digest(text.as_bytes())),
        }
    }
}

/// `key=value` and `key="quoted, value"` pairs after the scheme, in order.
fn params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end..];
            value
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let value = rest[..end].trim().to_owned();
            rest = &rest[end..];
            value
        };
        out.push((key, value));
        rest = rest.trim_start().trim_start_matches(',');
    }
    out
}

/// The Digest challenge in a `WWW-Authenticate` value, if it is one we can answer.
fn challenge(header: &str) -> Option<(Challenge, bool)> {
    let (scheme, rest) = header.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let params = params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let algorithm = get("algorithm").unwrap_or_else(|| "MD5".into());
    let (algorithm, sess) = match algorithm.to_ascii_uppercase().as_str() {
        "MD5" => (Algorithm::Md5, false),
        "MD5-SESS" => (Algorithm::Md5, true),
        "SHA-256" => (Algorithm::Sha256, false),
        "SHA-256-SESS" => (Algorithm::Sha256, true),
        _ => return None,
    };
    let qop = get("qop");
    let qop_auth = qop
        .as_deref()
        .is_some_and(|q| q.split(',').any(|v| v.trim() == "auth"));
    // Without qop there is no cnonce to send, so the -sess forms cannot be answered.
    if !qop_auth && (qop.is_some() || sess) {
        return None;
    }
    Some((
        Challenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
        },
        sess,
    ))
}

/// The `Authorization` value answering `www_authenticate` for a request of `method` to
/// `uri` (its path and query), or `None` when the challenge is not one we answer.
pub fn authorization(
    www_authenticate: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
) -> Option<String> {
    let (c, sess) = challenge(www_authenticate)?;
    let h = |text: &str| c.algorithm.hash(text);
    let cnonce = hex::encode(rand::random::<[u8; 16]>());
    let nc = "00000001";
    let mut ha1 = h(&format!("{user}:{}:{password}", c.realm));
    if sess {
        ha1 = h(&format!("{ha1}:{}:{cnonce}", c.nonce));
    }
    let ha2 = h(&format!("{method}:{uri}"));
    let response = if c.qop_auth {
        h(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce))
    } else {
        h(&format!("{ha1}:{}:{ha2}", c.nonce))
    };
    let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let algorithm = match (c.algorithm, sess) {
        (Algorithm::Md5, false) => "MD5",
        (Algorithm::Md5, true) => "MD5-sess",
        (Algorithm::Sha256, false) => "SHA-256",
        (Algorithm::Sha256, true) => "SHA-256-sess",
    };
    let mut value = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={algorithm}, response=\"{response}\"",
        quote(user),
        quote(&c.realm),
        quote(&c.nonce),
        quote(uri)
    );
    if c.qop_auth {
        value.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
    }
    if let Some(opaque) = &c.opaque {
        value.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's challenge, parsed.
    #[test]
    fn parses_quoted_parameters_with_commas() {
        let (c, sess) = challenge(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert!(!sess && c.qop_auth && c.algorithm == Algorithm::Md5);
        assert_eq!(c.realm, "testrealm@host.com");
        assert_eq!(c.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
        assert_eq!(
            c.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
    }

    #[test]
    fn rfc_2069_response_matches_a_known_digest() {
        // HA1 = MD5("Mufasa:testrealm@host.com:Circle Of Life"), HA2 = MD5("GET:/dir/index.html"),
        // response = MD5(HA1:nonce:HA2), computed independently with Python's hashlib.
        let value = authorization(
            r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
        )
        .unwrap();
        assert!(
            value.contains(r#"response="670fd8c2df070c60b045671b8b24ff02""#),
            "{value}"
        );
    }

    #[test]
    fn only_digest_with_auth_is_answered() {
        assert!(authorization("Basic realm=\"x\"", "u", "p", "GET", "/").is_none());
        assert!(
            authorization(
                r#"Digest realm="x", nonce="n", qop="auth-int""#,
                "u",
                "p",
                "GET",
                "/"
            )
            .is_none()
        );
    }
}
