//! Thresholds: pass/fail criteria that set the exit code, like k6's.
//!
//! Syntax: `[SCOPE:] METRIC OP VALUE`, for example `p95 < 250ms`, `p99.9 < 1s`,
//! `failure_rate < 1%`, `rps > 100`, `checks > 99%`, `GET /cities/[id]: p95 < 200ms`.
//! Without a scope a threshold applies to the whole run; a scope names a request (`NAME` or
//! `METHOD NAME`) or, for `checks`, a check. A scope may start with `scenario=NAME` (k6's
//! `{scenario:NAME}`): the threshold then applies to that scenario's numbers only, e.g.
//! `scenario=buyers: dropped_iterations < 1` or `scenario=buyers GET /cart: p95 < 300ms`.
//! `corrected_pN` is a percentile of the latency from the intended start (arrival rates,
//! `constant_pacing`): corrected for coordinated omission.

use std::fmt;

use serde::Serialize;

use crate::metrics::{RequestStats, Totals};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// A latency percentile, 0–100 (`p95`, `p99.9`; `med` is `p50`).
    Percentile(f64),
    /// A percentile of the latency from the intended start (`corrected_p99`;
    /// `corrected_max` is `corrected_p100`).
    Corrected(f64),
    Min,
    Max,
    Avg,
    /// Failed requests / requests.
    FailureRate,
    /// Without a scope: every failure in the failures table (failed requests, `fail()`,
    /// script errors, failed hooks, unfinished requests). With a scope: that request's.
    Failures,
    /// Iterations that ended failed (a request's `expect`, `fail()`, a script error).
    FailedIterations,
    /// Failed iterations / iterations.
    IterationFailureRate,
    /// Arrival-rate iterations that found no idle user.
    DroppedIterations,
    Requests,
    /// Requests per second over the run.
    Rps,
    /// Passed checks / checks.
    Checks,
    /// A percentile of one phase of the timing breakdown (a name of `metrics::PHASES`),
    /// e.g. `waiting_p95`, `connecting_max`: the whole run's or a scenario's.
    Phase {
        name: &'static str,
        percentile: f64,
    },
}

impl Metric {
    fn is_latency(self) -> bool {
        matches!(
            self,
            Self::Percentile(_)
                | Self::Corrected(_)
                | Self::Phase { .. }
                | Self::Min
                | Self::Max
                | Self::Avg
        )
    }

    fn is_rate(self) -> bool {
        matches!(
            self,
            Self::FailureRate | Self::Checks | Self::IterationFailureRate
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            Op::Lt => measured < limit,
            Op::Le => measured <= limit,
            Op::Gt => measured > limit,
            Op::Ge => measured >= limit,
        }
    }
}

/// One parsed threshold. Latency limits are in milliseconds, rates are fractions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    pub text: String,
    /// `scenario=NAME`: only that scenario's numbers.
    pub scenario: Option<String>,
    pub scope: Option<String>,
    pub metric: Metric,
    pub op: Op,
    pub limit: f64,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "threshold `{text}`: {reason} (examples: `p95 < 250ms`, `failure_rate < 1%`, `GET /items: rps > 10`)"
)]
pub struct ThresholdError {
    pub text: String,
    pub reason: String,
}

fn metric(word: &str) -> Result<Metric, String> {
    Ok(match word {
        "min" => Metric::Min,
        "max" => Metric::Max,
        "avg" | "mean" => Metric::Avg,
        "med" | "median" => Metric::Percentile(50.0),
        "failure_rate" | "error_rate" => Metric::FailureRate,
        "failures" => Metric::Failures,
        "failed_iterations" => Metric::FailedIterations,
        "iteration_failure_rate" => Metric::IterationFailureRate,
        "dropped_iterations" => Metric::DroppedIterations,
        "requests" => Metric::Requests,
        "rps" | "req_rate" => Metric::Rps,
        "checks" => Metric::Checks,
        "corrected_max" => Metric::Corrected(100.0),
        w if phase_metric(w).is_some() => phase_metric(w).expect("just matched")?,
        c if c.starts_with("corrected_p") => match metric(&c["corrected_".len()..])? {
            Metric::Percentile(q) => Metric::Corrected(q),
            _ => unreachable!("a word starting with p is a percentile"),
        },
        p if p.starts_with('p') => {
            let q: f64 = p[1..]
                .parse()
                .map_err(|_| format!("`{p}` is not a percentile like p95 or p99.9"))?;
            if !(0.0..=100.0).contains(&q) {
                return Err(format!("`{p}`: a percentile is between p0 and p100"));
            }
            Metric::Percentile(q)
        }
        other => {
            return Err(format!(
                "unknown metric `{other}` (known: pN, corrected_pN, corrected_max, min, max, avg, med, failure_rate, failures, failed_iterations, iteration_failure_rate, dropped_iterations, requests, rps, checks, and the timing phases connecting, tls_handshaking, sending, waiting, receiving as PHASE_pN or PHASE_max)"
            ));
        }
    })
}

