//! The open model on one worker (k6's `constant-arrival-rate`): iterations start on a fixed
//! schedule that does not wait for responses. Each is handed to an idle user of the
//! worker's pool; with none idle, the pool grows (the new user runs `on_start` first, so this
//! iteration is dropped) up to its share of `max_users`, and past that the iteration is
//! dropped and counted. A slow target therefore shows as drops and queueing, not as a
//! quietly lower rate.

use std::rc::Rc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::worker::Lane;
use crate::plan::RateSpec;

/// Seconds as a duration, capped rather than panicking on an absurdly small rate.
fn secs(s: f64) -> Duration {
    crate::duration::from_secs(s).unwrap_or(crate::duration::MAX)
}

use crate::plan::WhenBusy;
use crate::vu::{Given, Pool, Session, Slot, User, drive, run_session};

pub struct Arrivals {
    /// Iterations per second over time, for the whole run.
    rate: RateSpec,
    /// This worker's share of the rate.
    fraction: f64,
    /// Where this lane's arrivals fall within its own period, from 0 to 1: lane `g` of `L`
    /// takes `g / L`, so the lanes of every worker of every segment take turns (arrival `k`
    /// of the whole goes to lane `k mod L` when the rate splits evenly) rather than each
    /// firing at the start, which would add one arrival per lane to the whole.
    phase: f64,
    /// This worker's users: the numbers `index + k * workers` below `max`.
    numbers: std::iter::StepBy<std::ops::Range<u64>>,
    pre_allocated: u64,
    /// When the scenario started: its rate's stages count from here.
    start: Instant,
    lane: Lane,
    pool: Rc<Pool>,
    /// Users started but not yet ready: the pool does not grow again until they are, or a
    /// slow start would turn every drop into one more user starting.
    starting: Vec<Rc<Slot>>,
    users: JoinSet<()>,
    /// Wakes the dispatcher when the next arrival is due, to the microsecond.
    timer: super::precise::PreciseTimer,
    /// Resolves when the scenario ends: made once, not on every wake-up (each would lock
    /// the token every worker's dispatcher of the scenario shares).
    finished: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    /// The script's `shape`, when it sets the rate: asked once a second.
    shape: Option<RateShape>,
    /// The rate set from outside (the web UI), read at every wake-up.
    steering: Option<std::sync::Arc<crate::plan::Steering>>,
}

/// A shape that returns `#{ rate }`, and what it said last.
struct RateShape {
    shape: crate::api::Shape,
    asked: Option<Duration>,
    rate: f64,
}

/// This worker's share of `total` when `workers` split it: the first ones take one more.
fn share(total: u64, index: usize, workers: usize) -> u64 {
    crate::plan::striped_share(total, index as u64, workers as u64)
}

impl Arrivals {
    pub fn new(
        lane: Lane,
        start: Instant,
        rate: RateSpec,
        (pre_allocated, max): (u64, u64),
        when_busy: WhenBusy,
    ) -> Self {
        let (index, workers) = (lane.index, lane.workers);
        let finished = Box::pin(lane.cohort.scenario.finish.clone().cancelled_owned());
        let mine = share(max, index, workers);
        let first = index as u64;
        // A segment runs 1/N of the rate (the plan made sure each has a user to run it).
        let segment = lane.segment;
        let segment_users = segment.share(max);
        Self {
            rate,
            // Within a segment the rate follows the users: a worker with none of the pool
            // (fewer users than workers) takes none of the rate, rather than losing its
            // share uncounted.
            fraction: if segment_users == 0 {
                0.0
            } else {
                mine as f64 / segment_users as f64 / segment.count as f64
            },
            phase: index as f64 / workers as f64,
            numbers: (first..first + mine * workers as u64).step_by(workers),
            pre_allocated: share(pre_allocated, index, workers).min(mine),
            start,
            lane,
            pool: Rc::new(Pool::new(when_busy == WhenBusy::Queue)),
            starting: Vec::new(),
            users: JoinSet::new(),
            timer: super::precise::PreciseTimer::new(),
            finished,
            shape: None,
            steering: None,
        }
    }

    /// Follows the rate set from outside rather than the schedule's.
    pub fn steered(mut self, steering: Option<std::sync::Arc<crate::plan::Steering>>) -> Self {
        self.steering = steering;
        self
    }

    /// Follows the script's `shape` for the rate (with [`RateSpec::Shaped`]).
    pub fn shaped(mut self, shape: Option<crate::api::Shape>) -> Self {
        self.shape = shape.map(|shape| RateShape {
            shape,
            asked: None,
            rate: 0.0,
        });
        self
    }

    /// Iterations per second at `t` for this worker; `None` once a shape has ended the
    /// scenario (or failed, which is recorded and ends it too).
    fn rate_at(&mut self, t: Duration) -> Option<f64> {
        if let Some(steering) = &self.steering {
            return Some(steering.rate() * self.fraction);
        }
        let Some(s) = &mut self.shape else {
            return Some(self.rate.at(t) * self.fraction);
        };
        if s.asked.is_none_or(|a| t >= a + Duration::from_secs(1)) {
            match s.shape.at(t.as_secs_f64().floor()) {
                Ok(Some(want)) => s.rate = want.rate.unwrap_or(0.0).min(self.rate.peak()),
                Ok(None) => return None,
                Err(e) => {
                    super::shaped::record_failure(&self.lane.cohort, &e);
                    return None;
                }
            }
            s.asked = Some(t);
        }
        Some(s.rate * self.fraction)
    }

