//! The response object a script gets back from `http::*`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use crate::http::{Headers, Target};
use rhai::plugin::*;

use crate::metrics::FailureKind;

/// A completed response. Cheap to clone (scripts copy values freely).
#[derive(Clone)]
pub struct Response(Rc<Inner>);

struct Inner {
    method: http::Method,
    name: Rc<str>,
    target: Target,
    status: u16,
    headers: Headers,
    body: Bytes,
    elapsed: Duration,
    ok: Cell<bool>,
    /// The body was found to be valid JSON (by `r.json(path)`, which checks it once).
    json_valid: Cell<bool>,
    /// `on_error: "return"` and the request failed without a response: why.
    error: Option<crate::script::RequestError>,
    /// The redirects followed on the way to this response.
    hops: Vec<crate::http::Hop>,
    link: crate::http::LinkInfo,
}

impl Response {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        method: http::Method,
        name: Rc<str>,
        target: Target,
        status: u16,
        headers: Headers,
        body: Bytes,
        elapsed: Duration,
        ok: bool,
    ) -> Self {
        Self(Rc::new(Inner {
            method,
            name,
            target,
            status,
            headers,
            body,
            elapsed,
            ok: Cell::new(ok),
            json_valid: Cell::new(false),
            error: None,
            hops: Vec::new(),
            link: crate::http::LinkInfo::default(),
        }))
    }

    /// A request that got no response, returned rather than raised (`on_error:
    /// "return"`): status 0, no headers or body, `r.error` says why. Already counted.
    pub fn failed(
        method: http::Method,
        name: Rc<str>,
        target: Target,
        elapsed: Duration,
        error: crate::script::RequestError,
    ) -> Self {
        let empty = Self::new(
            method,
            name,
            target,
            0,
            Headers::default(),
            Bytes::new(),
            elapsed,
            false,
        );
        let mut inner = Rc::into_inner(empty.0).expect("just made");
        inner.error = Some(error);
        Self(Rc::new(inner))
    }

    /// The same response, with the redirects followed to reach it and the connection it
    /// came over.
    pub fn with_route(mut self, hops: Vec<crate::http::Hop>, link: crate::http::LinkInfo) -> Self {
        if let Some(inner) = Rc::get_mut(&mut self.0) {
            inner.hops = hops;
            inner.link = link;
        }
        self
    }

    /// Counts this (already recorded) request as failed, once.
    fn mark_failed(&self, kind: FailureKind, message: String) -> Result<(), Box<EvalAltResult>> {
        if !self.0.ok.replace(false) {
            return Ok(());
        }
        crate::vu::with_user(|u| {
            u.recorder()
                .mark_failed(self.0.method.as_str(), &self.0.name, kind, message)
        })
        .map_err(|e| crate::script::script_error(e.to_string()))
    }

    /// The body as JSON text, checked on the first call only.
    fn valid_json(&self) -> Result<&str, crate::api::json::JsonError> {
        if self.0.json_valid.get() {
            // Checked before: valid UTF-8 and valid JSON.
            return Ok(std::str::from_utf8(&self.0.body).unwrap_or_default());
        }
        let text = crate::api::json::validate(&self.0.body)?;
        self.0.json_valid.set(true);
        Ok(text)
    }

    /// A parsed body, or the request marked failed (kind `body`) and a `RequestError` raised.
    fn json_or_fail(
        &self,
        parsed: Result<Dynamic, crate::api::json::JsonError>,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        parsed.or_else(|e| {
            let message = e.to_string();
            self.mark_failed(FailureKind::Body, message.clone())?;
            Err(crate::script::request_failed(crate::script::RequestError {
                kind: FailureKind::Body.to_string(),
                message,
                status: i64::from(self.0.status),
                request: format!("{} {}", self.0.method, self.0.name),
            }))
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.body).into_owned()
    }
}

/// A response's fields and methods: `r.status`, `r.headers`, `r.text` (or `r.body`),
/// `r.json()`, `r.elapsed`, `r.ok`, `r.url`, and `r.fail(why)`.
#[export_module]
pub mod response_api {
    pub type Response = super::Response;

    /// The HTTP status code.
    ///
    /// ```rhai
    /// if r.status == 404 { log::warn("missing"); }
    /// ```
    #[rhai_fn(get = "status", pure)]
    pub fn status(r: &mut Response) -> i64 {
        r.0.status as i64
    }

