//! Fault suite, what already held when the reliability issue was filed and must keep
//! holding: a target killed and restarted, malformed responses, slow drips, a refused port
//! under 2,000 users, CR LF injection, secrets kept out of every output. (Stalls past the
//! timeout, endless bodies, TLS verification, Ctrl-C and HTML escaping have their tests in
//! engine.rs, wire.rs, cli.rs and outputs.rs.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::faulty::{self, Reply, ok};
use common::{failures_of, run};

#[test]
fn a_target_killed_and_restarted_mid_run_is_counted_and_traffic_recovers() {
    let behaviour: Arc<faulty::Behaviour> = Arc::new(|_, _| ok("up"));
    let server = faulty::start_on("127.0.0.1:0", Default::default(), behaviour.clone());
    let url = server.url.clone();
    let shutdown = stampede::runner::Shutdown::default();
    let stop = shutdown.clone();
    let runner = std::thread::spawn(move || {
        common::run_until(
            r#"fn t() { http::get("/x"); sleep(0.01); }"#,
            &url,
            |a| {
                a.flags.users = Some(4);
                a.flags.spawn_rate = Some(100.0);
                a.flags.run_time = Some(Duration::from_secs(120));
            },
            &stop,
        )
    });
    let record = server.record.clone();
    common::bin::wait_until("traffic", || record.count() >= 20);
    server.kill();
    let at_kill = record.count();
    std::thread::sleep(Duration::from_millis(300)); // the target stays down a while
    let _restarted = faulty::restart(&server, behaviour);
    common::bin::wait_until("traffic after the restart", || {
        record.count() >= at_kill + 20
    });
    shutdown.request();
    let out = runner.join().unwrap();
    assert!(out.interrupted);
    assert!(
        failures_of(&out, "connect") > 0,
        "{:?}",
        out.totals.failures()
    );
    let all = out.totals.aggregated();
    let answered = all.requests - all.failures;
    assert!(record.count() as u64 >= answered);
    assert!(
        record.count() as u64 <= all.requests + all.retries,
        "every request the server saw is counted: {} vs {} + {}",
        record.count(),
        all.requests,
        all.retries
    );
}

#[test]
fn malformed_responses_fail_by_kind_and_the_run_finishes() {
    let server = faulty::start(|r, _| {
        let bytes: &[u8] = match r.path.as_str() {
            "/garbage" => b"this is not http\r\n\r\n",
            "/bad-length" => b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
            "/two-lengths" => {
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
            }
            "/bad-header" => b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
            "/bad-status" => b"HTTP/1.1 2000 OK\r\n\r\n",
            "/bad-chunk" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "/http2" => b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "/nul" => b"HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 0\r\n\r\n",
            _ => return ok("fine"),
        };
        Reply::Send(bytes.to_vec())
    });
    let paths = [
        "/garbage",
        "/bad-length",
        "/two-lengths",
        "/bad-header",
        "/bad-status",
        "/bad-chunk",
        "/http2",
        "/nul",
    ];
    // One task per response: a transport failure ends its iteration.
    let tasks: String = paths
        .iter()
        .enumerate()
        .map(|(i, p)| format!("fn t{i}() {{ http::get(\"{p}\"); }}\n"))
        .collect();
    let out = run(
        &format!("{tasks} fn fine() {{ http::get(\"/fine\", #{{ expect: 200 }}); }}"),
        &server.url,
        |a| {
            a.flags.iterations = Some(180);
            a.flags.seed = Some(7);
        },
    );
    for p in paths {
        let s = out.totals.get("GET", p).expect(p);
        assert!(s.requests > 0 && s.failures == s.requests, "{p}: {s:?}");
    }
    assert_eq!(out.totals.get("GET", "/fine").unwrap().failures, 0);
    assert_eq!(out.totals.iterations, 180, "the run finished");
    let all = out.totals.aggregated();
    assert_eq!(
        failures_of(&out, "request") + failures_of(&out, "body") + failures_of(&out, "reset"),
        all.failures
    );
    assert_eq!(all.requests, server.record.count() as u64);
}

