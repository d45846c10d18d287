//! `--json FILE`: the whole result, with each latency histogram serialized (HdrHistogram V2,
//! base64) so separate runs can later be merged exactly. Schema: `docs/schema/result-v2.json`
//! (version 2 added `scenarios`, `corrected` latency and per-second iterations; every field
//! of version 1 is still there with the same meaning).

use std::io::{self, Write};

use base64::Engine as _;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use serde::Serialize;

use super::{Format, Report, Row, RunInfo, Verdict};
use crate::metrics::{CheckCount, FailureKind, RequestStats, Second, Totals, Unfinished};

/// Bumped on any incompatible change to the file's shape.
pub const SCHEMA_VERSION: u32 = 2;

pub struct Json;

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    version: u32,
    run: &'a RunInfo,
    duration_s: f64,
    /// Seconds from the start until the last user was spawned.
    spawn_s: f64,
    /// When the run started (Unix time, ms): where `stampede merge` lines segments up.
    started_unix_ms: u64,
    /// `--start-at`: seconds after the agreed moment the run started (0 if on time).
    start_late_s: Option<f64>,
    interrupted: bool,
    setup_failed: bool,
    #[serde(flatten)]
    whole: Part<'a>,
    thresholds: &'a [Verdict],
    /// Each scenario's own numbers (they add up to the run's, but for `setup` and
    /// `teardown`, which belong to none).
    scenarios: Vec<ScenarioPart<'a>>,
}

#[derive(Serialize)]
struct ScenarioPart<'a> {
    #[serde(flatten)]
    info: &'a super::ScenarioInfo,
    #[serde(flatten)]
    part: Part<'a>,
}

/// The numbers of the whole run, or of one scenario.
#[derive(Serialize)]
struct Part<'a> {
    iterations: u64,
    /// Iterations that ended failed: a request's `expect`, `fail()`, a script error.
    failed_iterations: u64,
    /// `--rate`: iterations that found no idle user.
    dropped_iterations: u64,
    /// Iterations cut short by the stop or a ramp-down.
    interrupted_iterations: u64,
    /// `--rate`: how late iterations started after they were due (ms), or null.
    iteration_lateness_ms: Option<Lateness>,
    /// The same as a histogram (µs, HdrHistogram V2, base64), for an exact merge.
    iteration_lateness_histogram: Option<String>,
    /// k6's timing breakdown of the requests that got a response (ms), by phase, or null.
    timings_ms: Option<std::collections::BTreeMap<&'static str, Timing>>,
    /// The same as histograms (µs, HdrHistogram V2, base64), by phase.
    timings_histograms: Option<std::collections::BTreeMap<&'static str, String>>,
    /// Responses by protocol and TLS version (`"HTTP/2.0 over tls1.3": 1200`).
    protocols: &'a std::collections::BTreeMap<String, u64>,
    /// Responses whose latency ended when their last bytes reached the socket (the
    /// kernel's receive stamp: HTTP/1.1), and those timed when the user's task saw them
    /// (HTTP/2, read by the h2 crate).
    latency_timed_at: TimedAt,
    auto_grouped_requests: u64,
    /// Requests still waiting for a response when the run ended (also in `failures`).
    unfinished: Unfinished,
    requests: Vec<Request>,
    aggregated: Request,
    failures: Vec<Failure<'a>>,
    checks: Vec<Check<'a>>,
    series: Vec<&'a Second>,
}

#[derive(Serialize)]
struct TimedAt {
    socket: u64,
    task: u64,
}

impl TimedAt {
    fn of(protocols: &std::collections::BTreeMap<String, u64>) -> Self {
        let task: u64 = protocols
            .iter()
            .filter(|(label, _)| label.starts_with("HTTP/2"))
            .map(|(_, n)| n)
            .sum();
        Self {
            socket: protocols.values().sum::<u64>() - task,
            task,
        }
    }
}

