//! What a run reports: the terminal summary, thresholds, and the JSON, CSV and HTML files.
//! Every format reads the same [`Report`] and writes to any `impl Write`.

mod csv;
pub mod generator;
mod html;
mod json;
pub mod live;
pub mod summary;
pub mod thresholds;

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;

use crate::metrics::RequestStats;
use crate::runner::Outcome;
pub use csv::files as csv_files;
pub use html::Html;
pub use json::{Json, SCHEMA_VERSION};
pub use thresholds::{Threshold, ThresholdError, Verdict};

/// A report format: one file (or stream) written from a [`Report`].
pub trait Format {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()>;
}

/// What the reports of a run are asked for: decided with the [`Plan`](crate::plan::Plan),
/// kept apart from it because the runner does not read it.
#[derive(Debug, Clone, Default)]
pub struct Reporting {
    pub thresholds: Vec<Threshold>,
    pub fail_on_error: bool,
    pub outputs: Outputs,
    /// No live view.
    pub quiet: bool,
    /// `BENCH requests=N failures=N` at the end of stdout, for the peer rig.
    pub bench_line: bool,
    /// `--prometheus`: where to push live metrics.
    pub prometheus: Option<crate::prometheus::Config>,
}

/// How the run was set up, for the report headers.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunInfo {
    pub script: String,
    pub host: Option<String>,
    /// The most users at once (the peak of the stages when there are stages).
    pub users: u64,
    /// Users started per second; 0 when stages set the users.
    pub spawn_rate: f64,
    /// `--stages`/`options.stages`, if the users followed them.
    pub stages: Option<Vec<StageInfo>>,
    /// `--rate`: iterations started per second (the open model; the peak with stages).
    pub arrival_rate: Option<f64>,
    /// The script's `fn shape(elapsed)` set the users.
    pub shape: bool,
    pub run_time_s: Option<f64>,
    pub iterations: Option<u64>,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// Every scenario, in the plan's order (a script without `scenarios` has one, named
    /// `default`).
    pub scenarios: Vec<ScenarioInfo>,
    /// Identifies the test whatever the segment (the script and the options that shape
    /// the load): `stampede merge` refuses results whose differ.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// `--segment`: which share of the whole test this run was (`"2/3"`); `null` for the
    /// whole.
    #[serde(default)]
    pub segment: Option<String>,
    /// Set on a result made by `stampede merge`: what it was made of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergedInfo>,
    /// The scenarios as planned, for targets over time (not in a merged result).
    #[serde(skip)]
    pub plan: Vec<crate::plan::Scenario>,
}

/// What `stampede merge` combined.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct MergedInfo {
    pub files: Vec<String>,
    /// The segments present (`"1/3"`, …), in order.
    pub segments: Vec<String>,
    /// Segments of the test that no file held: the result is not the whole test.
    pub missing: Vec<String>,
    /// Merged with `--force` despite different fingerprints.
    pub forced: bool,
}

/// One scenario, as reported.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub executor: String,
    pub start_time_s: f64,
    /// The most users it may run at once.
    pub users: u64,
    /// Iterations started per second (the peak, for a ramping rate), for arrival rates.
    pub arrival_rate: Option<f64>,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl ScenarioInfo {
    fn of(s: &crate::plan::Scenario) -> Self {
        Self {
            name: s.name.clone(),
            executor: s.executor.name().to_owned(),
            start_time_s: s.start_time.as_secs_f64(),
            users: s.schedule.peak(),
            arrival_rate: match &s.schedule {
                crate::plan::Schedule::Rate { rate, .. } => Some(rate.peak()),
                _ => None,
            },
            tags: s.tags.clone(),
        }
    }
}

