//! Latency ends when a response reached the socket, not when the generator got round to
//! reading it: a server that answers after a known delay, while the user's worker is kept
//! busy by a CPU-bound neighbour (another user on the same thread), is still reported near
//! its delay, and the neighbour's time shows as generator queueing.

mod common;

use common::bin::stampede;

const SCRIPT: &str = r#"
let options = #{ scenarios: #{
    waiter: #{ executor: "per-vu-iterations", users: 1, iterations: 4, exec: "waiter" },
    hog: #{ executor: "per-vu-iterations", users: 1, iterations: 4, exec: "hog" } } };
// Sends, then waits 60 ms for the answer.
fn waiter() { http::get("/slow?ms=60", #{ name: "slow" }); }
// Lets the waiter send, then holds the worker thread in one native call (a script loop
// would yield every 2 ms): hashing 4 MB takes ~150 ms in a debug build, and the answer
// arrives meanwhile and sits in the socket until the hash is done.
fn hog() {
    let s = "x";
    for i in 0..22 { s += s; }
    sleep(0.02);
    crypto::sha256(s);
}
"#;

#[test]
fn a_busy_worker_shows_as_queueing_not_as_latency() {
    let server = common::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.rhai"), SCRIPT).unwrap();
    let out = stampede()
        .args(["run", "s.rhai", "--host", &server.url, "--workers", "1"])
        .args([
            "--quiet",
            "--json",
            "r.json",
            "--threshold",
            "queueing_p99 < 1ms",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    let slow = doc["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "slow")
        .unwrap();
    assert_eq!(slow["requests"], 4);
    assert_eq!(server.counters.hits("GET /slow"), 4);
    // The server took 60 ms; the worker was busy until well after the answer came.
    let p50 = slow["percentiles_ms"][0].as_f64().unwrap();
    let max = slow["max_ms"].as_f64().unwrap();
    assert!(
        (59.0..100.0).contains(&p50),
        "latency p50 {p50} ms: {stdout}"
    );
    assert!(max < 120.0, "latency max {max} ms: {stdout}");
    let queueing = &doc["timings_ms"]["queueing"];
    let q50 = queueing["p50"].as_f64().unwrap();
    assert!(q50 >= 30.0, "queueing p50 {q50} ms: {stdout}");
    assert_eq!(doc["latency_timed_at"]["socket"], 4);
    // The summary says so, and a threshold on it refuses the run.
    assert!(
        stdout.contains("the generator is the bottleneck"),
        "{stdout}"
    );
    assert!(
        stdout.contains("queueing (stampede's, not in latency)"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(doc["thresholds"][0]["passed"], false);
}
