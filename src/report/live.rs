//! The live view while a run is going: on a terminal a small block redrawn once a second;
//! otherwise a plain status line every few seconds; nothing with `--quiet`. It reads only
//! the merged once-a-second totals, never the workers, so it cannot slow the engine.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crossterm::{cursor, queue, terminal};

use crate::metrics::Totals;
use crate::plan::{Scenario, Schedule};

enum Mode {
    Terminal,
    Lines,
    Quiet,
}

pub struct Live {
    mode: Mode,
    /// The script's scenarios (empty for a script without them): a line each.
    scenarios: Vec<Scenario>,
    planned: Option<Duration>,
    every: u64,
    last: Option<u64>,
    drawn: u16,
    /// Worker threads, for their share of the CPU; 0: not known, not watched.
    workers: usize,
    /// (elapsed, process CPU) at the last update.
    cpu_at: Option<(Duration, Duration)>,
    /// When a line-mode view last said the generator was the bottleneck.
    warned: Option<u64>,
}

/// How often a line-mode view repeats that the generator is the bottleneck.
const WARN_EVERY: u64 = 30;

/// How many request names the terminal view lists.
const BUSIEST: usize = 3;

impl Live {
    /// `scenarios`: the script's own, each shown on a line of its own (empty: none).
    pub fn new(quiet: bool, planned: Option<Duration>, scenarios: Vec<Scenario>) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Lines
        };
        let every = if matches!(mode, Mode::Terminal) { 1 } else { 5 };
        Self {
            mode,
            scenarios,
            planned,
            every,
            last: None,
            drawn: 0,
            workers: 0,
            cpu_at: None,
            warned: None,
        }
    }

    /// Watches the `workers` threads' CPU, to say when the generator is the bottleneck.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// The workers' share of their cores since the last update.
    fn cpu_share(&mut self, elapsed: Duration) -> Option<f64> {
        let cpu = super::generator::process_cpu()?;
        let before = self.cpu_at.replace((elapsed, cpu));
        let (then, cpu_then) = before?;
        let wall = (elapsed.checked_sub(then)?).as_secs_f64() * self.workers as f64;
        (wall > 0.0 && self.workers > 0).then(|| (cpu - cpu_then).as_secs_f64() / wall)
    }

    /// Called after each merge; redraws at most once per period.
    pub fn update(&mut self, elapsed: Duration, users: u64, totals: &Totals) {
        let now = elapsed.as_secs();
        if matches!(self.mode, Mode::Quiet) || self.last.is_some_and(|l| now < l + self.every) {
            return;
        }
        self.last = Some(now);
        let all = totals.aggregated();
        let latest = totals.latest().unwrap_or_default();
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1} ms"));
        let planned = self
            .planned
            .map_or(String::new(), |p| format!(" / {}s", p.as_secs()));
        let rate = 100.0 * all.failures as f64 / all.requests.max(1) as f64;
        let mut status = format!(
            "[{now:>4}s{planned}] users {users} | requests {} | {} req/s | failures {} ({rate:.2}%) | p50 {} | p95 {}",
            all.requests,
            latest.requests,
            all.failures,
            ms(latest.p50_ms),
            ms(latest.p95_ms),
        );
        if totals.dropped_iterations > 0 {
            status.push_str(&format!(" | dropped {}", totals.dropped_iterations));
        }
        if totals.unfinished.requests > 0 {
            status.push_str(&format!(" | unfinished {}", totals.unfinished.requests));
        }
        let mut lines = scenario_lines(elapsed, &self.scenarios, totals);
        let cpu = self.cpu_share(elapsed);
        let mut err = std::io::stderr().lock();
        match self.mode {
            Mode::Lines => {
                let _ = writeln!(err, "{status}");
                for line in &lines {
                    let _ = writeln!(err, "{line}");
                }
                if let Some(w) = super::generator::warning(totals, cpu)
                    && self.warned.is_none_or(|at| now >= at + WARN_EVERY)
                {
                    self.warned = Some(now);
                    let _ = writeln!(err, "{w}");
                }
            }
            Mode::Terminal => {
                let mut busiest: Vec<_> = latest.by_name.iter().collect();
                busiest.sort_by_key(|(_, s)| std::cmp::Reverse(s.requests));
                let names: Vec<String> = busiest
                    .iter()
                    .take(BUSIEST)
                    .map(|(n, s)| format!("{n} {}/s", s.requests))
                    .collect();
                lines.extend(super::generator::short_warning(totals, cpu));
                self.clear(&mut err);
                let _ = writeln!(err, "{status}");
                let _ = writeln!(err, "  busiest: {}", names.join(" · "));
                for line in &lines {
                    let _ = writeln!(err, "{line}");
                }
                self.drawn = 2 + lines.len() as u16;
                let _ = err.flush();
            }
            Mode::Quiet => {}
        }
    }

    fn clear(&mut self, err: &mut impl Write) {
        if self.drawn > 0 {
            let _ = queue!(
                err,
                cursor::MoveUp(self.drawn),
                terminal::Clear(terminal::ClearType::FromCursorDown)
            );
            self.drawn = 0;
        }
    }

    /// Removes the terminal block before the summary is printed.
    pub fn finish(&mut self) {
        if matches!(self.mode, Mode::Terminal) {
            let mut err = std::io::stderr().lock();
            self.clear(&mut err);
            let _ = err.flush();
        }
    }
}

