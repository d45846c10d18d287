//! Which task a user runs next, and how long it waits afterwards.

use std::rc::Rc;
use std::time::Duration;

use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;

/// Tasks with their weights; a task of weight `w` is picked with probability `w / Σw`,
/// independently each iteration (as Locust does).
#[derive(Debug, Clone)]
pub struct TaskTable {
    names: Vec<Rc<str>>,
    weights: WeightedIndex<u32>,
}

impl TaskTable {
    /// `tasks` must hold at least one positive weight (the lint guarantees it).
    pub fn new(tasks: &[(String, u32)]) -> Option<Self> {
        let live: Vec<_> = tasks.iter().filter(|(_, w)| *w > 0).collect();
        let weights = WeightedIndex::new(live.iter().map(|(_, w)| *w)).ok()?;
        Some(Self {
            names: live.iter().map(|(n, _)| Rc::from(n.as_str())).collect(),
            weights,
        })
    }

    /// A table for `setup`/`teardown`, which run no tasks.
    pub fn none() -> Self {
        Self::new(&[("(none)".into(), 1)]).expect("one positive weight")
    }

    pub fn pick(&self, rng: &mut impl Rng) -> &Rc<str> {
        if self.names.len() == 1 {
            return &self.names[0];
        }
        &self.names[self.weights.sample(rng)]
    }
}

/// The pause after each task. Chosen with `between`, `constant` or `constant_pacing` in the
/// script's options; none by default.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum WaitTime {
    #[default]
    None,
    Between(f64, f64),
    Constant(f64),
    /// Start a task at most every so many seconds.
    ConstantPacing(f64),
}

/// Wait times are checked when they are made, so [`WaitTime::pause`] cannot fail.
fn check_seconds(what: &str, s: f64) -> Result<f64, String> {
    crate::duration::from_secs(s)
        .map(|_| s)
        .map_err(|e| format!("{what}: {e}"))
}

impl WaitTime {
    pub fn between(min: f64, max: f64) -> Result<Self, String> {
        let (min, max) = (
            check_seconds("between", min)?,
            check_seconds("between", max)?,
        );
        if min > max {
            return Err(format!("between({min}, {max}): min must not exceed max"));
        }
        Ok(Self::Between(min, max))
    }

    pub fn constant(s: f64) -> Result<Self, String> {
        Ok(Self::Constant(check_seconds("constant", s)?))
    }

    pub fn constant_pacing(s: f64) -> Result<Self, String> {
        Ok(Self::ConstantPacing(check_seconds("constant_pacing", s)?))
    }

    /// Whether [`WaitTime::pause`] needs the task's duration (only pacing does).
    pub fn needs_task_time(&self) -> bool {
        matches!(self, Self::ConstantPacing(_))
    }

    /// How long to wait after a task that took `task_time`.
    pub fn pause(&self, task_time: Duration, rng: &mut impl Rng) -> Duration {
        match *self {
            Self::None => Duration::ZERO,
            Self::Between(a, b) if a == b => Duration::from_secs_f64(a),
            Self::Between(a, b) => Duration::from_secs_f64(rng.random_range(a..b).min(b)),
            Self::Constant(s) => Duration::from_secs_f64(s),
            Self::ConstantPacing(s) => Duration::from_secs_f64(s).saturating_sub(task_time),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn weights_are_honoured_and_zero_disables() {
        let t = TaskTable::new(&[("a".into(), 3), ("b".into(), 1), ("off".into(), 0)]).unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut a = 0;
        for _ in 0..40_000 {
            match &**t.pick(&mut rng) {
                "a" => a += 1,
                "b" => {}
                other => panic!("picked {other}"),
            }
        }
        assert!((29_000..31_000).contains(&a), "{a}");
    }

    #[test]
    fn pacing_fills_the_rest_of_the_period() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let w = WaitTime::constant_pacing(2.0).unwrap();
        assert_eq!(
            w.pause(Duration::from_millis(500), &mut rng),
            Duration::from_millis(1500)
        );
        assert_eq!(w.pause(Duration::from_secs(3), &mut rng), Duration::ZERO);
        let b = WaitTime::between(0.1, 0.2).unwrap();
        let p = b.pause(Duration::ZERO, &mut rng);
        assert!(p >= Duration::from_millis(100) && p < Duration::from_millis(200));
        assert!(WaitTime::between(2.0, 1.0).is_err());
    }
}
