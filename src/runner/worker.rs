//! Worker threads: one current-thread tokio runtime each, running its share of the users
//! as local tasks, sending its metrics once a second.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use rhai::Dynamic;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::LocalSet;
use tokio_util::sync::CancellationToken;

use super::RunState;
use super::arrivals::Arrivals;
use super::controller::Controller;
use super::schedule::Schedule;
use crate::cli::Plan;
use crate::http::{ClientFactory, ClientOptions};
use crate::metrics::{FailureKind, Recorder, Snapshot};
use crate::script::{EngineConfig, Program};
use crate::vu::{Session, User, Worker, drive, run_session};

/// What a worker thread is told about the run (the `Send` part of the plan).
pub struct WorkerPlan {
    script_name: String,
    source: String,
    tasks: Vec<(String, u32)>,
    schedule: Schedule,
    graceful_ramp_down: Duration,
    workers: usize,
    client: ClientOptions,
    engine: EngineConfig,
}

impl From<&Plan> for WorkerPlan {
    fn from(p: &Plan) -> Self {
        Self {
            script_name: p.script_name.clone(),
            source: p.source.clone(),
            tasks: p.tasks.clone(),
            schedule: p.schedule.clone(),
            graceful_ramp_down: p.graceful_ramp_down,
            workers: p.workers,
            client: p.settings.client.clone(),
            engine: p.engine.clone(),
        }
    }
}

/// A worker's message to the main thread.
pub enum Report {
    /// Metrics recorded up to `second` seconds into the run.
    Interval { second: u64, snapshot: Snapshot },
    /// The worker's users have all finished; its last interval was sent.
    Done,
    /// The worker could not run (its message says why); the run is stopping.
    Failed(String),
}

fn build(
    plan: &WorkerPlan,
    run: &Arc<RunState>,
    setup: Option<serde_json::Value>,
) -> anyhow::Result<(Rc<Program>, Rc<Worker>)> {
    let program = Program::new(&plan.script_name, &plan.source, &plan.tasks, &plan.engine)
        .context("the script compiled on the main thread but not on a worker")?;
    let setup_data = match setup {
        Some(v) => rhai::serde::to_dynamic(v).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Dynamic::UNIT,
    };
    let worker = Worker {
        recorder: RefCell::new(Recorder::default()),
        run: run.clone(),
        clients: ClientFactory::new(&plan.client)?,
        setup_data,
        base: match &run.settings.host {
            Some(h) => Some(crate::http::Base::parse(h)?),
            None => None,
        },
        names: Default::default(),
    };
    Ok((Rc::new(program), Rc::new(worker)))
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// How a `setup` or `teardown` session ended.
pub enum SessionEnd {
    /// It returned (or failed, recorded); for `setup`, its value if it succeeded.
    Returned(Option<Dynamic>),
    /// It ran past its time limit and was abandoned (recorded as a `timeout` failure).
    TimedOut,
    /// `cancel` fired first and it was abandoned.
    Cancelled,
}

/// Runs `setup` or `teardown` on the calling thread as user 0, for at most `limit` and
/// until `cancel` fires; returns how it ended and what it recorded. Abandoning it drops its
/// fiber, which unwinds the script (a request it was waiting for is counted unfinished).
pub fn run_session_here(
    plan: &WorkerPlan,
    run: &Arc<RunState>,
    setup: Option<serde_json::Value>,
    session: Session,
    limit: (Duration, &str),
    cancel: CancellationToken,
) -> anyhow::Result<(SessionEnd, Snapshot)> {
    let (program, worker) = build(plan, run, setup)?;
    let user = Rc::new(User::new(0, worker.clone()));
    let local = LocalSet::new();
    let end = local.block_on(&runtime()?, async move {
        tokio::select! {
            value = drive(user, move || run_session(&program, session)) => {
                SessionEnd::Returned(value.flatten())
            }
            () = tokio::time::sleep(limit.0) => SessionEnd::TimedOut,
            () = cancel.cancelled() => SessionEnd::Cancelled,
        }
    });
    let mut recorder = worker.recorder.borrow_mut();
    if let SessionEnd::TimedOut = end {
        let hook = if session == Session::Setup {
            "setup()"
        } else {
            "teardown()"
        };
        recorder.failure(
            FailureKind::Timeout,
            String::new(),
            hook.into(),
            format!(
                "{hook} did not finish within {} ({})",
                humantime::format_duration(limit.0),
                limit.1
            ),
        );
    }
    Ok((end, recorder.take()))
}

/// Starts one thread per worker.
pub fn spawn_all(
    plan: &Arc<WorkerPlan>,
    run: &Arc<RunState>,
    setup: Option<serde_json::Value>,
    tx: UnboundedSender<Report>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    (0..plan.workers)
        .map(|index| {
            let (plan, run, setup, tx) = (plan.clone(), run.clone(), setup.clone(), tx.clone());
            std::thread::Builder::new()
                .name(format!("stampede-worker-{index}"))
                .spawn(move || {
                    if let Err(e) = worker_main(index, &plan, &run, setup, &tx) {
                        let _ = tx.send(Report::Failed(format!("worker {index} failed: {e:#}")));
                        run.stop.cancel();
                    }
                    let _ = tx.send(Report::Done);
                })
                .context("could not start a worker thread")
        })
        .collect()
}

fn worker_main(
    index: usize,
    plan: &WorkerPlan,
    run: &Arc<RunState>,
    setup: Option<serde_json::Value>,
    tx: &UnboundedSender<Report>,
) -> anyhow::Result<()> {
    let (program, worker) = build(plan, run, setup)?;
    let local = LocalSet::new();
    let shape = match plan.schedule {
        Schedule::Shape { .. } => Some(
            crate::script::Shape::new(&plan.script_name, &plan.source, &plan.engine)
                .context("the shape compiled on the main thread but not on a worker")?,
        ),
        _ => None,
    };
    local.block_on(&runtime()?, async {
        let ticker = tokio::task::spawn_local(tick(worker.clone(), tx.clone()));
        match &plan.schedule {
            Schedule::Rate {
                rate,
                pre_allocated,
                max,
            } => {
                let (run, worker) = (run.clone(), worker.clone());
                Arrivals::new(
                    index,
                    plan.workers,
                    rate.clone(),
                    *pre_allocated,
                    *max,
                    run,
                    program,
                    worker,
                )
                .run()
                .await
            }
            _ => {
                let mut controller = Controller::new(
                    index,
                    plan.workers,
                    plan.schedule.clone(),
                    plan.graceful_ramp_down,
                    run.clone(),
                    program,
                    worker.clone(),
                );
                if let Some(shape) = shape {
                    controller = controller.shaped(shape);
                }
                controller.run().await
            }
        }
        ticker.abort();
    });
    let second = run.elapsed().as_secs_f64().ceil() as u64;
    let snapshot = worker.recorder.borrow_mut().take();
    let _ = tx.send(Report::Interval { second, snapshot });
    Ok(())
}

/// Once a second, aligned to the run's start, hands the interval to the main thread.
async fn tick(worker: Rc<Worker>, tx: UnboundedSender<Report>) {
    let start = tokio::time::Instant::from_std(worker.run.started);
    let mut interval =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let second = worker.run.elapsed().as_secs_f64().round() as u64;
        let snapshot = worker.recorder.borrow_mut().take();
        if tx.send(Report::Interval { second, snapshot }).is_err() {
            return;
        }
    }
}
