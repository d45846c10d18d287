//! W1 without the script: 50 concurrent loops through stampede's own HTTP client on one
//! thread, for `--duration` seconds. Compared with `stampede run bench/w1.rhai` it shows
//! what the scripting layer (Rhai, the coroutine bridge, metrics) costs per request.
//!
//!     cargo run --release --example native_w1 -- http://127.0.0.1:8089/json 50 5

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use http::Method;
use stampede::http::{Base, ClientFactory, Prepared, Target};

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8089/json".into());
    let users: usize = args.next().map_or(50, |s| s.parse().unwrap());
    let seconds: u64 = args.next().map_or(5, |s| s.parse().unwrap());
    // http://host:port/path → ("http://host:port", "/path")
    let after_scheme = url.find("//").map_or(0, |i| i + 2);
    let path_at = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    let (host, path) = url.split_at(path_at);
    let base = Base::parse(host).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let count = Rc::new(Cell::new(0u64));
    let cpu = cpu_time::ProcessTime::now();
    local.block_on(&rt, async {
        let factory = Rc::new(ClientFactory::new(&Default::default()).unwrap());
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..users {
            let (factory, base, path, count) = (
                factory.clone(),
                base.clone(),
                path.to_owned(),
                count.clone(),
            );
            tasks.push(tokio::task::spawn_local(async move {
                let client = Rc::new(factory.build());
                while Instant::now() < deadline {
                    let prepared = Prepared {
                        method: Method::GET,
                        target: Target::resolve(Some(&base), &path, &[]).unwrap(),
                        headers: Vec::new(),
                        body: bytes::Bytes::new(),
                        timeout: None,
                        redirects: None,
                        digest: None,
                    };
                    let x = client.clone().execute(prepared).await.unwrap();
                    assert_eq!(x.status, 200);
                    count.set(count.get() + 1);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let used = cpu.elapsed();
    let n = count.get();
    println!(
        "native W1: {n} requests, {:.2} µs CPU per request",
        used.as_secs_f64() * 1e6 / n as f64
    );
}
