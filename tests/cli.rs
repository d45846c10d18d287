//! The binary as a user runs it: exit codes, errors before traffic, the demo server, scale.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::bin::stampede;

/// `stampede run FILE --host URL` (more arguments are added by the caller).
fn run_against(file: &tempfile::NamedTempFile, server: &common::TestServer) -> Command {
    let mut cmd = stampede();
    cmd.args(["run", file.path().to_str().unwrap(), "--host", &server.url]);
    cmd
}

/// Waits (bounded) until the server has answered `n` requests of `key`.
fn wait_for_hits(server: &common::TestServer, key: &str, n: u64) {
    common::bin::wait_until("traffic", || server.counters.hits(key) >= n);
}

/// Sends Ctrl-C's signal to `child`.
fn interrupt(child: &Child) {
    common::bin::signal(child, "INT");
}

#[test]
fn a_syntax_error_exits_2_with_its_location_before_any_traffic() {
    let server = common::start();
    let file = common::script("fn t() {\n    http::get(\"/json\";\n}\n");
    let out = run_against(&file, &server).output().unwrap();
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
    let out = run_against(&file, &server).output().unwrap();
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

#[test]
fn ctrl_c_stops_the_run_and_still_writes_the_summary_and_files() {
    let server = common::start();
    let file = common::script(
        r#"fn t() { http::get("/json"); sleep(0.01); }
           fn on_stop() { http::get("/status/200"); }"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let child = run_against(&file, &server)
        .args(["-u", "5", "-r", "100", "-t", "5m", "-q", "--json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_hits(&server, "GET /json", 50);
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(interrupted)"), "{stdout}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["interrupted"], true);
    assert_eq!(doc["aggregated"]["requests"], server.counters.total());
    assert_eq!(
        server.counters.hits("GET /status/{code}"),
        5,
        "every user ran on_stop"
    );
}

/// The live view on a real terminal (tmux): a block redrawn in place, then the summary.
#[test]
fn live_view_redraws_on_a_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI must install tmux");
        eprintln!("tmux not installed: skipping the terminal check");
        return;
    }
    let server = common::start();
    let file = common::script(r#"fn t() { http::get("/json"); sleep(0.01); }"#);
    let bin = assert_cmd::cargo::cargo_bin("stampede");
    let session = format!("stampede-live-{}", std::process::id());
    let command = format!(
        "{} run {} --host {} -u 5 -r 100 -t 4s; sleep 30",
        bin.display(),
        file.path().display(),
        server.url
    );
    let started = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "50",
            "-s",
            &session,
            &command,
        ])
        .status()
        .unwrap();
    assert!(started.success());
    let capture = || {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen_live = String::new();
    let screen = loop {
        let screen = capture();
        if screen.contains("busiest:") {
            seen_live = screen.clone(); // the latest live screen
        }
        if screen.contains("Ran ") {
            break screen;
        }
        assert!(Instant::now() < deadline, "no summary: {screen}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
    assert!(seen_live.contains("users 5"), "{seen_live}");
    assert!(
        seen_live.contains("req/s") && seen_live.contains("p95"),
        "{seen_live}"
    );
    assert!(
        seen_live.contains("GET /json"),
        "busiest names listed: {seen_live}"
    );
    assert!(
        !screen.contains("busiest:"),
        "the live block is cleared before the summary: {screen}"
    );
    assert_eq!(
        seen_live.matches("] users").count(),
        1,
        "after several seconds the block was redrawn in place, not scrolled: {seen_live}"
    );
}