impl RunInfo {
    pub fn new(plan: &crate::plan::Plan) -> Self {
        // The top-level description is that of a script without scenarios.
        let implicit = match plan.scenarios.as_slice() {
            [only]
                if matches!(
                    only.executor,
                    crate::plan::Executor::Default | crate::plan::Executor::Shape
                ) =>
            {
                Some(&only.schedule)
            }
            _ => None,
        };
        Self {
            script: plan.script_name.clone(),
            host: plan.settings.host.clone(),
            users: plan.users,
            spawn_rate: plan.spawn_rate,
            stages: match implicit {
                Some(crate::plan::Schedule::Stages { stages, .. }) => Some(
                    stages
                        .iter()
                        .map(|s| StageInfo {
                            duration_s: s.duration.as_secs_f64(),
                            target: s.target,
                        })
                        .collect(),
                ),
                _ => None,
            },
            shape: matches!(implicit, Some(crate::plan::Schedule::Shape { .. })),
            arrival_rate: match implicit {
                Some(crate::plan::Schedule::Rate { rate, .. }) => Some(rate.peak()),
                _ => None,
            },
            run_time_s: plan.run_time.map(|d| d.as_secs_f64()),
            iterations: plan.iterations,
            started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            scenarios: plan.scenarios.iter().map(ScenarioInfo::of).collect(),
            fingerprint: Some(plan.fingerprint.clone()),
            segment: (!plan.settings.segment.is_whole()).then(|| plan.settings.segment.to_string()),
            merged: None,
            plan: plan.scenarios.clone(),
        }
    }
}

/// One stage of a ramp, as reported.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StageInfo {
    pub duration_s: f64,
    pub target: u64,
}

/// Everything the formats need.
pub struct Report<'a> {
    pub info: &'a RunInfo,
    pub outcome: &'a Outcome,
    pub verdicts: Vec<Verdict>,
}

impl<'a> Report<'a> {
    pub fn new(info: &'a RunInfo, outcome: &'a Outcome, thresholds: &[Threshold]) -> Self {
        let names: Vec<&str> = info.scenarios.iter().map(|s| s.name.as_str()).collect();
        let verdicts = thresholds::evaluate(
            thresholds,
            &outcome.totals,
            &names,
            outcome.elapsed.as_secs_f64(),
        );
        Self {
            info,
            outcome,
            verdicts,
        }
    }

    pub fn thresholds_failed(&self) -> bool {
        self.verdicts.iter().any(|v| !v.passed)
    }

    pub fn seconds(&self) -> f64 {
        self.outcome.elapsed.as_secs_f64().max(0.001)
    }

    /// One row per (method, name), then the `Aggregated` row, as every table shows them.
    pub fn rows(&self) -> Vec<Row> {
        self.rows_of(&self.outcome.totals)
    }

    /// The same rows for one part of the run (a scenario's totals), rates over the
    /// part's own active span.
    pub fn rows_of(&self, totals: &crate::metrics::Totals) -> Vec<Row> {
        let seconds = self.seconds_of(totals);
        let all = totals.aggregated();
        totals
            .requests()
            .chain(std::iter::once(&all))
            .map(|s| Row::of(s, seconds))
            .collect()
    }

    /// What rates are per: the run's duration for the run, a scenario's own active span
    /// for a scenario (one that ran for the last minute of ten is not a tenth as fast).
    pub fn seconds_of(&self, totals: &crate::metrics::Totals) -> f64 {
        if std::ptr::eq(totals, &self.outcome.totals) {
            return self.seconds();
        }
        totals
            .active_seconds()
            .map_or(self.seconds(), |s| s.min(self.seconds()).max(0.001))
    }

    /// Whether the script has `scenarios` of its own (not the one implicit scenario), so
    /// the reports show a row per scenario.
    pub fn has_scenarios(&self) -> bool {
        !matches!(self.info.scenarios.as_slice(),
            [only] if only.name == "default" && matches!(only.executor.as_str(), "default" | "shape"))
    }

    /// Each scenario's description with its totals, in the plan's order.
    pub fn scenarios(&self) -> impl Iterator<Item = (&ScenarioInfo, &crate::metrics::Totals)> {
        let empty: &crate::metrics::Totals = &EMPTY;
        self.info
            .scenarios
            .iter()
            .enumerate()
            .map(move |(i, info)| (info, self.outcome.totals.scenarios.get(i).unwrap_or(empty)))
    }
}

