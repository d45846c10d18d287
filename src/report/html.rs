//! `--html FILE`: one self-contained page (inline CSS and SVG, no scripts, nothing fetched)
//! with the run settings, tables and charts over time. Everything that came from the server
//! or the script is escaped.

use std::fmt::Write as _;
use std::io::{self, Write};

use html_escape::encode_text;
use plotters::prelude::*;

use super::{Format, PERCENTILES, Report, Row};
use crate::metrics::Second;

pub struct Html;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 260;
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

type Series<'a> = (&'a str, Vec<(f64, f64)>);

/// Per scenario: the users of each on one chart, and for each what its schedule wanted
/// against what it achieved (iterations per second for an arrival rate, users otherwise).
fn scenario_charts(report: &Report) -> String {
    let mut out = String::new();
    let parts: Vec<_> = report.scenarios().collect();
    let users: Vec<Series> = parts
        .iter()
        .map(|(info, totals)| {
            let series: Vec<&Second> = totals.series().collect();
            (
                info.name.as_str(),
                points(&series, |s| Some(s.users as f64)),
            )
        })
        .collect();
    out.push_str(&line_chart("Users per scenario", "users", &users));
    for ((info, totals), plan) in parts.iter().zip(&report.info.plan) {
        let series: Vec<&Second> = totals.series().collect();
        let end = series.last().map_or(0, |s| s.second);
        // The schedule over the second ending at each mark, as the achieved row covers.
        let wanted = |f: &dyn Fn(std::time::Duration) -> f64| -> Vec<(f64, f64)> {
            (1..=end)
                .filter_map(|second| {
                    let t = std::time::Duration::from_secs(second)
                        .checked_sub(plan.start_time)?
                        .saturating_sub(std::time::Duration::from_millis(500));
                    Some((second as f64, f(t)))
                })
                .collect()
        };
        let title = format!("{}: target and achieved", info.name);
        let chart = match &plan.schedule {
            crate::plan::Schedule::Rate { rate, .. } => line_chart(
                &title,
                "iterations/s",
                &[
                    ("achieved", points(&series, |s| Some(s.iterations as f64))),
                    ("target", wanted(&|t| rate.at(t))),
                ],
            ),
            crate::plan::Schedule::Shape { .. } => continue,
            schedule => line_chart(
                &title,
                "users",
                &[
                    ("achieved", points(&series, |s| Some(s.users as f64))),
                    ("target", wanted(&|t| schedule.target_at(t) as f64)),
                ],
            ),
        };
        out.push_str(&chart);
    }
    out
}

/// A line chart over the run's seconds, drawn by plotters into an SVG string.
fn line_chart(title: &str, y_label: &str, series: &[Series]) -> String {
    let mut svg = String::new();
    let x_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(1.0_f64, f64::max);
    let y_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.1;
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(55)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
            chart
                .configure_mesh()
                .x_desc("seconds")
                .y_desc(y_label)
                .light_line_style(RGBColor(235, 235, 235))
                .draw()?;
            for (i, (label, points)) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))?
                    .label(*label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
            }
            if series.len() > 1 {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()?;
            }
            root.present()?;
            Ok(())
        };
        if let Err(e) = draw() {
            return format!("<p>chart unavailable: {}</p>", encode_text(&e.to_string()));
        }
    }
    svg
}

/// Latency distribution of all requests: how many fell in each of 40 equal buckets up to
/// the 99.9th percentile (the slowest 0.1% are left out so the shape stays readable).
fn distribution_chart(report: &Report) -> String {
    let all = report.outcome.totals.aggregated();
    if all.latency.is_empty() {
        return "<p>No requests.</p>".into();
    }
    let hi = all.latency.value_at_quantile(0.999).max(1) as f64 / 1000.0;
    let lo = all.latency.min() as f64 / 1000.0;
    let buckets = 40;
    let width = ((hi - lo) / buckets as f64).max(0.001);
    let mut counts = vec![0u64; buckets];
    for v in all.latency.iter_recorded() {
        let ms = v.value_iterated_to() as f64 / 1000.0;
        let i = (((ms - lo) / width) as usize).min(buckets - 1);
        if ms <= hi {
            counts[i] += v.count_at_value();
        }
    }
    let y_max = counts.iter().copied().max().unwrap_or(1) as f64 * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption("Latency distribution (up to p99.9)", ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(55)
                .build_cartesian_2d(lo..hi + width, 0.0..y_max)?;
            chart
                .configure_mesh()
                .x_desc("latency (ms)")
                .y_desc("requests")
                .draw()?;
            chart.draw_series(counts.iter().enumerate().map(|(i, c)| {
                let x0 = lo + i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, *c as f64)], COLORS[0].filled())
            }))?;
            root.present()?;
            Ok(())
        };
        if let Err(e) = draw() {
            return format!("<p>chart unavailable: {}</p>", encode_text(&e.to_string()));
        }
    }
    svg
}

fn points(series: &[&Second], f: impl Fn(&Second) -> Option<f64>) -> Vec<(f64, f64)> {
    series
        .iter()
        .filter_map(|s| f(s).map(|v| (s.second as f64, v)))
        .collect()
}

