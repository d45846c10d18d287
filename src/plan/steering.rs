//! Users and spawn rate set from outside while a run goes on: the web UI's "Edit" (Locust's
//! user-count change, k6's `externally-controlled` executor). The run's default scenario
//! follows it instead of its schedule; the level ramps toward each new target at the spawn
//! rate, as a `shape` does.

use std::sync::atomic::{AtomicU64, Ordering};

/// The users wanted and how fast to get there, shared between whoever steers and every
/// worker's controller. Plain atomics: read a few times a second, written on an edit.
#[derive(Debug, Default)]
pub struct Steering {
    users: AtomicU64,
    /// The spawn rate's `f64` bits; 0.0 means all at once.
    spawn_rate: AtomicU64,
    /// Iterations a second (`f64` bits) for a steered arrival-rate scenario.
    rate: AtomicU64,
}

impl Steering {
    pub fn new(users: u64, spawn_rate: f64) -> Self {
        let steering = Self::default();
        steering.set(users, spawn_rate);
        steering
    }

    /// A new target: `users`, reached at `spawn_rate` users a second (≤ 0: at once).
    pub fn set(&self, users: u64, spawn_rate: f64) {
        let rate = if spawn_rate.is_finite() && spawn_rate > 0.0 {
            spawn_rate
        } else {
            0.0
        };
        self.spawn_rate.store(rate.to_bits(), Ordering::Relaxed);
        self.users.store(users, Ordering::Relaxed);
    }

    /// A new arrival rate (iterations a second; below 0 or not a number: 0).
    pub fn set_rate(&self, rate: f64) {
        let rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// Iterations a second wanted now.
    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    /// (users, spawn rate per second or `None` for at once).
    pub fn get(&self) -> (u64, Option<f64>) {
        let rate = f64::from_bits(self.spawn_rate.load(Ordering::Relaxed));
        (
            self.users.load(Ordering::Relaxed),
            (rate > 0.0).then_some(rate),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_target_and_reads_a_bad_rate_as_at_once() {
        let s = Steering::new(20, 5.0);
        assert_eq!(s.get(), (20, Some(5.0)));
        s.set(3, f64::NAN);
        assert_eq!(s.get(), (3, None));
        s.set(7, -1.0);
        assert_eq!(s.get(), (7, None));
        s.set_rate(12.5);
        assert_eq!(s.rate(), 12.5);
        s.set_rate(f64::INFINITY);
        assert_eq!(s.rate(), 0.0);
    }
}
