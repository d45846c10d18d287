//! Running the built binary as a user does: signals, waiting for what it prints.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

pub fn stampede() -> Command {
    Command::cargo_bin("stampede").unwrap()
}

/// Sends `signal` (`INT`, `TERM`) to `child`.
pub fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits, bounded, until `done` holds; polls every 20 ms.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `stderr` until a line contains `needle`; returns everything read.
pub fn read_until(stderr: &mut BufReader<ChildStderr>, needle: &str) -> String {
    let mut seen = String::new();
    let mut line = String::new();
    while !line.contains(needle) {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "stderr closed before `{needle}`: {seen}"
        );
        seen.push_str(&line);
    }
    seen
}
