//! `encoding::*` and `crypto::*`: what API tests need to sign and encode requests (k6's
//! `k6/encoding` and `k6/crypto`), on RustCrypto's and the base64 crate's code. Every
//! function takes a string (its UTF-8 bytes) or a blob.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use rhai::Blob;
use rhai::plugin::*;
use sha2::Digest;

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

/// The bytes of a string or a blob argument.
fn bytes(v: &Dynamic) -> Result<Vec<u8>> {
    if v.is_blob() {
        return Ok(v.clone().cast::<Blob>());
    }
    v.clone()
        .into_string()
        .map(String::into_bytes)
        .map_err(|t| crate::script::script_error(format!("expected a string or a blob, got {t}")))
}

fn digest<D: Digest>(data: &Dynamic) -> Result<String> {
    Ok(hex::encode(D::digest(bytes(data)?)))
}

fn hmac_hex<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> String {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

#[export_module]
pub mod encoding_api {
    /// Standard base64 (with padding) of a string or blob.
    ///
    /// ```rhai
    /// let auth = `Basic ${encoding::b64encode("user:secret")}`;
    /// ```
    #[rhai_fn(return_raw)]
    pub fn b64encode(data: Dynamic) -> super::Result<String> {
        Ok(base64::engine::general_purpose::STANDARD.encode(super::bytes(&data)?))
    }

    /// URL-safe base64 without padding (JWTs and the like).
    ///
    /// ```rhai
    /// let part = encoding::b64url_encode(`{"alg":"HS256"}`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn b64url_encode(data: Dynamic) -> super::Result<String> {
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(super::bytes(&data)?))
    }

    /// Decodes standard or URL-safe base64 (padded or not) into a blob; bad input is an
    /// error naming it.
    ///
    /// ```rhai
    /// let raw = encoding::b64decode("aGVsbG8=");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn b64decode(text: &str) -> super::Result<rhai::Blob> {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let trimmed = text.trim_end_matches('=');
        STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
            .map_err(|e| crate::script::script_error(format!("b64decode: not base64: {e}")))
    }

    /// Lower-case hex of a string or blob.
    ///
    /// ```rhai
    /// let id = encoding::hex_encode(crypto::random_bytes(8));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn hex_encode(data: Dynamic) -> super::Result<String> {
        Ok(hex::encode(super::bytes(&data)?))
    }

    /// A blob as text (UTF-8; invalid bytes become U+FFFD).
    ///
    /// ```rhai
    /// let text = encoding::utf8(encoding::b64decode("aGVsbG8="));
    /// ```
    pub fn utf8(data: rhai::Blob) -> String {
        String::from_utf8_lossy(&data).into_owned()
    }
}

#[export_module]
pub mod crypto_api {
    /// SHA-1 of a string or blob, as lower-case hex.
    ///
    /// ```rhai
    /// let h = crypto::sha1("abc");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn sha1(data: Dynamic) -> super::Result<String> {
        super::digest::<sha1::Sha1>(&data)
    }

    /// SHA-256 of a string or blob, as lower-case hex.
    ///
    /// ```rhai
    /// let h = crypto::sha256(r.text);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn sha256(data: Dynamic) -> super::Result<String> {
        super::digest::<sha2::Sha256>(&data)
    }

    /// SHA-512 of a string or blob, as lower-case hex.
    ///
    /// ```rhai
    /// let h = crypto::sha512("abc");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn sha512(data: Dynamic) -> super::Result<String> {
        super::digest::<sha2::Sha512>(&data)
    }

    /// HMAC of `data` with `key`, as lower-case hex; `algorithm` is `"sha1"`, `"sha256"` or
    /// `"sha512"`.
    ///
    /// ```rhai
    /// let signature = crypto::hmac("sha256", "secret", "GET /orders 1700000000");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn hmac(algorithm: &str, key: Dynamic, data: Dynamic) -> super::Result<String> {
        let (key, data) = (super::bytes(&key)?, super::bytes(&data)?);
        Ok(match algorithm {
            "sha1" => super::hmac_hex::<hmac::Hmac<sha1::Sha1>>(&key, &data),
            "sha256" => super::hmac_hex::<hmac::Hmac<sha2::Sha256>>(&key, &data),
            "sha512" => super::hmac_hex::<hmac::Hmac<sha2::Sha512>>(&key, &data),
            other => {
                return Err(crate::script::script_error(format!(
                    "hmac: unknown algorithm `{other}` (known: sha1, sha256, sha512)"
                )));
            }
        })
    }

    /// `n` random bytes as a blob (from the operating system's generator, not the seeded
    /// one: they are for nonces and secrets, not for reproducible data).
    ///
    /// ```rhai
    /// let nonce = encoding::hex_encode(crypto::random_bytes(16));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn random_bytes(n: i64) -> super::Result<rhai::Blob> {
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= 1 << 20)
            .ok_or_else(|| {
                crate::script::script_error(format!("random_bytes({n}): between 0 and 1048576"))
            })?;
        let mut out = vec![0u8; n];
        rand::Rng::fill(&mut rand::rng(), &mut out[..]);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_answers() {
        let engine = super::super::engine();
        let eval = |s: &str| engine.eval::<String>(s).unwrap();
        assert_eq!(
            eval(r#"crypto::sha1("abc")"#),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            eval(r#"crypto::sha256("abc")"#),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(eval(r#"crypto::sha512("abc")"#).starts_with("ddaf35a193617aba"));
        // RFC 4231 test case 2.
        assert_eq!(
            eval(r#"crypto::hmac("sha256", "Jefe", "what do ya want for nothing?")"#),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            eval(r#"encoding::b64encode("user:secret")"#),
            "dXNlcjpzZWNyZXQ="
        );
        assert_eq!(eval(r#"encoding::b64url_encode("??>>")"#), "Pz8-Pg");
        assert_eq!(
            eval(r#"encoding::utf8(encoding::b64decode("Pz8-Pg"))"#),
            "??>>"
        );
        assert_eq!(
            eval(r#"encoding::utf8(encoding::b64decode("aGVsbG8="))"#),
            "hello"
        );
        assert_eq!(eval(r#"encoding::hex_encode("hi")"#), "6869");
        assert_eq!(
            eval(r#"crypto::sha256(encoding::b64decode("YWJj"))"#).len(),
            64
        );
        assert_eq!(
            eval("encoding::hex_encode(crypto::random_bytes(8))").len(),
            16
        );
        assert!(
            engine
                .eval::<String>(r#"crypto::hmac("md5", "k", "d")"#)
                .is_err()
        );
        assert!(
            engine
                .eval::<rhai::Blob>(r#"encoding::b64decode("***")"#)
                .is_err()
        );
    }
}
