//! Scale-out, played locally: N processes with `--segment i/N` and one `--start-at`,
//! against one process running the whole test, each pair with a server of its own that
//! keeps its own record; then `stampede merge` of the segments' results.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use base64::Engine as _;
use common::bin::stampede;
use hdrhistogram::Histogram;

/// What a server received: hits by scenario, and every body posted to /ids.
#[derive(Default)]
struct Record {
    hits: Mutex<BTreeMap<String, u64>>,
    /// (scenario, vu) pairs seen.
    users: Mutex<BTreeSet<(String, u64)>>,
    bodies: Mutex<Vec<String>>,
}

fn server() -> (String, Arc<Record>) {
    let record = Arc::new(Record::default());
    let app = Router::new()
        .route(
            "/hit/{scenario}/{vu}",
            get(
                |State(r): State<Arc<Record>>, UrlPath((s, vu)): UrlPath<(String, u64)>| async move {
                    *r.hits.lock().unwrap().entry(s.clone()).or_default() += 1;
                    r.users.lock().unwrap().insert((s, vu));
                    "ok"
                },
            ),
        )
        .route(
            "/ids",
            post(|State(r): State<Arc<Record>>, body: String| async move {
                r.bodies.lock().unwrap().push(body);
                "ok"
            }),
        )
        .with_state(record.clone());
    let (url, _thread) = common::serve(app);
    (url, record)
}

