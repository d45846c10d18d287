//! Runs a [`Plan`]: `setup`, worker threads with their users, stop conditions and Ctrl-C,
//! the once-a-second merge of metrics, `teardown`.

mod arrivals;
mod controller;
mod limits;
mod observer;
mod precise;
mod shaped;
mod start;
mod state;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::vu::{RunState, ScenarioState, UniqueIds};
pub use limits::{LimitError, ensure_map_count, raise_nofile};
pub use observer::{Observer, Quiet};
pub use state::Shutdown;

use crate::metrics::Totals;
use crate::plan::Plan;
use crate::vu::Session;
use worker::{Report, SessionEnd, WorkerPlan, run_session_here};

/// What a run produced.
pub struct Outcome {
    pub totals: Totals,
    pub elapsed: Duration,
    /// Stopped by Ctrl-C rather than by its own limits.
    pub interrupted: bool,
    /// `setup()` failed, so no user ran.
    pub setup_failed: bool,
    pub users: u64,
    /// How long after the start the last user was spawned (zero if none was).
    pub spawned_after: Duration,
    /// When the run started, by the wall clock: where merged segments line up.
    pub started_at: std::time::SystemTime,
    /// With `--start-at`: how long after the agreed moment it started (zero if on time).
    pub start_late: Option<Duration>,
}

/// Runs the plan to the end and returns every measurement. `shutdown` stops it from
/// outside (a signal): the users stop gracefully, and a `teardown` that has started since is
/// abandoned. What happens meanwhile goes to `observer` (progress, warnings, the results
/// before `teardown`); the runner prints nothing itself.
pub fn run(
    plan: Plan,
    shutdown: &Shutdown,
    observer: &mut dyn Observer,
) -> anyhow::Result<Outcome> {
    for warning in &plan.warnings {
        observer.warn(warning);
    }
    ensure_map_count(plan.users)?;
    // Before any connection, so the first responses are stamped at the socket too.
    crate::http::warm_up_timestamps();
    let start_late = plan
        .start_at
        .map(|at| start::wait_until(at, shutdown, observer))
        .transpose()?;
    let nofile = raise_nofile();
    if let Some(w) = limits::nofile_warning(plan.users, nofile) {
        observer.warn(&w);
    }
    let mut run = RunState::new(
        plan.settings.clone(),
        plan.iterations,
        plan.log.clone(),
        shutdown.child(),
    );
    run.data = std::sync::Mutex::new(plan.data.clone());
    let started_at = std::time::SystemTime::now();
    let run = Arc::new(run);
    let worker_plan = Arc::new(WorkerPlan::from(&plan));
    let scenarios: Arc<[Arc<ScenarioState>]> = plan
        .scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let budget = (s.iterations, s.iterations_per_user);
            let open = matches!(s.schedule, crate::plan::Schedule::Rate { .. });
            Arc::new(ScenarioState::new(i, &s.name, budget, s.wait, open, &run))
        })
        .collect();
    let mut totals = Totals::default();

    let mut setup_data = None;
    let mut setup_failed = false;
    if plan.hooks.setup {
        let (data, snapshot) = setup(&plan, &worker_plan, &run, shutdown)?;
        totals.merge(0, 0, snapshot);
        setup_failed = data.is_none();
        setup_data = data.flatten();
    }

    if !setup_failed {
        let (tx, rx) = mpsc::unbounded_channel();
        let handles = worker::spawn_all(&worker_plan, &run, &scenarios, setup_data.clone(), tx)?;
        supervise(&plan, &run, &scenarios, shutdown, rx, &mut totals, observer)?;
        for h in handles {
            if h.join().is_err() {
                observer.warn("a worker thread panicked; its last second of metrics is lost");
            }
        }
    }
    totals.finish();
    let mut outcome = Outcome {
        totals,
        elapsed: run.elapsed(),
        interrupted: shutdown.is_requested(),
        setup_failed,
        users: plan.users,
        spawned_after: run.spawned_after(),
        started_at,
        start_late,
    };

    if plan.hooks.teardown && !setup_failed {
        plan.log.flush();
        observer.before_teardown(&outcome);
        teardown(
            &plan,
            &worker_plan,
            &run,
            setup_data,
            shutdown,
            observer,
            &mut outcome,
        )?;
    }
    plan.log.flush();
    Ok(outcome)
}

