//! `--prometheus`: a real Prometheus (Debian's package, installed by `.ci/run`) started on
//! 127.0.0.1 with a temporary data folder receives the pushes; PromQL through its HTTP API
//! must give the summary's counts, and a quantile of the pushed histogram within one bucket
//! of the summary's exact percentile.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::bin::stampede;

/// A Prometheus of the test's own, stopped when dropped.
struct Prometheus {
    child: Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus() -> Prometheus {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            data.path().join("db").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is installed by .ci/run (Debian package `prometheus`)");
    let prometheus = Prometheus {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _data: data,
    };
    let ready = format!("{}/-/ready", prometheus.base);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if web::get_ok(&ready) {
            return prometheus;
        }
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// PromQL through the HTTP API: the single value of an instant query.
fn query(base: &str, promql: &str) -> f64 {
    let url = format!("{base}/api/v1/query?query={}", percent_encode(promql));
    let body: serde_json::Value = web::get_json(&url);
    assert_eq!(body["status"], "success", "{promql}: {body}");
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{promql}: {body}");
    result[0]["value"][1].as_str().unwrap().parse().unwrap()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Blocking HTTP for the test's queries, on a runtime of its own.
mod web {
    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    pub fn get_ok(url: &str) -> bool {
        block(async {
            ::reqwest::get(url)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
    }

    pub fn get_json(url: &str) -> serde_json::Value {
        block(async { ::reqwest::get(url).await.unwrap().json().await.unwrap() })
    }
}

#[test]
fn prometheus_holds_the_summary_counts_and_a_close_quantile() {
    let prometheus = start_prometheus();
    let server = common::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.rhai"),
        r#"
let options = #{ scenarios: #{
    api: #{ executor: "shared-iterations", users: 4, iterations: 120, exec: "api" } } };
fn api() {
    let r = http::get("/slow?ms=5", #{ name: "/slow" });
    check(r.status == 200, "slow answered");
    http::get("/status/404", #{ name: "/missing", on_error: "return" });
}
"#,
    )
    .unwrap();
    let out = stampede()
        .args([
            "run",
            "s.rhai",
            "--host",
            &server.url,
            "--quiet",
            "--json",
            "r.json",
        ])
        .args(["--prometheus", &format!("{}/api/v1/write", prometheus.base)])
        .args(["--prometheus-interval", "1s"])
        .args(["--prometheus-label", "testid=t1", "--segment", "1/1"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("pushes to"), "{stderr}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    let requests = doc["aggregated"]["requests"].as_u64().unwrap();
    assert_eq!(requests, 240);
    assert_eq!(requests, server.counters.total());

    let base = &prometheus.base;
    let sel = r#"{testid="t1",segment="1/1",scenario="api"}"#;
    let total = query(base, &format!("sum(stampede_http_requests_total{sel})"));
    assert_eq!(total, requests as f64);
    let slow = query(
        base,
        r#"sum(stampede_http_requests_total{testid="t1",name="/slow"})"#,
    );
    assert_eq!(slow, 120.0);
    let status = query(
        base,
        r#"sum(stampede_failures_total{testid="t1",kind="status"})"#,
    );
    assert_eq!(status, 120.0);
    let passed = query(
        base,
        r#"sum(stampede_checks_total{testid="t1",check="slow answered",result="pass"})"#,
    );
    assert_eq!(passed, 120.0);
    let iterations = query(base, r#"sum(stampede_iterations_total{testid="t1"})"#);
    assert_eq!(iterations, doc["iterations"].as_f64().unwrap());
    let users = query(base, r#"sum(stampede_users{testid="t1"})"#);
    eprintln!(
        "PromQL: requests {total} (summary {requests}), /slow {slow}, status failures {status}, \
         checks passed {passed}, iterations {iterations}, users {users}"
    );
    assert_eq!(users, 0.0, "the last push says no user is left");

    // The quantile of the pushed histogram lies in the bucket holding the exact p95.
    let p95 = query(
        base,
        r#"histogram_quantile(0.95, sum by (le) (stampede_http_request_duration_seconds_bucket{testid="t1",name="/slow"}))"#,
    );
    let slow_row = doc["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "/slow")
        .unwrap();
    let exact = slow_row["percentiles_ms"][2].as_f64().unwrap() / 1000.0;
    let buckets = stampede::prometheus::BUCKETS;
    let bucket_of = |v: f64| {
        let upper = buckets.iter().copied().find(|le| *le >= v).unwrap();
        let lower = buckets
            .iter()
            .copied()
            .rev()
            .find(|le| *le < v)
            .unwrap_or(0.0);
        (lower, upper)
    };
    let (lower, upper) = bucket_of(exact);
    // The summary's percentile is the top of its HDR bucket (3 significant figures: up to
    // 0.1 % above what was recorded), so a value recorded just at or under a boundary
    // (7.5 ms read back as 7.503) is in Prometheus's bucket below.
    let (below, _) = bucket_of(exact / 1.001);
    eprintln!("p95: summary {exact} s, Prometheus {p95} s (bucket {lower}..{upper})");
    assert!(
        p95 > below && p95 <= upper,
        "Prometheus p95 {p95} outside the bucket ({lower}, {upper}] of the summary's {exact}"
    );
}