fn table(out: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    out.push_str("<table><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", encode_text(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            // Numbers right, text left, whatever the column.
            let numeric = cell
                .trim_end_matches(['%', '/', 's'])
                .parse::<f64>()
                .is_ok();
            let class = if numeric { "n" } else { "t" };
            let _ = write!(out, "<td class=\"{class}\">{}</td>", encode_text(&cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;\
text-align:left}td.n{text-align:right}\
.pass{color:#080}.fail{color:#c00}.charts svg{display:block;margin:1em 0}";

impl Format for Html {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let info = report.info;
        let totals = &report.outcome.totals;
        let mut h = String::with_capacity(64 * 1024);
        let _ = write!(
            h,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>stampede report: {}</title><style>{STYLE}</style></head><body>\
             <h1>stampede report</h1>",
            encode_text(&info.script)
        );
        h.push_str("<h2>Run</h2>");
        let setting = |k: &str, v: String| vec![k.to_owned(), v];
        table(
            &mut h,
            &["Setting", "Value"],
            vec![
                setting("Script", info.script.clone()),
                setting("Host", info.host.clone().unwrap_or_default()),
                setting("Started", info.started_at.clone()),
                setting("Users", info.users.to_string()),
                match &info.stages {
                    Some(stages) => setting(
                        "Stages",
                        stages
                            .iter()
                            .map(|s| format!("{}s:{}", s.duration_s, s.target))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    None => setting("Spawn rate", format!("{}/s", info.spawn_rate)),
                },
                setting("Duration", format!("{:.1} s", report.seconds())),
                setting("Task iterations", totals.iterations.to_string()),
                setting("Failed iterations", totals.failed_iterations.to_string()),
                setting("Retried requests", totals.aggregated().retries.to_string()),
                setting(
                    "Unfinished requests",
                    format!(
                        "{} (longest wait {:.1} s)",
                        totals.unfinished.requests, totals.unfinished.longest_wait_s
                    ),
                ),
                setting("Interrupted", report.outcome.interrupted.to_string()),
            ],
        );
        if !report.verdicts.is_empty() {
            h.push_str("<h2>Thresholds</h2><ul>");
            for v in &report.verdicts {
                let class = if v.passed { "pass" } else { "fail" };
                let _ = write!(
                    h,
                    "<li class=\"{class}\">{}</li>",
                    encode_text(&v.to_string())
                );
            }
            h.push_str("</ul>");
        }
        if report.has_scenarios() {
            h.push_str("<h2>Scenarios (latency in ms)</h2>");
            table(&mut h, &super::SCENARIO_COLUMNS, report.scenario_rows());
        }
        h.push_str("<h2>Requests (latency in ms)</h2>");
        let mut header = vec!["Method", "Name", "Requests", "Fails", "Req/s", "Min", "Avg"];
        header.extend(PERCENTILES.iter().map(|(n, _)| *n));
        header.push("Max");
        table(
            &mut h,
            &header,
            report.rows().into_iter().map(Row::cells).collect(),
        );
        if let Some(rows) = super::timing_rows(totals) {
            h.push_str(
                "<h2>Where the time went (ms; connecting and TLS are 0 on a reused connection)</h2>",
            );
            table(&mut h, &super::TIMING_COLUMNS, rows);
        }
        let failures = totals.failures();
        if !failures.is_empty() {
            h.push_str("<h2>Failures</h2>");
            let rows = failures
                .iter()
                .map(|(k, n)| {
                    let at = format!("{} {}", k.method, k.name).trim().to_owned();
                    vec![n.to_string(), k.kind.to_string(), at, k.message.clone()]
                })
                .collect();
            table(&mut h, &["Count", "Kind", "Where", "Message"], rows);
        }
        if !totals.checks().is_empty() {
            h.push_str("<h2>Checks</h2>");
            let rows = totals
                .checks_in_order()
                .map(|(n, c)| vec![n.clone(), c.pass.to_string(), c.fail.to_string()])
                .collect();
            table(&mut h, &["Check", "Passed", "Failed"], rows);
        }
        let series: Vec<&Second> = totals.series().collect();
        h.push_str("<h2>Over time</h2><div class=\"charts\">");
        h.push_str(&line_chart(
            "Requests per second",
            "req/s",
            &[("requests", points(&series, |s| Some(s.requests as f64)))],
        ));
        h.push_str(&line_chart(
            "Failures per second",
            "failures/s",
            &[("failures", points(&series, |s| Some(s.failures as f64)))],
        ));
        h.push_str(&line_chart(
            "Users",
            "users",
            &[("users", points(&series, |s| Some(s.users as f64)))],
        ));
        h.push_str(&line_chart(
            "Latency",
            "ms",
            &[
                ("p50", points(&series, |s| s.p50_ms)),
                ("p95", points(&series, |s| s.p95_ms)),
                ("p99", points(&series, |s| s.p99_ms)),
            ],
        ));
        h.push_str(&distribution_chart(report));
        if report.has_scenarios() {
            h.push_str(&scenario_charts(report));
        }
        h.push_str("</div></body></html>\n");
        out.write_all(h.as_bytes())
    }
}
