//! The core engine against a real server: counts, per-user state, weights, limits, errors.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{failures_of, run};

#[test]
fn request_count_equals_the_servers_count() {
    let server = common::start();
    let out = run(
        r#"fn get_json() { http::get("/json"); }
           fn status() { http::get("/status/204"); }"#,
        &server.url,
        |a| {
            a.flags.users = Some(8);
            a.flags.iterations = Some(500);
        },
    );
    let tool = out.totals.aggregated().requests;
    assert_eq!(tool, 500, "one request per iteration");
    assert_eq!(out.totals.iterations, 500);
    assert_eq!(
        server.counters.total(),
        tool,
        "server saw what the tool counted"
    );
    let json = out.totals.get("GET", "/json").unwrap().requests;
    assert_eq!(server.counters.hits("GET /json"), json);
    assert_eq!(out.totals.aggregated().failures, 0);
}

#[test]
fn cookies_persist_per_user_and_are_not_shared() {
    let server = common::start();
    let out = run(
        r#"fn on_start() { http::get(`/cookie/set?v=${vu_id()}`); }
           fn read() {
               let r = http::get("/cookie/get");
               check(r.text == `${vu_id()}`, "cookie is my own");
           }"#,
        &server.url,
        |a| {
            a.flags.users = Some(10);
            a.flags.iterations_per_user = Some(20);
        },
    );
    let c = out.totals.checks()["cookie is my own"];
    assert_eq!((c.pass, c.fail), (200, 0));
    assert_eq!(server.counters.hits("GET /cookie/get"), 200);
}

#[test]
fn this_holds_each_users_own_state() {
    let server = common::start();
    let out = run(
        r#"fn on_start() { this.me = vu_id(); this.n = 0; }
           fn step() {
               this.n += 1;
               check(this.me == vu_id(), "this belongs to me");
               check(this.n == iteration(), "my counter counts my iterations");
               http::get("/json");
           }"#,
        &server.url,
        |a| {
            a.flags.users = Some(20);
            a.flags.iterations_per_user = Some(10);
        },
    );
    for name in ["this belongs to me", "my counter counts my iterations"] {
        let c = out.totals.checks()[name];
        assert_eq!((c.pass, c.fail), (200, 0), "{name}");
    }
}

#[test]
fn top_level_constants_are_visible_in_helpers_and_this_through_method_calls() {
    let server = common::start();
    let out = run(
        r#"const BASE = "/items";
           const IDS = [7, 8];
           let scratch = 1;
           fn _url(i) { `${BASE}/${IDS[i]}` }
           fn _nested() { _url(1) }
           fn _mine() { this.me }
           fn on_start() { this.me = vu_id(); http::get(_url(0)); }
           fn step() {
               http::get(_nested());
               check(this._mine() == vu_id(), "this in a helper called as a method");
               check(BASE == "/items", "a task sees the constant");
           }"#,
        &server.url,
        |a| {
            a.flags.users = Some(3);
            a.flags.iterations_per_user = Some(4);
        },
    );
    assert_eq!(
        out.totals.aggregated().failures,
        0,
        "{:?}",
        out.totals.failures()
    );
    assert_eq!(server.counters.hits("GET /items/{id}"), 3 + 12);
    common::assert_checks(
        &out,
        &[
            "this in a helper called as a method",
            "a task sees the constant",
        ],
        12,
    );
    // A top-level `let` stays the top level's: a helper that reads it fails, named.
    let out = run(
        r#"let scratch = 1;
           fn _read() { scratch }
           fn step() { _read(); }"#,
        &server.url,
        |a| a.flags.iterations = Some(1),
    );
    let failures = out.totals.failures();
    assert!(
        failures
            .iter()
            .any(|(k, _)| k.message.contains("Variable not found: scratch")),
        "{failures:?}"
    );
}

