//! Load models: users that follow stages (k6's `ramping-vus`), checked against the server's
//! own counts of users started and stopped.

mod common;

use std::time::{Duration, Instant};

use common::{failures_of, run};
use stampede::plan::{RateSpec, Stages, parse_stages};

/// Runs `file` with `args` and expects exit 2 with `says` in the message.
fn usage_error(file: &tempfile::NamedTempFile, host: &str, args: &[&str], says: &str) {
    let output = common::bin::stampede()
        .args(["run", file.path().to_str().unwrap(), "--host", host])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(says), "{args:?}: {err}");
}

#[test]
fn users_ramp_up_hold_and_ramp_down_gracefully() {
    let server = common::start();
    let out = run(
        r#"fn on_start() { http::get("/items/start"); }
           fn t() { http::get("/json"); sleep(0.05); }
           fn on_stop() { http::get("/status/200"); }"#,
        &server.url,
        |a| {
            a.flags.stages = Some(Stages(parse_stages("1s:4,1s:4,1s:0").unwrap()));
            a.flags.workers = Some(2);
        },
    );
    assert_eq!(
        server.counters.hits("GET /items/{id}"),
        4,
        "four users were started, each once"
    );
    assert_eq!(
        server.counters.hits("GET /status/{code}"),
        4,
        "every user retired by the ramp ran on_stop"
    );
    assert_eq!(
        out.totals.aggregated().failures,
        0,
        "{:?}",
        out.totals.failures()
    );
    assert_eq!(out.totals.unfinished.requests, 0, "nobody was cut off");
    let users: Vec<u64> = out.totals.series().map(|s| s.users).collect();
    assert_eq!(users.iter().max(), Some(&4), "{users:?}");
    assert!(
        out.elapsed < Duration::from_secs(5),
        "the run lasts as long as its stages: {:?}",
        out.elapsed
    );
    assert_eq!(
        out.totals.get("GET", "/json").unwrap().requests,
        server.counters.hits("GET /json")
    );
}

#[test]
fn a_retired_user_past_its_graceful_ramp_down_is_aborted_and_counted() {
    let server = common::start();
    let started = Instant::now();
    let out = run(
        r#"fn t() { http::get("/slow?ms=20000", #{ timeout: 30 }); }"#,
        &server.url,
        |a| {
            // The run goes on after the ramp-down: the retired users are aborted at their
            // graceful ramp-down, not at the end of the run (+ 10 s of stop timeout).
            a.flags.stages = Some(Stages(parse_stages("0.2s:2,0.1s:2,0.2s:0,2s:0").unwrap()));
            a.flags.graceful_ramp_down = Some(Duration::from_millis(300));
        },
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "aborted after the graceful ramp-down, not at the request's end"
    );
    assert_eq!(server.counters.hits("GET /slow"), 2);
    assert_eq!(out.totals.unfinished.requests, 2);
    assert_eq!(failures_of(&out, "unfinished"), 2);
    assert_eq!(
        out.totals.interrupted_iterations, 2,
        "their iterations were cut short"
    );
    assert_eq!(out.totals.failed_iterations, 0, "interrupted, not failed");
}

