//! Run totals and the per-second series, built by merging worker snapshots.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{CheckCount, FailureKey, RequestStats, Snapshot, Unfinished, new_histogram};

/// One second of the run, all request names together.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Second {
    /// Seconds since the run started; this row covers `[second - 1, second)`.
    pub second: u64,
    pub requests: u64,
    pub failures: u64,
    pub users: u64,
    /// Iterations started, and arrival-rate iterations dropped, that second.
    pub iterations: u64,
    pub dropped: u64,
    /// Milliseconds; `None` when there were no requests that second.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Per request name (`METHOD name`) in this second.
    pub by_name: BTreeMap<String, NameSecond>,
}

/// One request name during one second.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct NameSecond {
    pub requests: u64,
    pub failures: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Seconds still open for late snapshots keep their histogram; older ones keep only
/// percentiles so a long run holds a few numbers per second, not a histogram per second.
const OPEN_SECONDS: u64 = 3;

#[derive(Clone)]
struct OpenSecond {
    row: Second,
    latency: Histogram<u64>,
    by_name: BTreeMap<String, Histogram<u64>>,
}

/// (p50, p95, p99) in milliseconds, or `None`s for an empty histogram.
fn percentiles(h: &Histogram<u64>) -> (Option<f64>, Option<f64>, Option<f64>) {
    if h.is_empty() {
        return (None, None, None);
    }
    let q = |q| Some(ms(h.value_at_quantile(q)));
    (q(0.50), q(0.95), q(0.99))
}

/// Everything measured in a run.
#[derive(Default, Clone)]
pub struct Totals {
    requests: BTreeMap<(String, String), RequestStats>,
    failures: HashMap<FailureKey, u64>,
    checks: BTreeMap<String, CheckCount>,
    /// Check names in the order first seen: the script's order, for the tables.
    check_order: Vec<String>,
    pub iterations: u64,
    /// Iterations that ended failed (a request's `expect`, `fail()`, a script error).
    pub failed_iterations: u64,
    /// Arrival-rate iterations that found no idle user.
    pub dropped_iterations: u64,
    /// Iterations cut short by the stop or a ramp-down.
    pub interrupted_iterations: u64,
    /// Arrival-rate iterations: how late each started after it was due (microseconds).
    pub lateness: Option<Histogram<u64>>,
    /// Responses by protocol and TLS version.
    pub protocols: BTreeMap<String, u64>,
    /// The timing breakdown of every request that got a response, µs, in `PHASES`' order.
    pub phases: Option<Box<super::recorder::PhaseHistograms>>,
    pub auto_grouped: u64,
    /// Requests still waiting for a response when the run ended.
    pub unfinished: Unfinished,
    series: BTreeMap<u64, Second>,
    open: BTreeMap<u64, OpenSecond>,
    /// The same, for each scenario on its own (in the plan's order).
    pub scenarios: Vec<Totals>,
}

impl Totals {
    /// Merges one worker's interval of scenario `index` into that scenario's totals
    /// (`scenario_users` running in it) and into the run's (`run_users` in all).
    pub fn merge_scenario(
        &mut self,
        index: usize,
        second: u64,
        scenario_users: u64,
        run_users: u64,
        snapshot: Snapshot,
    ) {
        if self.scenarios.len() <= index {
            self.scenarios.resize_with(index + 1, Totals::default);
        }
        self.scenarios[index].merge(second, scenario_users, snapshot.clone());
        self.merge(second, run_users, snapshot);
    }

    /// Merges one worker's interval ending at `second`, with `users` running at that time.
    pub fn merge(&mut self, second: u64, users: u64, snapshot: Snapshot) {
        let open = self.open.entry(second).or_insert_with(|| OpenSecond {
            row: Second {
                second,
                ..Second::default()
            },
            latency: new_histogram(),
            by_name: BTreeMap::new(),
        });
        open.row.users = open.row.users.max(users);
        open.row.iterations += snapshot.iterations;
        open.row.dropped += snapshot.dropped_iterations;
        for s in &snapshot.requests {
            open.row.requests += s.requests;
            open.row.failures += s.failures;
            let key = format!("{} {}", s.method, s.name);
            let per_name = open.row.by_name.entry(key.clone()).or_default();
            per_name.requests += s.requests;
            per_name.failures += s.failures;
            open.latency.add(&s.latency).expect("auto-resizing");
            open.by_name
                .entry(key)
                .or_insert_with(new_histogram)
                .add(&s.latency)
                .expect("auto-resizing");
        }
        self.absorb(snapshot);
        self.close_before(second.saturating_sub(OPEN_SECONDS));
    }

