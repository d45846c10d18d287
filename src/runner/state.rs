//! State shared by every worker of one run: stop signals, counters, run-wide limits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::plan::UserSettings;
use crate::script::Logger;

/// How a run is asked to stop from outside: a signal (SIGINT, SIGTERM) caught by the binary,
/// later the web UI. A handle, not a global, so tests and embedders own their own. Asking
/// once stops the run gracefully (users finish their request and run `on_stop`, every
/// output is written); what a second signal does is the caller's business (the binary
/// exits at once).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn request(&self) {
        self.token.cancel();
    }

    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once a stop has been requested.
    pub async fn requested(&self) {
        self.token.cancelled().await
    }

    /// A token cancelled with this one (and cancellable on its own).
    pub fn child(&self) -> CancellationToken {
        self.token.child_token()
    }
}

/// Shared between worker threads; everything in it is atomic or immutable.
pub struct RunState {
    /// Set when the run should stop: users finish their request, skip the rest of the task,
    /// run `on_stop` and end.
    pub stop: CancellationToken,
    /// Set `stop_timeout` after `stop`: requests still in flight are abandoned.
    pub hard_stop: CancellationToken,
    pub started: Instant,
    pub users_running: AtomicU64,
    /// Microseconds from the start to the latest user spawn, for "all users started after".
    last_spawn_us: AtomicU64,
    iterations_left: Option<AtomicU64>,
    pub ids: UniqueIds,
    pub settings: UserSettings,
    pub log: Logger,
}

impl RunState {
    /// `stop` is a child of `shutdown`'s token: a requested shutdown stops the run.
    pub fn new(
        settings: UserSettings,
        iterations: Option<u64>,
        log: Logger,
        shutdown: &Shutdown,
    ) -> Self {
        Self {
            stop: shutdown.child(),
            hard_stop: CancellationToken::new(),
            started: Instant::now(),
            users_running: AtomicU64::new(0),
            last_spawn_us: AtomicU64::new(0),
            iterations_left: iterations.map(AtomicU64::new),
            ids: UniqueIds::new(),
            settings,
            log,
        }
    }

    /// Takes one iteration from the run-wide budget; false when it is spent.
    pub fn claim_iteration(&self) -> bool {
        let Some(left) = &self.iterations_left else {
            return true;
        };
        // Users that find the budget spent end after their current iteration; the run
        // ends when they all have. Not a stop signal: that would cut iterations short.
        left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Whether a run-wide iteration budget exists and is spent.
    pub fn iterations_spent(&self) -> bool {
        self.iterations_left
            .as_ref()
            .is_some_and(|n| n.load(Ordering::Relaxed) == 0)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Notes that a user was just spawned.
    pub fn note_spawn(&self) {
        let us = u64::try_from(self.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_spawn_us.fetch_max(us, Ordering::Relaxed);
    }

    /// When the last user was spawned, measured from the start of the run.
    pub fn spawned_after(&self) -> Duration {
        Duration::from_micros(self.last_spawn_us.load(Ordering::Relaxed))
    }
}

/// Ids unique across every user of a run and, through a random run tag, across runs, so
/// re-running a scenario against the same server does not collide with earlier data.
pub struct UniqueIds {
    tag: String,
    next: AtomicU64,
}

impl UniqueIds {
    fn new() -> Self {
        let tag: u64 = rand::random::<u64>() % 36u64.pow(5);
        Self {
            tag: format!("{:0>5}", base36(tag)),
            next: AtomicU64::new(0),
        }
    }

    /// Short and URL-safe: the 5-character run tag then a base-36 counter, e.g. `k3f9z1a`.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}{}", self.tag, base36(n))
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(13);
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_do_not_repeat_and_are_url_safe() {
        let ids = UniqueIds::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = ids.next();
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn base36_round_trips() {
        for n in [0u64, 1, 35, 36, 1295, u64::MAX] {
            assert_eq!(u64::from_str_radix(&base36(n), 36).unwrap(), n);
        }
    }
}