/// `waiting_p95`, `tls_handshaking_max`…: a phase of the timing breakdown, if `word` names
/// one.
fn phase_metric(word: &str) -> Option<Result<Metric, String>> {
    let (name, rest) = crate::metrics::PHASES.iter().find_map(|name| {
        word.strip_prefix(name)
            .and_then(|r| r.strip_prefix('_'))
            .map(|r| (*name, r))
    })?;
    let phase = |percentile| Metric::Phase { name, percentile };
    Some(match rest {
        "max" => Ok(phase(100.0)),
        "med" => Ok(phase(50.0)),
        p if p.starts_with('p') => match metric(p) {
            Ok(Metric::Percentile(q)) => Ok(phase(q)),
            Ok(_) => Err(format!("`{word}`: expected a percentile after the phase")),
            Err(e) => Err(e),
        },
        _ => Err(format!(
            "`{word}`: a timing phase takes pN, med or max (`waiting_p95`)"
        )),
    })
}

/// Splits `123.5ms` into (123.5, "ms").
fn number_and_unit(text: &str) -> Result<(f64, &str), String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: f64 = n
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    Ok((n, unit.trim()))
}

fn limit(metric: Metric, text: &str) -> Result<f64, String> {
    let (n, unit) = number_and_unit(text)?;
    if metric.is_latency() {
        return match unit {
            "" | "ms" => Ok(n),
            "us" | "µs" => Ok(n / 1000.0),
            "s" => Ok(n * 1000.0),
            "m" | "min" => Ok(n * 60_000.0),
            u => Err(format!("unknown time unit `{u}` (use us, ms, s or m)")),
        };
    }
    if metric.is_rate() {
        return match unit {
            "%" => Ok(n / 100.0),
            "" if n <= 1.0 => Ok(n),
            "" => Err(format!(
                "`{text}`: write a rate as a percentage (`1%`) or a fraction (`0.01`)"
            )),
            u => Err(format!("unexpected unit `{u}` for a rate")),
        };
    }
    match unit {
        "" | "/s" => Ok(n),
        u => Err(format!("unexpected unit `{u}`")),
    }
}

/// Parses one threshold, e.g. `"/cities/[id]: p95 < 200ms"`.
pub fn parse(text: &str) -> Result<Threshold, ThresholdError> {
    let fail = |reason: String| ThresholdError {
        text: text.to_owned(),
        reason,
    };
    let at = text
        .find(['<', '>'])
        .ok_or_else(|| fail("no comparison (<, <=, > or >=)".into()))?;
    let or_equal = text[at + 1..].starts_with('=');
    let op = match (&text[at..at + 1], or_equal) {
        ("<", false) => Op::Lt,
        ("<", true) => Op::Le,
        (">", false) => Op::Gt,
        _ => Op::Ge,
    };
    let sym_len = if or_equal { 2 } else { 1 };
    let left = text[..at].trim();
    let value = text[at + sym_len..].trim();
    let (scope, metric_word) = match left.rfind(':') {
        Some(i) => (Some(left[..i].trim().to_owned()), left[i + 1..].trim()),
        None => (None, left),
    };
    let (scenario, scope) = match scope.as_deref().and_then(|s| s.strip_prefix("scenario=")) {
        Some(rest) => {
            let (name, request) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if name.is_empty() {
                return Err(fail("`scenario=` needs a scenario's name".into()));
            }
            (Some(name.to_owned()), Some(request.trim().to_owned()))
        }
        None => (None, scope),
    };
    let metric = metric(metric_word).map_err(fail)?;
    if matches!(
        metric,
        Metric::FailedIterations
            | Metric::IterationFailureRate
            | Metric::DroppedIterations
            | Metric::Phase { .. }
    ) && scope.as_deref().is_some_and(|s| !s.is_empty())
    {
        return Err(fail(format!(
            "`{metric_word}` is counted for the whole run or a scenario; its only scope is `scenario=NAME`"
        )));
    }
    let limit = limit(metric, value).map_err(fail)?;
    Ok(Threshold {
        text: text.trim().to_owned(),
        scenario,
        scope: scope.filter(|s| !s.is_empty()),
        metric,
        op,
        limit,
    })
}

