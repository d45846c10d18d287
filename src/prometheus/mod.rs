//! `--prometheus URL`: live metrics pushed to Prometheus with remote-write, as k6 does.
//!
//! Pushed rather than scraped: the pods of a Kubernetes Indexed Job live only as long as
//! their segment, and a scrape every 15 s would miss the last seconds of each (or the whole
//! of a short one). Every push carries the run's cumulative totals, and the last one is
//! sent after the run ends, so what Prometheus holds at the end equals the summary. Pushes
//! go from a thread of their own; the run never waits for Prometheus, and a push that finds
//! the previous one still under way is skipped (the next carries everything anyway).

mod series;
mod wire;

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

pub use series::BUCKETS;

use crate::metrics::Totals;

/// Where and how to push.
#[derive(Debug, Clone)]
pub struct Config {
    /// The remote-write endpoint, e.g. `http://prometheus:9090/api/v1/write`.
    pub url: String,
    pub interval: Duration,
    /// `--prometheus-label`s, added to every series.
    pub labels: Vec<(String, String)>,
}

/// Labels stampede sets itself, which `--prometheus-label` may not.
const OWN_LABELS: [&str; 9] = [
    "__name__", "segment", "scenario", "method", "name", "le", "kind", "check", "result",
];

/// Parses `--prometheus-label KEY=VALUE`.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    let valid = k
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if k.is_empty() || !valid || k.starts_with("__") {
        return Err(format!("`{k}` is not a Prometheus label name"));
    }
    if OWN_LABELS.contains(&k) {
        return Err(format!("`{k}` is a label stampede sets itself"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// How the pushes went.
#[derive(Debug, Default)]
pub struct Pushed {
    pub sent: u64,
    pub failed: u64,
    /// The last failure's reason.
    pub error: Option<String>,
}

/// Pushes the run's totals now and then, from a thread of its own.
pub struct Pusher {
    url: String,
    interval: Duration,
    common: Vec<(String, String)>,
    scenarios: Vec<String>,
    last: Option<Instant>,
    /// The last push's timestamp: each push takes a later one, or Prometheus would reject
    /// a second sample at the same millisecond.
    last_ms: i64,
    tx: mpsc::SyncSender<Vec<u8>>,
    thread: JoinHandle<Pushed>,
}

impl Pusher {
    pub fn start(config: &Config, segment: crate::plan::Segment, scenarios: Vec<String>) -> Self {
        let mut common = config.labels.clone();
        common.push(("segment".into(), segment.to_string()));
        // One body waits at most: a slow Prometheus makes pushes skip, not pile up.
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(1);
        let url = config.url.clone();
        let thread = std::thread::spawn(move || send_all(&url, &rx));
        Self {
            url: config.url.clone(),
            interval: config.interval,
            common,
            scenarios,
            last: None,
            last_ms: 0,
            tx,
            thread,
        }
    }

    /// Called once a second with the totals so far: pushes when the interval has passed.
    pub fn tick(&mut self, totals: &Totals) {
        if self.last.is_some_and(|at| at.elapsed() < self.interval) {
            return;
        }
        self.last = Some(Instant::now());
        // Full: the previous push is still on its way; this one's numbers go with the next.
        let body = self.body(totals, None);
        let _ = self.tx.try_send(body);
    }

    /// The final push, with the run's final totals and no users left; waits for it (and
    /// any before it) to be sent.
    pub fn finish(mut self, totals: &Totals) -> Pushed {
        let body = self.body(totals, Some(0));
        let _ = self.tx.send(body);
        drop(self.tx);
        self.thread.join().unwrap_or_else(|_| Pushed {
            error: Some("the pushing thread panicked".into()),
            ..Pushed::default()
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn body(&mut self, totals: &Totals, users: Option<u64>) -> Vec<u8> {
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let at_ms = now_ms.max(self.last_ms + 1);
        self.last_ms = at_ms;
        let collector = series::Collector {
            common: &self.common,
            scenarios: &self.scenarios,
            at_ms,
            users,
        };
        wire::encode(&wire::WriteRequest {
            timeseries: collector.collect(totals),
        })
    }
}

/// The pushing thread: sends each body as it comes, until the channel closes.
fn send_all(url: &str, rx: &mpsc::Receiver<Vec<u8>>) -> Pushed {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut pushed = Pushed::default();
    for body in rx {
        let sent = agent
            .post(url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header(
                "User-Agent",
                concat!("stampede/", env!("CARGO_PKG_VERSION")),
            )
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .send(&body[..]);
        match sent {
            Ok(_) => pushed.sent += 1,
            Err(e) => {
                pushed.failed += 1;
                pushed.error = Some(e.to_string());
            }
        }
    }
    pushed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_must_be_names_prometheus_takes_and_not_ours() {
        assert_eq!(
            parse_label("testid=run 7").unwrap(),
            ("testid".into(), "run 7".into())
        );
        for bad in [
            "testid",
            "=x",
            "1a=x",
            "__x=y",
            "a-b=c",
            "segment=2",
            "le=1",
        ] {
            assert!(parse_label(bad).is_err(), "{bad}");
        }
    }
}
