//! Data files shared by every user: rows handed out as the script asks, counted at the
//! server, and the sandbox that keeps scripts in their folder.

mod common;

use std::io::Write;

/// A folder with the script and its data files.
fn folder(script: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::File::create(dir.path().join(name))
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let path = dir.path().join("s.rhai");
    std::fs::write(&path, script).unwrap();
    (dir, path)
}

fn run(
    path: &std::path::Path,
    host: &str,
    users: u64,
    iterations: u64,
) -> stampede::runner::Outcome {
    let args = stampede::cli::RunArgs {
        script: path.to_owned(),
        flags: stampede::cli::RunFlags {
            host: Some(host.to_owned()),
            users: Some(users),
            iterations: Some(iterations),
            quiet: true,
            ..Default::default()
        },
    };
    let plan = stampede::cli::Plan::build(&args).expect("plan");
    stampede::runner::run(plan, &Default::default(), &mut stampede::runner::Quiet).expect("run")
}

/// Runs the binary on `path` for one iteration; returns (exit code, stderr).
fn run_once(
    path: &std::path::Path,
    host: &str,
    extra: &[&std::ffi::OsStr],
) -> (Option<i32>, String) {
    let output = common::bin::stampede()
        .args([
            "run",
            path.to_str().unwrap(),
            "--host",
            host,
            "-i",
            "1",
            "-q",
        ])
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const USERS_CSV: &str = "name,password\nada,a1\nbob,b2\ncy,c3\n";

#[test]
fn rows_are_handed_out_round_robin_unique_or_per_user() {
    let server = common::start();
    let (_dir, path) = folder(
        r#"const USERS = data::csv("users.csv");
           const ITEMS = data::json("items.json");
           fn _visit(u) { http::post("/ids", #{ body: u.name }); }
           fn t() {
               _visit(USERS.next());
               let item = ITEMS.random();
               check(item.price > 0, "json rows");
               check(USERS.len() == 3 && USERS.row(2).password == "c3", "len and row");
               check(USERS.for_user() == USERS.for_user(), "a user's own row");
           }"#,
        &[
            ("users.csv", USERS_CSV),
            ("items.json", r#"[{"price": 1}, {"price": 2.5}]"#),
        ],
    );
    let out = run(&path, &server.url, 2, 6);
    assert_eq!(
        out.totals.aggregated().failures,
        0,
        "{:?}",
        out.totals.failures()
    );
    common::assert_checks(&out, &["json rows", "len and row", "a user's own row"], 6);
    // Six `next()`s over three rows, across two users: each row exactly twice.
    let mut names = server.counters.ids.lock().unwrap().clone();
    names.sort();
    assert_eq!(names, ["ada", "ada", "bob", "bob", "cy", "cy"]);

    // next_unique: three rows, then ().
    let (_dir, path) = folder(
        r#"const USERS = data::csv("users.csv");
           fn t() {
               let u = USERS.next_unique();
               if u == () { check(true, "ran out"); } else { http::get(`/items/${u.name}`); }
           }"#,
        &[("users.csv", USERS_CSV)],
    );
    let server = common::start();
    let out = run(&path, &server.url, 2, 5);
    assert_eq!(server.counters.hits("GET /items/{id}"), 3);
    common::assert_checks(&out, &["ran out"], 2);
}

#[test]
fn a_script_reads_only_files_in_its_folder() {
    let server = common::start();
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), USERS_CSV).unwrap();
    let (_dir, path) = folder(
        &format!(
            "const USERS = data::csv(\"{}\");\nfn t() {{ http::get(\"/json\"); }}",
            outside.path().display()
        ),
        &[],
    );
    let output = common::bin::stampede()
        .args(["check", path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("is outside the script's folder"), "{err}");
    // Named on the command line, the same file may be read.
    let (code, err) = run_once(
        &path,
        &server.url,
        &["--data".as_ref(), outside.path().as_os_str()],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(server.counters.hits("GET /json"), 1);
    let (_dir, path) = folder("const USERS = data::csv(\"missing.csv\");\nfn t() {}", &[]);
    let (code, err) = run_once(&path, &server.url, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("data file `missing.csv`"), "{err}");
    assert_eq!(
        server.counters.total(),
        1,
        "only the run with --data sent a request"
    );
}
