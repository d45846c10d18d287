//! The per-worker recorder: unshared, so recording a request is a hash lookup and a
//! histogram increment with no locks and no messages.

use rustc_hash::FxHashMap as HashMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{NameCap, new_histogram};

/// Why something failed. An enum, not free text, so failures group by cause.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The connection could not be opened (refused, unreachable, DNS).
    Connect,
    /// The request or its response did not complete within the timeout.
    Timeout,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// Any other transport or protocol error.
    Request,
    /// The response status was not the expected one.
    Status,
    /// The response body could not be read or parsed (e.g. invalid JSON).
    Body,
    /// The script marked the request or the task failed (`r.fail`, `fail`).
    Failed,
    /// A runtime error in the script, with its location.
    Script,
    /// The request was still waiting for its response when the run ended (abandoned at
    /// the hard stop or when `setup`/`teardown` timed out). Counted as a failed request,
    /// its latency the time it had waited: a lower bound.
    Unfinished,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Reset => "reset",
            Self::Request => "request",
            Self::Status => "status",
            Self::Body => "body",
            Self::Failed => "failed",
            Self::Script => "script",
            Self::Unfinished => "unfinished",
        };
        f.write_str(s)
    }
}

/// How failures are grouped: by kind, where (method and name, or the task for script
/// errors) and message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FailureKey {
    pub kind: FailureKind,
    pub method: String,
    pub name: String,
    pub message: String,
}

/// Pass/fail counts of one named check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CheckCount {
    pub pass: u64,
    pub fail: u64,
}

/// Counts and latency of one (method, name) over an interval or the whole run.
#[derive(Debug, Clone)]
pub struct RequestStats {
    pub method: String,
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    pub bytes: u64,
    /// Extra attempts on a fresh connection after a pooled one was found dead: the server
    /// may have received `requests + retries`.
    pub retries: u64,
    /// Microseconds.
    pub latency: Histogram<u64>,
    /// Exact sum, for an exact mean (microseconds).
    pub total_us: u64,
    /// Where iterations follow a schedule (arrival rates, `constant_pacing`): latency from
    /// when the request would have been sent had its iteration started on time, so a stall
    /// that delayed later iterations counts against them too (wrk2's corrected latency).
    /// Microseconds; `None` when nothing was on a schedule.
    pub corrected: Option<Histogram<u64>>,
}

impl RequestStats {
    pub fn new(method: &str, name: &str) -> Self {
        Self {
            method: method.to_owned(),
            name: name.to_owned(),
            requests: 0,
            failures: 0,
            bytes: 0,
            retries: 0,
            latency: new_histogram(),
            total_us: 0,
            corrected: None,
        }
    }

    /// Adds another interval or worker's numbers; histograms merge exactly.
    pub fn merge(&mut self, other: &RequestStats) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.bytes += other.bytes;
        self.retries += other.retries;
        self.total_us += other.total_us;
        self.latency
            .add(&other.latency)
            .expect("auto-resizing histograms always merge");
        if let Some(c) = &other.corrected {
            self.corrected
                .get_or_insert_with(new_histogram)
                .add(c)
                .expect("auto-resizing histograms always merge");
        }
    }

    fn reset(&mut self) {
        self.requests = 0;
        self.failures = 0;
        self.bytes = 0;
        self.retries = 0;
        self.total_us = 0;
        self.latency.reset();
        if let Some(c) = &mut self.corrected {
            c.reset();
        }
    }
}

/// One worker's interval: everything recorded since its previous snapshot.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub requests: Vec<RequestStats>,
    pub failures: Vec<(FailureKey, u64)>,
    pub checks: Vec<(String, CheckCount)>,
    pub iterations: u64,
    /// Iterations that ended failed: a request's `expect`, `fail()`, a script error.
    pub failed_iterations: u64,
    /// Arrival-rate iterations that found no idle user and never started.
    pub dropped_iterations: u64,
    /// Iterations cut short by the stop or a ramp-down.
    pub interrupted_iterations: u64,
    /// Arrival-rate iterations: how late each started after it was due (microseconds);
    /// `None` when there were none.
    pub lateness: Option<Box<Histogram<u64>>>,
    /// The timing breakdown of the requests that got a response (microseconds), in
    /// [`PHASES`]' order; `None` when there were none.
    pub phases: Option<Box<PhaseHistograms>>,
    /// Requests whose name was derived from a path with an id in it.
    pub auto_grouped: u64,
    pub unfinished: Unfinished,
    /// Responses by how they came: protocol and TLS version ("HTTP/2.0 over tls1.3").
    pub protocols: Vec<(&'static str, u64)>,
}

