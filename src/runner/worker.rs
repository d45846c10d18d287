//! Worker threads: one current-thread tokio runtime each, running its share of the users
//! as local tasks, sending its metrics once a second.

use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use rhai::Dynamic;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::LocalSet;
use tokio_util::sync::CancellationToken;

use super::arrivals::Arrivals;
use super::controller::Controller;
use super::{RunState, ScenarioState};
use crate::http::{ClientFactory, ClientOptions};
use crate::metrics::{FailureKind, Snapshot};
use crate::plan::Plan;
use crate::plan::Scenario;
use crate::plan::{RateSpec, Schedule};
use crate::script::{EngineConfig, Program};
use crate::vu::{Cohort, Session, TaskTable, User, Worker, drive, run_session};

/// What a worker thread is told about the run (the `Send` part of the plan).
pub struct WorkerPlan {
    script_name: String,
    source: String,
    scenarios: Vec<Scenario>,
    workers: usize,
    client: ClientOptions,
    engine: EngineConfig,
    steering: Option<Arc<crate::plan::Steering>>,
}

impl From<&Plan> for WorkerPlan {
    fn from(p: &Plan) -> Self {
        Self {
            script_name: p.script_name.clone(),
            source: p.source.clone(),
            scenarios: p.scenarios.clone(),
            workers: p.workers,
            client: p.settings.client.clone(),
            engine: p.engine.clone(),
            steering: p.steering.clone(),
        }
    }
}