    /// Whether the request counted as a success: the status was expected (or < 400 when
    /// no `expect` was given) and nothing marked it failed.
    ///
    /// ```rhai
    /// if !r.ok { return; }
    /// ```
    #[rhai_fn(get = "ok", pure)]
    pub fn ok(r: &mut Response) -> bool {
        r.0.ok.get()
    }

    /// One response header by name, in any case (`r.header("Content-Type")`); several
    /// fields of that name are joined with `, ` (as python-requests does); `()` if absent.
    ///
    /// ```rhai
    /// check(r.header("X-Request-Id") != (), "traced");
    /// ```
    #[rhai_fn(name = "header", pure)]
    pub fn header(r: &mut Response, name: &str) -> Dynamic {
        let mut values = r.0.headers.get_all(name).map(String::from_utf8_lossy);
        let Some(first) = values.next() else {
            return Dynamic::UNIT;
        };
        let mut joined = first.into_owned();
        for more in values {
            joined.push_str(", ");
            joined.push_str(&more);
        }
        joined.into()
    }

    /// Response headers as a map with lower-case names (the last of repeated fields; see
    /// `r.header(name)` for all of them, in any case).
    ///
    /// ```rhai
    /// let kind = r.headers["content-type"];
    /// ```
    #[rhai_fn(get = "headers", pure)]
    pub fn headers(r: &mut Response) -> rhai::Map {
        let mut map = rhai::Map::new();
        for (name, value) in r.0.headers.iter() {
            let v = String::from_utf8_lossy(value).into_owned();
            map.insert(name.to_ascii_lowercase().into(), v.into());
        }
        map
    }

    /// The body as text (invalid UTF-8 is replaced).
    ///
    /// ```rhai
    /// check(r.text.contains("welcome"), "home page greets");
    /// ```
    #[rhai_fn(get = "text", pure)]
    pub fn text(r: &mut Response) -> String {
        r.text()
    }

    /// Same as `text`.
    ///
    /// ```rhai
    /// let html = r.body;
    /// ```
    #[rhai_fn(get = "body", pure)]
    pub fn body(r: &mut Response) -> String {
        r.text()
    }

    /// The URL of this response: the one requested, or where its redirects led (see
    /// `r.redirects`).
    ///
    /// ```rhai
    /// log::debug(r.url);
    /// ```
    #[rhai_fn(get = "url", pure)]
    pub fn url(r: &mut Response) -> String {
        r.0.target.to_string()
    }

    /// Time from sending the request to reading the whole body, in milliseconds.
    ///
    /// ```rhai
    /// if r.elapsed > 500.0 { log::warn("slow"); }
    /// ```
    #[rhai_fn(get = "elapsed", pure)]
    pub fn elapsed(r: &mut Response) -> f64 {
        r.0.elapsed.as_secs_f64() * 1000.0
    }

    /// The body parsed as JSON. A body that is not JSON marks the request failed (kind
    /// `body`) and raises a `RequestError` (catchable; uncaught, it ends the iteration).
    ///
    /// ```rhai
    /// let id = r.json().data.id;
    /// ```
    #[rhai_fn(return_raw, pure)]
    pub fn json(r: &mut Response) -> Result<Dynamic, Box<EvalAltResult>> {
        let parsed = crate::api::json::parse(&r.0.body);
        r.json_or_fail(parsed)
    }

    /// Only the value at a GJSON path, as k6's `r.json(selector)`: `"data.id"`,
    /// `"items.0.name"`, `"items.#"` (the length of a list), `"items.#.id"` (one field of
    /// every item), `"items.#(id==3).name"` (the first match). `()` when nothing matches.
    /// Converts only what it selects, so reading a few fields of a large answer costs a
    /// fraction of `r.json()`. A body that is not JSON fails the request as `r.json()` does.
    /// Syntax: <https://github.com/tidwall/gjson/blob/master/SYNTAX.md>.
    ///
    /// ```rhai
    /// check(r.json("items.#") == 20, "a full page");
    /// let first = r.json("items.0.id");
    /// ```
    #[rhai_fn(name = "json", return_raw, pure)]
    pub fn json_at(r: &mut Response, path: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let selected = r
            .valid_json()
            .and_then(|text| crate::api::json::select(text, path));
        r.json_or_fail(selected)
    }