/// The timing breakdown's phases, k6's names without `http_req_`: connecting,
/// tls_handshaking, sending, waiting, receiving, which add up to the latency; then
/// queueing, the generator's own delay after it (see `http::Phases`).
pub const PHASES: [&str; 6] = [
    "connecting",
    "tls_handshaking",
    "sending",
    "waiting",
    "receiving",
    "queueing",
];

/// Where [`PHASES`]' own delay of the generator is: not part of the latency.
pub const QUEUEING: usize = 5;

/// One latency histogram (µs) per phase, in [`PHASES`]' order.
pub type PhaseHistograms = [Histogram<u64>; 6];

fn new_phases() -> Box<PhaseHistograms> {
    Box::new(std::array::from_fn(|_| super::new_histogram()))
}

/// Adds `from` into `into`, phase by phase.
pub fn merge_phases(into: &mut Option<Box<PhaseHistograms>>, from: &PhaseHistograms) {
    let into = into.get_or_insert_with(new_phases);
    for (a, b) in into.iter_mut().zip(from) {
        a.add(b).expect("auto-resizing");
    }
}

/// Requests abandoned without a response when the run ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Unfinished {
    pub requests: u64,
    /// How long the longest-waiting of them had waited, in seconds.
    pub longest_wait_s: f64,
}

impl Unfinished {
    pub fn merge(&mut self, other: Unfinished) {
        self.requests += other.requests;
        self.longest_wait_s = self.longest_wait_s.max(other.longest_wait_s);
    }
}

/// Records `us` in an auto-resizing histogram. `saturating_record` alone would not resize:
/// it clamps to the range the histogram has so far (a new one's is 1–2 µs).
fn record_us(h: &mut Histogram<u64>, us: u64) {
    if h.record(us).is_err() {
        h.saturating_record(us);
    }
}

/// Records requests, failures and checks for the users of one worker. Maps use FxHash:
/// keys are our own names, hashed on every request, and need no DoS resistance.
#[derive(Debug)]
pub struct Recorder {
    stats: Vec<RequestStats>,
    /// name → (method, index into `stats`); a two-level map so lookups borrow `&str`s.
    index: HashMap<Box<str>, Vec<(Box<str>, usize)>>,
    failures: HashMap<FailureKey, u64>,
    /// Checks in the order first seen (the script's order, as the tables show them), with
    /// an index by name.
    checks: Vec<(String, CheckCount)>,
    check_index: HashMap<String, usize>,
    iterations: u64,
    failed_iterations: u64,
    dropped_iterations: u64,
    interrupted_iterations: u64,
    lateness: Option<Histogram<u64>>,
    phases: Option<Box<PhaseHistograms>>,
    /// Zero-length phases not yet in `phases` (connecting and TLS on every reused
    /// connection): counted here and recorded in one go when the interval is taken.
    zero_phases: [u64; 6],
    protocols: Vec<(&'static str, u64)>,
    auto_grouped: u64,
    unfinished: Unfinished,
    cap: NameCap,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new(NameCap::DEFAULT)
    }
}

impl Recorder {
    pub fn new(cap: NameCap) -> Self {
        Self {
            stats: Vec::new(),
            index: HashMap::default(),
            failures: HashMap::default(),
            checks: Vec::new(),
            check_index: HashMap::default(),
            iterations: 0,
            failed_iterations: 0,
            dropped_iterations: 0,
            interrupted_iterations: 0,
            lateness: None,
            phases: None,
            zero_phases: [0; 6],
            protocols: Vec::new(),
            auto_grouped: 0,
            unfinished: Unfinished::default(),
            cap,
        }
    }

    fn slot(&mut self, method: &str, name: &str) -> &mut RequestStats {
        let name = if self.index.contains_key(name) || self.index.len() < self.cap.0 {
            name
        } else {
            NameCap::OVERFLOW
        };
        let found = self
            .index
            .get(name)
            .and_then(|ms| ms.iter().find(|(m, _)| &**m == method))
            .map(|(_, i)| *i);
        let i = match found {
            Some(i) => i,
            None => {
                self.stats.push(RequestStats::new(method, name));
                let i = self.stats.len() - 1;
                self.index
                    .entry(name.into())
                    .or_default()
                    .push((method.into(), i));
                i
            }
        };
        &mut self.stats[i]
    }

