//! `http::*`: requests from the script, recorded in the user's worker's metrics.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, Map};

use super::Response;
use crate::http::{Prepared, Target, set_header};
use crate::script::{RequestError, request_failed, script_error};
use std::rc::Rc;

use crate::metrics::FailureKind;
use crate::vu::{IfAbandoned, Phase, User, await_in_script};

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

/// The options map of a request, validated (an unknown key is an error, so typos show).
#[derive(Default)]
struct Options {
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Body,
    timeout: Option<Duration>,
    name: Option<String>,
    expect: Option<Vec<u16>>,
    /// `on_error: "return"` (k6's style; `throw` is a Rhai keyword): a failed request
    /// returns a response (`r.error`, `r.error_kind`; status 0 without one) instead of
    /// raising an error.
    no_throw: bool,
    /// `redirects: N`: follow at most N (0: none) and return what comes then.
    redirects: Option<usize>,
    /// `auth: [user, password]`: HTTP basic authentication (requests' `auth=(u, p)`);
    /// `[user, password, "digest"]`: Digest authentication.
    auth: Option<(String, String)>,
    digest: bool,
}

#[derive(Default)]
enum Body {
    #[default]
    None,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
    Raw(Vec<u8>),
    /// `multipart/form-data; boundary=…` and the encoded body.
    Multipart(String, Bytes),
}

/// The keys a request's options map may have.
pub(super) const OPTIONS: [&str; 12] = [
    "headers",
    "query",
    "json",
    "form",
    "body",
    "timeout",
    "name",
    "expect",
    "on_error",
    "redirects",
    "auth",
    "multipart",
];

fn pairs(what: &str, v: Dynamic) -> Result<Vec<(String, String)>> {
    let map = v
        .try_cast::<Map>()
        .ok_or_else(|| script_error(format!("request option `{what}` must be a map")))?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// `query` or `form`: a map (an array value repeats its key: `#{ id: [1, 2] }` is
/// `id=1&id=2`), or an array of `[key, value]` pairs kept in their order. A value that has
/// no text form in a URL (a map, a blob, `()`) is an error rather than its debug text.
fn encoded_pairs(what: &str, v: Dynamic) -> Result<Vec<(String, String)>> {
    let scalar = |key: &str, v: &Dynamic| -> Result<String> {
        if v.is_string() || v.is_int() || v.is_float() || v.is_bool() || v.is_char() {
            Ok(v.to_string())
        } else {
            Err(script_error(format!(
                "request option `{what}`: `{key}` is a {}, which has no form in a URL \
                 (use strings, numbers, booleans, or an array of them)",
                v.type_name()
            )))
        }
    };
    let mut out = Vec::new();
    if v.is_array() {
        for pair in v.into_array().map_err(|t| script_error(t.to_string()))? {
            let two = pair
                .into_array()
                .ok()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| {
                    script_error(format!(
                        "request option `{what}`: an array must hold [key, value] pairs"
                    ))
                })?;
            let key = two[0].to_string();
            out.push((key.clone(), scalar(&key, &two[1])?));
        }
        return Ok(out);
    }
    let map = v.try_cast::<Map>().ok_or_else(|| {
        script_error(format!(
            "request option `{what}` must be a map or an array of [key, value] pairs"
        ))
    })?;
    for (key, value) in map {
        if value.is_array() {
            for item in value
                .into_array()
                .map_err(|t| script_error(t.to_string()))?
            {
                out.push((key.to_string(), scalar(&key, &item)?));
            }
        } else {
            out.push((key.to_string(), scalar(&key, &value)?));
        }
    }
    Ok(out)
}

fn statuses(v: Dynamic) -> Result<Vec<u16>> {
    let one = |d: &Dynamic| {
        d.as_int()
            .ok()
            .and_then(|i| u16::try_from(i).ok())
            .ok_or_else(|| script_error("`expect` must be a status code or an array of them"))
    };
    if v.is_array() {
        v.into_array()
            .map_err(|t| script_error(format!("`expect`: {t}")))?
            .iter()
            .map(one)
            .collect()
    } else {
        Ok(vec![one(&v)?])
    }
}

impl Options {
    /// The options map of a call at `pos`: a mistake in it names the script's line.
    fn at(map: Map, pos: rhai::Position) -> Result<Self> {
        Self::parse(Some(map)).map_err(|mut e| {
            if e.position().is_none() {
                e.set_position(pos);
            }
            e
        })
    }

