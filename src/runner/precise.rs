//! A timer finer than tokio's, for the open model's dispatcher. tokio's timer wheel ticks
//! in whole milliseconds and rounds a deadline up to the next tick, so an arrival due at
//! 10.1 ms would be dispatched at 11 ms: up to a millisecond of start lateness that is the
//! tool's, not the schedule's. A Linux timerfd armed for the exact deadline and awaited
//! through tokio's reactor wakes the dispatcher within microseconds, without spinning.
//! Where a timerfd cannot be had, tokio's timer is used.

use std::time::Duration;

use rustix::fd::OwnedFd;
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

pub struct PreciseTimer {
    fd: Option<AsyncFd<OwnedFd>>,
}

impl PreciseTimer {
    /// Must be called within a tokio runtime with I/O enabled.
    pub fn new() -> Self {
        let fd = rustix::time::timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .ok()
        // SAFETY: an `OwnedFd` is a valid open descriptor that stays open, and is the
        // same descriptor, until it is dropped, which is when the `AsyncFd` is.
        .and_then(|fd| unsafe { AsyncFd::register(fd) }.ok());
        Self { fd }
    }

    /// Resolves at `deadline` (at once if it has passed, but through tokio's cooperative
    /// budget: a dispatcher that has fallen behind still lets the worker's users, its
    /// metrics tick and the scenario's clock run, as tokio's own timer would).
    pub async fn sleep_until(&mut self, deadline: Instant) {
        let now = Instant::now();
        if deadline <= now {
            return tokio::task::coop::consume_budget().await;
        }
        let Some(fd) = &self.fd else {
            return tokio::time::sleep_until(deadline).await;
        };
        if arm(fd, deadline - now).is_err() {
            return tokio::time::sleep_until(deadline).await;
        }
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return tokio::time::sleep_until(deadline).await;
            };
            // Eight bytes: how many times it expired. Re-arming resets that count, so a
            // readiness left from an earlier, abandoned wait reads as "would block".
            match rustix::io::read(ready.get_inner(), &mut [0u8; 8]) {
                Ok(_) => return,
                Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                Err(_) => return tokio::time::sleep_until(deadline).await,
            }
        }
    }
}

/// Arms the timer once, `after` from now (never zero: that would disarm it).
fn arm(fd: &AsyncFd<OwnedFd>, after: Duration) -> rustix::io::Result<()> {
    let after = after.max(Duration::from_nanos(1));
    let value = Timespec {
        tv_sec: after.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: after.subsec_nanos().into(),
    };
    let spec = Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: value,
    };
    rustix::time::timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_at_the_deadline_not_the_next_millisecond() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut timer = PreciseTimer::new();
            assert!(timer.fd.is_some(), "a timerfd on Linux");
            let start = Instant::now();
            for i in 1..=20u64 {
                let deadline = start + Duration::from_micros(1_300 * i);
                timer.sleep_until(deadline).await;
                // Never early; a generous bound on lateness so a loaded machine passes
                // (the benchmark measures the real figure).
                let now = Instant::now();
                assert!(now >= deadline, "woke {:?} early", deadline - now);
            }
            // An abandoned wait leaves the timer armed; the next wait is not cut short.
            tokio::select! {
                () = timer.sleep_until(Instant::now() + Duration::from_millis(1)) => {}
                () = std::future::ready(()) => {}
            }
            let deadline = Instant::now() + Duration::from_millis(5);
            timer.sleep_until(deadline).await;
            assert!(Instant::now() >= deadline);
        });
    }
}
