//! What every user of a run shares, across worker threads: the run's settings, stop
//! signals, counters and unique ids ([`RunState`]), and the same for each scenario
//! ([`ScenarioState`]). Everything in it is atomic or immutable. The runner creates them;
//! the users read them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::WaitTime;
use crate::http::ClientOptions;
use crate::script::Logger;

/// What every virtual user needs to know about the run, fixed before traffic starts.
#[derive(Debug, Clone)]
pub struct UserSettings {
    /// Base URL that relative request paths resolve against (no trailing slash).
    pub host: Option<String>,
    /// How the users' HTTP clients behave (timeout, TLS verification, body limit).
    pub client: ClientOptions,
    pub seed: Option<u64>,
    pub iterations_per_user: Option<u64>,
    pub wait: WaitTime,
    pub stack_size: usize,
    /// `--trace`: print every request and response (see `crate::api`'s trace).
    pub trace: Option<Trace>,
    /// The script's folder: data files are read from it and below it only (`None`: an
    /// embedded script, which may read none).
    pub data_dir: Option<std::path::PathBuf>,
    /// Data files given on the command line (`--data`), canonical: readable wherever they
    /// are.
    pub data_allowed: Vec<std::path::PathBuf>,
    /// `--segment i/N`: which share of the whole test this instance runs; ids and data
    /// rows are striped by it so that no two segments hand out the same.
    pub segment: crate::plan::Segment,
}

/// How `--trace` shows requests.
#[derive(Debug, Clone, Copy)]
pub struct Trace {
    /// Show `Authorization`, cookies and `Set-Cookie` as they are (`--trace-secrets`).
    pub secrets: bool,
    /// Bytes of each body shown; the rest is counted.
    pub body_limit: usize,
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
    /// Data files loaded by the script (`data::csv`, `data::json`), by canonical path:
    /// loaded once per run and shared read-only by every user and worker. Typed by the
    /// script API, which owns them.
    pub data: std::sync::Mutex<DataFiles>,
}

/// Data files by canonical path, typed by the script API that loads them.
pub type DataFiles =
    std::collections::HashMap<std::path::PathBuf, std::sync::Arc<dyn std::any::Any + Send + Sync>>;

