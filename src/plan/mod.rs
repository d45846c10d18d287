//! A run, fully decided: plain data that the command line (or an embedder) builds and the
//! runner and the reports read. Nothing here parses flags or runs anything.

mod scenario;
mod schedule;
mod segment;
mod steering;

use std::time::Duration;

pub use scenario::{Executor, Scenario};
pub use schedule::{
    RateSpec, RateStage, Schedule, Stage, StageError, Stages, WhenBusy, check as schedule_check,
    parse_rate, parse_stages,
};
pub use segment::{Segment, SegmentError, striped_share};
pub use steering::Steering;

use crate::script::{EngineConfig, Hooks, Logger};
use crate::vu::UserSettings;

/// A run, fully decided.
pub struct Plan {
    pub script_name: String,
    pub source: String,
    pub hooks: Hooks,
    pub settings: UserSettings,
    /// The most users the scenarios may run at once (the sum of their peaks).
    pub users: u64,
    /// Users started per second by a script without scenarios; 0 otherwise.
    pub spawn_rate: f64,
    pub run_time: Option<Duration>,
    pub iterations: Option<u64>,
    pub stop_timeout: Duration,
    /// What runs: the script's `scenarios`, or one implicit scenario (`default`) from the
    /// flags and top-level options.
    pub scenarios: Vec<Scenario>,
    pub setup_timeout: Duration,
    pub teardown_timeout: Duration,
    /// Value limits and the import folder, for every worker's engine.
    pub engine: EngineConfig,
    pub workers: usize,
    pub log: Logger,
    /// Said before the run starts (through the runner's observer): choices that are legal
    /// but probably not meant, e.g. a scenario that starts after the run time.
    pub warnings: Vec<String>,
    /// Data files the script's top-level code loaded while it was checked: handed to the
    /// run, so that each is read once.
    pub data: crate::vu::DataFiles,
    /// Set from outside while the run goes on (the web UI): the default scenario follows
    /// it instead of its schedule. `None` for a run from the command line.
    pub steering: Option<std::sync::Arc<Steering>>,
    /// `--start-at`: the moment the load begins, agreed between instances; the run waits
    /// for it after every check (`None`: at once).
    pub start_at: Option<std::time::SystemTime>,
    /// What identifies the test whatever the segment: [`fingerprint`] of the script and the
    /// options that shape the load. `stampede merge` refuses results whose differ.
    pub fingerprint: String,
}

/// A short hash of what makes two runs the same test: the script, the scenarios as
/// decided (before a segment cut them), and `other` (the run's other settings, as text),
/// with stampede's version. Not the segment, the workers or the outputs.
pub fn fingerprint(source: &str, scenarios: &[Scenario], other: &str) -> String {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    for part in [
        env!("CARGO_PKG_VERSION"),
        source,
        &format!("{scenarios:?}"),
        other,
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..8])
}