    fn parse(map: Option<Map>) -> Result<Self> {
        let mut o = Options::default();
        for (key, value) in map.into_iter().flatten() {
            match key.as_str() {
                "headers" => o.headers = pairs("headers", value)?,
                "query" => o.query = encoded_pairs("query", value)?,
                "json" => {
                    o.body = Body::Json(rhai::serde::from_dynamic(&value)?);
                }
                "form" => o.body = Body::Form(encoded_pairs("form", value)?),
                "multipart" => {
                    let (content_type, body) = super::multipart::encode(value)?;
                    o.body = Body::Multipart(content_type, body);
                }
                "body" => {
                    o.body = Body::Raw(if value.is_blob() {
                        value.cast::<rhai::Blob>()
                    } else {
                        value.to_string().into_bytes()
                    })
                }
                "timeout" => {
                    let s = super::core::seconds(&value)?;
                    o.timeout = Some(
                        crate::duration::positive(s)
                            .map_err(|e| script_error(format!("request option `timeout`: {e}")))?,
                    );
                }
                "name" => o.name = Some(value.to_string()),
                "auth" => {
                    let list = value
                        .into_array()
                        .ok()
                        .filter(|a| matches!(a.len(), 2 | 3) && a.iter().all(|v| v.is_string()))
                        .filter(|a| {
                            a.get(2)
                                .is_none_or(|s| matches!(s.to_string().as_str(), "basic" | "digest"))
                        })
                        .ok_or_else(|| {
                            script_error(
                                "request option `auth` must be [user, password] (HTTP basic authentication) or [user, password, \"digest\"]",
                            )
                        })?;
                    o.digest = list.get(2).is_some_and(|s| s.to_string() == "digest");
                    o.auth = Some((list[0].to_string(), list[1].to_string()));
                }
                "redirects" => {
                    let n = value.as_int().ok().and_then(|i| usize::try_from(i).ok());
                    o.redirects = Some(n.ok_or_else(|| {
                        script_error("request option `redirects` must be a whole number >= 0")
                    })?);
                }
                "expect" => o.expect = Some(statuses(value)?),
                "on_error" => {
                    o.no_throw = match value.to_string().as_str() {
                        "raise" => false,
                        "return" => true,
                        other => {
                            return Err(script_error(format!(
                                "request option `on_error`: expected \"raise\" or \"return\", got `{other}`"
                            )));
                        }
                    }
                }
                other => {
                    return Err(script_error(format!(
                        "unknown request option `{other}` (known: {})",
                        OPTIONS.join(", ")
                    )));
                }
            }
        }
        Ok(o)
    }
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue)> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| script_error(format!("`{name}` is not a valid header name")))?;
    let v = HeaderValue::from_str(value)
        .map_err(|_| script_error(format!("invalid value for header `{name}`")))?;
    Ok((n, v))
}

