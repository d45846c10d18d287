//! The story stampede exists for, end to end against the demo API.

mod common;

use std::time::Duration;

use stampede::cli::{Plan, RunFlags};
use stampede::demo::{self, CITIES_SCRIPT, CITIES_SCRIPT_NAME};
use stampede::runner::Outcome;

fn run_cities(race: bool, users: u64, seconds: u64) -> (Outcome, demo::DemoServer) {
    let server = demo::spawn(0, race).unwrap();
    let flags = RunFlags {
        host: Some(server.url()),
        users: Some(users),
        spawn_rate: Some(100.0),
        run_time: Some(Duration::from_secs(seconds)),
        quiet: true,
        ..RunFlags::default()
    };
    let plan = Plan::from_source(
        &flags,
        CITIES_SCRIPT_NAME.into(),
        CITIES_SCRIPT.into(),
        None,
    )
    .unwrap();
    (
        stampede::runner::run(plan, &Default::default(), &mut stampede::runner::Quiet).unwrap(),
        server,
    )
}

fn failures_on(outcome: &Outcome, method: &str, name: &str) -> u64 {
    outcome.totals.get(method, name).map_or(0, |s| s.failures)
}

#[test]
fn without_the_race_twenty_users_never_fail_and_counts_match_the_server() {
    let (out, server) = run_cities(false, 20, 3);
    let all = out.totals.aggregated();
    assert_eq!(all.failures, 0, "{:?}", out.totals.failures());
    assert!(out.totals.failures().is_empty());
    let stats = server.stats.snapshot();
    let pairs = [
        ("POST", "/auth/register", "POST /auth/register"),
        ("POST", "/auth/token", "POST /auth/token"),
        ("POST", "/cities", "POST /cities"),
        ("GET", "/cities/[id]", "GET /cities/{id}"),
    ];
    for (method, name, route) in pairs {
        let tool = out.totals.get(method, name).map_or(0, |s| s.requests);
        assert_eq!(tool, stats.get(route).copied().unwrap_or(0), "{route}");
    }
    assert_eq!(
        out.totals.get("POST", "/auth/register").unwrap().requests,
        20
    );
    let reads = out.totals.get("GET", "/cities/[id]").unwrap().requests;
    assert!(reads > 20, "users kept working: {reads}");
    let c = out.totals.checks()["read-back returns the name written"];
    assert_eq!(c.fail, 0);
}

#[test]
fn with_the_race_twenty_users_fail_only_on_the_read_back() {
    let (out, _server) = run_cities(true, 20, 4);
    let reads = out.totals.get("GET", "/cities/[id]").unwrap();
    assert!(reads.failures > 0, "the race shows up");
    assert!(
        reads.failures * 20 >= reads.requests,
        "a sizeable share fails: {} of {}",
        reads.failures,
        reads.requests
    );
    for (method, name) in [
        ("POST", "/auth/register"),
        ("POST", "/auth/token"),
        ("POST", "/cities"),
    ] {
        assert_eq!(failures_on(&out, method, name), 0, "{method} {name}");
    }
    for (key, _) in out.totals.failures() {
        assert_eq!(
            (key.method.as_str(), key.name.as_str()),
            ("GET", "/cities/[id]"),
            "{key:?}"
        );
        assert!(key.message.starts_with("HTTP 404"), "{}", key.message);
    }
}

#[test]
fn with_the_race_one_user_alone_never_fails() {
    let (out, _server) = run_cities(true, 1, 2);
    assert!(out.totals.get("GET", "/cities/[id]").unwrap().requests > 2);
    assert_eq!(
        out.totals.aggregated().failures,
        0,
        "{:?}",
        out.totals.failures()
    );
}

