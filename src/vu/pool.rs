//! The open model's hand-off between a worker's dispatcher and its users: a user that is
//! ready waits in the pool's idle queue; the dispatcher gives the next due iteration to the
//! first idle user, or counts it dropped when there is none (k6's arrival-rate executors).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use tokio::sync::Notify;
use tokio::time::Instant;

/// One user's place in the pool.
#[derive(Default)]
pub struct Slot {
    /// When the iteration handed to this user was due.
    due: Cell<Option<Instant>>,
    wake: Notify,
    /// Set the first time its user is ready (its `on_start` done).
    started: Cell<bool>,
}

impl Slot {
    /// Whether its user is still starting: not ready yet and not gone.
    pub fn is_starting(self: &Rc<Self>) -> bool {
        !self.started.get() && Rc::strong_count(self) > 1
    }
}

/// Idle users of one worker, first come first served.
#[derive(Default)]
pub struct Pool {
    idle: RefCell<VecDeque<Rc<Slot>>>,
    /// No more iterations will come (the budget is spent, the dispatcher ended).
    closed: Cell<bool>,
}

impl Pool {
    /// Waits for `slot`'s next iteration; returns when it was due, or `None` once the pool
    /// is closed and its user should end.
    pub async fn next(&self, slot: &Slot) -> Option<Instant> {
        loop {
            if let Some(due) = slot.due.take() {
                return Some(due);
            }
            if self.closed.get() {
                return None;
            }
            slot.wake.notified().await;
        }
    }

    /// No more iterations: every waiting user wakes and ends.
    pub fn close(&self) {
        self.closed.set(true);
        for slot in self.idle.borrow_mut().drain(..) {
            slot.wake.notify_one();
        }
    }

    /// `slot`'s user is ready for an iteration.
    pub fn ready(&self, slot: &Rc<Slot>) {
        slot.started.set(true);
        self.idle.borrow_mut().push_back(slot.clone());
    }

    /// Hands the iteration due at `due` to an idle user; false when none is idle.
    pub fn give(&self, due: Instant) -> bool {
        let mut idle = self.idle.borrow_mut();
        while let Some(slot) = idle.pop_front() {
            // Held only here: its user is gone (aborted while it waited).
            if Rc::strong_count(&slot) == 1 {
                continue;
            }
            slot.due.set(Some(due));
            slot.wake.notify_one();
            return true;
        }
        false
    }

    /// Forgets a user that is ending.
    pub fn remove(&self, slot: &Rc<Slot>) {
        self.idle.borrow_mut().retain(|s| !Rc::ptr_eq(s, slot));
    }
}
