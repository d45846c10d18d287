//! The end-of-run summary on the terminal: requests per name with latency percentiles,
//! failures grouped by cause, checks.

use std::io::{self, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use super::{Format, PERCENTILES, Report};
use crate::metrics::Totals;

/// The end-of-run summary as a format, so it can go to stdout or anywhere else.
pub struct Summary;

impl Format for Summary {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        write(out, report)
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header.to_vec());
    t
}

fn right_align(t: &mut Table, from: usize) {
    let n = t.column_count();
    for i in from..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn requests_table(report: &Report) -> Table {
    let mut header = vec!["Method", "Name", "Requests", "Fails", "Req/s", "Min", "Avg"];
    header.extend(PERCENTILES.iter().map(|(n, _)| *n));
    header.push("max");
    let mut t = table(&header);
    for row in report.rows() {
        t.add_row(row.cells());
    }
    right_align(&mut t, 2);
    t
}

/// Latency from the intended start next to the service time, for the requests that ran
/// on a schedule; `None` when none did.
/// With scenarios, each scenario's rows: the service time of the same requests whose
/// corrected latency is shown (requests of a name may also run off schedule elsewhere).
fn corrected_table(report: &Report) -> Option<Table> {
    let mut header = vec!["Method", "Name", "Latency"];
    header.extend(PERCENTILES.iter().map(|(n, _)| *n));
    header.push("max");
    let mut t = table(&header);
    let rows: Vec<(String, super::Row)> = if report.has_scenarios() {
        report
            .scenarios()
            .flat_map(|(info, totals)| {
                report
                    .rows_of(totals)
                    .into_iter()
                    .map(move |r| (format!("{}: ", info.name), r))
            })
            .collect()
    } else {
        report
            .rows()
            .into_iter()
            .map(|r| (String::new(), r))
            .collect()
    };
    for (prefix, row) in rows {
        let Some(c) = &row.corrected else { continue };
        let name = format!("{prefix}{}", row.name);
        let mut service = vec![row.method.clone(), name, "service".into()];
        service.extend(row.percentiles_ms.iter().map(|v| super::fmt_ms(*v)));
        service.push(super::fmt_ms(row.max_ms));
        t.add_row(service);
        let mut corrected = vec![String::new(), String::new(), "from intended start".into()];
        corrected.extend(c.percentiles_ms.iter().map(|v| super::fmt_ms(*v)));
        corrected.push(super::fmt_ms(c.max_ms));
        t.add_row(corrected);
    }
    right_align(&mut t, 3);
    (t.row_count() > 0).then_some(t)
}

/// One row per scenario: what it ran and what it measured.
fn scenarios_table(report: &Report) -> Table {
    let mut t = table(&super::SCENARIO_COLUMNS);
    for row in report.scenario_rows() {
        t.add_row(row);
    }
    right_align(&mut t, 2);
    t
}

fn failures_table(totals: &Totals) -> Table {
    let mut t = table(&["Count", "Kind", "Where", "Message"]);
    for (key, n) in totals.failures() {
        let at = if key.method.is_empty() {
            key.name.clone()
        } else {
            format!("{} {}", key.method, key.name)
        };
        t.add_row(vec![
            n.to_string(),
            key.kind.to_string(),
            at,
            key.message.clone(),
        ]);
    }
    right_align(&mut t, 0);
    if let Some(c) = t.column_mut(1) {
        c.set_cell_alignment(CellAlignment::Left);
    }
    if let Some(c) = t.column_mut(2) {
        c.set_cell_alignment(CellAlignment::Left);
    }
    if let Some(c) = t.column_mut(3) {
        c.set_cell_alignment(CellAlignment::Left);
    }
    t
}

fn checks_table(totals: &Totals) -> Table {
    let mut t = table(&["Check", "Passed", "Failed", "Pass rate"]);
    for (name, c) in totals.checks_in_order() {
        let total = c.pass + c.fail;
        let rate = 100.0 * c.pass as f64 / total.max(1) as f64;
        t.add_row(vec![
            name.clone(),
            c.pass.to_string(),
            c.fail.to_string(),
            format!("{rate:.2}%"),
        ]);
    }
    right_align(&mut t, 1);
    t
}

/// Writes the summary. Latencies are in milliseconds.
pub fn write(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let outcome = report.outcome;
    let totals = &outcome.totals;
    let seconds = report.seconds();
    let all = totals.aggregated();
    writeln!(out)?;
    writeln!(
        out,
        "Ran {:.1}s with {} users: {} task iterations ({} failed), {} requests, {} failed{}",
        seconds,
        outcome.users,
        totals.iterations,
        totals.failed_iterations,
        all.requests,
        all.failures,
        if outcome.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    )?;
    if let Some(segment) = &report.info.segment {
        writeln!(
            out,
            "Segment {segment} of the test: its share alone; `stampede merge` makes the whole."
        )?;
    }
    if let Some(merged) = &report.info.merged {
        let missing = if merged.missing.is_empty() {
            String::new()
        } else {
            format!("; missing: {}", merged.missing.join(", "))
        };
        writeln!(
            out,
            "Merged from {} files (segments {}){missing}.",
            merged.files.len(),
            if merged.segments.is_empty() {
                "none".to_owned()
            } else {
                merged.segments.join(", ")
            }
        )?;
    }
    if report.info.shape {
        writeln!(
            out,
            "Users followed the script's shape() (at most {}).",
            outcome.users
        )?;
    } else if let Some(rate) = report.info.arrival_rate {
        writeln!(
            out,
            "Iterations arrived at {rate:.1}/s (up to {} users); {} dropped: no idle user.",
            outcome.users, totals.dropped_iterations
        )?;
        if let Some(late) = &totals.lateness {
            writeln!(
                out,
                "They started after they were due by p50 {} ms, p99 {} ms, max {} ms.",
                super::fmt_ms(late.value_at_quantile(0.5) as f64 / 1000.0),
                super::fmt_ms(late.value_at_quantile(0.99) as f64 / 1000.0),
                super::fmt_ms(late.max() as f64 / 1000.0)
            )?;
        }
    } else if let Some(stages) = &report.info.stages {
        let text: Vec<String> = stages
            .iter()
            .map(|s| format!("{}s:{}", s.duration_s, s.target))
            .collect();
        writeln!(
            out,
            "Users followed the stages {} (peak {}).",
            text.join(", "),
            outcome.users
        )?;
    } else if outcome.users > 1 && !report.has_scenarios() {
        writeln!(
            out,
            "All {} users were started {:.2}s after the start.",
            outcome.users,
            outcome.spawned_after.as_secs_f64()
        )?;
    }
    if outcome.setup_failed {
        let why = if outcome.interrupted {
            "was interrupted"
        } else {
            "failed"
        };
        writeln!(
            out,
            "setup() {why}, so no user ran; see the failures below."
        )?;
    }
    if report.has_scenarios() {
        writeln!(out, "\nScenarios (latency in ms)")?;
        writeln!(out, "{}", scenarios_table(report))?;
    }
    writeln!(out, "\nRequests (latency in ms)")?;
    writeln!(out, "{}", requests_table(report))?;
    let plain_only = totals.protocols.keys().all(|p| *p == "HTTP/1.1");
    if !plain_only {
        let served: Vec<String> = totals
            .protocols
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect();
        writeln!(out, "Responses by protocol: {}", served.join(", "))?;
    }
    if let Some(rows) = super::timing_rows(totals) {
        let mut t = table(&super::TIMING_COLUMNS);
        for row in rows {
            t.add_row(row);
        }
        right_align(&mut t, 1);
        writeln!(
            out,
            "\nWhere the time went (ms; connecting and TLS are 0 on a reused connection)"
        )?;
        writeln!(out, "{t}")?;
    }
    if let Some(warning) = super::generator::warning(totals, None) {
        writeln!(out, "\n{warning}")?;
    }
    if let Some(t) = corrected_table(report) {
        writeln!(
            out,
            "\nOn a schedule: latency from when each request would have been sent had its \
             iteration started on time (corrected for coordinated omission), in ms"
        )?;
        writeln!(out, "{t}")?;
    }
    if totals.auto_grouped > 0 {
        writeln!(
            out,
            "note: {} requests had an id in their path and were grouped under a name with \
             [id] or [uuid]; pass `name:` in the request options to choose the group.",
            totals.auto_grouped
        )?;
    }
    if all.retries > 0 {
        writeln!(
            out,
            "note: {} requests were sent again on a fresh connection after a kept-alive one \
             turned out dead (idempotent methods only); the server may have received {} in all.",
            all.retries,
            all.requests + all.retries
        )?;
    }
    if totals.interrupted_iterations > 0 {
        writeln!(
            out,
            "note: {} iterations were cut short by the stop or a ramp-down (interrupted, not failed).",
            totals.interrupted_iterations
        )?;
    }
    let unfinished = totals.unfinished;
    if unfinished.requests > 0 {
        writeln!(
            out,
            "warning: {} requests had no response when the run ended (the longest had waited \
             {:.1}s); they are counted as failed, kind `unfinished`.",
            unfinished.requests, unfinished.longest_wait_s
        )?;
    }
    if !totals.failures().is_empty() {
        writeln!(out, "\nFailures")?;
        writeln!(out, "{}", failures_table(totals))?;
    }
    if !totals.checks().is_empty() {
        writeln!(out, "\nChecks")?;
        writeln!(out, "{}", checks_table(totals))?;
    }
    if !report.verdicts.is_empty() {
        writeln!(out, "\nThresholds")?;
        for v in &report.verdicts {
            writeln!(out, "  {v}")?;
        }
    }
    Ok(())
}
