//! Follows a script's `fn shape(elapsed)` (Locust's `LoadTestShape`), or the users set from
//! outside (the web UI's steering): asked once a tick, it says how many users to run and
//! how fast to get there; the level moves toward that at the spawn rate, one user at a time,
//! and the controller starts or retires users to match.

use std::sync::Arc;
use std::time::Duration;

use crate::api::{Shape, ShapeError, Want};
use crate::plan::Steering;

/// How often the shape is asked, as Locust ticks its shapes.
const TICK: Duration = Duration::from_secs(1);
/// How often steering is read: an edit takes effect within this.
const STEERING_TICK: Duration = Duration::from_millis(200);

/// Who says how many users to run.
pub enum Source {
    Script(Box<Shape>),
    Outside(Arc<Steering>),
}

impl Source {
    fn at(&mut self, t: Duration) -> Result<Option<Want>, ShapeError> {
        match self {
            Self::Script(shape) => shape.at(t.as_secs_f64().floor()),
            Self::Outside(steering) => {
                let (users, spawn_rate) = steering.get();
                Ok(Some(Want {
                    users,
                    spawn_rate,
                    rate: None,
                }))
            }
        }
    }

    fn tick(&self) -> Duration {
        match self {
            Self::Script(_) => TICK,
            Self::Outside(_) => STEERING_TICK,
        }
    }
}

pub struct Shaped {
    shape: Source,
    /// The most users it asked for when it was checked before traffic (the limits were
    /// checked for that many); more is capped.
    peak: u64,
    /// Users wanted now (fractional while ramping at a spawn rate).
    level: f64,
    want: Want,
    /// When the shape was last asked.
    asked: Option<Duration>,
    /// When `level` was last moved.
    moved: Duration,
}

impl Shaped {
    pub fn new(shape: Source, peak: u64) -> Self {
        Self {
            shape,
            peak,
            level: 0.0,
            want: Want::users(0),
            asked: None,
            moved: Duration::ZERO,
        }
    }

    /// Users wanted at `t`; `Ok(None)` once the shape has ended the run.
    pub fn target(&mut self, t: Duration) -> Result<Option<u64>, ShapeError> {
        if self.asked.is_none_or(|a| t >= a + self.shape.tick()) {
            match self.shape.at(t)? {
                Some(mut want) => {
                    want.users = want.users.min(self.peak);
                    self.want = want;
                }
                None => return Ok(None),
            }
            self.asked = Some(t);
        }
        let goal = self.want.users as f64;
        let step = match self.want.spawn_rate {
            Some(rate) => rate * (t - self.moved).as_secs_f64(),
            None => f64::INFINITY,
        };
        self.moved = t;
        self.level = if self.level < goal {
            (self.level + step).min(goal)
        } else {
            (self.level - step).max(goal)
        };
        Ok(Some(if self.level <= goal {
            self.level.floor() as u64
        } else {
            self.level.ceil() as u64
        }))
    }

    /// When to look again after `t`: the next user to start or retire, or the next tick.
    pub fn next_change(&self, t: Duration) -> Duration {
        let tick = self.asked.map_or(t, |a| a + self.shape.tick());
        let goal = self.want.users as f64;
        match self.want.spawn_rate {
            Some(rate) if (self.level - goal).abs() >= 1e-9 => {
                let step = crate::duration::from_secs(1.0 / rate).unwrap_or(crate::duration::MAX);
                tick.min(t + step.max(Duration::from_millis(1)))
            }
            _ => tick,
        }
    }
}

/// Counts a shape that failed (a runtime error, a bad answer) as a script failure of
/// `shape()`; the caller ends the scenario.
pub(super) fn record_failure(cohort: &crate::vu::Cohort, e: &ShapeError) {
    cohort.recorder.borrow_mut().failure(
        crate::metrics::FailureKind::Script,
        String::new(),
        "shape()".into(),
        e.to_string(),
    );
}
