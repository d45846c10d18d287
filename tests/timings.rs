//! The timing breakdown (k6's connecting, tls_handshaking, sending, waiting, receiving)
//! against a server whose delays are known: it holds the response head back, then the rest
//! of the body, so waiting and receiving must each show their own delay, in the summary's
//! JSON and to a threshold.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::bin::stampede;

const HEAD_DELAY: Duration = Duration::from_millis(120);
const BODY_DELAY: Duration = Duration::from_millis(80);

/// Answers each request on a connection after HEAD_DELAY with its head and half the body,
/// and the other half BODY_DELAY later. Keeps connections alive.
fn slow_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = stream.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        std::thread::sleep(HEAD_DELAY);
                        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
                        if stream.write_all(head).is_err() {
                            return;
                        }
                        std::thread::sleep(BODY_DELAY);
                        if stream.write_all(b"world").is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn waiting_and_receiving_show_the_servers_delays_and_a_threshold_reads_them() {
    let url = slow_server();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("slow.rhai");
    std::fs::write(
        &script,
        r#"fn t() { let r = http::get("/slow"); check(r.text == "helloworld", "whole body"); }"#,
    )
    .unwrap();
    let json = dir.path().join("out.json");
    let out = stampede()
        .arg("run")
        .arg(&script)
        .args([
            "--host",
            &url,
            "-u",
            "2",
            "--iterations-per-user",
            "3",
            "-q",
        ])
        .args(["--threshold", "waiting_p50 > 100ms"])
        .args(["--threshold", "receiving_p50 < 50ms"])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let t = &doc["timings_ms"];
    let ms = |phase: &str, stat: &str| t[phase][stat].as_f64().unwrap();
    let (head, body) = (
        HEAD_DELAY.as_secs_f64() * 1e3,
        BODY_DELAY.as_secs_f64() * 1e3,
    );
    assert!(ms("waiting", "p50") >= head, "{t}");
    assert!(
        ms("waiting", "p50") < head + body,
        "the body's delay is not waiting: {t}"
    );
    assert!(ms("receiving", "p50") >= body, "{t}");
    assert!(ms("receiving", "p50") < head, "{t}");
    assert!(ms("connecting", "max") > 0.0, "two new connections: {t}");
    assert_eq!(ms("tls_handshaking", "max"), 0.0, "cleartext: {t}");
    // The phases add up to the request's latency.
    let sum: f64 = [
        "connecting",
        "tls_handshaking",
        "sending",
        "waiting",
        "receiving",
    ]
    .iter()
    .map(|p| ms(p, "avg"))
    .sum();
    let avg = doc["aggregated"]["avg_ms"].as_f64().unwrap();
    assert!((sum - avg).abs() < 2.0, "phases {sum} ms, latency {avg} ms");
    // One threshold holds, the other (receiving under 50 ms) cannot: exit 1.
    let verdicts: Vec<bool> = doc["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["passed"].as_bool().unwrap())
        .collect();
    assert_eq!(verdicts, vec![true, false]);
    assert_eq!(out.status.code(), Some(1));
}
