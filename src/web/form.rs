//! What the page sends: the start form, an edit, and the errors they can meet; and how a
//! start form decides the run's default scenario (its users or its arrival rate), whatever
//! the script's options or the command line said about them.

use serde::{Deserialize, Serialize};

use crate::plan::{Executor, Plan, RateSpec, Schedule};

/// The most users and arrivals a second the page may ask for (the command line's own caps
/// on a rate; users past this are not a load test of one process).
pub const MAX_USERS: u64 = 1_000_000;
pub const MAX_RATE: f64 = 10_000_000.0;

/// What the start form sends (and is prefilled with).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartForm {
    pub users: u64,
    pub spawn_rate: f64,
    pub host: String,
    /// Seconds; `None` or 0: until stopped.
    pub run_time_s: Option<f64>,
    /// For a script with `scenarios`: the ones to run (as written; users and spawn rate
    /// do not apply). `None`: all of them.
    #[serde(default)]
    pub scenarios: Option<Vec<String>>,
    /// The open model instead of users: iterations started a second (k6's arrival rate),
    /// served by a pool of at most `max_users` users. The rate can be changed while it runs.
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub max_users: Option<u64>,
}

/// One of the script's scenarios, as the form offers it.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioChoice {
    pub name: String,
    pub executor: &'static str,
}

/// An edit of a running test: its users and spawn rate (Locust's "Edit"), or the arrival
/// rate of a test started with one.
#[derive(Debug, Clone, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    pub users: Option<u64>,
    #[serde(default)]
    pub spawn_rate: Option<f64>,
    #[serde(default)]
    pub rate: Option<f64>,
}

/// Why a start or an edit was refused (shown to the user as is).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("a test is already running; stop it first")]
    Running,
    #[error("no test is running")]
    NotRunning,
    #[error(
        "this test runs as the script defines it (its scenarios or its shape): nothing to change"
    )]
    NotSteered,
    #[error("the web UI is shutting down")]
    Closing,
    #[error("this test was started with {0}: change that")]
    OtherModel(&'static str),
    #[error("{0}")]
    Plan(String),
}

/// How a script's tests are shaped from the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// No scenarios, no shape: the form's users (or arrival rate) decide, and can change.
    Steered,
    /// The script's own `scenarios` run as written; the form chooses which.
    Scenarios,
    /// The script's `fn shape` decides the users.
    Shape,
}

impl Model {
    pub fn of(plan: &Plan) -> Self {
        match plan.scenarios.as_slice() {
            [only] if only.executor == Executor::Shape => Self::Shape,
            [only] if !only.is_explicit() => Self::Steered,
            _ => Self::Scenarios,
        }
    }
}

impl StartForm {
    /// Refuses what no test should run with.
    pub fn check(&self) -> Result<(), SessionError> {
        check_users(self.users)?;
        check_users(self.max_users.unwrap_or(0))?;
        check_rate(self.spawn_rate, "spawn rate")?;
        if let Some(rate) = self.rate {
            check_rate(rate, "arrival rate")?;
        }
        Ok(())
    }

    /// Makes the plan's default scenario follow this form: users started at the spawn
    /// rate, or arrivals at the rate served by a pool of `max_users`. Done on the built
    /// plan, so the script's `users`, `stages` or `rate` options (and the same flags) do
    /// not conflict with the form: the form wins, as a flag wins over an option.
    pub fn shape(&self, plan: &mut Plan) {
        let Some(scenario) = plan.scenarios.first_mut() else {
            return;
        };
        let when_busy = match &scenario.schedule {
            Schedule::Rate { when_busy, .. } => *when_busy,
            _ => Default::default(),
        };
        match self.rate {
            Some(rate) => {
                let pool = self.max_users.unwrap_or(self.users).max(1);
                scenario.schedule = Schedule::Rate {
                    rate: RateSpec::Constant(rate),
                    // Started before the first arrival, so a low rate needs no growing.
                    pre_allocated: pool.min(10),
                    max: pool,
                    when_busy,
                };
                plan.users = pool;
                plan.spawn_rate = 0.0;
            }
            None => {
                scenario.schedule = Schedule::Spawn {
                    users: self.users,
                    rate: self.spawn_rate,
                };
                plan.users = self.users;
                plan.spawn_rate = self.spawn_rate;
            }
        }
    }
}

impl EditForm {
    pub fn check(&self) -> Result<(), SessionError> {
        check_users(self.users.unwrap_or(0))?;
        check_rate(self.spawn_rate.unwrap_or(0.0), "spawn rate")?;
        check_rate(self.rate.unwrap_or(0.0), "arrival rate")
    }
}

fn check_users(users: u64) -> Result<(), SessionError> {
    if users > MAX_USERS {
        return Err(SessionError::Plan(format!(
            "{users} users is more than one process is asked to run (at most {MAX_USERS})"
        )));
    }
    Ok(())
}

fn check_rate(rate: f64, what: &str) -> Result<(), SessionError> {
    if !(0.0..=MAX_RATE).contains(&rate) {
        return Err(SessionError::Plan(format!(
            "a {what} of {rate} a second is outside 0 to {MAX_RATE}"
        )));
    }
    Ok(())
}