#[test]
fn a_slow_drip_completes_within_the_timeout_and_times_out_past_it() {
    let body = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    let server = faulty::start(move |r, _| {
        let pause = if r.path == "/slow" { 100 } else { 2 };
        Reply::Drip(body.clone(), Duration::from_millis(pause))
    });
    let out = run(
        r#"fn t() {
               check(http::get("/quick", #{ timeout: 2 }).text == "hello", "dripped body read whole");
               http::get("/slow", #{ timeout: 0.5 });
           }"#,
        &server.url,
        |a| a.flags.iterations = Some(2),
    );
    assert_eq!(out.totals.checks()["dripped body read whole"].pass, 2);
    assert_eq!(failures_of(&out, "timeout"), 2);
}

#[test]
fn cr_lf_in_headers_and_methods_is_refused_not_sent() {
    let server = faulty::start(|_, _| ok("ok"));
    let out = run(
        r#"fn t() {
               try { http::set_header("X-A", "v\r\nInjected: 1"); check(false, "header"); }
               catch { check(true, "header"); }
               try { http::request("GET /x HTTP/1.1\r\nInjected: 1\r\n", "/y"); check(false, "method"); }
               catch { check(true, "method"); }
               try { http::get("/z", #{ headers: #{ "X-B": "v\r\nInjected: 2" } }); check(false, "option"); }
               catch { check(true, "option"); }
               http::get("/clean");
           }"#,
        &server.url,
        |a| a.flags.iterations = Some(2),
    );
    let received = server.record.received();
    assert_eq!(received.len(), 2, "only the clean requests went out");
    assert!(received.iter().all(|r| r.header("injected").is_none()));
    assert_eq!(out.totals.aggregated().requests, 2);
    for name in ["header", "method", "option"] {
        assert_eq!(
            out.totals.checks()[name].pass,
            2,
            "{name} refused with an error"
        );
    }
}

#[test]
fn secrets_stay_out_of_logs_and_every_report() {
    let server = faulty::start(|r, _| match r.path.as_str() {
        "/denied" => {
            Reply::Send(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_vec())
        }
        _ => ok("ok"),
    });
    let dir = tempfile::tempdir().unwrap();
    let file = common::script(
        r#"fn on_start() { http::set_header("Authorization", "Bearer TOPSECRET-1"); }
           fn t() {
               http::post("/login", #{ json: #{ password: "TOPSECRET-2" } });
               let r = http::get("/denied", #{ headers: #{ "X-Api-Key": "TOPSECRET-3" } });
               log::debug(`denied with ${r.status}`);
               http::get("/denied", #{ headers: #{ "X-Api-Key": "TOPSECRET-3" }, expect: 200 });
           }"#,
    );
    let p = |name: &str| dir.path().join(name);
    let output = common::bin::stampede()
        .args([
            "run",
            file.path().to_str().unwrap(),
            "--host",
            &server.url,
            "-i",
            "3",
        ])
        .args(["--log-level", "debug", "--log-file"])
        .arg(p("log.txt"))
        .arg("--json")
        .arg(p("r.json"))
        .arg("--html")
        .arg(p("r.html"))
        .arg("--csv")
        .arg(p("c"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(
        server
            .record
            .received()
            .iter()
            .any(|r| r.header("x-api-key").is_some()),
        "the secret was sent where it belongs"
    );
    let mut texts = vec![
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ];
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        texts.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert_eq!(texts.len(), 2 + 7, "log, json, html and four csv files");
    let log = std::fs::read_to_string(p("log.txt")).unwrap();
    assert!(
        log.contains("denied with 401"),
        "the log was written: {log}"
    );
    assert!(
        texts.iter().any(|t| t.contains("/denied")),
        "the reports name the request"
    );
    for t in texts {
        assert!(!t.contains("TOPSECRET"), "a secret was written: {t:.300}");
    }
}