#[test]
fn a_typo_in_request_options_is_found_by_check_and_named_with_its_line_at_run_time() {
    let server = common::start();
    // A literal options map: `check` (and `run`, before traffic) names the line.
    let file = common::script(
        "fn t() {\n    let x = 1;\n    http::get(\"/json\", #{ allow_redirect: false });\n}\n",
    );
    let path = file.path().to_str().unwrap();
    let output = common::bin::stampede()
        .args(["check", path])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{path}:3:"))
            && err.contains("unknown request option `allow_redirect`"),
        "{err}"
    );
    let output = common::bin::stampede()
        .args(["run", path, "--host", &server.url, "-i", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(server.counters.total(), 0, "no traffic");
    // Built at run time, it can only fail then: the failure names the line of the call.
    let source =
        "fn t() {\n    let o = #{ allow_redirect: false };\n    http::get(\"/json\", o);\n}\n";
    let out = run(source, &server.url, |a| a.flags.iterations = Some(1));
    let failures = out.totals.failures();
    let (key, _) = failures
        .iter()
        .find(|(k, _)| {
            k.message
                .contains("unknown request option `allow_redirect`")
        })
        .expect("counted as a script failure");
    assert!(key.message.contains(".rhai:3:"), "{}", key.message);
}

#[test]
fn failed_requests_can_be_caught_or_returned_and_are_counted_all_the_same() {
    let server = common::start();
    let out = run(
        r#"const REFUSED = "http://127.0.0.1:1";
           fn t() {
               try { http::get(`${REFUSED}/x`); check(false, "caught transport"); }
               catch (e) { check(e.kind == "connect" && e.status == 0, "caught transport"); }
               try { http::get("/status/404", #{ expect: 200 }); check(false, "caught status"); }
               catch (e) { check(e.kind == "status" && e.status == 404, "caught status"); }
               try { http::get("/garbage").json(); check(false, "caught body"); }
               catch (e) { check(e.kind == "body" && e.request == "GET /garbage", "caught body"); }
               let r = http::get(`${REFUSED}/y`, #{ on_error: "return" });
               check(r.status == 0 && !r.ok && r.error_kind == "connect" && r.error != (), "returned transport");
               let s = http::get("/status/503", #{ expect: 200, on_error: "return" });
               check(s.status == 503 && !s.ok && s.error == (), "returned status");
           }"#,
        &server.url,
        |a| a.flags.iterations = Some(3),
    );
    common::assert_checks(
        &out,
        &[
            "caught transport",
            "caught status",
            "caught body",
            "returned transport",
            "returned status",
        ],
        3,
    );
    // Handled or not, every failed request is counted, once; no iteration failed.
    assert_eq!(
        out.totals.aggregated().failures,
        15,
        "{:?}",
        out.totals.failures()
    );
    assert_eq!(out.totals.failed_iterations, 0);
    assert_eq!(common::failures_of(&out, "connect"), 6);
    assert_eq!(common::failures_of(&out, "status"), 6);
    assert_eq!(common::failures_of(&out, "body"), 3);
    assert_eq!(common::failures_of(&out, "script"), 0);
    // Uncaught, a failed request still ends the iteration, counted once.
    let out = run(
        r#"fn t() { http::get("/status/404", #{ expect: 200 }); http::get("/json"); }"#,
        &server.url,
        |a| a.flags.iterations = Some(2),
    );
    assert_eq!(out.totals.get("GET", "/json").map(|r| r.requests), None);
    assert_eq!(out.totals.failed_iterations, 2);
    assert_eq!(out.totals.all_failures(), 2);
}

#[test]
fn raw_bytes_encoding_and_crypto_reach_the_script() {
    let server = common::start();
    let out = run(
        r#"fn t() {
               let r = http::get("/bytes");
               let b = r.bytes;
               check(b.len() == 256 && b[0] == 0 && b[255] == 255, "raw bytes");
               check(r.text.bytes > 256, "text replaces what is not UTF-8");
               check(encoding::hex_encode(b).len() == 512, "hex of a blob");
               check(crypto::sha256(b) == crypto::sha256(encoding::b64decode(encoding::b64encode(b))),
                     "base64 round trip");
               let sig = crypto::hmac("sha256", "key", "GET /x");
               http::get("/json", #{ headers: #{ "x-signature": sig } });
               check(sig.len() == 64, "hmac");
           }"#,
        &server.url,
        |a| a.flags.iterations = Some(2),
    );
    common::assert_checks(
        &out,
        &[
            "raw bytes",
            "text replaces what is not UTF-8",
            "hex of a blob",
            "base64 round trip",
            "hmac",
        ],
        2,
    );
    assert_eq!(
        out.totals.aggregated().failures,
        0,
        "{:?}",
        out.totals.failures()
    );
}

#[test]
fn trace_shows_each_request_and_response_with_secrets_redacted() {
    let server = common::start();
    let file = common::script(
        r#"fn t() {
               http::post("/echo", #{ json: #{ hello: "world" },
                                      headers: #{ authorization: "Bearer TOPSECRET" } });
               http::get("/cookie/set?v=SESSIONVALUE");
               http::get("http://127.0.0.1:1/refused", #{ on_error: "return" });
           }"#,
    );
    let trace = |extra: &[&str]| {
        let output = common::bin::stampede()
            .args(["run", file.path().to_str().unwrap(), "--host", &server.url])
            .args(["-u", "1", "-i", "1", "-q", "--trace"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let err = trace(&[]);
    for says in [
        &format!("TRACE vu=1 → POST {}/echo", server.url) as &str,
        "authorization: [redacted]",
        r#"{"hello":"world"}"#,
        "← 200 OK in ",
        r#""content_type":"application/json""#,
        "set-cookie: [redacted]",
        "← no response (connect: ",
    ] {
        assert!(err.contains(says), "missing {says:?} in:\n{err}");
    }
    assert!(
        !err.contains("TOPSECRET") && !err.contains("who=SESSIONVALUE"),
        "{err}"
    );
    let err = trace(&["--trace-secrets"]);
    assert!(
        err.contains("Bearer TOPSECRET") && err.contains("who=SESSIONVALUE"),
        "{err}"
    );
}

#[test]
fn weights_are_honoured() {
    let server = common::start();
    let out = run(
        r#"const options = #{ tasks: #{ heavy: 3, light: 1, off: 0 } };
           fn heavy() { http::get("/json"); }
           fn light() { http::get("/status/200"); }
           fn off() { http::get("/garbage"); }"#,
        &server.url,
        |a| {
            a.flags.users = Some(4);
            a.flags.iterations = Some(4000);
            a.flags.seed = Some(11);
        },
    );
    let heavy = server.counters.hits("GET /json");
    let light = server.counters.hits("GET /status/{code}");
    assert_eq!(heavy + light, 4000);
    assert_eq!(out.totals.get("GET", "/json").unwrap().requests, heavy);
    assert_eq!(server.counters.hits("GET /garbage"), 0, "weight 0 disables");
    // Binomial(4000, 0.75): mean 3000, sd ≈ 27; ±5 sd.
    assert!((2863..=3137).contains(&heavy), "heavy = {heavy}");
}

#[test]
fn unique_id_never_repeats_across_users() {
    let server = common::start();
    let out = run(
        r#"fn ids() {
               let batch = [];
               for i in 0..100 { batch.push(unique_id()); }
               http::post("/ids", #{ body: batch.reduce(|s, x| if s == () { x } else { s + "," + x }) });
           }"#,
        &server.url,
        |a| {
            a.flags.users = Some(25);
            a.flags.iterations = Some(100);
        },
    );
    assert_eq!(out.totals.aggregated().failures, 0);
    let ids = server.counters.ids.lock().unwrap();
    assert_eq!(ids.len(), 10_000);
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 10_000, "every id is unique");
    assert!(
        ids.iter()
            .all(|id| id.bytes().all(|b| b.is_ascii_alphanumeric()))
    );
}

#[test]
fn check_fail_expect_and_errors_land_in_their_counters() {
    let server = common::start();
    let out = run(
        r#"fn work() {
               let n = iteration();
               if n % 5 == 0 { http::get("/status/500", #{ expect: 200 }); http::get("/json"); }
               else if n % 5 == 1 { fail("business rule broken"); }
               else if n % 5 == 2 { let x = (); x.missing_field.more; }
               else if n % 5 == 3 { let r = http::get("/garbage"); r.json(); }
               else { let r = http::get("/status/404"); check(r.status == 404 && !r.ok, "404 comes back unexpected"); }
           }"#,
        &server.url,
        |a| {
            a.flags.users = Some(1);
            a.flags.iterations = Some(50);
        },
    );
    let t = &out.totals;
    // 10 each: expect failure (iteration ended: /json never sent after it).
    assert_eq!(failures_of(&out, "status"), 20, "10 expect + 10 plain 404");
    assert_eq!(
        server.counters.hits("GET /json"),
        0,
        "a failed expect ends the iteration"
    );
    assert_eq!(failures_of(&out, "failed"), 10);
    assert_eq!(failures_of(&out, "script"), 10);
    assert_eq!(failures_of(&out, "body"), 10);
    let garbage = t.get("GET", "/garbage").unwrap();
    assert_eq!((garbage.requests, garbage.failures), (10, 10));
    let c = t.checks()["404 comes back unexpected"];
    assert_eq!((c.pass, c.fail), (10, 0));
    let failures = t.failures();
    let script = failures
        .iter()
        .find(|(k, _)| k.kind.to_string() == "script")
        .unwrap();
    assert_eq!(script.0.name, "work()");
    assert!(
        script.0.message.contains(".rhai:5:"),
        "{}",
        script.0.message
    );
    let failed = failures
        .iter()
        .find(|(k, _)| k.kind.to_string() == "failed")
        .unwrap();
    assert_eq!(failed.0.message, "business rule broken");
}

#[test]
fn connection_refused_and_reset_are_counted_by_kind() {
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = run(r#"fn t() { http::get("/x"); }"#, &refused, |a| {
        a.flags.iterations = Some(5);
    });
    assert_eq!(failures_of(&out, "connect"), 5);

    let resetting = common::start_resetting();
    let out = run(r#"fn t() { http::get("/x"); }"#, &resetting, |a| {
        a.flags.iterations = Some(5);
    });
    let reset_like = failures_of(&out, "reset") + failures_of(&out, "request");
    assert_eq!(reset_like, 5, "{:?}", out.totals.failures());
    assert_eq!(out.totals.aggregated().requests, 5);
}

#[test]
fn timeouts_are_counted_as_timeouts() {
    let server = common::start();
    let out = run(
        r#"fn t() { http::get("/slow?ms=2000", #{ timeout: 0.1 }); }"#,
        &server.url,
        |a| a.flags.iterations = Some(3),
    );
    assert_eq!(failures_of(&out, "timeout"), 3);
}

#[test]
fn run_time_stops_the_run() {
    let server = common::start();
    let started = Instant::now();
    let out = run(
        r#"fn t() { http::get("/json"); sleep(0.05); }"#,
        &server.url,
        |a| {
            a.flags.users = Some(5);
            a.flags.run_time = Some(Duration::from_secs(1));
        },
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    assert!(out.totals.aggregated().requests > 0);
    assert_eq!(server.counters.total(), out.totals.aggregated().requests);
}

#[test]
fn on_stop_runs_when_the_run_stops_mid_sleep() {
    let server = common::start();
    let out = run(
        r#"fn t() { sleep(60); }
           fn on_stop() { http::get("/status/201"); }"#,
        &server.url,
        |a| {
            a.flags.users = Some(3);
            a.flags.spawn_rate = Some(1000.0);
            a.flags.run_time = Some(Duration::from_millis(300));
        },
    );
    assert_eq!(server.counters.hits("GET /status/{code}"), 3);
    assert_eq!(out.totals.aggregated().requests, 3);
}

#[test]
fn deep_recursion_fails_the_task_not_the_process() {
    let server = common::start();
    let out = run(
        r#"fn _down(n) { _down(n + 1) }
           fn deep() { _down(0); }
           fn fine() { http::get("/json"); }"#,
        &server.url,
        |a| {
            a.flags.iterations = Some(20);
            a.flags.seed = Some(3);
        },
    );
    let script = failures_of(&out, "script");
    let fine = server.counters.hits("GET /json");
    assert_eq!(script + fine, 20, "{:?}", out.totals.failures());
    assert!(script > 0 && fine > 0);
    let (key, _) = out.totals.failures()[0];
    assert!(
        key.message.contains("recursion")
            || key.message.contains("call levels")
            || key.message.contains("Stack overflow"),
        "{}",
        key.message
    );
}

#[test]
fn a_cpu_bound_task_does_not_stall_its_neighbours() {
    let server = common::start();
    // One worker thread, so the hog and the requester share it. The hog spins for about a
    // second in a single task call; without time slicing the requester's requests would
    // wait that long.
    let out = run(
        r#"const options = #{ tasks: #{ hog: 0, ping: 1 } };
           fn on_start() { if vu_id() == 1 { let t = timestamp(); while t.elapsed < 1.0 {} } }
           fn hog() {}
           fn ping() { http::get("/json"); sleep(0.01); }"#,
        &server.url,
        |a| {
            a.flags.users = Some(2);
            a.flags.workers = Some(1);
            a.flags.run_time = Some(Duration::from_millis(1500));
        },
    );
    let ping = out.totals.get("GET", "/json").unwrap();
    assert!(
        ping.requests > 20,
        "requests went on during the hog: {}",
        ping.requests
    );
    let max_ms = ping.latency.max() as f64 / 1000.0;
    assert!(
        max_ms < 300.0,
        "a request waited {max_ms} ms behind the hog"
    );
}

#[test]
fn setup_data_reaches_every_user_and_teardown_runs() {
    let server = common::start();
    let out = run(
        r#"fn setup() { http::get("/json"); #{ token: "abc", n: 3 } }
           fn t() { check(setup_data().token == "abc", "setup data visible"); }
           fn teardown() { http::get("/status/202"); }"#,
        &server.url,
        |a| {
            a.flags.users = Some(3);
            a.flags.iterations = Some(30);
        },
    );
    let c = out.totals.checks()["setup data visible"];
    assert_eq!((c.pass, c.fail), (30, 0));
    assert_eq!(server.counters.hits("GET /json"), 1, "setup ran once");
    assert_eq!(
        server.counters.hits("GET /status/{code}"),
        1,
        "teardown ran once"
    );
    assert_eq!(out.totals.aggregated().requests, 2);
}

#[test]
fn requests_send_json_form_and_query() {
    let server = common::start();
    let out = run(
        r#"fn t() {
               let r = http::post("/echo", #{ json: #{ a: 1 } });
               check(r.json().content_type == "application/json" && r.json().body == "{\"a\":1}", "json body");
               let r = http::post("/echo", #{ form: #{ username: "u@x.test", password: "p w" } });
               let b = r.json().body;
               check(b.contains("username=u%40x.test") && b.contains("password=p+w"), "form body");
               let r = http::get("/items/7", #{ query: #{ q: "1" }, name: "/items/[n]" });
               check(r.text == "7", "path");
               check(r.url.ends_with("?q=1"), "query");
           }"#,
        &server.url,
        |a| a.flags.iterations = Some(1),
    );
    for name in ["json body", "form body", "path", "query"] {
        let c = out.totals.checks()[name];
        assert_eq!((c.pass, c.fail), (1, 0), "{name}");
    }
    assert!(out.totals.get("GET", "/items/[n]").is_some());
}

#[test]
fn redirects_gzip_and_cookies_set_on_a_redirect_work() {
    let server = common::start();
    let out = run(
        r#"fn t() {
               let r = http::post("/login", #{ form: #{ u: "x" } });
               check(r.status == 200 && r.text == "logged-in", "303 became a GET and kept the cookie");
               let r = http::get("/redirect");
               check(r.url.ends_with("/cookie/get"), "followed to the final URL");
               let r = http::get("/gzip");
               check(r.json().zipped == true, "gzip body decoded");
           }"#,
        &server.url,
        |a| a.flags.iterations = Some(2),
    );
    common::assert_checks(
        &out,
        &[
            "303 became a GET and kept the cookie",
            "followed to the final URL",
            "gzip body decoded",
        ],
        2,
    );
    assert_eq!(server.counters.hits("POST /login"), 2);
    assert_eq!(
        server.counters.hits("GET /cookie/get"),
        4,
        "each redirect fetched once"
    );
}

#[test]
fn the_hard_stop_abandons_requests_that_would_not_finish() {
    let server = common::start();
    let started = Instant::now();
    let out = run(
        r#"fn t() { http::get("/slow?ms=30000", #{ timeout: 60 }); }
           fn on_stop() { sleep(30); }"#,
        &server.url,
        |a| {
            a.flags.users = Some(3);
            a.flags.spawn_rate = Some(100.0);
            a.flags.run_time = Some(Duration::from_millis(300));
            a.flags.stop_timeout = Some(Duration::from_millis(300));
        },
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "ended at the hard stop: {took:?}"
    );
    assert_eq!(
        server.counters.hits("GET /slow"),
        3,
        "the server did get them"
    );
    let all = out.totals.aggregated();
    assert_eq!(
        (all.requests, all.failures),
        (3, 3),
        "requests abandoned at the hard stop are counted, as failed"
    );
    assert_eq!(common::failures_of(&out, "unfinished"), 3);
    assert_eq!(out.totals.unfinished.requests, 3);
    assert_eq!(out.totals.interrupted_iterations, 3);
    assert!(
        out.totals.unfinished.longest_wait_s >= 0.3,
        "{:?}",
        out.totals.unfinished
    );
}

#[test]
fn a_seed_makes_random_values_reproducible() {
    let script = r#"fn t() {
        http::post("/ids", #{ body: `${random_int(0, 1000000)},${random_string(8)},${uuid()}` });
    }"#;
    let draw = |seed: u64| {
        let server = common::start();
        run(script, &server.url, |a| {
            a.flags.iterations = Some(5);
            a.flags.seed = Some(seed);
        });
        let ids = server.counters.ids.lock().unwrap().clone();
        assert_eq!(ids.len(), 15);
        ids
    };
    assert_eq!(draw(42), draw(42), "same seed, same values");
    assert_ne!(draw(42), draw(43), "another seed, other values");
}

#[test]
fn log_lines_go_to_the_log_file_at_or_above_the_level() {
    let server = common::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("script.log");
    run(
        r#"fn t() { log::debug("hidden"); log::info(`hello from ${vu_id()}`); log::warn("careful"); }"#,
        &server.url,
        |a| {
            a.flags.iterations = Some(1);
            a.flags.log_file = Some(log.clone());
            a.flags.log_level = stampede::script::Level::Info;
        },
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("INFO  vu=1 hello from 1"), "{text}");
    assert!(text.contains("WARN  vu=1 careful"), "{text}");
    assert!(!text.contains("hidden"), "debug is below the level: {text}");
}
