//! The request timeout, without a timer operation per request.
//!
//! `tokio::time::timeout` registers a timer in the runtime's wheel when the request first
//! waits and removes it when the request ends: two wheel operations under the driver's
//! lock, and a clock read, for every request, about a thousand instructions of a plain GET's
//! sixteen thousand. But a user's timeouts almost never fire, and its requests follow one
//! another, each due later than the last. So each client keeps one timer, armed for some
//! earlier request's deadline, and only moves it when it goes off (the request then in
//! flight is not due yet: the timer is re-armed for its deadline) or when a request is due
//! before it (a shorter per-request timeout). A request costs a few comparisons, no clock
//! read; the timer is polled only when it is new, was moved or went off, and it moves about
//! once per timeout period.
//!
//! A timer left armed after its request ended wakes the user's task once, for nothing:
//! futures are polled again and find nothing to do.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// A request's deadline passed.
#[derive(Debug)]
pub(crate) struct Elapsed;

/// One client's timer, shared by its requests one after another.
#[derive(Default)]
pub(crate) struct Deadline {
    timer: RefCell<Option<Armed>>,
    /// Whether a request is using the timer; a second one at the same time (none today)
    /// gets a timer of its own.
    busy: Cell<bool>,
}

impl Deadline {
    /// `fut`, bounded: it fails with [`Elapsed`] once `limit` after `start` has passed.
    /// Not an `async fn`: that would move the request's future (a few kilobytes) once more.
    pub fn run<F: Future>(&self, start: Instant, limit: Duration, fut: F) -> Bounded<'_, F> {
        // Thirty years stand for "never", as in tokio.
        let due = start
            .checked_add(limit)
            .unwrap_or_else(|| start + Duration::from_secs(86_400 * 365 * 30));
        Bounded {
            deadline: self,
            due: tokio::time::Instant::from_std(due),
            shared: (!self.busy.replace(true)).then_some(Release(&self.busy)),
            own: None,
            fut,
        }
    }

    /// Polls the timer for a request due at `due` that is still waiting.
    fn poll_timer<T>(
        &self,
        cx: &mut Context<'_>,
        due: tokio::time::Instant,
    ) -> Poll<Result<T, Elapsed>> {
        let mut slot = self.timer.borrow_mut();
        let armed = slot.get_or_insert_with(|| Armed {
            sleep: Box::pin(tokio::time::sleep_until(due)),
            waker: None,
        });
        if armed.sleep.deadline() > due {
            // Armed for later than this request may run.
            armed.sleep.as_mut().reset(due);
            armed.waker = None;
        }
        if !armed.sleep.is_elapsed()
            && armed
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
        {
            // Set, and it will wake this task: nothing to do.
            return Poll::Pending;
        }
        loop {
            // Unconstrained: a poll refused for the task's budget would not register the
            // waker, and the timer would be taken for set.
            let polled = std::pin::pin!(tokio::task::unconstrained(armed.sleep.as_mut())).poll(cx);
            if polled.is_pending() {
                match &mut armed.waker {
                    Some(w) => w.clone_from(cx.waker()),
                    none => *none = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
            if armed.sleep.deadline() >= due {
                return Poll::Ready(Err(Elapsed));
            }
            // It went off for an earlier request: arm it for this one (the loop registers
            // it with this task).
            armed.sleep.as_mut().reset(due);
        }
    }
}

/// The timer, and the task it wakes when it goes off.
struct Armed {
    sleep: Pin<Box<Sleep>>,
    /// `None` until it is polled after being set.
    waker: Option<Waker>,
}

pin_project_lite::pin_project! {
    /// A request's future bounded by its deadline.
    pub(crate) struct Bounded<'a, F> {
        deadline: &'a Deadline,
        due: tokio::time::Instant,
        // Holds the client's timer while the request runs; `None` when another request
        // holds it, and this one has a timer of its own.
        shared: Option<Release<'a>>,
        own: Option<Pin<Box<Sleep>>>,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for Bounded<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.fut.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let due = *this.due;
        if this.shared.is_some() {
            return this.deadline.poll_timer(cx, due);
        }
        let own = this
            .own
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        own.as_mut().poll(cx).map(|()| Err(Elapsed))
    }
}

/// Frees the timer for the next request, however this one ended.
struct Release<'a>(&'a Cell<bool>);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paused test clock's now, as the client reads it.
    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    /// The shared timer bounds each request by its own deadline: a request after one that
    /// finished early still times out on time, and a shorter timeout after a longer one
    /// moves the timer earlier.
    #[tokio::test(start_paused = true)]
    async fn each_request_is_bounded_by_its_own_deadline() {
        let deadline = Deadline::default();
        let never = std::future::pending::<()>;
        let quick = deadline
            .run(now(), Duration::from_secs(10), async { 7 })
            .await;
        assert_eq!(quick.unwrap(), 7);

        let t0 = tokio::time::Instant::now();
        let slow = deadline.run(now(), Duration::from_secs(10), never()).await;
        assert!(slow.is_err());
        assert_eq!(t0.elapsed().as_secs(), 10);

        // Armed for 10 s from now by a request that waited a moment and ended …
        let t1 = tokio::time::Instant::now();
        let waited = deadline.run(now(), Duration::from_secs(10), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        assert!(waited.await.is_ok());
        // … then a 2 s request must not wait for it.
        let short = deadline.run(now(), Duration::from_secs(2), never()).await;
        assert!(short.is_err());
        assert_eq!(t1.elapsed().as_secs(), 3);

        // A timer armed for an earlier, finished request goes off first, and is moved on.
        let t2 = tokio::time::Instant::now();
        let first = deadline.run(now(), Duration::from_secs(5), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        assert!(first.await.is_ok());
        let second = deadline.run(now(), Duration::from_secs(5), never()).await;
        assert!(second.is_err());
        assert_eq!(t2.elapsed().as_secs(), 6);
    }
}
