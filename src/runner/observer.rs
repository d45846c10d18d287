//! How a run tells its caller what happens while it runs. The runner does not print: the
//! CLI's observer draws the live view and writes warnings to stderr; tests and embedders pass
//! [`Quiet`] or their own.

use std::time::Duration;

use super::Outcome;
use crate::metrics::Totals;

pub trait Observer {
    /// About once a second: the time since the start, the users running, the totals so far.
    fn progress(&mut self, _elapsed: Duration, _users: u64, _totals: &Totals) {}

    /// The run is over (the users have ended); `teardown` may follow.
    fn finished(&mut self) {}

    /// Asked before each merge: whether to start the statistics afresh (the web UI's
    /// "Reset statistics", as Locust's). The run itself goes on.
    fn take_reset(&mut self) -> bool {
        false
    }

    /// Something the user should know that does not stop the run.
    fn warn(&mut self, _message: &str) {}

    /// When the script has a `teardown`: the results so far, before it starts, so that a
    /// `teardown` that hangs cannot keep them from being written.
    fn before_teardown(&mut self, _so_far: &Outcome) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}