#[derive(Serialize)]
struct Request {
    #[serde(flatten)]
    row: Row,
    /// HdrHistogram V2 (uncompressed) of latencies in microseconds, base64.
    histogram: String,
    /// The same for the latency from the intended start, when there is one.
    corrected_histogram: Option<String>,
    /// The exact sum of the latencies (µs), for an exact mean after a merge.
    sum_us: u64,
}

#[derive(Serialize)]
struct Failure<'a> {
    kind: FailureKind,
    method: &'a str,
    name: &'a str,
    message: &'a str,
    count: u64,
}

#[derive(Serialize)]
struct Lateness {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Lateness {
    fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(h.value_at_quantile(0.5)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// One phase of the timing breakdown over the run, in ms.
#[derive(Serialize)]
struct Timing {
    avg: f64,
    p50: f64,
    p90: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Timing {
    fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            avg: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

fn timings(totals: &Totals) -> Option<std::collections::BTreeMap<&'static str, Timing>> {
    let phases = totals.phases.as_ref()?;
    Some(
        crate::metrics::PHASES
            .iter()
            .zip(phases.iter())
            .map(|(name, h)| (*name, Timing::of(h)))
            .collect(),
    )
}

#[derive(Serialize)]
struct Check<'a> {
    name: &'a str,
    #[serde(flatten)]
    count: CheckCount,
}

/// The base64 text of `s`'s histogram in HdrHistogram's V2 format.
pub fn encode_histogram(s: &RequestStats) -> String {
    encode(&s.latency)
}

fn encode(h: &hdrhistogram::Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing to memory cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn request(s: &RequestStats, seconds: f64) -> Request {
    Request {
        row: Row::of(s, seconds),
        histogram: encode_histogram(s),
        corrected_histogram: s.corrected.as_ref().filter(|h| !h.is_empty()).map(encode),
        sum_us: s.total_us,
    }
}

impl<'a> Part<'a> {
    fn of(totals: &'a Totals, seconds: f64) -> Self {
        Self {
            iterations: totals.iterations,
            failed_iterations: totals.failed_iterations,
            dropped_iterations: totals.dropped_iterations,
            interrupted_iterations: totals.interrupted_iterations,
            iteration_lateness_ms: totals.lateness.as_ref().map(Lateness::of),
            iteration_lateness_histogram: totals.lateness.as_ref().map(encode),
            timings_ms: timings(totals),
            timings_histograms: totals.phases.as_ref().map(|phases| {
                crate::metrics::PHASES
                    .iter()
                    .zip(phases.iter())
                    .map(|(name, h)| (*name, encode(h)))
                    .collect()
            }),
            protocols: &totals.protocols,
            latency_timed_at: TimedAt::of(&totals.protocols),
            auto_grouped_requests: totals.auto_grouped,
            unfinished: totals.unfinished,
            requests: totals.requests().map(|s| request(s, seconds)).collect(),
            aggregated: request(&totals.aggregated(), seconds),
            failures: totals
                .failures()
                .into_iter()
                .map(|(k, n)| Failure {
                    kind: k.kind,
                    method: &k.method,
                    name: &k.name,
                    message: &k.message,
                    count: n,
                })
                .collect(),
            checks: totals
                .checks_in_order()
                .map(|(name, count)| Check {
                    name,
                    count: *count,
                })
                .collect(),
            series: totals.series().collect(),
        }
    }
}

impl Format for Json {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let totals = &report.outcome.totals;
        let seconds = report.seconds();
        let doc = Document {
            schema: "stampede-result",
            version: SCHEMA_VERSION,
            run: report.info,
            duration_s: seconds,
            spawn_s: report.outcome.spawned_after.as_secs_f64(),
            started_unix_ms: report
                .outcome
                .started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            start_late_s: report.outcome.start_late.map(|d| d.as_secs_f64()),
            interrupted: report.outcome.interrupted,
            setup_failed: report.outcome.setup_failed,
            whole: Part::of(totals, seconds),
            thresholds: &report.verdicts,
            scenarios: report
                .scenarios()
                .map(|(info, totals)| ScenarioPart {
                    info,
                    part: Part::of(totals, report.seconds_of(totals)),
                })
                .collect(),
        };
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)
    }
}
