//! The open model on one worker (k6's `constant-arrival-rate`): iterations start on a fixed
//! schedule that does not wait for responses. Each is handed to an idle user of the
//! worker's pool; with none idle, the pool grows (the new user runs `on_start` first, so this
//! iteration is dropped) up to its share of `max_users`, and past that the iteration is
//! dropped and counted. A slow target therefore shows as drops and queueing, not as a
//! quietly lower rate.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::RunState;
use crate::script::Program;
use crate::vu::{Pool, Session, Slot, User, Worker, drive, run_session};

pub struct Arrivals {
    /// Iterations per second on this worker.
    per_second: f64,
    /// This worker's users: the numbers `index + k * workers` below `max`.
    numbers: std::iter::StepBy<std::ops::Range<u64>>,
    pre_allocated: u64,
    run: Arc<RunState>,
    program: Rc<Program>,
    worker: Rc<Worker>,
    pool: Rc<Pool>,
    /// Users started but not yet ready: the pool does not grow again until they are, or a
    /// slow start would turn every drop into one more user starting.
    starting: Vec<Rc<Slot>>,
    users: JoinSet<()>,
}

/// This worker's share of `total` when `workers` split it: the first ones take one more.
fn share(total: u64, index: usize, workers: usize) -> u64 {
    let (w, i) = (workers as u64, index as u64);
    total / w + u64::from(i < total % w)
}

impl Arrivals {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        workers: usize,
        per_second: f64,
        pre_allocated: u64,
        max: u64,
        run: Arc<RunState>,
        program: Rc<Program>,
        worker: Rc<Worker>,
    ) -> Self {
        let mine = share(max, index, workers);
        let first = index as u64;
        Self {
            per_second: per_second / workers as f64,
            numbers: (first..first + mine * workers as u64).step_by(workers),
            pre_allocated: share(pre_allocated, index, workers).min(mine),
            run,
            program,
            worker,
            pool: Rc::new(Pool::default()),
            starting: Vec::new(),
            users: JoinSet::new(),
        }
    }

    /// Starts one more user for the pool, if this worker may; false at its maximum.
    fn grow(&mut self) -> bool {
        let Some(number) = self.numbers.next() else {
            return false;
        };
        self.run.note_spawn();
        let mut user = User::new(number + 1, self.worker.clone());
        let slot = Rc::new(Slot::default());
        self.starting.push(slot.clone());
        user.pooled = Some((self.pool.clone(), slot));
        let user = Rc::new(user);
        let (program, run) = (self.program.clone(), self.run.clone());
        self.users.spawn_local(async move {
            let _running = super::controller::Running::new(run);
            drive(user, move || run_session(&program, Session::User)).await;
        });
        true
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
        while self.starting() > 0 && !self.run.stop.is_cancelled() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
                _ = self.run.stop.cancelled() => {}
            }
        }
        let start = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / self.per_second);
        let mut due = start;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                Some(_) = self.users.join_next(), if !self.users.is_empty() => continue,
                _ = self.run.stop.cancelled() => break,
            }
            // Late wake-ups dispatch every iteration already due, at once: arrivals do
            // not wait for the generator any more than for the server.
            if self.run.iterations_spent() {
                break; // the iteration budget is spent: no more arrivals
            }
            let now = Instant::now();
            while due <= now && !self.run.stop.is_cancelled() {
                if !self.pool.give(due) {
                    self.worker.recorder.borrow_mut().dropped_iteration();
                    if self.starting() == 0 {
                        self.grow();
                    }
                }
                due += interval;
            }
        }
        loop {
            tokio::select! {
                next = self.users.join_next() => if next.is_none() { break },
                _ = self.run.hard_stop.cancelled() => {
                    self.users.abort_all();
                    while self.users.join_next().await.is_some() {}
                    break;
                }
            }
        }
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