    /// Records one completed request. `failure` is set when it counts as failed.
    pub fn request(
        &mut self,
        method: &str,
        name: &str,
        elapsed: Duration,
        bytes: u64,
        failure: Option<(FailureKind, String)>,
    ) {
        let us = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let s = self.slot(method, name);
        s.requests += 1;
        s.bytes += bytes;
        s.total_us = s.total_us.saturating_add(us);
        record_us(&mut s.latency, us);
        if let Some((kind, message)) = failure {
            s.failures += 1;
            let (method, name) = (s.method.clone(), s.name.clone());
            self.failure(kind, method, name, message);
        }
    }

    /// Records the corrected latency of a request on a schedule (see
    /// [`RequestStats::corrected`]); its service time is recorded by [`Recorder::request`].
    pub fn corrected(&mut self, method: &str, name: &str, from_intended: Duration) {
        let us = u64::try_from(from_intended.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        record_us(
            self.slot(method, name)
                .corrected
                .get_or_insert_with(new_histogram),
            us,
        );
    }

    /// Adds `n` retried attempts to (method, name); called only when there were some.
    pub fn retried(&mut self, method: &str, name: &str, n: u32) {
        self.slot(method, name).retries += u64::from(n);
    }

    /// Marks an already recorded request as failed (`r.fail("why")`, invalid JSON body).
    pub fn mark_failed(&mut self, method: &str, name: &str, kind: FailureKind, message: String) {
        let s = self.slot(method, name);
        s.failures += 1;
        let (method, name) = (s.method.clone(), s.name.clone());
        self.failure(kind, method, name, message);
    }

    /// Records a failure that is not a request: a script error or `fail()` in a task.
    pub fn failure(&mut self, kind: FailureKind, method: String, name: String, message: String) {
        let key = FailureKey {
            kind,
            method,
            name,
            message,
        };
        if let Some(n) = self.failures.get_mut(&key) {
            *n += 1;
        } else if self.failures.len() < self.cap.0 * 4 {
            self.failures.insert(key, 1);
        } else {
            let other = FailureKey {
                message: "(other failure messages)".into(),
                ..key
            };
            *self.failures.entry(other).or_default() += 1;
        }
    }

    pub fn check(&mut self, name: &str, passed: bool) {
        let i = match self.check_index.get(name) {
            Some(i) => *i,
            None => {
                self.checks.push((name.to_owned(), CheckCount::default()));
                self.check_index
                    .insert(name.to_owned(), self.checks.len() - 1);
                self.checks.len() - 1
            }
        };
        let c = &mut self.checks[i].1;
        if passed {
            c.pass += 1;
        } else {
            c.fail += 1;
        }
    }

    pub fn iteration(&mut self) {
        self.iterations += 1;
    }

    pub fn failed_iteration(&mut self) {
        self.failed_iterations += 1;
    }

    pub fn dropped_iteration(&mut self) {
        self.dropped_iterations += 1;
    }

    pub fn dropped_iterations(&mut self, n: u64) {
        self.dropped_iterations += n;
    }

    pub fn interrupted_iteration(&mut self) {
        self.interrupted_iterations += 1;
    }

    /// A response came over `protocol` (a label from a handful of constants: compared by
    /// address first).
    pub fn protocol(&mut self, protocol: &'static str) {
        match self
            .protocols
            .iter_mut()
            .find(|(p, _)| std::ptr::eq(*p, protocol) || *p == protocol)
        {
            Some((_, n)) => *n += 1,
            None => self.protocols.push((protocol, 1)),
        }
    }

    /// A request's timing breakdown in microseconds, in [`PHASES`]' order.
    pub fn phases(&mut self, phases: [u32; 6]) {
        let histograms = self.phases.get_or_insert_with(new_phases);
        for ((h, zeros), us) in histograms.iter_mut().zip(&mut self.zero_phases).zip(phases) {
            match us {
                0 => *zeros += 1,
                us => record_us(h, u64::from(us)),
            }
        }
    }

    /// An arrival-rate iteration started `late` after it was due.
    pub fn lateness(&mut self, late: Duration) {
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        record_us(self.lateness.get_or_insert_with(new_histogram), us);
    }

    /// Records a request abandoned after waiting `waited` without a response: a failed
    /// request of kind `unfinished`.
    pub fn unfinished(&mut self, method: &str, name: &str, waited: Duration) {
        let message = "no response before the run ended".to_owned();
        self.request(
            method,
            name,
            waited,
            0,
            Some((FailureKind::Unfinished, message)),
        );
        self.unfinished.merge(Unfinished {
            requests: 1,
            longest_wait_s: waited.as_secs_f64(),
        });
    }

    pub fn auto_grouped(&mut self) {
        self.auto_grouped += 1;
    }

    /// Hands out the interval recorded so far and starts a new one. Allocations for names
    /// and histograms are kept, so the steady state allocates only the copies handed out.
    pub fn take(&mut self) -> Snapshot {
        let requests = self
            .stats
            .iter_mut()
            .filter(|s| s.requests > 0 || s.failures > 0)
            .map(|s| {
                let copy = s.clone();
                s.reset();
                copy
            })
            .collect();
        Snapshot {
            requests,
            failures: self.failures.drain().collect(),
            checks: {
                self.check_index.clear();
                std::mem::take(&mut self.checks)
            },
            iterations: std::mem::take(&mut self.iterations),
            failed_iterations: std::mem::take(&mut self.failed_iterations),
            dropped_iterations: std::mem::take(&mut self.dropped_iterations),
            interrupted_iterations: std::mem::take(&mut self.interrupted_iterations),
            lateness: self.lateness.as_mut().filter(|h| !h.is_empty()).map(|h| {
                let copy = Box::new(h.clone());
                h.reset();
                copy
            }),
            phases: self.phases.as_mut().and_then(|p| {
                for (h, zeros) in p.iter_mut().zip(&mut self.zero_phases) {
                    let _ = h.record_n(0, std::mem::take(zeros));
                }
                if p[0].is_empty() {
                    return None;
                }
                let copy = p.clone();
                p.iter_mut().for_each(Histogram::reset);
                Some(copy)
            }),
            auto_grouped: std::mem::take(&mut self.auto_grouped),
            unfinished: std::mem::take(&mut self.unfinished),
            protocols: std::mem::take(&mut self.protocols),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_takes_intervals() {
        let mut r = Recorder::default();
        r.request("GET", "/a", Duration::from_millis(2), 10, None);
        r.request(
            "GET",
            "/a",
            Duration::from_millis(4),
            10,
            Some((FailureKind::Status, "HTTP 500".into())),
        );
        r.request("POST", "/a", Duration::from_millis(1), 0, None);
        r.check("ok", true);
        r.check("ok", false);
        let s = r.take();
        assert_eq!(s.requests.len(), 2);
        let get = s.requests.iter().find(|s| s.method == "GET").unwrap();
        assert_eq!((get.requests, get.failures, get.bytes), (2, 1, 20));
        assert_eq!(get.latency.len(), 2);
        assert_eq!(s.failures.len(), 1);
        assert_eq!(s.checks[0].1, CheckCount { pass: 1, fail: 1 });
        let empty = r.take();
        assert!(empty.requests.is_empty() && empty.failures.is_empty());
    }

    #[test]
    fn schedule_histograms_resize_rather_than_clamp() {
        let mut r = Recorder::default();
        for i in 1..=100u64 {
            r.request("GET", "/a", Duration::from_micros(1000 + i), 0, None);
            r.corrected("GET", "/a", Duration::from_micros(2000 + i));
            r.lateness(Duration::from_micros(5000 + i));
        }
        let s = r.take();
        let c = s.requests[0].corrected.as_ref().unwrap();
        assert_eq!((c.len(), c.min() / 10, c.max() / 10), (100, 200, 210));
        let late = s.lateness.unwrap();
        assert_eq!((late.min() / 10, late.max() / 10), (500, 510));
    }

    #[test]
    fn names_past_the_cap_are_grouped() {
        let mut r = Recorder::new(NameCap(3));
        for i in 0..10 {
            r.request("GET", &format!("/x{i}"), Duration::from_millis(1), 0, None);
        }
        let s = r.take();
        assert_eq!(s.requests.len(), 4);
        let other = s
            .requests
            .iter()
            .find(|s| s.name == NameCap::OVERFLOW)
            .unwrap();
        assert_eq!(other.requests, 7);
    }
}
