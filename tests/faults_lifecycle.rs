//! Fault suite, the run's life: signals, hooks that hang, outputs that cannot be written,
//! absurd numbers. Each test runs the binary as a user would and checks the server's own
//! record as well as what stampede wrote.

mod common;

use std::io::BufReader;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bin::{read_until, signal, stampede, wait_until};

fn run_cmd(file: &tempfile::NamedTempFile, host: &str) -> Command {
    let mut cmd = stampede();
    cmd.args(["run", file.path().to_str().unwrap(), "--host", host, "-q"]);
    cmd
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn sigterm_stops_like_ctrl_c_and_every_output_and_hook_follows() {
    let server = common::start();
    let file = common::script(
        r#"fn t() { http::get("/json"); sleep(0.01); }
           fn on_stop() { http::get("/status/201"); }
           fn teardown() { http::get("/items/teardown"); }"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let child = run_cmd(&file, &server.url)
        .args(["-u", "3", "-r", "1000", "-t", "60s", "--json"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Enough traffic that every user has started (they start within 3 ms).
    wait_until("traffic", || server.counters.hits("GET /json") >= 100);
    signal(&child, "TERM");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "a graceful stop, not 143");
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("(interrupted)"), "{summary}");
    assert_eq!(
        server.counters.hits("GET /status/{code}"),
        3,
        "every on_stop ran"
    );
    assert_eq!(server.counters.hits("GET /items/{id}"), 1, "teardown ran");
    let doc = json(&out);
    assert_eq!(doc["interrupted"], true);
    let reported = doc["aggregated"]["requests"].as_u64().unwrap();
    assert_eq!(
        reported,
        server.counters.total(),
        "every request the server saw is in the JSON"
    );
}

/// After a first `sig` the run is still stopping (on_stop sleeps for a minute); a second
/// one exits at once with `code`.
fn a_second_signal_exits_at_once(sig: &str, code: i32) {
    let server = common::start();
    let file = common::script(
        r#"fn t() { http::get("/json"); sleep(0.01); }
           fn on_stop() { sleep(60); }"#,
    );
    let mut child = run_cmd(&file, &server.url)
        .args(["-u", "2", "-t", "60s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("traffic", || server.counters.hits("GET /json") >= 5);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    signal(&child, sig);
    read_until(&mut stderr, "stopping");
    let second = Instant::now();
    signal(&child, sig);
    assert_eq!(child.wait().unwrap().code(), Some(code));
    assert!(
        second.elapsed() < Duration::from_secs(10),
        "exited at once, not after on_stop"
    );
}

#[test]
fn a_second_ctrl_c_exits_at_once_with_130() {
    a_second_signal_exits_at_once("INT", 130);
}

#[test]
fn a_second_sigterm_exits_at_once_with_143() {
    a_second_signal_exits_at_once("TERM", 143);
}

#[test]
fn a_hanging_teardown_times_out_and_the_results_are_written_before_it() {
    let server = common::start();
    let file = common::script(
        r#"fn t() { http::get("/json"); sleep(0.01); }
           fn teardown() { http::get("/items/teardown"); loop {} }"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let status = run_cmd(&file, &server.url)
        .args(["-u", "2", "-t", "1s", "--teardown-timeout", "1s", "--json"])
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let doc = json(&out);
    let failures = doc["failures"].as_array().unwrap();
    assert!(
        failures.iter().any(|f| f["kind"] == "timeout"
            && f["name"] == "teardown()"
            && f["message"]
                .as_str()
                .unwrap()
                .contains("did not finish within 1s (teardown_timeout)")),
        "{failures:?}"
    );
    assert_eq!(server.counters.hits("GET /items/{id}"), 1);
    assert_eq!(
        doc["aggregated"]["requests"].as_u64().unwrap(),
        server.counters.total(),
        "teardown's request is in the final results"
    );

    // With a long teardown timeout, the results exist while teardown hangs, and Ctrl-C
    // (the first: the run itself ended by its run time) abandons it.
    std::fs::remove_file(&out).unwrap();
    let child = run_cmd(&file, &server.url)
        .args(["-u", "2", "-t", "1s", "--json"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // (The check before traffic creates and removes the file: wait for real JSON.)
    let parses = || {
        std::fs::read_to_string(&out)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    };
    wait_until("the results before teardown", || parses().is_some());
    let before = json(&out);
    assert!(before["aggregated"]["requests"].as_u64().unwrap() > 0);
    signal(&child, "INT");
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(0));
    assert!(
        json(&out)["aggregated"]["requests"].as_u64() >= before["aggregated"]["requests"].as_u64()
    );
}

#[test]
fn teardown_runs_after_a_hard_stop_top_level_code_and_all() {
    let server = common::start();
    let out = common::run(
        r#"let warm = 0; for i in 0..1000 { warm += i; }
           fn t() { http::get("/slow?ms=30000", #{ timeout: 60 }); }
           fn teardown() { http::get("/items/teardown"); }"#,
        &server.url,
        |a| {
            a.flags.users = Some(2);
            a.flags.spawn_rate = Some(100.0);
            a.flags.run_time = Some(Duration::from_secs(2));
            a.flags.stop_timeout = Some(Duration::from_millis(300));
        },
    );
    assert_eq!(out.totals.unfinished.requests, 2);
    assert_eq!(server.counters.hits("GET /items/{id}"), 1, "teardown ran");
    assert_eq!(common::failures_of(&out, "script"), 0);
}

#[test]
fn a_hanging_setup_is_bounded_by_the_run_time_and_its_own_timeout() {
    let server = common::start();
    let file = common::script(
        r#"fn setup() { loop {} }
           fn t() { http::get("/json"); }"#,
    );
    for limit in [["-t", "1s"], ["--setup-timeout", "1s"]] {
        let output = run_cmd(&file, &server.url).args(limit).output().unwrap();
        assert_eq!(output.status.code(), Some(3), "setup failed: no user ran");
        let summary = String::from_utf8_lossy(&output.stdout);
        assert!(
            summary.contains("setup() did not finish within 1s"),
            "{summary}"
        );
    }
    assert_eq!(server.counters.total(), 0);
}

#[test]
fn unwritable_outputs_are_usage_errors_before_any_traffic() {
    let server = common::start();
    let file = common::script(r#"fn t() { http::get("/json"); }"#);
    let dir = tempfile::tempdir().unwrap();
    let a_directory = dir.path().to_str().unwrap();
    for (flag, path) in [
        ("--json", "/nonexistent-dir/r.json"),
        ("--html", "/nonexistent-dir/r.html"),
        ("--csv", "/nonexistent-dir/r"),
        ("--json", a_directory),
    ] {
        let output = run_cmd(&file, &server.url)
            .args(["-i", "5", flag, path])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag} {path}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(path), "{err}");
    }
    assert_eq!(server.counters.total(), 0, "no traffic was sent");
}

#[test]
fn outputs_are_written_when_stdout_is_full_or_closed() {
    let server = common::start();
    let file = common::script(r#"fn t() { http::get("/json"); }"#);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = run_cmd(&file, &server.url)
        .args(["-i", "7", "--json"])
        .arg(&out)
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stderr).contains("summary could not be written"));
    assert_eq!(json(&out)["aggregated"]["requests"], 7);

    // A closed pipe (`| head -0`).
    let out2 = dir.path().join("r2.json");
    let mut child = run_cmd(&file, &server.url)
        .args(["-i", "3", "--csv"])
        .arg(dir.path().join("c"))
        .arg("--json")
        .arg(&out2)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(json(&out2)["aggregated"]["requests"], 3);
    assert!(dir.path().join("c_stats.csv").exists());
}

#[test]
fn an_output_that_fails_after_the_run_is_an_internal_error_and_the_rest_are_written() {
    let server = common::start();
    let file = common::script(r#"fn t() { http::get("/json"); }"#);
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    // /dev/full can be opened for writing (the check before traffic passes), but every
    // write to it fails: a full disk.
    let output = run_cmd(&file, &server.url)
        .args(["-i", "4", "--json", "/dev/full", "--html"])
        .arg(&html)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{err}");
    assert!(err.contains("/dev/full"), "{err}");
    assert!(html.exists(), "the other file was written");
    assert_eq!(server.counters.total(), 4);
}

#[test]
fn absurd_durations_are_clear_errors_never_panics() {
    let server = common::start();
    let file = common::script(r#"fn t() { http::get("/json"); }"#);
    for args in [
        ["-t", "1e30"],
        ["--timeout", "1e30"],
        ["--stop-timeout", "1e30"],
        ["--timeout", "0"],
        ["-t", "NaN"],
    ] {
        let output = run_cmd(&file, &server.url).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let options = common::script(
        r#"const options = #{ wait_time: constant(1e30) };
           fn t() { http::get("/json"); }"#,
    );
    let output = run_cmd(&options, &server.url).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("365 days"), "{err}");

    // In tasks: counted as script failures with their location; the user goes on.
    let tasks = common::script(
        r#"fn t() {
               if iteration() % 2 == 0 { sleep(1e30); }
               else { http::get("/json", #{ timeout: 1e30 }); }
           }"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let output = run_cmd(&tasks, &server.url)
        .args(["--iterations-per-user", "6", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let doc = json(&out);
    assert_eq!(doc["iterations"], 6, "the user went on after each error");
    assert_eq!(doc["failed_iterations"], 6);
    let failures = doc["failures"].as_array().unwrap();
    assert!(
        failures.iter().all(|f| f["kind"] == "script"),
        "{failures:?}"
    );
    assert_eq!(server.counters.total(), 0);
}