    /// The redirects followed to reach this response, in order: each a map with the
    /// `status` and `url` that answered and the `location` it sent. Empty when none were.
    /// A request's `redirects: 0` option follows none, so the script sees the 3xx itself.
    ///
    /// ```rhai
    /// let r = http::post("/login", #{ form: #{ user: "a" }, redirects: 0 });
    /// check(r.status == 302 && r.headers["location"] == "/home", "login redirects home");
    /// ```
    #[rhai_fn(get = "redirects", pure)]
    pub fn redirects(r: &mut Response) -> rhai::Array {
        r.0.hops
            .iter()
            .map(|h| {
                let mut map = rhai::Map::new();
                map.insert("status".into(), i64::from(h.status).into());
                map.insert("url".into(), h.url.clone().into());
                map.insert("location".into(), h.location.clone().into());
                map.into()
            })
            .collect()
    }

    /// The HTTP version the response came over: `"HTTP/1.1"` or `"HTTP/2.0"` (k6's
    /// `res.proto`); `""` when there was no response.
    ///
    /// ```rhai
    /// check(r.proto == "HTTP/2.0", "served over HTTP/2");
    /// ```
    #[rhai_fn(get = "proto", pure)]
    pub fn proto(r: &mut Response) -> String {
        if r.0.status == 0 {
            return String::new();
        }
        r.0.link.protocol.as_str().into()
    }

    /// The TLS version of the connection (`"tls1.2"`, `"tls1.3"`, as k6's
    /// `res.tls_version`), or `""` on cleartext.
    #[rhai_fn(get = "tls_version", pure)]
    pub fn tls_version(r: &mut Response) -> String {
        r.0.link.tls_version().into()
    }

    /// The protocol TLS's ALPN agreed on (`"h2"`, `"http/1.1"`), or `""` when none was.
    #[rhai_fn(get = "alpn", pure)]
    pub fn alpn(r: &mut Response) -> String {
        r.0.link.alpn().into()
    }

    /// The body's raw bytes as a blob (`r.text` replaces bytes that are not UTF-8).
    ///
    /// ```rhai
    /// let digest = crypto::sha256(r.bytes);
    /// ```
    #[rhai_fn(get = "bytes", pure)]
    pub fn bytes(r: &mut Response) -> rhai::Blob {
        r.0.body.to_vec()
    }

    /// Why the request failed without a response, under `on_error: "return"` (the same text as
    /// in the failures table), or `()`.
    ///
    /// ```rhai
    /// let r = http::get("/flaky", #{ on_error: "return" });
    /// if r.error != () { log::warn(`no answer: ${r.error} (${r.error_kind})`); }
    /// ```
    #[rhai_fn(get = "error", pure)]
    pub fn error(r: &mut Response) -> Dynamic {
        r.0.error
            .as_ref()
            .map_or(Dynamic::UNIT, |e| e.message.clone().into())
    }

    /// The failure kind under `on_error: "return"` (`connect`, `timeout`, `reset`, `request`), or
    /// `()`.
    ///
    /// ```rhai
    /// let r = http::get("/flaky", #{ on_error: "return" });
    /// if r.error_kind == "timeout" { log::warn("timed out"); }
    /// ```
    #[rhai_fn(get = "error_kind", pure)]
    pub fn error_kind(r: &mut Response) -> Dynamic {
        r.0.error
            .as_ref()
            .map_or(Dynamic::UNIT, |e| e.kind.clone().into())
    }

    /// Marks this request failed with `reason` (Locust's `response.failure()`); it is
    /// counted once in the request's failures. The task goes on.
    ///
    /// ```rhai
    /// if r.json().data.name != name { r.fail("read-back returned another name"); }
    /// ```
    #[rhai_fn(return_raw, name = "fail")]
    pub fn fail(r: &mut Response, reason: &str) -> Result<(), Box<EvalAltResult>> {
        r.mark_failed(FailureKind::Failed, reason.to_owned())
    }

    /// `HTTP 200 GET /items` for printing.
    #[rhai_fn(global, name = "to_string", name = "to_debug", pure)]
    pub fn to_string(r: &mut Response) -> String {
        format!("HTTP {} {} {}", r.0.status, r.0.method, r.0.name)
    }
}