/// The columns of [`Report::scenario_rows`].
pub const SCENARIO_COLUMNS: [&str; 11] = [
    "Scenario",
    "Executor",
    "Users",
    "Iterations",
    "Failed",
    "Dropped",
    "Interrupted",
    "Requests",
    "Fails",
    "p95",
    "p99",
];

impl Report<'_> {
    /// One row of cells per scenario (the summary's and the HTML report's table): the
    /// scenario with its tags, what it ran, its counts and latency in ms.
    pub fn scenario_rows(&self) -> Vec<Vec<String>> {
        self.scenarios()
            .map(|(info, totals)| {
                let all = totals.aggregated();
                let q = |q: f64| {
                    if all.requests == 0 {
                        "-".to_string()
                    } else {
                        fmt_ms(all.latency.value_at_quantile(q) as f64 / 1000.0)
                    }
                };
                let name = if info.tags.is_empty() {
                    info.name.clone()
                } else {
                    let tags: Vec<String> =
                        info.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("{} ({})", info.name, tags.join(", "))
                };
                vec![
                    name,
                    info.executor.to_string(),
                    info.users.to_string(),
                    totals.iterations.to_string(),
                    totals.failed_iterations.to_string(),
                    totals.dropped_iterations.to_string(),
                    totals.interrupted_iterations.to_string(),
                    all.requests.to_string(),
                    all.failures.to_string(),
                    q(0.95),
                    q(0.99),
                ]
            })
            .collect()
    }
}

/// The totals of a scenario that recorded nothing (it never started).
static EMPTY: std::sync::LazyLock<crate::metrics::Totals> =
    std::sync::LazyLock::new(crate::metrics::Totals::default);

/// The percentiles every format shows, in this order; one source of truth.
pub const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p99.9", 0.999),
];

/// One (method, name) with its latency statistics in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub method: String,
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    pub bytes: u64,
    /// Attempts sent again after a pooled connection was found dead (idempotent requests
    /// only): the server may have received `requests + retries`.
    pub retries: u64,
    pub rps: f64,
    pub min_ms: f64,
    pub avg_ms: f64,
    /// Same order as [`PERCENTILES`].
    pub percentiles_ms: Vec<f64>,
    pub max_ms: f64,
    /// On a schedule (arrival rates, `constant_pacing`): latency from the intended start,
    /// corrected for coordinated omission; `None` otherwise.
    pub corrected: Option<Corrected>,
}

/// Percentiles of the latency from the intended start, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Corrected {
    /// Same order as [`PERCENTILES`].
    pub percentiles_ms: Vec<f64>,
    pub max_ms: f64,
}

impl Corrected {
    fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            percentiles_ms: PERCENTILES
                .iter()
                .map(|(_, q)| ms(h.value_at_quantile(*q)))
                .collect(),
            max_ms: ms(h.max()),
        }
    }
}

impl Row {
    pub fn of(s: &RequestStats, seconds: f64) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            method: s.method.clone(),
            name: s.name.clone(),
            requests: s.requests,
            failures: s.failures,
            bytes: s.bytes,
            retries: s.retries,
            rps: s.requests as f64 / seconds,
            min_ms: ms(s.latency.min()),
            avg_ms: ms(s.total_us.checked_div(s.requests).unwrap_or(0)),
            percentiles_ms: PERCENTILES
                .iter()
                .map(|(_, q)| ms(s.latency.value_at_quantile(*q)))
                .collect(),
            max_ms: ms(s.latency.max()),
            corrected: s
                .corrected
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(Corrected::of),
        }
    }

    /// The row as table cells, latencies in milliseconds (summary and HTML tables).
    pub fn cells(self) -> Vec<String> {
        let mut cells = vec![
            self.method,
            self.name,
            self.requests.to_string(),
            self.failures.to_string(),
            format!("{:.1}", self.rps),
            fmt_ms(self.min_ms),
            fmt_ms(self.avg_ms),
        ];
        cells.extend(self.percentiles_ms.iter().map(|v| fmt_ms(*v)));
        cells.push(fmt_ms(self.max_ms));
        cells
    }
}