    /// Adds everything of `snapshot` but its place in the per-second series: the run's
    /// counts, histograms, failures and checks (a worker's interval, or a whole result
    /// read back by `stampede merge`).
    pub fn absorb(&mut self, snapshot: Snapshot) {
        for s in snapshot.requests {
            let key = (s.method.clone(), s.name.clone());
            match self.requests.get_mut(&key) {
                Some(total) => total.merge(&s),
                None => {
                    self.requests.insert(key, s);
                }
            }
        }
        for (key, n) in snapshot.failures {
            *self.failures.entry(key).or_default() += n;
        }
        for (name, c) in snapshot.checks {
            if !self.checks.contains_key(&name) {
                self.check_order.push(name.clone());
            }
            let t = self.checks.entry(name).or_default();
            t.pass += c.pass;
            t.fail += c.fail;
        }
        self.iterations += snapshot.iterations;
        self.failed_iterations += snapshot.failed_iterations;
        self.dropped_iterations += snapshot.dropped_iterations;
        self.interrupted_iterations += snapshot.interrupted_iterations;
        if let Some(late) = snapshot.lateness {
            self.lateness
                .get_or_insert_with(new_histogram)
                .add(&*late)
                .expect("auto-resizing");
        }
        for (protocol, n) in snapshot.protocols {
            *self.protocols.entry(protocol.to_owned()).or_default() += n;
        }
        if let Some(phases) = snapshot.phases {
            super::recorder::merge_phases(&mut self.phases, &phases);
        }
        self.auto_grouped += snapshot.auto_grouped;
        self.unfinished.merge(snapshot.unfinished);
    }

    /// Adds responses by protocol read back from a result (labels not known at build time).
    pub fn add_protocol(&mut self, protocol: String, n: u64) {
        *self.protocols.entry(protocol).or_default() += n;
    }

    /// Adds one closed second of another run at `row.second` of this one (`stampede
    /// merge`, segments lined up by the wall clock). Counts and users add exactly; the
    /// percentiles, kept per second without their histogram, become the highest of the
    /// parts': an upper bound of the merged second's (a quantile of a mixture never exceeds
    /// its parts' largest). The run's own percentiles come from merged histograms, exact.
    pub fn add_second(&mut self, row: Second) {
        let into = self.series.entry(row.second).or_insert_with(|| Second {
            second: row.second,
            ..Second::default()
        });
        into.requests += row.requests;
        into.failures += row.failures;
        into.users += row.users;
        into.iterations += row.iterations;
        into.dropped += row.dropped;
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        into.p50_ms = max(into.p50_ms, row.p50_ms);
        into.p95_ms = max(into.p95_ms, row.p95_ms);
        into.p99_ms = max(into.p99_ms, row.p99_ms);
        for (name, n) in row.by_name {
            let to = into.by_name.entry(name).or_default();
            to.requests += n.requests;
            to.failures += n.failures;
            to.p50_ms = max(to.p50_ms, n.p50_ms);
            to.p95_ms = max(to.p95_ms, n.p95_ms);
            to.p99_ms = max(to.p99_ms, n.p99_ms);
        }
    }

