//! A real HTTP server for the integration tests, on 127.0.0.1 with an OS-chosen port, that
//! counts every request it serves so tests can compare the tool's numbers with its own.
#![allow(dead_code)]

pub mod bin;
pub mod faulty;
pub mod raw;
pub mod tls;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use stampede::cli::{Plan, RunArgs, RunFlags};
use stampede::runner::Outcome;

#[derive(Default)]
pub struct Counters {
    /// "METHOD /route" → requests served.
    pub hits: Mutex<HashMap<String, u64>>,
    /// Ids posted to /ids.
    pub ids: Mutex<Vec<String>>,
}

impl Counters {
    pub fn hits(&self, key: &str) -> u64 {
        self.hits.lock().unwrap().get(key).copied().unwrap_or(0)
    }
    pub fn total(&self) -> u64 {
        self.hits.lock().unwrap().values().sum()
    }
}

pub struct TestServer {
    pub url: String,
    pub counters: Arc<Counters>,
    _thread: std::thread::JoinHandle<()>,
}

async fn count(State(c): State<Arc<Counters>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let key = format!("{} {route}", req.method());
    *c.hits.lock().unwrap().entry(key).or_default() += 1;
    next.run(req).await
}

async fn status(Path(code): Path<u16>) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

async fn set_cookie(Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
    let v = q.get("v").cloned().unwrap_or_default();
    ([("set-cookie", format!("who={v}; Path=/"))], "set")
}

/// 200 for `Authorization: Basic` of `u:p w` (user `u`, password `p w`), 401 otherwise.
async fn basic(headers: HeaderMap) -> StatusCode {
    // base64("u:p w")
    if headers
        .get("authorization")
        .is_some_and(|v| v == "Basic dTpwIHc=")
    {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn read_cookie(headers: HeaderMap) -> String {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split("; "))
        .find_map(|c| c.strip_prefix("who="))
        .unwrap_or("")
        .to_owned()
}

async fn slow(Query(q): Query<HashMap<String, u64>>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(q.get("ms").copied().unwrap_or(100))).await;
    "slow"
}

async fn post_ids(State(c): State<Arc<Counters>>, body: String) -> StatusCode {
    c.ids
        .lock()
        .unwrap()
        .extend(body.split(',').map(str::to_owned));
    StatusCode::NO_CONTENT
}

async fn echo(uri: axum::http::Uri, headers: HeaderMap, body: String) -> Json<serde_json::Value> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Json(serde_json::json!({ "content_type": ct, "body": body, "query": uri.query() }))
}

async fn gzipped() -> impl IntoResponse {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(br#"{"zipped":true}"#).unwrap();
    (
        [
            ("content-encoding", "gzip"),
            ("content-type", "application/json"),
        ],
        enc.finish().unwrap(),
    )
}

/// A page of a catalogue: every JSON kind, nested objects and a list of three items.
pub fn catalog() -> serde_json::Value {
    serde_json::json!({
        "name": "x",
        "items": [
            {"id": 1, "name": "a", "tags": ["new"]},
            {"id": 2, "name": "b", "tags": []},
            {"id": 3, "name": "c", "tags": ["sale", "new"]}
        ],
        "meta": {"page": 1, "price": 2.5, "big": 18446744073709551615u64, "none": null, "ok": true}
    })
}

fn app(counters: Arc<Counters>) -> Router {
    Router::new()
        .route(
            "/json",
            get(|| async { Json(serde_json::json!({"id": "42", "name": "x"})) }),
        )
        .route("/status/{code}", get(status).post(status))
        .route("/garbage", get(|| async { "this is not json" }))
        .route("/catalog", get(|| async { Json(catalog()) }))
        // Framed correctly, cut off mid-document: a selector must not read "x" out of it.
        .route(
            "/truncated",
            get(|| async { r#"{"name":"x","items":[{"id":1},"# }),
        )
        .route("/cookie/set", get(set_cookie))
        .route("/cookie/get", get(read_cookie))
        .route("/slow", get(slow))
        .route("/ids", post(post_ids))
        .route("/echo", post(echo).get(echo))
        .route("/basic", get(basic))
        .route(
            "/items/{id}",
            get(|Path(id): Path<String>| async move { id }),
        )
        .route("/gzip", get(gzipped))
        .route("/bytes", get(|| async { (0u8..=255).collect::<Vec<u8>>() }))
        .route(
            "/redirect",
            get(|| async { axum::response::Redirect::to("/cookie/get") }),
        )
        .route(
            "/login",
            post(|| async {
                (
                    StatusCode::SEE_OTHER,
                    [
                        ("location", "/cookie/get"),
                        ("set-cookie", "who=logged-in; Path=/"),
                    ],
                )
            }),
        )
        .layer(middleware::from_fn_with_state(counters.clone(), count))
        .with_state(counters)
}

/// Starts the server on its own thread and runtime (so it never competes with the
/// runner's threads for a runtime) and returns once it is listening.
pub fn start() -> TestServer {
    let counters = Arc::new(Counters::default());
    let (url, thread) = serve(app(counters.clone()));
    TestServer {
        url,
        counters,
        _thread: thread,
    }
}

/// Serves `app` on 127.0.0.1 (a free port) from a thread and runtime of its own; returns
/// its base URL once it listens.
pub fn serve(app: Router) -> (String, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (format!("http://{}", rx.recv().unwrap()), thread)
}

/// A listener that accepts connections and closes them at once without answering.
pub fn start_resetting() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            drop(stream);
        }
    });
    format!("http://{addr}")
}

/// Writes `source` to a temporary script file.
pub fn script(source: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".rhai").tempfile().unwrap();
    std::io::Write::write_all(&mut f, source.as_bytes()).unwrap();
    f
}

/// Runs `source` in-process against `host` with the given arguments.
pub fn run(source: &str, host: &str, tweak: impl FnOnce(&mut RunArgs)) -> Outcome {
    run_until(source, host, tweak, &Default::default())
}

/// Like [`run`], stopped by `shutdown` (as a signal would) rather than only by its limits.
pub fn run_until(
    source: &str,
    host: &str,
    tweak: impl FnOnce(&mut RunArgs),
    shutdown: &stampede::runner::Shutdown,
) -> Outcome {
    let file = script(source);
    let mut args = RunArgs {
        script: file.path().to_owned(),
        flags: RunFlags {
            host: Some(host.to_owned()),
            quiet: true,
            ..RunFlags::default()
        },
    };
    tweak(&mut args);
    let plan = Plan::build(&args).expect("plan");
    stampede::runner::run(plan, shutdown, &mut stampede::runner::Quiet).expect("run")
}

/// Asserts that each named check passed `pass` times and never failed.
pub fn assert_checks(outcome: &Outcome, names: &[&str], pass: u64) {
    for name in names {
        let c = outcome.totals.checks()[*name];
        assert_eq!((c.pass, c.fail), (pass, 0), "{name}");
    }
}

/// Total failures of one kind.
pub fn failures_of(outcome: &Outcome, kind: &str) -> u64 {
    outcome
        .totals
        .failures()
        .iter()
        .filter(|(k, _)| k.kind.to_string() == kind)
        .map(|(_, n)| n)
        .sum()
}