#[test]
fn stages_are_checked_before_any_traffic() {
    let server = common::start();
    let file = common::script(r#"fn t() { http::get("/json"); }"#);
    for args in [
        vec!["--stages", "10s"],
        vec!["--stages", "10s:0"],
        vec!["--stages", "soon:5"],
        vec!["--stages", "1s:5", "--users", "3"],
    ] {
        usage_error(&file, &server.url, &args, "stage");
    }
    let options = common::script(
        r#"const options = #{ stages: [#{ duration: "1s", taget: 5 }] };
           fn t() { http::get("/json"); }"#,
    );
    let output = common::bin::stampede()
        .args(["check", options.path().to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(err.contains("stage 0: unknown key `taget`"), "{err}");
    assert_eq!(server.counters.total(), 0);
}

#[test]
fn an_arrival_rate_starts_iterations_on_schedule_counted_at_the_server() {
    let server = common::start();
    let out = run(r#"fn t() { http::get("/json"); }"#, &server.url, |a| {
        a.flags.rate = Some(RateSpec::Constant(50.0));
        a.flags.run_time = Some(Duration::from_secs(2));
        a.flags.workers = Some(2);
    });
    let served = server.counters.hits("GET /json");
    let dropped = out.totals.dropped_iterations;
    // 25/s on each of two workers for 2 s: due at 0, 40 ms, … 1,960 ms, so 100 in all;
    // the last ones may fall just past the stop. Every one due is started or, when a
    // stall of this machine (tests run side by side) leaves it no free user, dropped and
    // counted: none is lost.
    assert!(
        (90..=101).contains(&(served + dropped)),
        "{served} started and {dropped} dropped for 100 due"
    );
    assert_eq!(out.totals.aggregated().requests, served);
    assert!(dropped <= 5, "the target kept up: {dropped} dropped");
    let lateness = out.totals.lateness.as_ref().expect("lateness recorded");
    assert_eq!(
        lateness.len(),
        out.totals.iterations,
        "one per iteration started"
    );
}

#[test]
fn iterations_that_find_no_idle_user_are_dropped_and_counted() {
    let server = common::start();
    // Two users that each take 200 ms per iteration can start 10 a second, not 50.
    let out = run(
        r#"fn t() { http::get("/slow?ms=200"); }"#,
        &server.url,
        |a| {
            a.flags.rate = Some(RateSpec::Constant(50.0));
            a.flags.pre_allocated_users = Some(2);
            a.flags.max_users = Some(2);
            a.flags.run_time = Some(Duration::from_secs(2));
            a.flags.workers = Some(2);
        },
    );
    let served = server.counters.hits("GET /slow");
    let dropped = out.totals.dropped_iterations;
    assert_eq!(out.totals.aggregated().requests, served);
    assert!((10..=25).contains(&served), "{served} served");
    assert!(
        (90..=101).contains(&(served + dropped)),
        "every due iteration was served or dropped: {served} + {dropped}"
    );
}

#[test]
fn bad_arrival_rates_are_usage_errors() {
    let server = common::start();
    let file = common::script(r#"fn t() { http::get("/json"); }"#);
    for (args, says) in [
        (vec!["--rate", "0/s"], "rate"),
        (vec!["--rate", "fast"], "rate"),
        (vec!["--rate", "10", "--users", "3"], "replaces --users"),
        (
            vec![
                "--rate",
                "10",
                "--pre-allocated-users",
                "5",
                "--max-users",
                "2",
            ],
            "max-users",
        ),
        (vec!["--max-users", "2"], "are for --rate"),
        (vec!["--when-busy", "queue"], "are for --rate"),
    ] {
        usage_error(&file, &server.url, &args, says);
    }
    assert_eq!(server.counters.total(), 0);
}

#[test]
fn a_shape_function_drives_the_users_and_ends_the_run() {
    let server = common::start();
    let started = Instant::now();
    let out = run(
        r#"const options = #{ wait_time: constant(0.05) };
           fn shape(t) {
               if t < 1.0 { 2 }
               else if t < 2.0 { #{ users: 4, spawn_rate: 100 } }
               else if t < 3.0 { 1 }
               else { () }
           }
           fn on_start() { http::get("/items/start"); }
           fn t() { http::get("/json"); sleep(0.05); }
           fn on_stop() { http::get("/status/200"); }"#,
        &server.url,
        |a| a.flags.workers = Some(2),
    );
    assert_eq!(server.counters.hits("GET /items/{id}"), 4, "2, then 2 more");
    assert_eq!(
        server.counters.hits("GET /status/{code}"),
        4,
        "three retired when the shape went down to 1, the last when it ended the run"
    );
    let users: Vec<u64> = out.totals.series().map(|s| s.users).collect();
    assert_eq!(users.iter().max(), Some(&4), "{users:?}");
    assert!(!out.interrupted);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the shape ended the run"
    );
    assert_eq!(
        out.totals.aggregated().failures,
        0,
        "{:?}",
        out.totals.failures()
    );
}

#[test]
fn a_broken_shape_is_found_before_any_traffic() {
    let server = common::start();
    for (source, args, says) in [
        (
            r#"fn shape(t) { if t > 5.0 { t.nope } else { 1 } } fn t() { http::get("/json"); }"#,
            vec![],
            "shape(6)",
        ),
        (
            r#"fn shape(t) { 0 } fn t() { http::get("/json"); }"#,
            vec![],
            "never asks",
        ),
        (
            r#"fn shape(t) { 3 } fn t() { http::get("/json"); }"#,
            vec!["--users", "2"],
            "leave out --users",
        ),
        (
            r#"fn shape() { 3 } fn t() { http::get("/json"); }"#,
            vec![],
            "one parameter",
        ),
    ] {
        usage_error(&common::script(source), &server.url, &args, says);
    }
    assert_eq!(server.counters.total(), 0);
}

#[test]
fn a_ramping_arrival_rate_follows_its_stages() {
    let server = common::start();
    let out = run(r#"fn t() { http::get("/json"); }"#, &server.url, |a| {
        // 0 -> 100/s over 1 s (50 iterations), then 100/s for 1 s (100): 150 in all.
        a.flags.rate = Some(RateSpec::parse("1s:100/s,1s:100/s").unwrap());
        a.flags.pre_allocated_users = Some(20);
        a.flags.workers = Some(2);
    });
    let served = server.counters.hits("GET /json");
    assert!(
        (135..=152).contains(&served),
        "{served} iterations for 150 due"
    );
    assert_eq!(out.totals.dropped_iterations, 0);
    // The first second (the ramp, 50 due) has fewer than the rest (100 due); a constant
    // 75/s would give as many. (Seconds are bucketed by tick, which a loaded machine delays.)
    let per_second: Vec<u64> = out.totals.series().map(|s| s.requests).collect();
    assert!(
        per_second.len() >= 2 && per_second[0] < per_second[1..].iter().sum(),
        "the rate ramps up: {per_second:?}"
    );
}

#[test]
fn an_iteration_budget_ends_open_and_ramping_runs() {
    let server = common::start();
    let started = Instant::now();
    let out = run(r#"fn t() { http::get("/json"); }"#, &server.url, |a| {
        a.flags.rate = Some(RateSpec::Constant(100.0));
        a.flags.iterations = Some(20);
        a.flags.run_time = Some(Duration::from_secs(30)); // a bound, not the end
    });
    assert_eq!(out.totals.iterations, 20);
    assert_eq!(server.counters.hits("GET /json"), 20);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended with the budget"
    );

    let started = Instant::now();
    let out = run(
        r#"fn on_start() { http::get("/items/start"); } fn t() { http::get("/json"); sleep(0.05); }"#,
        &server.url,
        |a| {
            a.flags.stages = Some(Stages(parse_stages("20s:40").unwrap()));
            a.flags.iterations = Some(10);
        },
    );
    assert_eq!(out.totals.iterations, 10);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended with the budget"
    );
    assert!(
        server.counters.hits("GET /items/{id}") <= 10,
        "no user started after the budget was spent"
    );
}