    fn close_before(&mut self, second: u64) {
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() >= second {
                break;
            }
            let OpenSecond {
                mut row,
                latency,
                by_name,
            } = entry.remove();
            (row.p50_ms, row.p95_ms, row.p99_ms) = percentiles(&latency);
            for (name, h) in by_name {
                if let Some(n) = row.by_name.get_mut(&name) {
                    (n.p50_ms, n.p95_ms, n.p99_ms) = percentiles(&h);
                }
            }
            self.series.insert(row.second, row);
        }
    }

    /// A second after every one merged so far: where something recorded after the run
    /// (teardown) goes without reopening a closed second.
    pub fn next_second(&self) -> u64 {
        let last = self.open.keys().chain(self.series.keys()).max();
        last.map_or(0, |s| s + 1)
    }

    /// Closes every open second; call once all workers have sent their last snapshot.
    pub fn finish(&mut self) {
        self.close_before(u64::MAX);
        for s in &mut self.scenarios {
            s.finish();
        }
    }

    /// Per (method, name), sorted by name then method.
    pub fn requests(&self) -> impl Iterator<Item = &RequestStats> {
        let mut v: Vec<_> = self.requests.values().collect();
        v.sort_by(|a, b| (&a.name, &a.method).cmp(&(&b.name, &b.method)));
        v.into_iter()
    }

    /// All requests of the run merged into one row.
    pub fn aggregated(&self) -> RequestStats {
        let mut all = RequestStats::new("", "Aggregated");
        for s in self.requests.values() {
            all.merge(s);
        }
        all
    }

    /// Every failure counted in the failures table: failed requests (any kind, unfinished
    /// ones included), `fail()`, script errors, failed hooks.
    pub fn all_failures(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Failures, most frequent first.
    pub fn failures(&self) -> Vec<(&FailureKey, u64)> {
        let mut v: Vec<_> = self.failures.iter().map(|(k, n)| (k, *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v
    }

    /// Checks by name.
    pub fn checks(&self) -> &BTreeMap<String, CheckCount> {
        &self.checks
    }

    /// Checks in the order they were first seen (the script's order, within a second's
    /// merge): how the tables list them.
    pub fn checks_in_order(&self) -> impl Iterator<Item = (&String, &CheckCount)> {
        self.check_order
            .iter()
            .filter_map(|name| self.checks.get_key_value(name))
    }

    /// Closed seconds in order (after [`Totals::finish`], all of them).
    pub fn series(&self) -> impl DoubleEndedIterator<Item = &Second> {
        self.series.values()
    }

    /// The most recent complete second, for the live view: every worker reports each
    /// second at the same aligned tick, so all seconds but the newest open one are whole.
    /// Its percentiles are filled in even though it is still open.
    pub fn latest(&self) -> Option<Second> {
        let mut open = self.open.values().rev();
        let newest = open.next();
        match open.next().or(newest) {
            Some(o) => {
                let mut row = o.row.clone();
                (row.p50_ms, row.p95_ms, row.p99_ms) = percentiles(&o.latency);
                Some(row)
            }
            None => self.series.values().next_back().cloned(),
        }
    }

    /// How long these totals were active: from the start of the first second in which an
    /// iteration or request was recorded to the end of the last (a scenario's own span,
    /// for its rates); `None` when nothing was.
    pub fn active_seconds(&self) -> Option<f64> {
        let active = |s: &&Second| s.iterations > 0 || s.requests > 0;
        let first = self.series.values().find(active)?.second;
        let last = self.series.values().rev().find(active)?.second;
        Some((last + 1).saturating_sub(first) as f64)
    }

    /// Looks up one (method, name).
    pub fn get(&self, method: &str, name: &str) -> Option<&RequestStats> {
        self.requests.get(&(method.to_owned(), name.to_owned()))
    }
}

/// Microseconds to milliseconds.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Recorder;
    use std::time::Duration;

    #[test]
    fn merges_workers_and_closes_seconds() {
        let mut t = Totals::default();
        for worker in 0..2u64 {
            let mut r = Recorder::default();
            for i in 1..=100u64 {
                r.request(
                    "GET",
                    "/a",
                    Duration::from_micros(i * 100 + worker),
                    1,
                    None,
                );
            }
            t.merge(1, 5, r.take());
        }
        t.finish();
        let a = t.get("GET", "/a").unwrap();
        assert_eq!(a.requests, 200);
        assert_eq!(a.latency.len(), 200);
        let s: Vec<_> = t.series().collect();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].requests, s[0].users), (200, 5));
        let p50 = s[0].p50_ms.unwrap();
        assert!((4.9..=5.1).contains(&p50), "{p50}");
    }

    #[test]
    fn checks_keep_the_order_first_seen() {
        let mut t = Totals::default();
        let mut r = Recorder::default();
        for name in ["zebra", "apple", "mango", "apple"] {
            r.check(name, true);
        }
        t.merge(1, 1, r.take());
        r.check("banana", false);
        r.check("zebra", true);
        t.merge(2, 1, r.take());
        let order: Vec<_> = t
            .checks_in_order()
            .map(|(n, c)| (n.as_str(), c.pass))
            .collect();
        assert_eq!(
            order,
            vec![("zebra", 2), ("apple", 2), ("mango", 1), ("banana", 0)]
        );
    }

    #[test]
    fn a_late_merge_goes_after_every_closed_second() {
        let mut t = Totals::default();
        for second in 1..=3 {
            let mut r = Recorder::default();
            r.request("GET", "/a", Duration::from_millis(1), 1, None);
            t.merge(second, 1, r.take());
        }
        t.finish();
        let late = t.next_second();
        assert_eq!(late, 4);
        let mut r = Recorder::default();
        r.request("GET", "/teardown", Duration::from_millis(1), 1, None);
        t.merge(late, 0, r.take());
        t.finish();
        let rows: Vec<_> = t.series().map(|s| (s.second, s.requests)).collect();
        assert_eq!(rows, vec![(1, 1), (2, 1), (3, 1), (4, 1)]);
    }
}
