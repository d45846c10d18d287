//! `--csv PREFIX`: `PREFIX_stats.csv`, `PREFIX_failures.csv`, `PREFIX_history.csv` and
//! `PREFIX_scenarios.csv`, with the columns documented in `docs/outputs/csv.md`. Latencies
//! in milliseconds.

use std::io::{self, Write};

use super::{Format, PERCENTILES, Report};

/// The four files, by suffix.
pub fn files() -> Vec<(&'static str, Box<dyn Format>)> {
    vec![
        ("stats", Box::new(Stats)),
        ("failures", Box::new(Failures)),
        ("history", Box::new(History)),
        ("scenarios", Box::new(Scenarios)),
    ]
}

fn writer(out: &mut dyn Write) -> csv::Writer<&mut dyn Write> {
    csv::Writer::from_writer(out)
}

fn to_io(e: csv::Error) -> io::Error {
    io::Error::other(e)
}

/// Per (method, name), plus an `Aggregated` row, as in the summary table.
struct Stats;

impl Format for Stats {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut w = writer(out);
        let mut header: Vec<String> = [
            "method", "name", "requests", "failures", "bytes", "retries", "rps", "min_ms", "avg_ms",
        ]
        .map(String::from)
        .to_vec();
        header.extend(PERCENTILES.iter().map(|(n, _)| format!("{n}_ms")));
        header.push("max_ms".into());
        w.write_record(&header).map_err(to_io)?;
        for r in report.rows() {
            let mut rec = vec![
                r.method,
                r.name,
                r.requests.to_string(),
                r.failures.to_string(),
                r.bytes.to_string(),
                r.retries.to_string(),
                format!("{:.3}", r.rps),
                format!("{:.3}", r.min_ms),
                format!("{:.3}", r.avg_ms),
            ];
            rec.extend(r.percentiles_ms.iter().map(|v| format!("{v:.3}")));
            rec.push(format!("{:.3}", r.max_ms));
            w.write_record(&rec).map_err(to_io)?;
        }
        w.flush()
    }
}

struct Failures;

impl Format for Failures {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut w = writer(out);
        w.write_record(["count", "kind", "method", "name", "message"])
            .map_err(to_io)?;
        for (k, n) in report.outcome.totals.failures() {
            w.write_record([
                n.to_string(),
                k.kind.to_string(),
                k.method.clone(),
                k.name.clone(),
                k.message.clone(),
            ])
            .map_err(to_io)?;
        }
        w.flush()
    }
}

/// One row per second per request name; the rows of a name add up to its total.
struct History;

impl Format for History {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut w = writer(out);
        w.write_record([
            "second", "users", "method", "name", "requests", "failures", "p50_ms", "p95_ms",
            "p99_ms",
        ])
        .map_err(to_io)?;
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
        for sec in report.outcome.totals.series() {
            for (key, n) in &sec.by_name {
                let (method, name) = key.split_once(' ').unwrap_or(("", key));
                w.write_record([
                    sec.second.to_string(),
                    sec.users.to_string(),
                    method.to_owned(),
                    name.to_owned(),
                    n.requests.to_string(),
                    n.failures.to_string(),
                    opt(n.p50_ms),
                    opt(n.p95_ms),
                    opt(n.p99_ms),
                ])
                .map_err(to_io)?;
            }
        }
        w.flush()
    }
}

/// Per scenario, per (method, name) plus an `Aggregated` row, with the scenario's executor
/// and tags as columns (tags as `key=value` pairs joined by `;`). The iteration counts are
/// the scenario's, on its `Aggregated` row. The corrected columns are filled where the
/// scenario ran on a schedule.
struct Scenarios;

impl Format for Scenarios {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut w = writer(out);
        let mut header: Vec<String> = [
            "scenario", "executor", "tags", "method", "name", "requests", "failures", "rps",
        ]
        .map(String::from)
        .to_vec();
        header.extend(PERCENTILES.iter().map(|(n, _)| format!("{n}_ms")));
        header.push("max_ms".into());
        header.extend(PERCENTILES.iter().map(|(n, _)| format!("corrected_{n}_ms")));
        header.extend(
            [
                "iterations",
                "failed_iterations",
                "dropped_iterations",
                "interrupted_iterations",
            ]
            .map(String::from),
        );
        w.write_record(&header).map_err(to_io)?;
        let ms = |v: &f64| format!("{v:.3}");
        for (info, totals) in report.scenarios() {
            let tags: Vec<String> = info.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            for r in report.rows_of(totals) {
                let aggregated = r.method.is_empty() && r.name == "Aggregated";
                let mut rec = vec![
                    info.name.clone(),
                    info.executor.to_string(),
                    tags.join(";"),
                    r.method,
                    r.name,
                    r.requests.to_string(),
                    r.failures.to_string(),
                    format!("{:.3}", r.rps),
                ];
                rec.extend(r.percentiles_ms.iter().map(ms));
                rec.push(ms(&r.max_ms));
                match &r.corrected {
                    Some(c) => rec.extend(c.percentiles_ms.iter().map(ms)),
                    None => rec.extend(PERCENTILES.iter().map(|_| String::new())),
                }
                let counts = [
                    totals.iterations,
                    totals.failed_iterations,
                    totals.dropped_iterations,
                    totals.interrupted_iterations,
                ];
                rec.extend(counts.iter().map(|n| {
                    if aggregated {
                        n.to_string()
                    } else {
                        String::new()
                    }
                }));
                w.write_record(&rec).map_err(to_io)?;
            }
        }
        w.flush()
    }
}