/// Where one scenario is, as the live views show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScenarioStatus {
    pub name: String,
    pub executor: &'static str,
    /// `starts in 5s`, `40%`, `12s` (no end of its own), or `ending`.
    pub progress: String,
    pub users: u64,
    /// Iterations started in the last complete second.
    pub iterations: u64,
    /// What its schedule wants now: iterations a second (arrival rates) or users.
    pub target_rate: Option<f64>,
    pub target_users: Option<u64>,
    pub dropped: u64,
}

/// Each scenario's status at `elapsed`: its progress, its users, and its iterations in the
/// last complete second against what its schedule wants.
pub fn scenario_status(
    elapsed: Duration,
    scenarios: &[Scenario],
    totals: &Totals,
) -> Vec<ScenarioStatus> {
    scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let latest = totals
                .scenarios
                .get(i)
                .and_then(Totals::latest)
                .unwrap_or_default();
            let mut status = ScenarioStatus {
                name: s.name.clone(),
                executor: s.executor.name(),
                progress: String::new(),
                users: latest.users,
                iterations: latest.iterations,
                target_rate: None,
                target_users: None,
                dropped: totals.scenarios.get(i).map_or(0, |t| t.dropped_iterations),
            };
            let Some(into) = elapsed.checked_sub(s.start_time) else {
                status.progress = format!("starts in {}s", (s.start_time - elapsed).as_secs());
                return status;
            };
            status.progress = match s.ends_at() {
                Some(end) if elapsed >= end => "ending".to_string(),
                Some(end) => {
                    let total = (end - s.start_time).as_secs_f64().max(0.001);
                    format!("{:.0}%", 100.0 * into.as_secs_f64() / total)
                }
                None => format!("{}s", into.as_secs()),
            };
            match &s.schedule {
                Schedule::Rate { rate, .. } => status.target_rate = Some(rate.at(into)),
                Schedule::Shape { .. } => {}
                schedule => status.target_users = Some(schedule.target_at(into)),
            }
            status
        })
        .collect()
}

/// One line per scenario: where it is (waiting, its progress, done), its users, and its
/// iterations in the last complete second against what its schedule wants.
fn scenario_lines(elapsed: Duration, scenarios: &[Scenario], totals: &Totals) -> Vec<String> {
    scenario_status(elapsed, scenarios, totals)
        .into_iter()
        .map(|s| {
            let head = format!("  {} ({})", s.name, s.executor);
            if s.progress.starts_with("starts in") {
                return format!("{head}: {}", s.progress);
            }
            let target = match (s.target_rate, s.target_users) {
                (Some(rate), _) => format!("{} it/s (target {rate:.0}/s)", s.iterations),
                (None, Some(users)) => format!("{} it/s, target {users} users", s.iterations),
                (None, None) => format!("{} it/s", s.iterations),
            };
            let mut line = format!("{head} {}: users {} | {target}", s.progress, s.users);
            if s.dropped > 0 {
                line.push_str(&format!(" | dropped {}", s.dropped));
            }
            line
        })
        .collect()
}