impl RunState {
    /// `stop` is the run's stop token (a child of the caller's shutdown: a requested
    /// shutdown stops the run).
    pub fn new(
        settings: UserSettings,
        iterations: Option<u64>,
        log: Logger,
        stop: CancellationToken,
    ) -> Self {
        Self {
            stop,
            hard_stop: CancellationToken::new(),
            started: Instant::now(),
            users_running: AtomicU64::new(0),
            last_spawn_us: AtomicU64::new(0),
            iterations_left: iterations.map(AtomicU64::new),
            ids: UniqueIds::new(settings.segment),
            settings,
            log,
            data: Default::default(),
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
    /// The counter is striped by segment, so two segments that drew the same tag still
    /// hand out different ids.
    segment: crate::plan::Segment,
}

impl UniqueIds {
    fn new(segment: crate::plan::Segment) -> Self {
        let tag: u64 = rand::random::<u64>() % 36u64.pow(5);
        Self {
            tag: format!("{:0>5}", base36(tag)),
            next: AtomicU64::new(0),
            segment,
        }
    }

    /// Short and URL-safe: the 5-character run tag then a base-36 counter, e.g. `k3f9z1a`.
    pub fn next(&self) -> String {
        let n = self.segment.nth(self.next.fetch_add(1, Ordering::Relaxed));
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

/// What every worker shares about one running scenario.
pub struct ScenarioState {
    pub index: usize,
    pub name: String,
    /// Set when the scenario should stop: with the run, or `graceful_stop` after its own
    /// end. Users finish their request, skip the rest of the iteration and run `on_stop`.
    pub stop: CancellationToken,
    /// Set at its own end (and with `stop`): no new iteration starts; those under way may
    /// finish within `graceful_stop` (k6's semantics for a scenario's end).
    pub finish: CancellationToken,
    /// Set with `finish` by [`ScenarioState::end`]: what a user checks before each
    /// iteration, an atomic load where a token's check takes a lock shared by every user
    /// of the scenario (a stop of the whole run reaches the user through its own token).
    ending: std::sync::atomic::AtomicBool,
    /// Set its `graceful_stop` after its own end, or at the run's hard stop: what still
    /// runs is aborted.
    pub hard_stop: CancellationToken,
    pub users_running: AtomicU64,
    iterations_left: Option<AtomicU64>,
    pub iterations_per_user: Option<u64>,
    pub wait: WaitTime,
}

impl ScenarioState {
    /// Scenario `index` of the run: `iterations` shared by its users, each running at
    /// most `iterations_per_user` (or the run's), waiting `wait` (or the run's). Under an
    /// arrival rate (`open`) the schedule starts iterations: no wait time and no limit per
    /// user apply, whatever the run's options say.
    pub fn new(
        index: usize,
        name: &str,
        (iterations, iterations_per_user): (Option<u64>, Option<u64>),
        wait: Option<WaitTime>,
        open: bool,
        run: &RunState,
    ) -> Self {
        let stop = run.stop.child_token();
        let (iterations_per_user, wait) = if open {
            (None, WaitTime::None)
        } else {
            (
                iterations_per_user.or(run.settings.iterations_per_user),
                wait.unwrap_or(run.settings.wait),
            )
        };
        Self {
            index,
            name: name.to_owned(),
            stop: stop.clone(),
            finish: stop.child_token(),
            ending: Default::default(),
            hard_stop: run.hard_stop.child_token(),
            users_running: AtomicU64::new(0),
            iterations_left: iterations.map(AtomicU64::new),
            iterations_per_user,
            wait,
        }
    }

    /// The state `setup`, `teardown` and `check`'s probe run under: no scenario.
    pub fn session(run: &RunState) -> Self {
        // No budget, no wait, no limit per user: what `open` gives.
        Self::new(usize::MAX, "", (None, None), None, true, run)
    }

    /// The scenario's own end: no new iterations.
    pub fn end(&self) {
        self.ending.store(true, Ordering::Relaxed);
        self.finish.cancel();
    }

    /// Whether [`ScenarioState::end`] was called.
    pub fn is_ending(&self) -> bool {
        self.ending.load(Ordering::Relaxed)
    }

    /// Takes one iteration from this scenario's budget and the run's; false when either is
    /// spent.
    pub fn claim_iteration(&self, run: &RunState) -> bool {
        if let Some(left) = &self.iterations_left {
            let claimed = left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
            if !claimed {
                return false;
            }
        }
        run.claim_iteration()
    }

    /// Whether its budget (or the run's) is spent.
    pub fn iterations_spent(&self, run: &RunState) -> bool {
        run.iterations_spent()
            || self
                .iterations_left
                .as_ref()
                .is_some_and(|n| n.load(Ordering::Relaxed) == 0)
    }

    pub fn users(&self) -> u64 {
        self.users_running.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_do_not_repeat_and_are_url_safe() {
        let ids = UniqueIds::new(crate::plan::Segment::WHOLE);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = ids.next();
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn segments_never_hand_out_the_same_id_even_with_the_same_tag() {
        let segments = (0..3).map(|index| {
            let mut ids = UniqueIds::new(crate::plan::Segment { index, count: 3 });
            ids.tag = "aaaaa".into();
            ids
        });
        let mut seen = std::collections::HashSet::new();
        for ids in segments {
            for _ in 0..1000 {
                assert!(seen.insert(ids.next()));
            }
        }
    }

    #[test]
    fn base36_round_trips() {
        for n in [0u64, 1, 35, 36, 1295, u64::MAX] {
            assert_eq!(u64::from_str_radix(&base36(n), 36).unwrap(), n);
        }
    }
}