/// Milliseconds as shown in tables: three significant figures or so.
/// The timing breakdown's header and rows (ms): one row per phase, or `None` when no
/// request got a response.
pub const TIMING_COLUMNS: [&str; 7] = ["Phase", "Avg", "p50", "p90", "p95", "p99", "Max"];

pub fn timing_rows(totals: &crate::metrics::Totals) -> Option<Vec<Vec<String>>> {
    let phases = totals.phases.as_ref()?;
    let ms = |us: u64| fmt_ms(us as f64 / 1000.0);
    Some(
        crate::metrics::PHASES
            .iter()
            .zip(phases.iter())
            .map(|(name, h)| {
                let name = if *name == "queueing" {
                    "queueing (stampede's, not in latency)"
                } else {
                    name
                };
                let mut row = vec![name.to_owned(), fmt_ms(h.mean() / 1000.0)];
                row.extend(
                    [0.5, 0.9, 0.95, 0.99]
                        .iter()
                        .map(|q| ms(h.value_at_quantile(*q))),
                );
                row.push(ms(h.max()));
                row
            })
            .collect(),
    )
}

pub fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Which files to write, from the flags.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub csv: Option<String>,
    pub html: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("could not write {path}: {source}")]
pub struct OutputError {
    pub path: PathBuf,
    pub source: io::Error,
}

fn write_to(file: &std::path::Path, format: &dyn Format, report: &Report) -> io::Result<()> {
    let mut w = io::BufWriter::new(std::fs::File::create(file)?);
    format.write(report, &mut w)?;
    w.flush()
}

/// Writes one file. A regular file (or a new one) is written beside it and renamed into
/// place, so a write that fails half-way (a full disk, a second Ctrl-C) leaves the earlier
/// complete file (the one written before `teardown`) rather than a truncated one. Anything
/// else (`/dev/stdout`, a FIFO, a symlink) is written in place.
fn write_file(path: PathBuf, format: &dyn Format, report: &Report) -> Result<(), OutputError> {
    let in_place = std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file());
    let result = match (in_place, path.file_name()) {
        (false, Some(name)) => {
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".{}.tmp", std::process::id()));
            let tmp = path.with_file_name(tmp_name);
            let written =
                write_to(&tmp, format, report).and_then(|()| std::fs::rename(&tmp, &path));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written
        }
        _ => write_to(&path, format, report),
    };
    result.map_err(|source| OutputError { path, source })
}

impl Outputs {
    /// Every file to write, with its format.
    fn jobs(&self) -> Vec<(PathBuf, Box<dyn Format>)> {
        let mut jobs: Vec<(PathBuf, Box<dyn Format>)> = Vec::new();
        if let Some(p) = &self.json {
            jobs.push((p.clone(), Box::new(Json)));
        }
        if let Some(prefix) = &self.csv {
            for (suffix, f) in csv::files() {
                jobs.push((PathBuf::from(format!("{prefix}_{suffix}.csv")), f));
            }
        }
        if let Some(p) = &self.html {
            jobs.push((p.clone(), Box::new(Html)));
        }
        jobs
    }

    /// Checks that every file can be written, before any traffic: an unwritable path must
    /// not be found only after a long run. Leaves existing files as they are and removes
    /// the ones it had to create.
    pub fn check(&self) -> Result<(), OutputError> {
        for (path, _) in self.jobs() {
            writable(&path).map_err(|source| OutputError { path, source })?;
        }
        Ok(())
    }
}

fn writable(path: &std::path::Path) -> io::Result<()> {
    let open = || std::fs::OpenOptions::new().write(true).open(path).map(drop);
    if std::fs::symlink_metadata(path).is_ok() {
        return open();
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => std::fs::remove_file(path),
        // Someone else made it meanwhile: theirs, leave it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => open(),
        Err(e) => Err(e),
    }
}

/// Writes every requested file; tries them all and returns the first error.
pub fn write_outputs(report: &Report, outputs: &Outputs) -> Result<Vec<PathBuf>, OutputError> {
    let mut written = Vec::new();
    let mut first_error = None;
    for (path, format) in outputs.jobs() {
        match write_file(path.clone(), format.as_ref(), report) {
            Ok(()) => written.push(path),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(written),
    }
}