#[test]
fn every_example_script_runs_cleanly_against_the_demo_server() {
    let server = demo::spawn(0, false).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut ran = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rhai") {
            continue;
        }
        let args = stampede::cli::RunArgs {
            script: path.clone(),
            flags: RunFlags {
                host: Some(server.url()),
                users: Some(3),
                spawn_rate: Some(100.0),
                run_time: Some(Duration::from_secs(1)),
                quiet: true,
                ..RunFlags::default()
            },
        };
        let plan = Plan::build(&args).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let out =
            stampede::runner::run(plan, &Default::default(), &mut stampede::runner::Quiet).unwrap();
        assert!(out.totals.aggregated().requests > 0, "{}", path.display());
        // A script that shows failures being handled names their kinds in a comment line
        // `// expected failures: status`; it must show them, and no others, and no
        // iteration may end failed. Every other script runs without a failure.
        let source = std::fs::read_to_string(&path).unwrap();
        let expected: Vec<&str> = source
            .lines()
            .find_map(|l| l.strip_prefix("// expected failures:"))
            .map(|kinds| kinds.split(',').map(str::trim).collect())
            .unwrap_or_default();
        let failures = out.totals.failures();
        for (key, _) in &failures {
            assert!(
                expected.contains(&key.kind.to_string().as_str()),
                "{}: unexpected failure {key:?}",
                path.display()
            );
        }
        for kind in &expected {
            assert!(
                failures
                    .iter()
                    .any(|(key, _)| key.kind.to_string() == *kind),
                "{}: expected a `{kind}` failure, got {failures:?}",
                path.display()
            );
        }
        assert_eq!(out.totals.failed_iterations, 0, "{}", path.display());
        ran += 1;
    }
    assert!(ran >= 2, "found the example scripts");
}

#[test]
fn demo_api_keeps_its_contract() {
    let server = demo::spawn(0, false).unwrap();
    let script = r#"
fn contract() {
    http::remove_header("Authorization");   // the previous iteration left one set
    let email = unique_email("contract.test");
    let r = http::post("/auth/register", #{ json: #{ email: email, password: "pw-123" } });
    check(r.status == 201 && r.json().data.email == email, "register: 201 with the account");
    check(http::post("/auth/register", #{ json: #{ email: email, password: "x" } }).status == 409, "register twice: 409");
    check(http::post("/auth/register", #{ body: "not json", headers: #{ "content-type": "application/json" } }).status == 422, "malformed register: 422");
    check(http::post("/auth/token", #{ form: #{ username: email, password: "wrong" } }).status == 401, "bad password: 401");
    check(http::get("/cities").status == 401, "no token: 401");
    let r = http::post("/auth/token", #{ form: #{ username: email, password: "pw-123" } });
    check(r.status == 200 && r.json().token_type == "bearer", "token: 200 bearer");
    http::set_header("Authorization", `Bearer ${r.json().access_token}`);
    let c = http::post("/cities", #{ json: #{ name: "Lima" } });
    check(c.status == 201, "create: 201");
    let id = c.json().data.id;
    check(http::get(`/cities/${id}`).json().data.name == "Lima", "read back: own city");
    check(http::get("/cities").json().data.len() == 1, "list: only my city");
    http::set_header("Authorization", "Bearer not-a-token");
    check(http::get(`/cities/${id}`).status == 401, "bad token: 401");
    let other = unique_email("contract.test");
    http::post("/auth/register", #{ json: #{ email: other, password: "pw" }, expect: 201 });
    let t = http::post("/auth/token", #{ form: #{ username: other, password: "pw" }, expect: 200 });
    http::set_header("Authorization", `Bearer ${t.json().access_token}`);
    check(http::get(`/cities/${id}`).status == 404, "another user's city: 404");
    check(http::get("/health").json().status == "ok", "health");
}"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contract.rhai");
    std::fs::write(&path, script).unwrap();
    let args = stampede::cli::RunArgs {
        script: path,
        flags: RunFlags {
            host: Some(server.url()),
            iterations: Some(2),
            quiet: true,
            ..RunFlags::default()
        },
    };
    let out = stampede::runner::run(
        Plan::build(&args).unwrap(),
        &Default::default(),
        &mut stampede::runner::Quiet,
    )
    .unwrap();
    let checks = out.totals.checks();
    assert_eq!(checks.len(), 12, "{checks:?}");
    for (name, c) in checks {
        assert_eq!((c.pass, c.fail), (2, 0), "{name}");
    }
}
