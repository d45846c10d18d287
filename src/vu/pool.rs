//! The open model's hand-off between a worker's dispatcher and its users: a user that is
//! ready waits in the pool's idle queue; the dispatcher gives the next due iteration to the
//! first idle user, or, when there is none, counts it dropped (k6's arrival-rate executors)
//! or queues it for the next user that becomes ready (wrk2's `-R`).

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

/// Iterations one worker's queue may hold (16 bytes each); past this they are dropped.
pub const MAX_QUEUED: usize = 1_000_000;

/// Idle users of one worker, first come first served.
#[derive(Default)]
pub struct Pool {
    idle: RefCell<VecDeque<Rc<Slot>>>,
    /// Due times of iterations waiting for a user (queue mode only).
    queued: RefCell<VecDeque<Instant>>,
    /// Whether an iteration that finds no idle user waits rather than being dropped.
    queue: bool,
    /// No more iterations will come (the budget is spent, the dispatcher ended).
    closed: Cell<bool>,
}

/// What became of an arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given {
    /// An idle user took it.
    Started,
    /// It waits for the next user to become ready.
    Queued,
    /// No user was idle and it cannot wait: dropped.
    Busy,
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

    /// A pool whose busy arrivals wait (`queue`) or are dropped.
    pub fn new(queue: bool) -> Self {
        Self {
            queue,
            ..Self::default()
        }
    }

    /// No more iterations: every waiting user wakes and ends. Returns how many queued
    /// iterations will now never start (to be counted dropped).
    pub fn close(&self) -> u64 {
        self.closed.set(true);
        for slot in self.idle.borrow_mut().drain(..) {
            slot.wake.notify_one();
        }
        let mut queued = self.queued.borrow_mut();
        let never = queued.len() as u64;
        queued.clear();
        never
    }

    /// `slot`'s user is ready for an iteration: it takes the oldest queued one, or waits.
    pub fn ready(&self, slot: &Rc<Slot>) {
        slot.started.set(true);
        if let Some(due) = self.queued.borrow_mut().pop_front() {
            slot.due.set(Some(due));
            return;
        }
        self.idle.borrow_mut().push_back(slot.clone());
    }

    /// Hands the iteration due at `due` to an idle user, or queues it, or says it cannot.
    pub fn give(&self, due: Instant) -> Given {
        let mut idle = self.idle.borrow_mut();
        while let Some(slot) = idle.pop_front() {
            // Held only here: its user is gone (aborted while it waited).
            if Rc::strong_count(&slot) == 1 {
                continue;
            }
            slot.due.set(Some(due));
            slot.wake.notify_one();
            return Given::Started;
        }
        let mut queued = self.queued.borrow_mut();
        if self.queue && queued.len() < MAX_QUEUED {
            queued.push_back(due);
            Given::Queued
        } else {
            Given::Busy
        }
    }

    /// Forgets a user that is ending.
    pub fn remove(&self, slot: &Rc<Slot>) {
        self.idle.borrow_mut().retain(|s| !Rc::ptr_eq(s, slot));
    }
}