const SCRIPT: &str = r#"
let options = #{
    scenarios: #{
        sh: #{ executor: "shared-iterations", users: 5, iterations: 301, exec: "sh" },
        per_vu: #{ executor: "per-vu-iterations", users: 7, iterations: 13, exec: "per_vu" },
        ramp: #{ executor: "ramping-vus", start_users: 0, exec: "ramp",
                 stages: [#{ duration: "0.5s", target: 8 }, #{ duration: "1s", target: 8 }] },
        rate: #{ executor: "constant-arrival-rate", rate: 300, time_unit: "1s", duration: "3s",
                 pre_allocated_users: 12, max_users: 30, exec: "rate" },
        ramp_rate: #{ executor: "ramping-arrival-rate", start_rate: 0, pre_allocated_users: 6,
                      max_users: 12, exec: "ramp_rate",
                      stages: [#{ duration: "1s", target: 150 }, #{ duration: "1s", target: 150 }] },
        trickle: #{ executor: "constant-arrival-rate", rate: 2, time_unit: "1s", duration: "2.2s",
                    pre_allocated_users: 3, max_users: 3, exec: "trickle" },
    },
};
const ROWS = data::csv("rows.csv");
fn _hit(s) { http::get(`/hit/${s}/${vu_id()}`, #{ name: `/hit/${s}` }); }
fn sh() { _hit("sh"); http::post("/ids", #{ body: `row-${ROWS.next_unique().id}` }); }
fn per_vu() { _hit("per_vu"); http::post("/ids", #{ body: `id-${unique_id()}` }); }
fn ramp() { _hit("ramp"); sleep(0.05); }
fn rate() { _hit("rate"); }
fn trickle() { _hit("trickle"); }
fn ramp_rate() { _hit("ramp_rate"); }
"#;

/// The script and its data file in a folder of their own.
fn script_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.rhai"), SCRIPT).unwrap();
    let rows: String = std::iter::once("id\n".to_string())
        .chain((0..400).map(|i| format!("{i}\n")))
        .collect();
    std::fs::write(dir.path().join("rows.csv"), rows).unwrap();
    dir
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn decode(b64: &str) -> Histogram<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let mut h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap();
    h.auto(true);
    h
}

fn scenario<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

/// Starts `stampede run` with `extra` flags against `host`, writing `out`.
fn spawn_run(dir: &Path, host: &str, out: &Path, extra: &[String]) -> std::process::Child {
    stampede()
        .args([
            "run",
            "s.rhai",
            "--host",
            host,
            "--workers",
            "1",
            "--quiet",
            "--json",
        ])
        .arg(out)
        .args(extra)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn three_segments_merged_are_the_whole_test() {
    let dir = script_dir();
    let (seg_host, seg_server) = server();
    let (whole_host, whole_server) = server();
    let start = SystemTime::now() + Duration::from_secs(2);
    let start_at = humantime::format_rfc3339_millis(start).to_string();
    let out = |name: &str| dir.path().join(name);
    let children: Vec<_> = (1..=3)
        .map(|i| {
            let extra = [
                "--segment".into(),
                format!("{i}/3"),
                "--start-at".into(),
                start_at.clone(),
            ];
            spawn_run(dir.path(), &seg_host, &out(&format!("seg{i}.json")), &extra)
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("for --start-at"), "{stderr}");
    }
    // The whole test after the segments, so that neither competes with the other for the
    // two cores.
    let whole = spawn_run(dir.path(), &whole_host, &out("whole.json"), &[]);
    let output = whole.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));

    // Every count the whole test has exactly, the segments have together.
    let hits = |r: &Record| r.hits.lock().unwrap().clone();
    let (seg_hits, whole_hits) = (hits(&seg_server), hits(&whole_server));
    for name in ["sh", "per_vu"] {
        assert_eq!(seg_hits[name], whole_hits[name], "{name}");
    }
    assert_eq!(seg_hits["sh"], 301);
    // A low rate is exact too: 2/s for 2.2 s is 5 arrivals (0, 0.5, … 2 s). Each segment
    // runs 2/3 a second, and they take turns (at 0, 0.5 and 1 s, then 1.5 s later) rather
    // than each starting with an arrival of its own (which made 6).
    assert_eq!((seg_hits["trickle"], whole_hits["trickle"]), (5, 5));
    assert_eq!(seg_hits["per_vu"], 7 * 13);
    // An arrival rate is timed, not counted: the schedule begins once each instance's
    // pool is ready, which four processes starting at once on two cores delay by tens of
    // ms. 900 are due in all.
    let (a, b) = (seg_hits["rate"] as f64, whole_hits["rate"] as f64);
    assert!((a - b).abs() <= 0.05 * b, "rate: {a} segmented, {b} whole");
    assert!((855.0..=900.0).contains(&a), "rate: {a} of 900");
    // A ramping rate: 75 arrivals up the ramp, 150 at the top.
    let (a, b) = (seg_hits["ramp_rate"] as f64, whole_hits["ramp_rate"] as f64);
    assert!(
        (a - b).abs() <= 0.05 * b,
        "ramping rate: {a} segmented, {b} whole"
    );
    assert!(
        (214.0..=226.0).contains(&a),
        "ramping rate: {a} of 225 (+1 at the end)"
    );
    // The same users (by vu_id) ran, however the test was split.
    let users = |r: &Record| r.users.lock().unwrap().clone();
    let ramp_users = |set: &BTreeSet<(String, u64)>| -> BTreeSet<u64> {
        set.iter()
            .filter(|(s, _)| !["rate", "trickle", "ramp_rate"].contains(&s.as_str()))
            .map(|(s, vu)| vu + if s == "ramp" { 1000 } else { 0 })
            .collect()
    };
    assert_eq!(
        ramp_users(&users(&seg_server)),
        ramp_users(&users(&whole_server))
    );
    // No data row and no unique id was handed out twice across the segments.
    let bodies = seg_server.bodies.lock().unwrap().clone();
    let distinct: BTreeSet<&String> = bodies.iter().collect();
    assert_eq!(bodies.len(), 301 + 91);
    assert_eq!(distinct.len(), bodies.len(), "a row or id repeated");

    // Each segment ran its third of the arrival rate, within 1 %.
    let segs: Vec<_> = (1..=3)
        .map(|i| json(&out(&format!("seg{i}.json"))))
        .collect();
    let rate_total: u64 = segs
        .iter()
        .map(|d| scenario(d, "rate")["iterations"].as_u64().unwrap())
        .sum();
    for d in &segs {
        let mine = scenario(d, "rate")["iterations"].as_f64().unwrap();
        let third = rate_total as f64 / 3.0;
        assert!(
            (mine - third).abs() <= 0.01 * third,
            "{mine} of {rate_total}"
        );
        assert!(d["start_late_s"].as_f64().unwrap() < 1.0);
    }

    // Merged: the server's counts, and the histograms of all samples.
    let merged_path = out("merged.json");
    let merge = stampede()
        .arg("merge")
        .args((1..=3).map(|i| out(&format!("seg{i}.json"))))
        .arg("--json")
        .arg(&merged_path)
        .arg("--threshold")
        .arg("requests > 500")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&merge.stdout);
    assert_eq!(
        merge.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&merge.stderr)
    );
    let merged = json(&merged_path);
    let server_total: u64 = seg_hits.values().sum::<u64>() + bodies.len() as u64;
    assert_eq!(merged["aggregated"]["requests"], server_total);
    for name in ["sh", "per_vu", "ramp", "rate", "trickle", "ramp_rate"] {
        let sum: u64 = segs
            .iter()
            .map(|d| scenario(d, name)["iterations"].as_u64().unwrap())
            .sum();
        assert_eq!(scenario(&merged, name)["iterations"], sum, "{name}");
    }
    // The equality table of the closing note (`cargo test --test distributed -- --nocapture`).
    eprintln!(
        "| scenario | server, whole run | server, 3 segments | merged iterations | per segment |"
    );
    for name in ["sh", "per_vu", "ramp", "rate", "trickle", "ramp_rate"] {
        let per: Vec<String> = segs
            .iter()
            .map(|d| scenario(d, name)["iterations"].to_string())
            .collect();
        eprintln!(
            "| {name} | {} | {} | {} | {} |",
            whole_hits[name],
            seg_hits[name],
            scenario(&merged, name)["iterations"],
            per.join(" / ")
        );
    }
    let mut all = Histogram::<u64>::new(3).unwrap();
    all.auto(true);
    for d in &segs {
        for r in d["requests"].as_array().unwrap() {
            all.add(decode(r["histogram"].as_str().unwrap())).unwrap();
        }
    }
    let merged_hist = decode(merged["aggregated"]["histogram"].as_str().unwrap());
    for q in [0.5, 0.9, 0.99, 0.999] {
        assert_eq!(merged_hist.value_at_quantile(q), all.value_at_quantile(q));
    }
    assert_eq!(merged_hist.len(), server_total);
    let series_requests: u64 = merged["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(series_requests, server_total);
    assert_eq!(merged["run"]["merged"]["missing"], serde_json::json!([]));
    assert_eq!(merged["thresholds"][0]["passed"], true);
    assert!(stdout.contains("requests > 500"), "{stdout}");
    assert!(
        stdout.contains("Merged from 3 files (segments 1/3, 2/3, 3/3)."),
        "{stdout}"
    );
}

/// One small run, for the merge's error cases.
fn small_run(dir: &Path, host: &str, name: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let out = stampede()
        .args(["run", "s.rhai", "--host", host, "--workers", "1", "--quiet"])
        .args(["--json"])
        .arg(&path)
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn merge(files: &[&Path], extra: &[&str]) -> (Option<i32>, String) {
    let out = stampede()
        .arg("merge")
        .args(files)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn bad_segments_and_bad_files_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
let options = #{ scenarios: #{
    one: #{ executor: "shared-iterations", users: 3, iterations: 10, exec: "one" } } };
fn one() { http::get("/hit/one/1"); }
"#;
    std::fs::write(dir.path().join("s.rhai"), script).unwrap();
    let (host, record) = server();
    for bad in ["3/2", "0/2", "2", "x/y", "4/4"] {
        let out = stampede()
            .args(["run", "s.rhai", "--host", &host, "--segment", bad])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("--segment"), "{bad}: {stderr}");
    }
    assert!(record.hits.lock().unwrap().is_empty(), "traffic was sent");

    let a = small_run(dir.path(), &host, "a.json", &["--segment", "1/3"]);
    let c = small_run(dir.path(), &host, "c.json", &["--segment", "3/3"]);
    // A segment is missing: merged, and said.
    let merged = dir.path().join("m.json");
    let (code, stderr) = merge(&[&a, &c], &["--json", merged.to_str().unwrap(), "-q"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("segment 2/3 is missing"), "{stderr}");
    let doc = json(&merged);
    assert_eq!(doc["run"]["merged"]["missing"], serde_json::json!(["2/3"]));
    assert_eq!(doc["iterations"], 4 + 3);
    // The same segment twice, directly or inside a merged file.
    let (code, stderr) = merge(&[&a, &a], &["-q"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("given twice"), "{stderr}");
    let (code, stderr) = merge(&[&merged, &a], &["-q"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("segment 1/3 is given twice"), "{stderr}");
    // A merged file merges again: with the missing segment it is the whole test.
    let b = small_run(dir.path(), &host, "b.json", &["--segment", "2/3"]);
    let whole = dir.path().join("whole.json");
    let (code, stderr) = merge(&[&merged, &b], &["--json", whole.to_str().unwrap(), "-q"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("missing"), "{stderr}");
    let doc = json(&whole);
    assert_eq!(doc["iterations"], 10);
    assert_eq!(
        doc["run"]["merged"]["segments"],
        serde_json::json!(["1/3", "2/3", "3/3"])
    );
    // Two results of the whole test would count it twice.
    let w1 = small_run(dir.path(), &host, "w1.json", &[]);
    let w2 = small_run(dir.path(), &host, "w2.json", &[]);
    let (code, stderr) = merge(&[&w1, &w2], &["-q"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("the whole test is given twice"), "{stderr}");

    // Another schema version, a truncated file, not a result at all.
    let text = std::fs::read_to_string(&a).unwrap();
    let v1 = dir.path().join("v1.json");
    std::fs::write(&v1, text.replacen("\"version\": 2", "\"version\": 1", 1)).unwrap();
    let cut = dir.path().join("cut.json");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let other = dir.path().join("other.json");
    std::fs::write(&other, "{\"hello\": 1}").unwrap();
    for (file, says) in [
        (&v1, "schema version 1"),
        (&cut, "truncated"),
        (&other, "not a stampede result"),
    ] {
        let (code, stderr) = merge(&[&a, file], &["-q"]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(says), "{says}: {stderr}");
    }

    // Another test (the script changed): refused unless forced.
    std::fs::write(dir.path().join("s.rhai"), format!("{script}\n// changed\n")).unwrap();
    let b = small_run(dir.path(), &host, "b2.json", &["--segment", "2/3"]);
    let (code, stderr) = merge(&[&a, &b, &c], &["-q"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("another test"), "{stderr}");
    let (code, stderr) = merge(&[&a, &b, &c], &["-q", "--force"]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn thresholds_are_evaluated_on_the_whole_and_a_late_start_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.rhai"),
        r#"
let options = #{ scenarios: #{
    one: #{ executor: "shared-iterations", users: 4, iterations: 40, exec: "one" } } };
fn one() { http::get("/hit/one/1"); }
"#,
    )
    .unwrap();
    let (host, _record) = server();
    let past = humantime::format_rfc3339_millis(SystemTime::now() - Duration::from_secs(5));
    let past = past.to_string();
    let out = stampede()
        .args([
            "run",
            "s.rhai",
            "--host",
            &host,
            "--quiet",
            "--segment",
            "1/2",
        ])
        .args(["--start-at", &past, "--json", "a.json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("after --start-at"), "{stderr}");
    let a = dir.path().join("a.json");
    assert!(json(&a)["start_late_s"].as_f64().unwrap() >= 5.0);
    // A segment's own exit code leaves the thresholds to the merge: `requests >= 40`
    // fails on 20 requests, but only the whole can say.
    let b = small_run(
        dir.path(),
        &host,
        "b.json",
        &["--segment", "2/2", "--threshold", "requests >= 40"],
    );
    // Each segment made 20 requests: only the whole passes `requests >= 40`.
    assert_eq!(json(&b)["aggregated"]["requests"], 20);
    let (code, stderr) = merge(&[&a, &b], &["-q", "--threshold", "requests >= 40"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = merge(&[&a, &b], &["-q", "--threshold", "requests > 40"]);
    assert_eq!(code, Some(1), "{stderr}");
}

#[test]
fn a_seeded_segment_repeats_itself_and_differs_from_the_others() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.rhai"),
        r#"
let options = #{ scenarios: #{
    one: #{ executor: "per-vu-iterations", users: 2, iterations: 3, exec: "one" } } };
fn setup() { http::post("/ids", #{ body: `setup-${random_int(0, 1000000000)}` }); () }
fn one() { http::post("/ids", #{ body: `vu${vu_id()}-${random_int(0, 1000000000)}` }); }
"#,
    )
    .unwrap();
    let (host, record) = server();
    let mut runs = Vec::new();
    for segment in ["1/2", "1/2", "2/2"] {
        let out = stampede()
            .args(["run", "s.rhai", "--host", &host, "--quiet", "--seed", "7"])
            .args(["--segment", segment])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let mut bodies = std::mem::take(&mut *record.bodies.lock().unwrap());
        bodies.sort();
        assert_eq!(bodies.len(), 1 + 3, "{bodies:?}");
        runs.push(bodies);
    }
    assert_eq!(
        runs[0], runs[1],
        "the same segment and seed drew other values"
    );
    let setup = |run: &Vec<String>| run.iter().find(|b| b.starts_with("setup-")).cloned();
    assert_ne!(
        setup(&runs[0]),
        setup(&runs[2]),
        "two segments drew the same"
    );
}