    /// Starts one more user for the pool, if this worker may; false at its maximum.
    fn grow(&mut self) -> bool {
        let Some(number) = self.numbers.next() else {
            return false;
        };
        let lane = &self.lane;
        lane.run.note_spawn();
        let id = lane.scenario.first_user + number + 1;
        let mut user = User::new(id, lane.worker.clone(), lane.cohort.clone());
        let slot = Rc::new(Slot::default());
        self.starting.push(slot.clone());
        user.pooled = Some((self.pool.clone(), slot));
        let user = Rc::new(user);
        let program = lane.program.clone();
        let running =
            super::controller::Running::new(lane.run.clone(), lane.cohort.scenario.clone());
        self.users.spawn_local(async move {
            let _running = running;
            drive(user, move || run_session(&program, Session::User)).await;
        });
        true
    }

    /// One arrival, due at `due`: to an idle user, or queued, or dropped; without an idle
    /// user the pool grows when no user is still starting.
    fn arrive(&mut self, due: Instant) {
        let given = self.pool.give(due);
        if given == Given::Busy {
            self.lane.cohort.recorder.borrow_mut().dropped_iteration();
        }
        if given != Given::Started && self.starting() == 0 {
            self.grow();
        }
    }

    /// Waits until `wake`; false when arrivals should end: the run stops, the iteration
    /// budget is spent, or every user this worker may have has ended by itself.
    async fn wait(&mut self, wake: Instant) -> bool {
        loop {
            tokio::select! {
                () = self.timer.sleep_until(wake) => break,
                Some(_) = self.users.join_next(), if !self.users.is_empty() => {}
                () = &mut self.finished => return false,
            }
        }
        let exhausted = self.users.is_empty() && self.numbers.clone().next().is_none();
        !(self.lane.cohort.scenario.iterations_spent(&self.lane.run) || exhausted)
    }

    /// A constant rate: arrivals exactly `1 / per_second` apart, each dispatched when it is
    /// due (the timer is precise to microseconds). A late wake-up dispatches every
    /// iteration already due at once: arrivals do not wait for the generator any more than
    /// for the server. Waking for each arrival costs CPU that batching them on tokio's
    /// millisecond ticks did not (at 10,000/s: 37 µs an iteration against 22–24 µs), and
    /// buys start lateness p99 of 0.04 ms against 1.1–1.4 ms: the lateness is added to
    /// every corrected latency, and at rates the generator sustains the CPU is there.
    async fn constant(&mut self, per_second: f64) {
        let interval = secs(1.0 / per_second);
        let mut due = Instant::now() + secs(self.phase / per_second);
        while self.wait(due).await {
            let now = Instant::now();
            while due <= now {
                self.arrive(due);
                due += interval;
            }
        }
    }

    /// A rate through stages: the iterations due so far are the integral of the rate
    /// (trapezoids between wake-ups, exact on a linear stage); each is dispatched with its
    /// due time interpolated within the step. The stages run on the run's clock (the one
    /// its end is measured by); arrivals begin once the pool is ready.
    async fn ramping(&mut self) {
        let start = self.start;
        let (mut t_prev, mut credit_prev) = (Instant::now() - start, 0.0_f64);
        let mut next: u64 = 0;
        let mut wake = start;
        let Some(mut rate_prev) = self.rate_at(t_prev) else {
            self.lane.cohort.scenario.end();
            return;
        };
        while self.wait(wake).await {
            let now = Instant::now();
            let t = now - start;
            let Some(rate_now) = self.rate_at(t) else {
                // The shape ended the scenario: no new iterations.
                self.lane.cohort.scenario.end();
                return;
            };
            let step = (t - t_prev).as_secs_f64();
            let credit = credit_prev + (rate_prev + rate_now) / 2.0 * step;
            while next as f64 + self.phase < credit {
                let at = next as f64 + self.phase;
                let into = (at - credit_prev).max(0.0) / (credit - credit_prev) * step;
                self.arrive(start + t_prev + secs(into));
                next += 1;
            }
            (t_prev, credit_prev, rate_prev) = (t, credit, rate_now);
            // Look again when the next arrival is due at today's rate, within bounds that
            // keep a changing rate followed closely.
            let ahead = if rate_now > 0.0 {
                (next as f64 + self.phase - credit).max(0.0) / rate_now
            } else {
                f64::INFINITY
            };
            wake = now + secs(ahead.clamp(0.000_02, 0.05));
        }
    }

    /// How many users are still starting.
    fn starting(&mut self) -> usize {
        self.starting.retain(Slot::is_starting);
        self.starting.len()
    }

    /// Dispatches iterations until the run stops, then lets the users end (aborting what
    /// still runs at the hard stop).
    pub async fn run(mut self) {
        for _ in 0..self.pre_allocated {
            self.grow();
        }
        // The schedule starts once the pre-allocated users are ready (as k6 initialises its
        // VUs before the test): iterations due while they start would all be dropped.
        let state = self.lane.cohort.scenario.clone();
        while self.starting() > 0 && !state.finish.is_cancelled() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
                _ = state.finish.cancelled() => {}
            }
        }
        match self.rate.clone() {
            _ if self.fraction == 0.0 => {}
            _ if self.steering.is_some() => self.ramping().await,
            RateSpec::Constant(r) => self.constant(r * self.fraction).await,
            RateSpec::Stages { .. } | RateSpec::Shaped { .. } => self.ramping().await,
        }
        // No more arrivals: the users waiting for one end (and run on_stop); iterations
        // still queued never start.
        let never = self.pool.close();
        self.lane
            .cohort
            .recorder
            .borrow_mut()
            .dropped_iterations(never);
        super::controller::wind_down(&mut self.users, &mut Vec::new(), &state).await;
    }
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_add_up_to_the_whole() {
        for total in [0, 1, 2, 3, 10, 101] {
            for workers in 1..=4 {
                let sum: u64 = (0..workers).map(|i| share(total, i, workers)).sum();
                assert_eq!(sum, total, "{total} over {workers}");
            }
        }
    }
}
