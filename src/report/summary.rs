//! The end-of-run summary on the terminal: requests per name with latency percentiles,
//! failures grouped by cause, checks.

use std::io::{self, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use crate::metrics::{RequestStats, Totals};
use crate::runner::Outcome;

/// Percentile columns of the requests table, in order.
pub const PERCENTILES: [(&str, f64); 6] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("max", 1.0),
];

fn ms(us: u64) -> String {
    let v = us as f64 / 1000.0;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
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

fn request_row(s: &RequestStats, seconds: f64) -> Vec<String> {
    let mut row = vec![
        s.method.clone(),
        s.name.clone(),
        s.requests.to_string(),
        s.failures.to_string(),
        format!("{:.1}", s.requests as f64 / seconds),
        ms(s.latency.min()),
        ms(s.total_us.checked_div(s.requests).unwrap_or(0)),
    ];
    for (_, q) in PERCENTILES {
        let v = if q >= 1.0 {
            s.latency.max()
        } else {
            s.latency.value_at_quantile(q)
        };
        row.push(ms(v));
    }
    row
}

fn requests_table(totals: &Totals, seconds: f64) -> Table {
    let mut header = vec!["Method", "Name", "Requests", "Fails", "Req/s", "Min", "Avg"];
    header.extend(PERCENTILES.iter().map(|(n, _)| *n));
    let mut t = table(&header);
    for s in totals.requests() {
        t.add_row(request_row(s, seconds));
    }
    let all = totals.aggregated();
    t.add_row(request_row(&all, seconds));
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
    for (name, c) in totals.checks() {
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
pub fn write(out: &mut impl Write, outcome: &Outcome) -> io::Result<()> {
    let totals = &outcome.totals;
    let seconds = outcome.elapsed.as_secs_f64().max(0.001);
    let all = totals.aggregated();
    writeln!(out)?;
    writeln!(
        out,
        "Ran {:.1}s with {} users: {} task iterations, {} requests, {} failed{}",
        seconds,
        outcome.users,
        totals.iterations,
        all.requests,
        all.failures,
        if outcome.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    )?;
    if outcome.setup_failed {
        writeln!(
            out,
            "setup() failed, so no user ran; see the failures below."
        )?;
    }
    writeln!(out, "\nRequests (latency in ms)")?;
    writeln!(out, "{}", requests_table(totals, seconds))?;
    if totals.auto_grouped > 0 {
        writeln!(
            out,
            "note: {} requests had an id in their path and were grouped under a name with \
             [id] or [uuid]; pass `name:` in the request options to choose the group.",
            totals.auto_grouped
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
    Ok(())
}
