//! Virtual users: the coroutine bridge, the per-user context, the user lifecycle, task
//! choice and wait times.

mod bridge;
mod context;
mod driver;
mod pool;
mod shared;
mod tasks;
mod user;

use std::future::Future;
use std::time::{Duration, Instant};

use rhai::{Dynamic, EvalAltResult};

pub use context::{Cohort, Phase, User, Worker, enter, with_user};
pub use driver::drive;
pub use pool::{Given, Pool, Slot};
pub use shared::{DataFiles, RunState, ScenarioState, Trace, UniqueIds, UserSettings};
pub use tasks::{TaskTable, WaitTime};
pub use user::{Session, run_session};

use crate::script::{Signal, raise, script_error};
use bridge::Resume;

/// Awaits `future` from inside a script: the user's fiber suspends and the worker runs
/// other users until it completes. `interruptible` futures are dropped as soon as the run
/// stops; the others only at the hard stop.
pub fn await_in_script<T>(
    future: impl Future<Output = T>,
    interruptible: bool,
) -> Result<T, Box<EvalAltResult>> {
    match bridge::await_on_fiber(future, interruptible) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(Resume::Stop)) => Err(raise(Signal::Stop)),
        Ok(Err(_)) => unreachable!("a suspended fiber is resumed with Done or Stop"),
        Err(e) => Err(script_error(e.to_string())),
    }
}

/// Runs its closure if dropped before [`IfAbandoned::done`]: the user's coroutine was
/// dropped mid-way (the hard stop, a ramp-down past its grace period, a `setup`/`teardown`
/// timeout) and its unwinding drops this, so what was under way is counted, not lost.
pub struct IfAbandoned<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> IfAbandoned<F> {
    pub fn new(on_abandon: F) -> Self {
        Self(Some(on_abandon))
    }

    /// It ended by itself; the caller records how.
    pub fn done(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for IfAbandoned<F> {
    fn drop(&mut self) {
        if let Some(on_abandon) = self.0.take() {
            on_abandon();
        }
    }
}

/// `sleep(seconds)` for the current user.
pub fn sleep(seconds: f64) -> Result<(), Box<EvalAltResult>> {
    let d = crate::duration::from_secs(seconds)
        .map_err(|e| script_error(format!("sleep({seconds}): {e}")))?;
    let phase = with_user(|u| u.phase.get()).map_err(|e| script_error(e.to_string()))?;
    if phase == Phase::Init {
        return Err(script_error("sleep is not allowed in top-level code"));
    }
    if d.is_zero() {
        return Ok(());
    }
    await_in_script(tokio::time::sleep(d), !phase.is_closing())
}

/// How long one user may run script code before it lets the others have a turn.
pub const TIME_SLICE: Duration = Duration::from_millis(2);

/// Scripts stop this many bytes before their stack ends (the guard page would kill the
/// process, not the task). Generous because debug builds use large frames.
pub const STACK_MARGIN: usize = 192 * 1024;

/// The script guard, called by Rhai's `on_progress` on every operation: ends a script that
/// recursed too deep or whose run is stopping, and yields a long-running one to its
/// neighbours after [`TIME_SLICE`].
pub fn guard(operations: u64) -> Option<Dynamic> {
    // Every fourth operation is often enough: one operation enters at most one call level,
    // and four levels use far less than the margin even in debug builds.
    if operations.is_multiple_of(4)
        && bridge::stack_remaining().is_some_and(|left| left < STACK_MARGIN)
    {
        return Some(Dynamic::from(Signal::StackExhausted));
    }
    if !operations.is_multiple_of(128) {
        return None;
    }
    let (stopping, slice_start, closing) = with_user(|u| {
        let phase = u.phase.get();
        let closing = phase.is_closing() || phase == Phase::Init;
        // Closing hooks may finish after the stop, but not after the hard stop. The
        // `setup` and `teardown` sessions (top-level code included) are not users: their
        // own timeouts (or a signal) end them, by dropping their fiber; `teardown` runs
        // after both stops.
        let stopping = if u.is_session() {
            false
        } else if closing {
            u.cohort.scenario.hard_stop.is_cancelled()
        } else {
            u.stop.is_cancelled()
        };
        (stopping, u.slice_start.get(), closing)
    })
    .ok()?;
    if stopping {
        return Some(Dynamic::from(Signal::Stop));
    }
    if slice_start.elapsed() < TIME_SLICE || !bridge::in_fiber() {
        return None;
    }
    match await_in_script(tokio::task::yield_now(), !closing) {
        Ok(()) => {
            let _ = with_user(|u| u.slice_start.set(Instant::now()));
            None
        }
        Err(_) => Some(Dynamic::from(Signal::Stop)),
    }
}
