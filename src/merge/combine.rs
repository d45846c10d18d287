//! Combining read results: checks that they are segments of one test, then adds them into
//! one [`Totals`] with the same code paths a run's own workers use.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use super::MergeError;
use super::load::{Part, ResultFile, histogram};
use crate::metrics::{FailureKey, RequestStats, Snapshot, Totals};
use crate::plan::Segment;
use crate::report::{MergedInfo, RunInfo, Threshold};
use crate::runner::Outcome;

/// The whole test, from its parts.
pub struct Merged {
    pub info: RunInfo,
    pub outcome: Outcome,
    /// The thresholds the runs were given, to evaluate again on the whole.
    pub thresholds: Vec<Threshold>,
    /// What the user should know: a missing segment, segments that started apart.
    pub warnings: Vec<String>,
}

/// Segments that started further apart than this are said to (the per-second rows line up
/// to the second regardless).
const START_SKEW: f64 = 1.0;

/// Seconds read from a file as a duration; a negative or absurd value (a hand-edited
/// file) becomes zero rather than a panic.
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

fn segment_of(file: &ResultFile) -> Option<Segment> {
    file.info()
        .segment
        .as_deref()
        .and_then(|s| Segment::parse(s).ok())
}

pub fn combine(mut files: Vec<(PathBuf, ResultFile)>, force: bool) -> Result<Merged, MergeError> {
    files.sort_by_key(|(_, f)| coverage(f).first().map(|s| s.index));
    let missing = check(&files, force)?;
    let mut warnings: Vec<String> = missing
        .iter()
        .map(|m| {
            format!(
                "warning: segment {m} is missing: the merged result covers {} of {} segments",
                files.len(),
                files.len() + missing.len()
            )
        })
        .collect();
    let base = files.iter().filter_map(|(_, f)| f.started_unix_ms).min();
    let offset_s = |f: &ResultFile| match (f.started_unix_ms, base) {
        (Some(ms), Some(base)) => (ms - base) as f64 / 1000.0,
        _ => 0.0,
    };
    let skew = files.iter().map(|(_, f)| offset_s(f)).fold(0.0, f64::max);
    if skew > START_SKEW {
        warnings.push(format!(
            "warning: the segments started up to {skew:.1} s apart; give them one --start-at to start together"
        ));
    }

    let mut names: Vec<String> = files[0]
        .1
        .info()
        .scenarios
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let mut totals = Totals::default();
    let mut elapsed = 0.0_f64;
    for (path, file) in &files {
        let offset = offset_s(file);
        let second = offset.round() as u64;
        add_part(&mut totals, path, file, second)?;
        for scenario in &file.scenarios {
            let name = scenario.name.clone().unwrap_or_default();
            let i = match names.iter().position(|n| *n == name) {
                Some(i) => i,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            };
            if totals.scenarios.len() <= i {
                totals.scenarios.resize_with(i + 1, Totals::default);
            }
            add_part(&mut totals.scenarios[i], path, scenario, second)?;
        }
        elapsed = elapsed.max(offset + file.duration_s);
        if file.interrupted {
            warnings.push(format!(
                "warning: {} was interrupted before its end",
                path.display()
            ));
        }
    }
    totals.finish();

    let thresholds = thresholds(&files)?;
    let started_at = UNIX_EPOCH + Duration::from_millis(base.unwrap_or(0));
    let mut info = info(&files, missing, force, started_at);
    // A scenario that only later files have (merged with --force) is reported too.
    for name in &names[info.scenarios.len()..] {
        let described = files
            .iter()
            .flat_map(|(_, f)| &f.info().scenarios)
            .find(|s| &s.name == name);
        info.scenarios.extend(described.cloned());
    }
    let outcome = Outcome {
        totals,
        elapsed: seconds(elapsed),
        interrupted: files.iter().any(|(_, f)| f.interrupted),
        setup_failed: files.iter().any(|(_, f)| f.setup_failed),
        users: info.users,
        spawned_after: seconds(
            files
                .iter()
                .map(|(_, f)| offset_s(f) + f.spawn_s)
                .fold(0.0, f64::max),
        ),
        started_at,
        start_late: files
            .iter()
            .filter_map(|(_, f)| f.start_late_s)
            .reduce(f64::max)
            .map(seconds),
    };
    Ok(Merged {
        info,
        outcome,
        thresholds,
        warnings,
    })
}

/// The segments a file holds: its own, or those a merged file was made of; empty for a
/// result of the whole test.
fn coverage(file: &ResultFile) -> Vec<Segment> {
    let info = file.info();
    match &info.merged {
        Some(merged) => merged
            .segments
            .iter()
            .filter_map(|s| Segment::parse(s).ok())
            .collect(),
        None => segment_of(file).into_iter().collect(),
    }
}

