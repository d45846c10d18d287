//! Runs a [`Plan`]: `setup`, worker threads with their users, stop conditions and Ctrl-C,
//! the once-a-second merge of metrics, `teardown`.

mod limits;
mod state;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use limits::{LimitError, ensure_map_count, raise_nofile};
pub use state::{RunState, UniqueIds, UserSettings};

use crate::cli::Plan;
use crate::metrics::Totals;
use crate::vu::Session;
use worker::{Report, WorkerPlan, run_session_here};

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
}

/// Runs the plan to the end and returns every measurement.
pub fn run(plan: Plan) -> anyhow::Result<Outcome> {
    ensure_map_count(plan.users)?;
    let nofile = raise_nofile();
    if let Some(w) = limits::nofile_warning(plan.users, nofile) {
        eprintln!("{w}");
    }
    let run = Arc::new(RunState::new(
        plan.settings.clone(),
        plan.iterations,
        plan.log.clone(),
    ));
    let worker_plan = Arc::new(WorkerPlan::from(&plan));
    let mut totals = Totals::default();

    let mut setup_data = None;
    let mut setup_failed = false;
    if plan.hooks.setup {
        let (value, snapshot) = run_session_here(&worker_plan, &run, None, Session::Setup)?;
        totals.merge(0, 0, snapshot);
        match value.map(|v| rhai::serde::from_dynamic::<serde_json::Value>(&v)) {
            Some(Ok(json)) => setup_data = Some(json),
            Some(Err(e)) => {
                eprintln!("setup() must return plain data (maps, arrays, strings, numbers): {e}");
                setup_failed = true;
            }
            None => setup_failed = true,
        }
    }

    let mut interrupted = false;
    if !setup_failed {
        let (tx, rx) = mpsc::unbounded_channel();
        let handles = worker::spawn_all(&worker_plan, &run, setup_data.clone(), tx)?;
        interrupted = supervise(&plan, &run, rx, &mut totals)?;
        for h in handles {
            if h.join().is_err() {
                eprintln!("a worker thread panicked; its last second of metrics is lost");
            }
        }
    }

    if plan.hooks.teardown {
        let second = run.elapsed().as_secs() + 1;
        let (_, snapshot) = run_session_here(&worker_plan, &run, setup_data, Session::Teardown)?;
        totals.merge(second, 0, snapshot);
    }
    totals.finish();
    plan.log.flush();
    Ok(Outcome {
        totals,
        elapsed: run.elapsed(),
        interrupted,
        setup_failed,
        users: plan.users,
        spawned_after: run.spawned_after(),
    })
}

/// The main thread during the run: merges reports, enforces the run time, handles Ctrl-C
/// and prints progress. Returns whether the run was interrupted.
fn supervise(
    plan: &Plan,
    run: &Arc<RunState>,
    mut rx: mpsc::UnboundedReceiver<Report>,
    totals: &mut Totals,
) -> anyhow::Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut workers_left = plan.workers;
        let mut interrupted = false;
        let deadline = plan.run_time.map(|d| tokio::time::Instant::from_std(run.started) + d);
        let mut live = crate::report::live::Live::new(plan.quiet, plan.run_time);
        let mut hard_stop_at: Option<tokio::time::Instant> = None;
        // One listener for the whole run, registered now: a second Ctrl-C that comes
        // right after the first is not lost between two listeners.
        let mut ctrl_c = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        while workers_left > 0 {
            if run.stop.is_cancelled() && hard_stop_at.is_none() {
                hard_stop_at = Some(tokio::time::Instant::now() + plan.stop_timeout);
            }
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                report = rx.recv() => match report {
                    Some(Report::Interval { second, snapshot }) => {
                        let users = run.users_running.load(std::sync::atomic::Ordering::Relaxed);
                        totals.merge(second, users, snapshot);
                        live.update(run.elapsed(), users, totals);
                    }
                    Some(Report::Done) => workers_left -= 1,
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() && !run.stop.is_cancelled() => {
                    run.stop.cancel();
                }
                _ = tokio::time::sleep_until(hard_stop_at.unwrap_or(far)), if hard_stop_at.is_some() && !run.hard_stop.is_cancelled() => {
                    run.hard_stop.cancel();
                }
                r = ctrl_c.recv() => {
                    if r.is_some() {
                        if interrupted {
                            eprintln!("\ninterrupted twice: exiting without a summary");
                            std::process::exit(130);
                        }
                        interrupted = true;
                        eprintln!("\nstopping: users finish their request and run on_stop (Ctrl-C again to exit at once)");
                        run.stop.cancel();
                    }
                }
            }
        }
        live.finish();
        Ok(interrupted)
    })
}
