//! Fault suite, the script: values that would exhaust memory, scenarios that fail every
//! iteration, imports. Checked against the server's own count.

mod common;

use std::process::Command;

use common::bin::stampede;

fn run_cmd(file: &std::path::Path, host: &str) -> Command {
    let mut cmd = stampede();
    cmd.args(["run", file.to_str().unwrap(), "--host", host, "-q"]);
    cmd
}

#[test]
fn a_string_that_doubles_forever_fails_its_task_not_the_process() {
    let server = common::start();
    let out = common::run(
        r#"fn grow() { let s = "x"; loop { s += s; } }
           fn work() { http::get("/json"); }"#,
        &server.url,
        |a| {
            a.flags.users = Some(2);
            a.flags.iterations = Some(40);
        },
    );
    let failures = out.totals.failures();
    let grow: u64 = failures
        .iter()
        .filter(|(k, _)| k.kind.to_string() == "script" && k.name == "grow()")
        .map(|(_, n)| n)
        .sum();
    assert!(grow > 0, "{failures:?}");
    assert!(
        failures
            .iter()
            .any(|(k, _)| k.message.contains("over the script's limit")
                && k.message.contains("max_string")),
        "{failures:?}"
    );
    assert_eq!(out.totals.iterations, 40, "the run went on");
    assert_eq!(
        out.totals.aggregated().requests,
        server.counters.hits("GET /json")
    );
    assert_eq!(out.totals.aggregated().requests + grow, 40);
}

#[test]
fn array_and_map_limits_hold_and_can_be_raised() {
    let server = common::start();
    let script = |limit: &str| {
        format!(
            r#"const options = #{{ {limit} }};
               fn t() {{
                   let a = []; for i in 0..2000 {{ a.push(i); }}
                   let m = #{{}}; for i in 0..2000 {{ m.set(`k${{i}}`, i); }}
                   http::get("/json");
               }}"#
        )
    };
    for (limit, ok) in [
        ("max_array: 1000", false),
        ("max_map: 1000", false),
        ("max_array: 5000, max_map: 5000", true),
    ] {
        let out = common::run(&script(limit), &server.url, |a| {
            a.flags.iterations = Some(2)
        });
        let script_errors = common::failures_of(&out, "script");
        assert_eq!(
            script_errors == 0,
            ok,
            "{limit}: {:?}",
            out.totals.failures()
        );
    }
}

#[test]
fn a_scenario_that_fails_every_iteration_fails_ci() {
    let server = common::start();
    let file = common::script(r#"fn t() { fail("the item was not found"); }"#);
    let broken = common::script(r#"fn t() { let x = #{}; x.missing.deeper; }"#);
    for (f, args) in [
        (&file, vec!["--fail-on-error"]),
        (&file, vec!["--threshold", "failures < 1"]),
        (&file, vec!["--threshold", "iteration_failure_rate < 1%"]),
        (&broken, vec!["--fail-on-error"]),
        (&broken, vec!["--threshold", "failed_iterations < 1"]),
    ] {
        let output = run_cmd(f.path(), &server.url)
            .args(["-i", "20"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
    }
    // And a clean scenario still passes the same gates.
    let fine = common::script(r#"fn t() { http::get("/json"); }"#);
    let output = run_cmd(fine.path(), &server.url)
        .args(["-i", "20", "--fail-on-error", "--threshold", "failures < 1"])
        .args(["--threshold", "iteration_failure_rate < 1%"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(server.counters.total(), 20);
}

#[test]
fn imports_resolve_from_the_scripts_folder_whatever_the_working_directory() {
    let server = common::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("paths.rhai"),
        r#"fn item(id) { `/items/${id}` }"#,
    )
    .unwrap();
    let main = dir.path().join("main.rhai");
    std::fs::write(
        &main,
        r#"import "paths" as paths;
           fn t() { http::get(paths::item(7), #{ expect: 200 }); }"#,
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let output = run_cmd(&main, &server.url)
        .args(["-i", "3", "--fail-on-error"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert_eq!(server.counters.hits("GET /items/{id}"), 3);
    let check = stampede()
        .args(["check", main.to_str().unwrap()])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0));
}

#[test]
fn an_endless_loop_in_top_level_code_is_reported_not_hung() {
    let file = common::script("let x = 0;\nloop { x += 1; }\nfn t() {}\n");
    let output = stampede()
        .args(["check", file.path().to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("error in top-level code"), "{err}");
    assert!(err.contains("endless loop"), "{err}");
    assert!(err.contains(":2:"), "with its location: {err}");
}