/// Refuses files that are not distinct parts of one test (unless `force`); returns the
/// segments none of them holds (a merged file's own missing ones included).
fn check(files: &[(PathBuf, ResultFile)], force: bool) -> Result<Vec<String>, MergeError> {
    let (first_path, first) = &files[0];
    let count_of = |f: &ResultFile| coverage(f).first().map(|s| s.count);
    let text = |f: &ResultFile| {
        let parts: Vec<String> = coverage(f).iter().map(Segment::to_string).collect();
        if parts.is_empty() {
            "the whole test".to_owned()
        } else {
            parts.join(", ")
        }
    };
    let count = count_of(first);
    let mut seen: Vec<(Segment, &PathBuf)> = Vec::new();
    let mut whole: Option<&PathBuf> = None;
    for (path, file) in files {
        if force {
            break;
        }
        let (ours, theirs) = (&first.info().fingerprint, &file.info().fingerprint);
        if ours.is_none() || ours != theirs {
            let show = |f: &Option<String>| f.clone().unwrap_or_else(|| "(none)".into());
            return Err(MergeError::Fingerprint {
                path: path.clone(),
                first: first_path.clone(),
                theirs: show(theirs),
                ours: show(ours),
            });
        }
        if count_of(file) != count {
            return Err(MergeError::SegmentCount {
                path: path.clone(),
                first: first_path.clone(),
                theirs: text(file),
                ours: text(first),
            });
        }
        let parts = coverage(file);
        if parts.is_empty() {
            if let Some(before) = whole {
                return Err(MergeError::Duplicate {
                    segment: "the whole test".into(),
                    a: before.clone(),
                    b: path.clone(),
                });
            }
            whole = Some(path);
        }
        for segment in parts {
            if let Some((_, before)) = seen.iter().find(|(s, _)| *s == segment) {
                return Err(MergeError::Duplicate {
                    segment: segment.to_string(),
                    a: (*before).clone(),
                    b: path.clone(),
                });
            }
            seen.push((segment, path));
        }
    }
    let present: Vec<Segment> = files.iter().flat_map(|(_, f)| coverage(f)).collect();
    Ok(match count {
        Some(count) if present.iter().all(|s| s.count == count) => (0..count)
            .map(|index| Segment { index, count })
            .filter(|s| !present.contains(s))
            .map(|s| s.to_string())
            .collect(),
        _ => Vec::new(),
    })
}

/// Adds one file's part (the whole run or a scenario) whose second 0 is `offset` seconds
/// into the merged run.
fn add_part(
    totals: &mut Totals,
    path: &std::path::Path,
    part: &Part,
    offset: u64,
) -> Result<(), MergeError> {
    let mut snapshot = Snapshot {
        iterations: part.iterations,
        failed_iterations: part.failed_iterations,
        dropped_iterations: part.dropped_iterations,
        interrupted_iterations: part.interrupted_iterations,
        auto_grouped: part.auto_grouped_requests,
        unfinished: part.unfinished,
        ..Snapshot::default()
    };
    for r in &part.requests {
        let what = format!("`{} {}`", r.method, r.name);
        let latency = histogram(path, &what, &r.histogram)?;
        let corrected = r
            .corrected_histogram
            .as_deref()
            .map(|h| histogram(path, &format!("corrected {what}"), h))
            .transpose()?;
        snapshot.requests.push(RequestStats {
            method: r.method.clone(),
            name: r.name.clone(),
            requests: r.requests,
            failures: r.failures,
            bytes: r.bytes,
            retries: r.retries,
            latency,
            total_us: r
                .sum_us
                .unwrap_or((r.avg_ms * 1000.0).round() as u64 * r.requests),
            corrected,
        });
    }
    snapshot.failures = part
        .failures
        .iter()
        .map(|f| {
            let key = FailureKey {
                kind: f.kind,
                method: f.method.clone(),
                name: f.name.clone(),
                message: f.message.clone(),
            };
            (key, f.count)
        })
        .collect();
    snapshot.checks = part
        .checks
        .iter()
        .map(|c| (c.name.clone(), c.count))
        .collect();
    if let Some(h) = &part.iteration_lateness_histogram {
        snapshot.lateness = Some(Box::new(histogram(path, "iteration lateness", h)?));
    }
    if let Some(phases) = &part.timings_histograms {
        // A phase added since the file was written (queueing) is empty in it.
        let read = |name: &&str| -> Result<_, MergeError> {
            match phases.get(*name) {
                Some(text) => histogram(path, &format!("`{name}` timing"), text),
                None => Ok(crate::metrics::new_histogram()),
            }
        };
        let list = crate::metrics::PHASES
            .iter()
            .map(read)
            .collect::<Result<Vec<_>, _>>()?;
        let array: crate::metrics::PhaseHistograms =
            list.try_into().expect("one histogram per phase");
        snapshot.phases = Some(Box::new(array));
    }
    totals.absorb(snapshot);
    for (protocol, n) in &part.protocols {
        totals.add_protocol(protocol.clone(), *n);
    }
    for row in &part.series {
        let mut row = row.clone();
        row.second += offset;
        totals.add_second(row);
    }
    Ok(())
}

/// Every threshold the runs were given, once each, in the order first seen.
fn thresholds(files: &[(PathBuf, ResultFile)]) -> Result<Vec<Threshold>, MergeError> {
    let mut out: Vec<Threshold> = Vec::new();
    for (path, file) in files {
        for v in &file.thresholds {
            if out.iter().any(|t| t.text == v.threshold.text) {
                continue;
            }
            let t = crate::report::thresholds::parse(&v.threshold.text)
                .map_err(|e| MergeError::Threshold(path.clone(), e))?;
            out.push(t);
        }
    }
    Ok(out)
}

/// The first file's description of the test, as the whole's.
fn info(
    files: &[(PathBuf, ResultFile)],
    missing: Vec<String>,
    force: bool,
    started_at: std::time::SystemTime,
) -> RunInfo {
    let mut info = files[0].1.info().clone();
    info.segment = None;
    info.started_at = humantime::format_rfc3339_seconds(started_at).to_string();
    info.iterations = files
        .iter()
        .map(|(_, f)| f.info().iterations)
        .sum::<Option<u64>>();
    info.merged = Some(MergedInfo {
        files: files.iter().map(|(p, _)| p.display().to_string()).collect(),
        segments: {
            let mut all: Vec<Segment> = files.iter().flat_map(|(_, f)| coverage(f)).collect();
            all.sort_by_key(|s| (s.count, s.index));
            all.dedup();
            all.iter().map(Segment::to_string).collect()
        },
        missing,
        forced: force,
    });
    info
}
