//! The binary as a user runs it: exit codes, errors before traffic, the demo server, scale.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

fn stampede() -> Command {
    Command::cargo_bin("stampede").unwrap()
}

#[test]
fn a_syntax_error_exits_2_with_its_location_before_any_traffic() {
    let server = common::start();
    let file = common::script("fn t() {\n    http::get(\"/json\";\n}\n");
    let out = stampede()
        .args(["run", file.path().to_str().unwrap(), "--host", &server.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!("{}:2:", file.path().display());
    assert!(err.contains(&want), "{err}");
    assert!(
        err.contains("http::get(\"/json\";"),
        "shows the source line: {err}"
    );
    assert_eq!(server.counters.total(), 0, "no request was sent");
}

#[test]
fn check_reports_every_problem_and_exits_2() {
    let file = common::script(
        r#"const options = #{ users: 3, run_tmie: "1s", tasks: #{ ghost: 2 } };
           fn on_start(x) {}
           fn with_args(a) {}"#,
    );
    let out = stampede()
        .args(["check", file.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("option `run_tmie`: unknown option"), "{err}");

    let file = common::script(r#"fn on_start(x) {} fn with_args(a) {}"#);
    let out = stampede()
        .args(["check", file.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hook `on_start` must take no parameters"),
        "{err}"
    );
    assert!(err.contains("`with_args` takes 1 parameter(s)"), "{err}");
    assert!(err.contains("no task defined"), "{err}");

    let ok = common::script("fn t() { http::get(\"/\"); }");
    let out = stampede()
        .args(["check", ok.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bundled_scripts_pass_check() {
    for script in [
        "scripts/cities.rhai",
        "scripts/browse.rhai",
        "scripts/health.rhai",
    ] {
        let out = stampede().args(["check", script]).output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn requests_in_top_level_code_are_refused_before_traffic() {
    let server = common::start();
    let file = common::script("http::get(\"/json\");\nfn t() {}");
    let out = stampede()
        .args(["run", file.path().to_str().unwrap(), "--host", &server.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not allowed in top-level code"));
    assert_eq!(server.counters.total(), 0);
}

/// `stampede demo-server --port 0` in a child process; returns it and its URL.
fn demo_server() -> (Child, String) {
    let mut child = stampede()
        .args(["demo-server", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (child, url)
}

fn served(url: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let v: serde_json::Value = reqwest::get(format!("{url}/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["total"].as_u64().unwrap()
    })
}

#[test]
fn ten_thousand_users_with_wait_time_complete_a_short_run() {
    // The server runs in its own process so the two ends' sockets do not share one
    // open-files limit.
    let (mut child, url) = demo_server();
    let started = Instant::now();
    let out = common::run(
        r#"const options = #{ wait_time: between(0.2, 0.5) };
           fn t() { http::get("/health"); }"#,
        &url,
        |a| {
            a.flags.users = Some(10_000);
            a.flags.spawn_rate = Some(10_000.0);
            a.flags.iterations_per_user = Some(2);
            a.flags.run_time = Some(Duration::from_secs(60));
        },
    );
    let took = started.elapsed();
    let n = out.totals.aggregated().requests;
    assert_eq!(
        out.totals.aggregated().failures,
        0,
        "{:?}",
        out.totals.failures()
    );
    assert_eq!(
        (n, out.totals.iterations),
        (20_000, 20_000),
        "two requests per user"
    );
    assert_eq!(served(&url), n, "the server counted the same");
    assert!(
        took < Duration::from_secs(60),
        "the run ended by itself: {took:?}"
    );
    let peak = out.totals.series().map(|s| s.users).max().unwrap_or(0);
    assert!(peak > 5_000, "users ran concurrently (peak {peak})");
    child.kill().unwrap();
    child.wait().unwrap();
}
