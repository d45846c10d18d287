//! Micro-benchmarks of the hot paths: recording a request, and one scripted task with a
//! request against the same request made from a native Rust loop through the same client.
//! The difference between the last two is what the scripting layer costs per request.
//!
//! The request benchmarks report *process CPU time* per request, not wall time, with
//! [`USERS`] concurrent users so the client is busy rather than waiting on round trips.
//! The in-process demo server's CPU is included in both, equally, so their difference is
//! the scripting layer. (`bench/overhead.sh` measures the same against nginx, pinned.)
//!
//!     cargo bench --bench hot_paths

use std::rc::Rc;
use std::time::Duration;

use cpu_time::ProcessTime;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;

use stampede::cli::{Plan, RunFlags};
use stampede::http::{Base, ClientFactory, Prepared, Target};
use stampede::metrics::Recorder;

/// Concurrent users (or native loops) in the request benchmarks.
const USERS: u64 = 50;

fn record(c: &mut Criterion) {
    let mut recorder = Recorder::default();
    let mut i = 0u64;
    c.bench_function("recorder: one request", |b| {
        b.iter(|| {
            i = (i + 7919) % 50_000;
            recorder.request("GET", "/json", Duration::from_micros(100 + i), 23, None);
        })
    });
}

/// The demo server's `/health`, in this process on its own thread.
fn server() -> stampede::demo::DemoServer {
    stampede::demo::spawn(0, false).expect("demo server")
}

fn scripted(c: &mut Criterion) {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("w1.rhai");
    std::fs::write(&script, r#"fn get() { http::get("/health"); }"#).unwrap();
    let source = std::fs::read_to_string(&script).unwrap();
    c.bench_function("scripted task: http::get (CPU)", |b| {
        b.iter_custom(|iters| {
            let flags = RunFlags {
                host: Some(server.url()),
                users: Some(USERS),
                spawn_rate: Some(1e6),
                workers: Some(1),
                iterations: Some(iters),
                quiet: true,
                ..RunFlags::default()
            };
            let plan = Plan::from_source(&flags, "w1.rhai".into(), source.clone(), None).unwrap();
            let start = ProcessTime::now();
            let out =
                stampede::runner::run(plan, &Default::default(), &mut stampede::runner::Quiet)
                    .unwrap();
            assert_eq!(out.totals.aggregated().requests, iters);
            start.elapsed()
        })
    });
}

fn native(c: &mut Criterion) {
    let server = server();
    let base = Base::parse(&server.url()).unwrap();
    c.bench_function("native loop: same client (CPU)", |b| {
        b.iter_custom(|iters| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async {
                let factory = Rc::new(ClientFactory::new(&Default::default()).unwrap());
                let start = ProcessTime::now();
                let loops: Vec<_> = (0..USERS)
                    .map(|i| {
                        // Split `iters` over the loops, as the run splits its iterations.
                        let n = iters / USERS + u64::from(i < iters % USERS);
                        let (factory, base) = (factory.clone(), base.clone());
                        tokio::task::spawn_local(async move {
                            let client = Rc::new(factory.build());
                            for _ in 0..n {
                                let prepared = Prepared {
                                    method: Method::GET,
                                    target: Target::resolve(Some(&base), "/health", &[]).unwrap(),
                                    headers: Vec::new(),
                                    body: bytes::Bytes::new(),
                                    timeout: None,
                                    redirects: None,
                                    digest: None,
                                };
                                let x = client.clone().execute(prepared).await.unwrap();
                                assert_eq!(x.status, 200);
                            }
                        })
                    })
                    .collect();
                for l in loops {
                    l.await.unwrap();
                }
                start.elapsed()
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = record, native, scripted
}
criterion_main!(benches);
