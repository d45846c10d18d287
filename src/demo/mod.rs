//! The demo target API: users register, get a bearer token, create cities and read them
//! back — the shape of the FastAPI app whose concurrency bug a load test found.
//!
//! With `race` on, it reproduces that bug faithfully: one shared access-control object
//! keeps the "current user", set by authentication and read again after an awaited store
//! call, so concurrent requests overwrite each other's user and read-backs come back 404.

mod auth;
mod routes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use routes::router;

/// The scenario `stampede demo` runs, embedded so it works from any directory.
pub const CITIES_SCRIPT: &str = include_str!("../../scripts/cities.rhai");
pub const CITIES_SCRIPT_NAME: &str = "scripts/cities.rhai";

/// Requests served, per `METHOD /route` (the route template, e.g. `GET /cities/{id}`).
#[derive(Default)]
pub struct Stats(Mutex<BTreeMap<String, u64>>);

impl Stats {
    pub fn count(&self, key: String) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A running demo server.
pub struct DemoServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    _thread: std::thread::JoinHandle<()>,
}

impl DemoServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts the demo API on 127.0.0.1:`port` (0 picks a free port) on its own thread and
/// runtime, and returns once it is listening.
pub fn spawn(port: u16, race: bool) -> std::io::Result<DemoServer> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let app = router(race, stats.clone());
    let thread = std::thread::Builder::new()
        .name("stampede-demo".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("demo runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                if let Err(e) = axum::serve(listener, app).await {
                    eprintln!("demo server stopped: {e}");
                }
            });
        })?;
    Ok(DemoServer {
        addr,
        stats,
        _thread: thread,
    })
}
