//! One worker's users over time: starts and retires them so that, together with the other
//! workers, as many run as the [`Schedule`] wants. Users are numbered globally from 0;
//! worker `w` of `n` owns the numbers `w, w + n, w + 2n, …`, starts them in order and
//! retires them from the top, so its users are always a prefix of its numbers.
//!
//! A retired user is asked to stop (its own stop token): it finishes its request, skips the
//! rest of its task, runs `on_stop` and ends. One that has not ended `graceful_ramp_down`
//! later is aborted like at the hard stop (its request counted `unfinished`).

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::shaped::{Shaped, Source};
use super::worker::Lane;
use super::{RunState, ScenarioState};
use crate::plan::Schedule;
use crate::vu::{Session, User, drive, run_session};

/// A running user the controller may retire.
struct Slot {
    /// Tells this user apart from an earlier one with the same number still retiring.
    serial: u64,
    stop: CancellationToken,
    abort: AbortHandle,
}

pub struct Controller {
    index: u64,
    workers: u64,
    /// When the scenario started: its schedule counts from here.
    start: Instant,
    schedule: Schedule,
    lane: Lane,
    /// Each task ends with its user's (number, serial).
    users: JoinSet<(u64, u64)>,
    active: BTreeMap<u64, Slot>,
    /// Numbers whose user ended by itself (its iterations done, `on_start` failed): not
    /// started again while the schedule still wants them.
    done: BTreeSet<u64>,
    /// The next of this worker's numbers to start.
    next: u64,
    serial: u64,
    retiring: Vec<(Instant, AbortHandle)>,
    /// The script's `shape`, when it sets the users instead of the schedule.
    shaped: Option<Shaped>,
}

impl Controller {
    pub fn new(lane: Lane, start: Instant, schedule: Schedule) -> Self {
        Self {
            index: lane.index as u64,
            workers: lane.workers as u64,
            start,
            schedule,
            users: JoinSet::new(),
            active: BTreeMap::new(),
            done: BTreeSet::new(),
            next: lane.index as u64,
            lane,
            serial: 0,
            retiring: Vec::new(),
            shaped: None,
        }
    }

    /// Follows the script's `shape` rather than the schedule.
    pub fn shaped(mut self, shape: crate::api::Shape) -> Self {
        self.shaped = Some(Shaped::new(
            Source::Script(Box::new(shape)),
            self.schedule.peak(),
        ));
        self
    }

    /// Follows the users set from outside (the web UI) rather than the schedule; no cap.
    pub fn steered(mut self, steering: Arc<crate::plan::Steering>) -> Self {
        self.shaped = Some(Shaped::new(Source::Outside(steering), u64::MAX));
        self
    }

    /// The users wanted at `t` and when that may next change; `None` once a shape has
    /// ended the run (or failed, which is recorded and ends it too).
    fn target(&mut self, t: Duration) -> Option<(u64, Option<Duration>)> {
        let Some(shaped) = &mut self.shaped else {
            return Some((self.schedule.target_at(t), self.schedule.next_change(t)));
        };
        match shaped.target(t) {
            Ok(Some(users)) => Some((users, Some(shaped.next_change(t)))),
            Ok(None) => None,
            Err(e) => {
                super::shaped::record_failure(&self.lane.cohort, &e);
                None
            }
        }
    }