/// A worker's message to the main thread.
pub enum Report {
    /// Metrics recorded up to `second` seconds into the run, one snapshot per scenario
    /// (in the plan's order).
    Interval {
        second: u64,
        snapshots: Vec<Snapshot>,
    },
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
    let program = crate::api::program(&plan.script_name, &plan.source, &plan.engine)
        .context("the script compiled on the main thread but not on a worker")?;
    let setup_data = match setup {
        Some(v) => rhai::serde::to_dynamic(v).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Dynamic::UNIT,
    };
    let worker = Worker {
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
    let cohort = Rc::new(Cohort::new(
        Arc::new(ScenarioState::session(run)),
        TaskTable::none(),
    ));
    let user = Rc::new(User::new(0, worker, cohort.clone()));
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
    let mut recorder = cohort.recorder.borrow_mut();
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
    scenarios: &Arc<[Arc<ScenarioState>]>,
    setup: Option<serde_json::Value>,
    tx: UnboundedSender<Report>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    (0..plan.workers)
        .map(|index| {
            let (plan, run, setup, tx) = (plan.clone(), run.clone(), setup.clone(), tx.clone());
            let scenarios = scenarios.clone();
            std::thread::Builder::new()
                .name(format!("stampede-worker-{index}"))
                .spawn(move || {
                    if let Err(e) = worker_main(index, &plan, &run, &scenarios, setup, &tx) {
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
    states: &[Arc<ScenarioState>],
    setup: Option<serde_json::Value>,
    tx: &UnboundedSender<Report>,
) -> anyhow::Result<()> {
    let (program, worker) = build(plan, run, setup)?;
    let cohorts = plan
        .scenarios
        .iter()
        .zip(states)
        .map(|(scenario, state)| {
            let tasks = TaskTable::new(&scenario.tasks).with_context(|| {
                format!(
                    "scenario `{}`: no task has a positive weight",
                    scenario.name
                )
            })?;
            Ok(Rc::new(Cohort::new(state.clone(), tasks)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut shapes = Vec::new();
    for scenario in &plan.scenarios {
        shapes.push(match scenario.schedule {
            Schedule::Shape { .. }
            | Schedule::Rate {
                rate: RateSpec::Shaped { .. },
                ..
            } => Some(
                crate::api::Shape::new(&plan.script_name, &plan.source, &plan.engine)
                    .context("the shape compiled on the main thread but not on a worker")?,
            ),
            _ => None,
        });
    }
    let local = LocalSet::new();
    local.block_on(&runtime()?, async {
        let ticker = tokio::task::spawn_local(tick(run.clone(), cohorts.clone(), tx.clone()));
        let mut scenarios = tokio::task::JoinSet::new();
        for ((scenario, cohort), shape) in plan.scenarios.iter().zip(&cohorts).zip(shapes) {
            // Users are numbered over the whole test: with `--segment i/N`, this worker's
            // stripe of this segment's stripe, so the segments' users never overlap.
            let segment = run.settings.segment;
            let lane = Lane {
                index: segment.index as usize + segment.count as usize * index,
                workers: plan.workers * segment.count as usize,
                segment,
                scenario: scenario.clone(),
                run: run.clone(),
                program: program.clone(),
                worker: worker.clone(),
                cohort: cohort.clone(),
                steering: plan.steering.clone().filter(|_| !scenario.is_explicit()),
            };
            scenarios.spawn_local(lane.run(shape));
        }
        while scenarios.join_next().await.is_some() {}
        ticker.abort();
    });
    let second = run.elapsed().as_secs_f64().ceil() as u64;
    let snapshots = cohorts
        .iter()
        .map(|c| c.recorder.borrow_mut().take())
        .collect();
    let _ = tx.send(Report::Interval { second, snapshots });
    Ok(())
}

/// One scenario on one worker: waits for its start time, runs its executor, and stops it
/// at its own end (then aborts what still runs `graceful_stop` later).
pub(super) struct Lane {
    /// Which stripe of the whole test's users this lane owns: `index` of `workers` lanes
    /// in all (every worker of every segment).
    pub index: usize,
    pub workers: usize,
    pub segment: crate::plan::Segment,
    pub scenario: Scenario,
    pub run: Arc<RunState>,
    pub program: Rc<Program>,
    pub worker: Rc<Worker>,
    pub cohort: Rc<Cohort>,
    /// The users set from outside, for the default scenario of a steered run.
    pub steering: Option<Arc<crate::plan::Steering>>,
}

impl Lane {
    async fn run(self, shape: Option<crate::api::Shape>) {
        let state = self.cohort.scenario.clone();
        let start = tokio::time::Instant::from_std(self.run.started) + self.scenario.start_time;
        tokio::select! {
            _ = tokio::time::sleep_until(start) => {}
            _ = state.finish.cancelled() => return,
        }
        let clock = tokio::task::spawn_local(scenario_clock(
            state,
            self.scenario
                .ends_at()
                .map(|d| tokio::time::Instant::from_std(self.run.started) + d),
            self.scenario.graceful_stop,
        ));
        match self.scenario.schedule.clone() {
            Schedule::Rate {
                rate,
                pre_allocated,
                max,
                when_busy,
            } => {
                let steering = self.steering.clone();
                Arrivals::new(self, start, rate, (pre_allocated, max), when_busy)
                    .shaped(shape)
                    .steered(steering)
                    .run()
                    .await
            }
            schedule => {
                let steering = self.steering.clone();
                let mut controller = Controller::new(self, start, schedule);
                if let Some(shape) = shape {
                    controller = controller.shaped(shape);
                } else if let Some(steering) = steering {
                    controller = controller.steered(steering);
                }
                controller.run().await
            }
        }
        clock.abort();
    }
}

/// Ends a scenario at its own end (if it has one): no new iterations. `graceful_stop`
/// after it ended, whatever ended it, what still runs is stopped and aborted.
async fn scenario_clock(
    state: Arc<ScenarioState>,
    end: Option<tokio::time::Instant>,
    graceful_stop: Duration,
) {
    match end {
        Some(end) => tokio::select! {
            _ = tokio::time::sleep_until(end) => state.end(),
            _ = state.finish.cancelled() => {}
        },
        None => state.finish.cancelled().await,
    }
    tokio::select! {
        _ = tokio::time::sleep(graceful_stop) => {
            state.stop.cancel();
            state.hard_stop.cancel();
        }
        _ = state.hard_stop.cancelled() => {}
    }
}

/// Once a second, aligned to the run's start, hands the interval to the main thread.
async fn tick(run: Arc<RunState>, cohorts: Vec<Rc<Cohort>>, tx: UnboundedSender<Report>) {
    let start = tokio::time::Instant::from_std(run.started);
    let mut interval =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let second = run.elapsed().as_secs_f64().round() as u64;
        let snapshots = cohorts
            .iter()
            .map(|c| c.recorder.borrow_mut().take())
            .collect();
        if tx.send(Report::Interval { second, snapshots }).is_err() {
            return;
        }
    }
}
