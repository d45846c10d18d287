//! The run's totals as Prometheus series: cumulative counters (so a lost push loses
//! nothing but resolution), a classic histogram of latency per request name, and the users
//! running now, labelled by scenario, request name and segment.

use std::collections::BTreeMap;

use super::wire::{Label, Sample, TimeSeries};
use crate::metrics::Totals;

/// Upper bounds (seconds) of the latency histogram's buckets: about 1.5 × apart from 0.1 ms
/// to a minute, so `histogram_quantile` lands within one bucket of the exact percentile
/// (the summary's, from HDR histograms) at any latency a test sees.
pub const BUCKETS: [f64; 31] = [
    0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01,
    0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
    30.0, 60.0,
];

/// Builds the series of one push.
pub struct Collector<'a> {
    /// Labels on every series: the segment and `--prometheus-label`s.
    pub common: &'a [(String, String)],
    /// Scenario names, in the plan's order (the index of `Totals::scenarios`).
    pub scenarios: &'a [String],
    /// Milliseconds since the Unix epoch, the same for every sample of the push.
    pub at_ms: i64,
    /// Users running, by scenario; `None`: as the totals' latest second says.
    pub users: Option<u64>,
}

impl Collector<'_> {
    pub fn collect(&self, totals: &Totals) -> Vec<TimeSeries> {
        let mut out = Vec::new();
        let mut counted: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut failed: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        for (i, part) in totals.scenarios.iter().enumerate() {
            let scenario = self.scenarios.get(i).map_or("default", String::as_str);
            self.scenario(&mut out, scenario, part);
            for r in part.requests() {
                *counted
                    .entry((r.method.clone(), r.name.clone()))
                    .or_default() += r.requests;
            }
            for (key, n) in part.failures() {
                let k = (key.kind.to_string(), key.method.clone(), key.name.clone());
                *failed.entry(k).or_default() += n;
            }
        }
        // What belongs to no scenario: `setup()` and `teardown()`.
        for r in totals.requests() {
            let key = (r.method.clone(), r.name.clone());
            let rest = r.requests - counted.get(&key).copied().unwrap_or(0).min(r.requests);
            if rest > 0 {
                let labels = [("method", r.method.as_str()), ("name", r.name.as_str())];
                self.push(
                    &mut out,
                    "stampede_http_requests_total",
                    &labels,
                    rest as f64,
                );
            }
        }
        for (key, n) in totals.failures() {
            let k = (key.kind.to_string(), key.method.clone(), key.name.clone());
            let rest = n - failed.get(&k).copied().unwrap_or(0).min(n);
            if rest > 0 {
                let labels = [("kind", k.0.as_str()), ("method", &k.1), ("name", &k.2)];
                self.push(&mut out, "stampede_failures_total", &labels, rest as f64);
            }
        }
        out
    }

    fn scenario(&self, out: &mut Vec<TimeSeries>, scenario: &str, part: &Totals) {
        let s = ("scenario", scenario);
        for r in part.requests() {
            let (m, n) = (("method", r.method.as_str()), ("name", r.name.as_str()));
            self.push(
                out,
                "stampede_http_requests_total",
                &[s, m, n],
                r.requests as f64,
            );
            let h = &r.latency;
            let name = "stampede_http_request_duration_seconds_bucket";
            for le in BUCKETS {
                let below = h.count_between(0, (le * 1e6).round() as u64);
                self.push(out, name, &[s, m, n, ("le", &le.to_string())], below as f64);
            }
            self.push(out, name, &[s, m, n, ("le", "+Inf")], h.len() as f64);
            let sum = r.total_us as f64 / 1e6;
            self.push(
                out,
                "stampede_http_request_duration_seconds_sum",
                &[s, m, n],
                sum,
            );
            let count = h.len() as f64;
            self.push(
                out,
                "stampede_http_request_duration_seconds_count",
                &[s, m, n],
                count,
            );
        }
        let mut failures: BTreeMap<(String, &str, &str), u64> = BTreeMap::new();
        for (key, n) in part.failures() {
            *failures
                .entry((key.kind.to_string(), &key.method, &key.name))
                .or_default() += n;
        }
        for ((kind, method, name), n) in failures {
            let labels = [s, ("kind", &kind), ("method", method), ("name", name)];
            self.push(out, "stampede_failures_total", &labels, n as f64);
        }
        for (check, c) in part.checks() {
            for (result, n) in [("pass", c.pass), ("fail", c.fail)] {
                let labels = [s, ("check", check.as_str()), ("result", result)];
                self.push(out, "stampede_checks_total", &labels, n as f64);
            }
        }
        for (name, n) in [
            ("stampede_iterations_total", part.iterations),
            ("stampede_failed_iterations_total", part.failed_iterations),
            ("stampede_dropped_iterations_total", part.dropped_iterations),
        ] {
            self.push(out, name, &[s], n as f64);
        }
        let users = self
            .users
            .unwrap_or_else(|| part.latest().map_or(0, |second| second.users));
        self.push(out, "stampede_users", &[s], users as f64);
    }

    /// One series of one sample, its labels sorted by name as remote-write requires.
    fn push(&self, out: &mut Vec<TimeSeries>, metric: &str, labels: &[(&str, &str)], v: f64) {
        let mut all: Vec<Label> = std::iter::once(("__name__", metric))
            .chain(labels.iter().copied())
            .chain(self.common.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map(|(name, value)| Label {
                name: name.to_owned(),
                value: value.to_owned(),
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(TimeSeries {
            labels: all,
            samples: vec![Sample {
                value: v,
                timestamp: self.at_ms,
            }],
        });
    }
}
