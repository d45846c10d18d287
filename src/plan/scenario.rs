//! Scenarios: named parts of one run, each with its own executor (k6's names), tasks, start
//! time and end, as plain data. What the workers share about one while it runs is the
//! runner's `ScenarioState`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Schedule;
use crate::vu::WaitTime;

/// How a scenario starts users or iterations: k6's executors, plus Locust's shape function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Executor {
    ConstantVus,
    RampingVus,
    PerVuIterations,
    SharedIterations,
    ConstantArrivalRate,
    RampingArrivalRate,
    /// `fn shape(elapsed)` decides the users over time.
    Shape,
    /// A script without `scenarios`: flags and top-level options decide.
    Default,
}

impl Executor {
    /// The names a script may write, as k6 spells them.
    pub const NAMES: [&'static str; 7] = [
        "constant-vus",
        "ramping-vus",
        "per-vu-iterations",
        "shared-iterations",
        "constant-arrival-rate",
        "ramping-arrival-rate",
        "shape",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "constant-vus" => Self::ConstantVus,
            "ramping-vus" => Self::RampingVus,
            "per-vu-iterations" => Self::PerVuIterations,
            "shared-iterations" => Self::SharedIterations,
            "constant-arrival-rate" => Self::ConstantArrivalRate,
            "ramping-arrival-rate" => Self::RampingArrivalRate,
            "shape" => Self::Shape,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ConstantVus => "constant-vus",
            Self::RampingVus => "ramping-vus",
            Self::PerVuIterations => "per-vu-iterations",
            Self::SharedIterations => "shared-iterations",
            Self::ConstantArrivalRate => "constant-arrival-rate",
            Self::RampingArrivalRate => "ramping-arrival-rate",
            Self::Shape => "shape",
            Self::Default => "default",
        }
    }
}

/// One scenario of the plan, fully decided before traffic.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub executor: Executor,
    /// Users (or arrivals) over time, counted from the scenario's own start.
    pub schedule: Schedule,
    /// (task, weight): its own list, its `exec` function alone, or the script's tasks.
    pub tasks: Vec<(String, u32)>,
    /// How long after the run's start the scenario begins.
    pub start_time: Duration,
    /// How long it runs from its start before it stops by itself; `None`: until its
    /// schedule ends, its iterations are done, or the run stops.
    pub duration: Option<Duration>,
    /// After the scenario stops, how long its iterations may take to finish before they
    /// are aborted (k6's `gracefulStop`).
    pub graceful_stop: Duration,
    pub graceful_ramp_down: Duration,
    /// Iterations shared by all its users (`shared-iterations`).
    pub iterations: Option<u64>,
    /// Iterations each user runs (`per-vu-iterations`).
    pub iterations_per_user: Option<u64>,
    /// Its own wait time; `None`: the script's.
    pub wait: Option<WaitTime>,
    pub tags: BTreeMap<String, String>,
    /// The scenario's users are numbered from `first_user + 1`, so `vu_id()` is unique in
    /// the whole run.
    pub first_user: u64,
}

impl Scenario {
    /// When it ends by itself, measured from the run's start (`None`: it does not; a
    /// script without scenarios ends with the run).
    pub fn ends_at(&self) -> Option<Duration> {
        if !self.is_explicit() {
            return None;
        }
        let own = match (self.duration, self.schedule.length()) {
            (Some(d), Some(l)) => Some(d.min(l)),
            (d, l) => d.or(l),
        };
        own.map(|d| self.start_time + d)
    }

    /// Whether it is one of the script's `scenarios` (not the implicit one of a script
    /// without them): then it ends by itself, letting iterations under way finish.
    pub fn is_explicit(&self) -> bool {
        !matches!(self.executor, Executor::Default | Executor::Shape) || self.name != "default"
    }
}
