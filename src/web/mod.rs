//! The web UI (`stampede web SCRIPT`, `stampede demo --web`): start, steer and watch a test
//! in the browser, as Locust users do. One page, embedded in the binary (no build step, works
//! offline), fed once a second over server-sent events from the same merge the terminal uses.
//!
//! Safety: it listens on loopback unless told otherwise; `--web-auth user:password` asks for
//! HTTP basic authentication; every request that changes something must be a same-origin
//! `application/json` POST (a cross-site page can send neither without the browser's consent),
//! and the page writes every text from the target or the script with `textContent`.

mod assets;
mod form;
mod session;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;

pub use session::{Downloads, EditForm, Script, Session, SessionError, StartForm};

/// Where and how the UI listens.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub addr: SocketAddr,
    /// `user:password` for HTTP basic authentication.
    pub auth: Option<String>,
}

/// A running web UI.
pub struct WebServer {
    pub addr: SocketAddr,
    pub session: Arc<Session>,
    stop: tokio_util::sync::CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WebServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops a running test (gracefully) and the server.
    pub fn stop(mut self) {
        self.session.shut_down();
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the UI on its own thread and runtime and returns once it is listening.
pub fn spawn(session: Session, config: &WebConfig) -> std::io::Result<WebServer> {
    let listener = std::net::TcpListener::bind(config.addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let session = Arc::new(session);
    let stop = tokio_util::sync::CancellationToken::new();
    let app = router(session.clone(), config.auth.as_deref(), addr, stop.clone());
    let thread = std::thread::Builder::new()
        .name("stampede-web".into())
        .spawn({
            let stop = stop.clone();
            move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("web runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    let serve = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await });
                    if let Err(e) = serve.await {
                        eprintln!("web UI stopped: {e}");
                    }
                });
            }
        })?;
    Ok(WebServer {
        addr,
        session,
        stop,
        thread: Some(thread),
    })
}

#[derive(Clone)]
struct App {
    session: Arc<Session>,
    /// The base64 credentials of `Authorization: Basic …` that are let in, when a login is
    /// required.
    auth: Option<Arc<str>>,
    /// Cancelled when the server shuts down: ends the live streams, which would otherwise
    /// keep the graceful shutdown waiting.
    stop: tokio_util::sync::CancellationToken,
    /// On loopback: the `Host` values a browser sends for this UI. Another name that
    /// resolves here (DNS rebinding) would make a foreign page same-origin with the UI.
    hosts: Option<Arc<[String]>>,
}

/// The UI's routes, for a server listening on `addr`.
pub fn router(
    session: Arc<Session>,
    auth: Option<&str>,
    addr: SocketAddr,
    stop: tokio_util::sync::CancellationToken,
) -> Router {
    let port = addr.port();
    let app = App {
        session,
        stop,
        auth: auth.map(|a| Arc::from(base64::engine::general_purpose::STANDARD.encode(a))),
        hosts: addr.ip().is_loopback().then(|| {
            [
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "[::1]".to_owned(),
                addr.ip().to_string(),
            ]
            .iter()
            .map(|h| format!("{h}:{port}"))
            .collect()
        }),
    };
    Router::new()
        .route("/", get(|| async { assets::page() }))
        .route("/app.js", get(|| async { assets::script() }))
        .route("/style.css", get(|| async { assets::style() }))
        .route("/api/state", get(state))
        .route("/api/history", get(history))
        .route("/api/events", get(events))
        .route("/api/start", post(start))
        .route("/api/edit", post(edit))
        .route("/api/stop", post(stop_test))
        .route("/api/reset", post(reset))
        .route("/api/download/{what}", get(download))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// The host check on loopback, basic authentication when asked for, and the cross-site
/// check for every POST.
async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    if let Some(hosts) = &app.hosts {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        if !host.is_some_and(|h| hosts.iter().any(|a| a.eq_ignore_ascii_case(h))) {
            return (StatusCode::MISDIRECTED_REQUEST, "unknown host for this UI").into_response();
        }
    }
    if let Some(expected) = &app.auth {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, credentials)| credentials.trim());
        if !given.is_some_and(|g| same_bytes(g.as_bytes(), expected.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"stampede\"")],
                "login required",
            )
                .into_response();
        }
    }
    if request.method() == axum::http::Method::POST
        && let Err(why) = same_origin_json(request.headers())
    {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Equal, in a time that does not depend on where they differ (a login compared byte by
/// byte would tell how much of a guess was right).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A state-changing request must carry JSON (a cross-site form cannot, without a preflight
/// the UI never answers) and, when the browser says where it comes from, come from this
/// page's own origin.
fn same_origin_json(headers: &HeaderMap) -> Result<(), &'static str> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err("state-changing requests must be application/json");
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return Err("cross-site request refused");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin = origin.to_str().unwrap_or_default();
        let same = host.is_some_and(|h| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(h)
        });
        if !same {
            return Err("cross-origin request refused");
        }
    }
    Ok(())
}

fn json_text(text: Arc<String>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        text.as_str().to_owned(),
    )
        .into_response()
}

async fn state(State(app): State<App>) -> Response {
    json_text(app.session.latest())
}

async fn history(State(app): State<App>) -> Response {
    axum::Json(app.session.history()).into_response()
}

/// The document, now and after every merge, as server-sent events.
async fn events(
    State(app): State<App>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    use futures_util::StreamExt as _;
    let mut rx = app.session.subscribe();
    rx.mark_changed();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let doc = rx.borrow_and_update().clone();
        Some((Ok(Event::default().data(doc.as_str())), rx))
    })
    .take_until(app.stop.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn refused(e: SessionError) -> Response {
    let status = match e {
        SessionError::Running
        | SessionError::NotRunning
        | SessionError::NotSteered
        | SessionError::OtherModel(_)
        | SessionError::Closing => StatusCode::CONFLICT,
        SessionError::Plan(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (
        status,
        axum::Json(serde_json::json!({ "error": e.to_string() })),
    )
        .into_response()
}

fn done(result: Result<(), SessionError>) -> Response {
    match result {
        Ok(()) => axum::Json(serde_json::json!({ "ok": true })).into_response(),
        Err(e) => refused(e),
    }
}

async fn start(State(app): State<App>, axum::Json(form): axum::Json<StartForm>) -> Response {
    done(app.session.start(form))
}

async fn edit(State(app): State<App>, axum::Json(form): axum::Json<EditForm>) -> Response {
    done(app.session.edit(form))
}

async fn stop_test(State(app): State<App>) -> Response {
    done(app.session.stop())
}

async fn reset(State(app): State<App>) -> Response {
    done(app.session.reset())
}

/// `json`, `html`, or `csv-stats` / `csv-failures` / `csv-history` / `csv-scenarios`.
async fn download(State(app): State<App>, Path(what): Path<String>) -> Response {
    let Some(d) = app.session.downloads().await else {
        return (StatusCode::NOT_FOUND, "no test has run yet").into_response();
    };
    let (bytes, kind, file) = match what.as_str() {
        "json" => (
            d.json.clone(),
            "application/json",
            "stampede.json".to_owned(),
        ),
        "html" => (
            d.html.clone(),
            "text/html; charset=utf-8",
            "stampede.html".to_owned(),
        ),
        other => match other
            .strip_prefix("csv-")
            .and_then(|s| d.csv.iter().find(|(suffix, _)| *suffix == s))
        {
            Some((suffix, bytes)) => (
                bytes.clone(),
                "text/csv; charset=utf-8",
                format!("stampede_{suffix}.csv"),
            ),
            None => return (StatusCode::NOT_FOUND, "no such download").into_response(),
        },
    };
    (
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}