/// Runs `teardown()` within its timeout and adds what it recorded to `outcome`. A signal
/// during it abandons it, unless the run was already stopped by one (then the binary exits
/// at once on the next).
fn teardown(
    plan: &Plan,
    worker_plan: &WorkerPlan,
    run: &Arc<RunState>,
    setup_data: Option<serde_json::Value>,
    shutdown: &Shutdown,
    observer: &mut dyn Observer,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let cancel = if outcome.interrupted {
        CancellationToken::new()
    } else {
        shutdown.child()
    };
    // In a second of its own, after every second of the run.
    let second = outcome.totals.next_second();
    let limit = (plan.teardown_timeout, "teardown_timeout");
    let (end, snapshot) = run_session_here(
        worker_plan,
        run,
        setup_data,
        Session::Teardown,
        limit,
        cancel,
    )?;
    if let SessionEnd::Cancelled = end {
        observer.warn("teardown() abandoned: interrupted");
    }
    outcome.totals.merge(second, 0, snapshot);
    outcome.totals.finish();
    outcome.elapsed = run.elapsed();
    outcome.interrupted = shutdown.is_requested();
    Ok(())
}

/// Runs `setup()` within its timeout (and the run time, which counts from the start);
/// returns `Some(its value)` when it succeeded, `None` when it failed, timed out or was
/// interrupted.
fn setup(
    plan: &Plan,
    worker_plan: &WorkerPlan,
    run: &Arc<RunState>,
    shutdown: &Shutdown,
) -> anyhow::Result<(Option<Option<serde_json::Value>>, crate::metrics::Snapshot)> {
    let limit = match plan.run_time {
        Some(t) if t < plan.setup_timeout => (t, "the run time"),
        _ => (plan.setup_timeout, "setup_timeout"),
    };
    let (end, snapshot) = run_session_here(
        worker_plan,
        run,
        None,
        Session::Setup,
        limit,
        shutdown.child(),
    )?;
    let mut snapshot = snapshot;
    let data = match end {
        SessionEnd::Returned(Some(value)) => {
            match rhai::serde::from_dynamic::<serde_json::Value>(&value) {
                Ok(json) => Some(Some(json)),
                Err(e) => {
                    let key = crate::metrics::FailureKey {
                        kind: crate::metrics::FailureKind::Script,
                        method: String::new(),
                        name: "setup()".into(),
                        message: format!(
                            "setup() must return plain data (maps, arrays, strings, numbers): {e}"
                        ),
                    };
                    snapshot.failures.push((key, 1));
                    None
                }
            }
        }
        SessionEnd::Returned(None) | SessionEnd::TimedOut | SessionEnd::Cancelled => None,
    };
    Ok((data, snapshot))
}

/// The main thread during the run: merges reports, enforces the run time, watches for a
/// requested shutdown and shows progress.
fn supervise(
    plan: &Plan,
    run: &Arc<RunState>,
    scenarios: &[Arc<ScenarioState>],
    shutdown: &Shutdown,
    mut rx: mpsc::UnboundedReceiver<Report>,
    totals: &mut Totals,
    observer: &mut dyn Observer,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut workers_left = plan.workers;
        let deadline = plan.run_time.map(|d| tokio::time::Instant::from_std(run.started) + d);
        let mut hard_stop_at: Option<tokio::time::Instant> = None;
        while workers_left > 0 {
            if run.stop.is_cancelled() && hard_stop_at.is_none() {
                hard_stop_at = Some(tokio::time::Instant::now() + plan.stop_timeout);
            }
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                report = rx.recv() => match report {
                    Some(Report::Interval { second, snapshots }) => {
                        if observer.take_reset() {
                            *totals = Totals::default();
                        }
                        let users = run.users_running.load(std::sync::atomic::Ordering::Relaxed);
                        for (state, snapshot) in scenarios.iter().zip(snapshots) {
                            totals.merge_scenario(state.index, second, state.users(), users, snapshot);
                        }
                        observer.progress(run.elapsed(), users, totals);
                    }
                    Some(Report::Done) => workers_left -= 1,
                    Some(Report::Failed(message)) => observer.warn(&message),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() && !run.stop.is_cancelled() => {
                    run.stop.cancel();
                }
                _ = tokio::time::sleep_until(hard_stop_at.unwrap_or(far)), if hard_stop_at.is_some() && !run.hard_stop.is_cancelled() => {
                    run.hard_stop.cancel();
                }
                // `run.stop` is a child of the shutdown token: it is already cancelled;
                // this wakes the loop to start the stop timeout.
                () = shutdown.requested(), if hard_stop_at.is_none() => {}
            }
        }
        observer.finished();
        Ok(())
    })
}
