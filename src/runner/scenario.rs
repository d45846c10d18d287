//! What every worker shares about one scenario while it runs: its stop signals, iteration
//! budget and counters. The scenario itself is the plan's [`Scenario`].

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;

use super::RunState;
use crate::plan::Scenario;
use crate::vu::WaitTime;

/// What every worker shares about one running scenario.
pub struct ScenarioState {
    pub index: usize,
    pub name: String,
    /// Set when the scenario should stop: with the run, or `graceful_stop` after its own
    /// end. Users finish their request, skip the rest of the iteration and run `on_stop`.
    pub stop: CancellationToken,
    /// Set at its own end (and with `stop`): no new iteration starts; those under way may
    /// finish within `graceful_stop` (k6's semantics for a scenario's end).
    pub finish: CancellationToken,
    /// Set its `graceful_stop` after its own end, or at the run's hard stop: what still
    /// runs is aborted.
    pub hard_stop: CancellationToken,
    pub users_running: AtomicU64,
    iterations_left: Option<AtomicU64>,
    pub iterations_per_user: Option<u64>,
    pub wait: WaitTime,
}

impl ScenarioState {
    pub fn new(index: usize, scenario: &Scenario, run: &RunState) -> Self {
        let stop = run.stop.child_token();
        Self {
            index,
            name: scenario.name.clone(),
            stop: stop.clone(),
            finish: stop.child_token(),
            hard_stop: run.hard_stop.child_token(),
            users_running: AtomicU64::new(0),
            iterations_left: scenario.iterations.map(AtomicU64::new),
            iterations_per_user: scenario
                .iterations_per_user
                .or(run.settings.iterations_per_user),
            wait: scenario.wait.unwrap_or(run.settings.wait),
        }
    }

    /// The state `setup`, `teardown` and `check`'s probe run under: no scenario.
    pub fn session(run: &RunState) -> Self {
        let stop = run.stop.child_token();
        Self {
            index: usize::MAX,
            name: String::new(),
            stop: stop.clone(),
            finish: stop.child_token(),
            hard_stop: run.hard_stop.child_token(),
            users_running: AtomicU64::new(0),
            iterations_left: None,
            iterations_per_user: None,
            wait: WaitTime::None,
        }
    }

    /// Takes one iteration from this scenario's budget and the run's; false when either is
    /// spent.
    pub fn claim_iteration(&self, run: &RunState) -> bool {
        if let Some(left) = &self.iterations_left {
            let claimed = left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
            if !claimed {
                return false;
            }
        }
        run.claim_iteration()
    }

    /// Whether its budget (or the run's) is spent.
    pub fn iterations_spent(&self, run: &RunState) -> bool {
        run.iterations_spent()
            || self
                .iterations_left
                .as_ref()
                .is_some_and(|n| n.load(Ordering::Relaxed) == 0)
    }

    pub fn users(&self) -> u64 {
        self.users_running.load(Ordering::Relaxed)
    }
}