    /// Follows the schedule until the run stops or nothing is left to do; then lets the
    /// users end by themselves, aborting what still runs at the hard stop.
    pub async fn run(mut self) {
        // The scenario's clock, counted from the run's start (plus its start time), the
        // one its end is measured by: a schedule that runs as long as the run is not cut
        // short by the time setup and start-up took.
        let start = self.start;
        let far = Instant::now() + crate::duration::MAX;
        let state = self.lane.cohort.scenario.clone();
        loop {
            if state.finish.is_cancelled() {
                break;
            }
            if state.iterations_spent(&self.lane.run) && self.users.is_empty() {
                break; // the iteration budget is spent and every user has ended
            }
            let now = Instant::now();
            let t = now - start;
            let Some((target, change)) = self.target(t) else {
                // The shape ended its scenario: the same stop as the run time's.
                state.stop.cancel();
                break;
            };
            self.follow(target, now);
            abort_overdue(&mut self.retiring, now);
            let change = change.map(|d| start + d);
            if change.is_none() && self.users.is_empty() {
                break;
            }
            let wake = change
                .into_iter()
                .chain(self.retiring.iter().map(|(d, _)| *d))
                .min()
                .unwrap_or(far);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                ended = self.users.join_next(), if !self.users.is_empty() => {
                    if let Some(Ok((number, serial))) = ended {
                        self.ended(number, serial);
                    }
                }
                _ = state.finish.cancelled() => break,
            }
        }
        wind_down(&mut self.users, &mut self.retiring, &state).await;
    }

    /// Starts or retires users so that this worker runs its share of `target`.
    fn follow(&mut self, target: u64, now: Instant) {
        while self.next < target {
            self.start(self.next);
            self.next += self.workers;
        }
        while self.next >= self.index + self.workers && self.next - self.workers >= target {
            self.next -= self.workers;
            self.done.remove(&self.next);
            if let Some(slot) = self.active.remove(&self.next) {
                slot.stop.cancel();
                self.retiring
                    .push((now + self.lane.scenario.graceful_ramp_down, slot.abort));
            }
        }
    }

    fn start(&mut self, number: u64) {
        // Users started after the budget is spent would only run on_start and on_stop.
        let lane = &self.lane;
        if self.done.contains(&number) || lane.cohort.scenario.iterations_spent(&lane.run) {
            return;
        }
        lane.run.note_spawn();
        self.serial += 1;
        let serial = self.serial;
        let id = lane.scenario.first_user + number + 1;
        let user = Rc::new(User::new(id, lane.worker.clone(), lane.cohort.clone()));
        let stop = user.stop.clone();
        let program = lane.program.clone();
        let running = Running::new(lane.run.clone(), lane.cohort.scenario.clone());
        let abort = self.users.spawn_local(async move {
            let _running = running;
            drive(user, move || run_session(&program, Session::User)).await;
            (number, serial)
        });
        self.active.insert(
            number,
            Slot {
                serial,
                stop,
                abort,
            },
        );
    }

    /// A user's task returned: if it was not retired, it ended by itself.
    fn ended(&mut self, number: u64, serial: u64) {
        if self.active.get(&number).is_some_and(|s| s.serial == serial) {
            self.active.remove(&number);
            self.done.insert(number);
        }
    }
}

/// Aborts the retired users past their graceful ramp-down; forgets those that ended.
fn abort_overdue(retiring: &mut Vec<(Instant, AbortHandle)>, now: Instant) {
    retiring.retain(|(deadline, user)| {
        if *deadline <= now {
            user.abort();
        }
        *deadline > now && !user.is_finished()
    });
}

/// After the stop: users end by themselves (finishing their request and `on_stop`); a user
/// retired earlier is aborted once past its graceful ramp-down, and whatever still runs at
/// the hard stop (a request that will not complete, a slow `on_stop`) is aborted.
pub(super) async fn wind_down<T: 'static>(
    users: &mut JoinSet<T>,
    retiring: &mut Vec<(Instant, AbortHandle)>,
    scenario: &ScenarioState,
) {
    loop {
        let retired = retiring.iter().map(|(d, _)| *d).min();
        tokio::select! {
            next = users.join_next() => if next.is_none() { break },
            _ = tokio::time::sleep_until(retired.unwrap_or_else(Instant::now)), if retired.is_some() => {
                abort_overdue(retiring, Instant::now());
            }
            _ = scenario.hard_stop.cancelled() => {
                users.abort_all();
                while users.join_next().await.is_some() {}
                break;
            }
        }
    }
}

/// Counts a user in the run's and its scenario's `users_running` for as long as its task
/// lives, aborted or not.
pub(super) struct Running(Arc<RunState>, Arc<ScenarioState>);

impl Running {
    pub(super) fn new(run: Arc<RunState>, scenario: Arc<ScenarioState>) -> Self {
        run.users_running.fetch_add(1, Ordering::Relaxed);
        scenario.users_running.fetch_add(1, Ordering::Relaxed);
        Self(run, scenario)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.users_running.fetch_sub(1, Ordering::Relaxed);
        self.1.users_running.fetch_sub(1, Ordering::Relaxed);
    }
}