/// A threshold with what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub threshold: Threshold,
    /// In the threshold's unit (ms, fraction, count, per second); `None` when nothing
    /// matched its scope, which fails it.
    pub measured: Option<f64>,
    pub passed: bool,
}

impl Verdict {
    /// The measured value, formatted in the threshold's unit.
    pub fn measured_text(&self) -> String {
        let Some(v) = self.measured else {
            return "no data".into();
        };
        let m = self.threshold.metric;
        if m.is_latency() {
            format!("{v:.2} ms")
        } else if m.is_rate() {
            format!("{:.2}%", v * 100.0)
        } else if m == Metric::Rps {
            format!("{v:.1}/s")
        } else {
            format!("{v:.0}")
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "✓" } else { "✗" };
        write!(
            f,
            "{mark} {}  (measured {})",
            self.threshold.text,
            self.measured_text()
        )
    }
}

fn requests_in_scope(totals: &Totals, scope: Option<&str>) -> Option<RequestStats> {
    let Some(scope) = scope else {
        return Some(totals.aggregated());
    };
    let (method, name) = match scope.split_once(' ') {
        Some((m, n)) if m.chars().all(|c| c.is_ascii_uppercase()) => (Some(m), n.trim()),
        _ => (None, scope),
    };
    let mut merged: Option<RequestStats> = None;
    for s in totals.requests() {
        if s.name == name && method.is_none_or(|m| m == s.method) {
            match &mut merged {
                Some(acc) => acc.merge(s),
                None => merged = Some(s.clone()),
            }
        }
    }
    merged
}