/// Turns the script's URL and options into a request for `user`'s client.
fn prepare(user: &User, method: Method, url: &str, mut o: Options) -> Result<Prepared> {
    let target = Target::resolve(user.worker.base.as_ref(), url, &o.query)
        .map_err(|e| script_error(e.to_string()))?;
    let mut headers: Vec<_> = (user.headers.borrow().iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (content_type, body) = match o.body {
        Body::None => (None, Bytes::new()),
        Body::Json(v) => (
            Some("application/json"),
            Bytes::from(serde_json::to_vec(&v).map_err(|e| script_error(e.to_string()))?),
        ),
        Body::Form(pairs) => {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                ser.append_pair(k, v);
            }
            (
                Some("application/x-www-form-urlencoded"),
                Bytes::from(ser.finish()),
            )
        }
        Body::Raw(b) => (None, Bytes::from(b)),
        Body::Multipart(ct, body) => {
            let value = HeaderValue::from_str(&ct).map_err(|e| script_error(e.to_string()))?;
            set_header(&mut headers, CONTENT_TYPE, value);
            (None, body)
        }
    };
    if let Some(ct) = content_type {
        set_header(&mut headers, CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    let digest = o.digest.then(|| o.auth.take()).flatten().map(Rc::new);
    if let Some((user, password)) = &o.auth {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut value = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| script_error("request option `auth`: not a valid header value"))?;
        value.set_sensitive(true);
        set_header(&mut headers, http::header::AUTHORIZATION, value);
    }
    for (k, v) in &o.headers {
        let (k, v) = header(k, v)?;
        set_header(&mut headers, k, v);
    }
    Ok(Prepared {
        method,
        target,
        headers,
        body,
        timeout: o.timeout,
        redirects: o.redirects,
        digest,
    })
}

/// Sends one request from the current user and records it.
fn send(method: Method, url: &str, mut o: Options) -> Result<Response> {
    let user = crate::vu::with_user(|u| u.clone()).map_err(|e| script_error(e.to_string()))?;
    if user.phase.get() == Phase::Init {
        return Err(script_error(
            "requests are not allowed in top-level code; make them in setup(), on_start() or a task",
        ));
    }
    let explicit_name = o.name.take();
    let expect = o.expect.take();
    let no_throw = o.no_throw;
    let request = prepare(&user, method, url, o)?;
    // Kept only for a failed request that returns a response.
    let target = no_throw.then(|| request.target.clone());
    let trace = user.run().settings.trace;
    if let Some(t) = &trace {
        let text = super::trace::request(
            t,
            &request.method,
            &request.target,
            &request.headers,
            &request.body,
        );
        user.run().log.trace(user.id, &text);
    }
    let (name, grouped) = match explicit_name {
        Some(n) => (Rc::from(n), false),
        None => user.worker.name_for(request.target.path()),
    };
    let method = request.method.clone();
    let method_name = method.as_str();
    let client = user.client();
    // A request whose user's coroutine is dropped before it completes is counted as
    // `unfinished`, with how long it had waited: otherwise it would vanish, and a server
    // that never answers could pass a run.
    let waiting = IfAbandoned::new(|| {
        if let Ok(mut recorder) = user.cohort.recorder.try_borrow_mut() {
            let waited = client.started().map_or(Duration::ZERO, |t| t.elapsed());
            recorder.unfinished(method_name, &name, waited);
            record_retries(&mut recorder, client, method_name, &name);
        }
    });
    let result = await_in_script(client.clone().execute(request), false);
    waiting.done();
    let result = result?;

    let mut recorder = user.recorder();
    if grouped {
        recorder.auto_grouped();
    }
    record_retries(&mut recorder, client, method_name, &name);
    let exchange = match result {
        Ok(x) => x,
        Err(e) => {
            if let Some(late) = user.late.get() {
                recorder.corrected(method_name, &name, e.elapsed + late);
            }
            let error = RequestError {
                kind: failure_kind(e.kind).to_string(),
                message: e.message.clone(),
                status: 0,
                request: format!("{method_name} {name}"),
            };
            if trace.is_some() {
                let text = super::trace::failed(&error.kind, &error.message, e.elapsed);
                user.run().log.trace(user.id, &text);
            }
            let kind = failure_kind(e.kind);
            recorder.request(method_name, &name, e.elapsed, 0, Some((kind, e.message)));
            return match target {
                Some(target) => Ok(Response::failed(method, name, target, e.elapsed, error)),
                None => Err(request_failed(error)),
            };
        }
    };
    if let Some(t) = &trace {
        let text = super::trace::response(
            t,
            exchange.link,
            exchange.status,
            exchange.elapsed,
            &exchange.headers,
            &exchange.body,
        );
        user.run().log.trace(user.id, &text);
    }
    let ok = match &expect {
        Some(list) => list.contains(&exchange.status),
        None => exchange.status < 400,
    };
    let failure: Option<(FailureKind, String)> = (!ok).then(|| {
        let reason = http::StatusCode::from_u16(exchange.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let message = match &expect {
            Some(list) => format!("HTTP {} {reason} (expected {list:?})", exchange.status),
            None => format!("HTTP {} {reason}", exchange.status),
        };
        (FailureKind::Status, message)
    });
    let status_error = match (&failure, &expect) {
        (Some((_, message)), Some(_)) if !no_throw => Some(RequestError {
            kind: FailureKind::Status.to_string(),
            message: message.clone(),
            status: i64::from(exchange.status),
            request: format!("{method_name} {name}"),
        }),
        _ => None,
    };
    recorder.request(
        method_name,
        &name,
        exchange.elapsed,
        exchange.body.len() as u64,
        failure,
    );
    recorder.phases(client.phases().0);
    recorder.protocol(exchange.link.label());
    if let Some(late) = user.late.get() {
        // On a schedule: the response time from when the iteration was meant to start.
        recorder.corrected(method_name, &name, exchange.elapsed + late);
    }
    drop(recorder);
    if let Some(error) = status_error {
        return Err(request_failed(error));
    }
    Ok(Response::new(
        method,
        name,
        exchange
            .target
            .expect("a completed exchange knows its target"),
        exchange.status,
        exchange.headers,
        exchange.body,
        exchange.elapsed,
        ok,
    )
    .with_route(exchange.hops, exchange.link))
}

/// The metrics' failure kind for a transport failure. A TLS handshake that fails is a
/// connection that could not be opened (its message says TLS); a protocol violation is
/// `request`.
fn failure_kind(kind: crate::http::TransportKind) -> FailureKind {
    use crate::http::TransportKind as T;
    match kind {
        T::Connect | T::Tls => FailureKind::Connect,
        T::Timeout => FailureKind::Timeout,
        T::Reset => FailureKind::Reset,
        T::Protocol => FailureKind::Request,
        T::Body => FailureKind::Body,
    }
}

/// Counts the attempts `client` sent again for the request just done, if any.
fn record_retries(
    recorder: &mut crate::metrics::Recorder,
    client: &crate::http::Client,
    method: &str,
    name: &str,
) {
    let retries = client.retries();
    if retries > 0 {
        recorder.retried(method, name, retries);
    }
}

fn method(name: &str) -> Result<Method> {
    Method::from_bytes(name.to_ascii_uppercase().as_bytes())
        .map_err(|_| script_error(format!("`{name}` is not an HTTP method")))
}

/// HTTP requests. Every function takes the URL (relative to `--host`, or absolute) and an
/// optional options map:
///
/// | option | meaning |
/// |---|---|
/// | `headers` | map of extra headers for this request |
/// | `query` | map of query-string parameters (an array value repeats its key), or an array of `[key, value]` pairs |
/// | `json` | value sent as a JSON body |
/// | `form` | map sent as `application/x-www-form-urlencoded` |
/// | `body` | string or blob sent as it is |
/// | `timeout` | seconds (overrides `--timeout`) |
/// | `name` | the name the request is grouped under in the results |
/// | `expect` | status or array of statuses that count as success |
/// | `on_error` | `"return"`: a request with no response comes back as `r` (status 0, `r.error`) instead of raising |
/// | `redirects` | follow at most this many redirects, then return what came (`0`: none) |
/// | `multipart` | map sent as `multipart/form-data`: text fields, files (`#{ file: "x.png" }`) or blobs |
/// | `auth` | `[user, password]` for HTTP basic authentication, `[user, password, "digest"]` for Digest |
///
/// Without `expect`, any status below 400 is a success and a failed request is returned to
/// the script (`r.ok` is false). With `expect`, an unexpected status is recorded as failed
/// and ends the task iteration, as does a request that got no response at all.
#[export_module]
pub mod http_api {
    /// `GET url`.
    ///
    /// ```rhai
    /// let r = http::get("/health");
    /// ```
    #[rhai_fn(name = "get", return_raw, volatile)]
    pub fn get(url: &str) -> Result<Response> {
        super::send(Method::GET, url, super::Options::default())
    }

    /// `GET url` with options.
    ///
    /// ```rhai
    /// let r = http::get(`/cities/${id}`, #{ name: "/cities/[id]", expect: 200 });
    /// ```
    #[rhai_fn(name = "get", return_raw, volatile)]
    pub fn get_with(ctx: NativeCallContext, url: &str, options: Map) -> Result<Response> {
        let options = super::Options::at(options, ctx.call_position())?;
        super::send(Method::GET, url, options)
    }

    /// `POST url` with no body.
    ///
    /// ```rhai
    /// http::post("/logout");
    /// ```
    #[rhai_fn(name = "post", return_raw, volatile)]
    pub fn post(url: &str) -> Result<Response> {
        super::send(Method::POST, url, super::Options::default())
    }

    /// `POST url` with options (usually a `json` or `form` body).
    ///
    /// ```rhai
    /// let r = http::post("/cities", #{ json: #{ name: "Lima" }, expect: 201 });
    /// ```
    #[rhai_fn(name = "post", return_raw, volatile)]
    pub fn post_with(ctx: NativeCallContext, url: &str, options: Map) -> Result<Response> {
        let options = super::Options::at(options, ctx.call_position())?;
        super::send(Method::POST, url, options)
    }

    /// `PUT url`.
    ///
    /// ```rhai
    /// http::put(`/items/${id}`);
    /// ```
    #[rhai_fn(name = "put", return_raw, volatile)]
    pub fn put(url: &str) -> Result<Response> {
        super::send(Method::PUT, url, super::Options::default())
    }

    /// `PUT url` with options.
    ///
    /// ```rhai
    /// http::put(`/items/${id}`, #{ json: #{ name: "new" }, name: "/items/[id]" });
    /// ```
    #[rhai_fn(name = "put", return_raw, volatile)]
    pub fn put_with(ctx: NativeCallContext, url: &str, options: Map) -> Result<Response> {
        let options = super::Options::at(options, ctx.call_position())?;
        super::send(Method::PUT, url, options)
    }

    /// `PATCH url`.
    ///
    /// ```rhai
    /// http::patch(`/items/${id}`);
    /// ```
    #[rhai_fn(name = "patch", return_raw, volatile)]
    pub fn patch(url: &str) -> Result<Response> {
        super::send(Method::PATCH, url, super::Options::default())
    }

    /// `PATCH url` with options.
    ///
    /// ```rhai
    /// http::patch(`/items/${id}`, #{ json: #{ done: true }, name: "/items/[id]" });
    /// ```
    #[rhai_fn(name = "patch", return_raw, volatile)]
    pub fn patch_with(ctx: NativeCallContext, url: &str, options: Map) -> Result<Response> {
        let options = super::Options::at(options, ctx.call_position())?;
        super::send(Method::PATCH, url, options)
    }

    /// `DELETE url`.
    ///
    /// ```rhai
    /// http::delete(`/items/${id}`);
    /// ```
    #[rhai_fn(name = "delete", return_raw, volatile)]
    pub fn delete(url: &str) -> Result<Response> {
        super::send(Method::DELETE, url, super::Options::default())
    }

    /// `DELETE url` with options.
    ///
    /// ```rhai
    /// http::delete(`/items/${id}`, #{ name: "/items/[id]", expect: [200, 204] });
    /// ```
    #[rhai_fn(name = "delete", return_raw, volatile)]
    pub fn delete_with(ctx: NativeCallContext, url: &str, options: Map) -> Result<Response> {
        let options = super::Options::at(options, ctx.call_position())?;
        super::send(Method::DELETE, url, options)
    }

    /// `HEAD url`.
    ///
    /// ```rhai
    /// let r = http::head("/big-file");
    /// ```
    #[rhai_fn(name = "head", return_raw, volatile)]
    pub fn head(url: &str) -> Result<Response> {
        super::send(Method::HEAD, url, super::Options::default())
    }

    /// `HEAD url` with options.
    ///
    /// ```rhai
    /// http::head("/big-file", #{ expect: 200 });
    /// ```
    #[rhai_fn(name = "head", return_raw, volatile)]
    pub fn head_with(ctx: NativeCallContext, url: &str, options: Map) -> Result<Response> {
        let options = super::Options::at(options, ctx.call_position())?;
        super::send(Method::HEAD, url, options)
    }

    /// A request with any method.
    ///
    /// ```rhai
    /// http::request("OPTIONS", "/items");
    /// ```
    #[rhai_fn(name = "request", return_raw, volatile)]
    pub fn request(method: &str, url: &str) -> Result<Response> {
        super::send(super::method(method)?, url, super::Options::default())
    }

    /// A request with any method and options.
    ///
    /// ```rhai
    /// http::request("PURGE", "/cache", #{ expect: 200 });
    /// ```
    #[rhai_fn(name = "request", return_raw, volatile)]
    pub fn request_with(
        ctx: NativeCallContext,
        method: &str,
        url: &str,
        options: Map,
    ) -> Result<Response> {
        let options = super::Options::at(options, ctx.call_position())?;
        super::send(super::method(method)?, url, options)
    }

    /// Sends `name: value` with every later request of this user (e.g. a bearer token).
    ///
    /// ```rhai
    /// http::set_header("Authorization", `Bearer ${token}`);
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn set_header(name: &str, value: &str) -> Result<()> {
        let (name, value) = super::header(name, value)?;
        crate::vu::with_user(|u| u.headers.borrow_mut().insert(name, value))
            .map_err(|e| script_error(e.to_string()))?;
        Ok(())
    }

    /// Stops sending a header set with `set_header`.
    ///
    /// ```rhai
    /// http::remove_header("Authorization");
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn remove_header(name: &str) -> Result<()> {
        crate::vu::with_user(|u| u.headers.borrow_mut().remove(name))
            .map_err(|e| script_error(e.to_string()))?;
        Ok(())
    }
}