fn measure(t: &Threshold, totals: &Totals, seconds: f64) -> Option<f64> {
    // Run-wide counts that are not about requests: measurable with no request at all (a
    // scenario whose every iteration calls `fail()` before sending one must not pass).
    match (t.metric, &t.scope) {
        (Metric::Failures, None) => return Some(totals.all_failures() as f64),
        (Metric::FailedIterations, _) => return Some(totals.failed_iterations as f64),
        (Metric::DroppedIterations, _) => return Some(totals.dropped_iterations as f64),
        (Metric::IterationFailureRate, _) => {
            let n = totals.iterations;
            return (n > 0).then(|| totals.failed_iterations as f64 / n as f64);
        }
        _ => {}
    }
    if let Metric::Phase {
        name,
        percentile: q,
    } = t.metric
    {
        let i = crate::metrics::PHASES.iter().position(|p| *p == name)?;
        let h = totals
            .phases
            .as_ref()
            .map(|p| &p[i])
            .filter(|h| !h.is_empty())?;
        return Some(h.value_at_quantile((q / 100.0).min(1.0)) as f64 / 1000.0);
    }
    if t.metric == Metric::Checks {
        let (pass, fail) = totals
            .checks()
            .iter()
            .filter(|(name, _)| t.scope.as_deref().is_none_or(|s| s == name.as_str()))
            .fold((0, 0), |(p, f), (_, c)| (p + c.pass, f + c.fail));
        return (pass + fail > 0).then(|| pass as f64 / (pass + fail) as f64);
    }
    let s = requests_in_scope(totals, t.scope.as_deref())?;
    if s.requests == 0 {
        return None;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Some(match t.metric {
        Metric::Percentile(q) if q >= 100.0 => ms(s.latency.max()),
        Metric::Percentile(q) => ms(s.latency.value_at_quantile(q / 100.0)),
        Metric::Corrected(q) => {
            let h = s.corrected.as_ref().filter(|h| !h.is_empty())?;
            ms(h.value_at_quantile((q / 100.0).min(1.0)))
        }
        Metric::Min => ms(s.latency.min()),
        Metric::Max => ms(s.latency.max()),
        Metric::Avg => ms(s.total_us) / s.requests as f64,
        Metric::FailureRate => s.failures as f64 / s.requests as f64,
        Metric::Failures => s.failures as f64,
        Metric::Requests => s.requests as f64,
        Metric::Rps => s.requests as f64 / seconds.max(0.001),
        Metric::Checks
        | Metric::FailedIterations
        | Metric::IterationFailureRate
        | Metric::DroppedIterations
        | Metric::Phase { .. } => {
            unreachable!("handled above")
        }
    })
}

/// Evaluates every threshold against the run's totals (a scenario's, for one scoped to
/// it); `scenarios` are the scenarios' names, in the order of `totals.scenarios`.
pub fn evaluate(
    thresholds: &[Threshold],
    totals: &Totals,
    scenarios: &[&str],
    seconds: f64,
) -> Vec<Verdict> {
    thresholds
        .iter()
        .map(|t| {
            let part = match &t.scenario {
                None => Some(totals),
                Some(name) => scenarios
                    .iter()
                    .position(|s| s == name)
                    .and_then(|i| totals.scenarios.get(i)),
            };
            // A scenario's rates are over its own active span.
            let measured = part.and_then(|part| {
                let span = match &t.scenario {
                    None => seconds,
                    Some(_) => part.active_seconds().map_or(seconds, |s| s.min(seconds)),
                };
                measure(t, part, span)
            });
            Verdict {
                threshold: t.clone(),
                passed: measured.is_some_and(|m| t.op.holds(m, t.limit)),
                measured,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let t = parse("p95 < 250ms").unwrap();
        assert_eq!(
            (t.metric, t.op, t.limit, t.scope),
            (Metric::Percentile(95.0), Op::Lt, 250.0, None)
        );
        assert_eq!(parse("p99.9 < 1s").unwrap().limit, 1000.0);
        assert_eq!(parse("failure_rate < 1%").unwrap().limit, 0.01);
        assert_eq!(parse("failure_rate<=0.05").unwrap().op, Op::Le);
        assert_eq!(parse("rps > 100").unwrap().metric, Metric::Rps);
        assert_eq!(parse("checks >= 99.5%").unwrap().limit, 0.995);
        let t = parse("GET /cities/[id]: p95 < 200ms").unwrap();
        assert_eq!(t.scope.as_deref(), Some("GET /cities/[id]"));
        assert_eq!(t.op, Op::Lt);
        let t = parse("scenario=buyers: dropped_iterations < 1").unwrap();
        assert_eq!(
            (t.scenario.as_deref(), t.scope, t.metric),
            (Some("buyers"), None, Metric::DroppedIterations)
        );
        let t = parse("scenario=buyers GET /cart: corrected_p99.9 < 2s").unwrap();
        assert_eq!(
            (t.scenario.as_deref(), t.scope.as_deref(), t.metric, t.limit),
            (
                Some("buyers"),
                Some("GET /cart"),
                Metric::Corrected(99.9),
                2000.0
            )
        );
        assert_eq!(
            parse("corrected_max < 1s").unwrap().metric,
            Metric::Corrected(100.0)
        );
        assert_eq!(
            parse("waiting_p95 < 200ms").unwrap().metric,
            Metric::Phase {
                name: "waiting",
                percentile: 95.0
            }
        );
        assert_eq!(
            parse("tls_handshaking_max < 1s").unwrap().metric,
            Metric::Phase {
                name: "tls_handshaking",
                percentile: 100.0
            }
        );
        assert!(parse("GET /x: waiting_p95 < 1s").is_err());
        assert!(parse("waiting_avg < 1s").is_err());
        assert!(parse("GET /x: dropped_iterations < 1").is_err());
    }

    #[test]
    fn bad_syntax_is_explained() {
        for (text, why) in [
            ("p95 250ms", "no comparison"),
            ("p95 < fast", "does not start with a number"),
            ("latency < 5ms", "unknown metric"),
            ("p95 < 5 parsecs", "unknown time unit"),
            ("failure_rate < 5", "percentage"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
