//! Metrics: recorded per worker without sharing, merged once a second.
//!
//! Each worker owns a [`Recorder`]. Once a second it hands the interval it recorded to the
//! aggregator as a [`Snapshot`] and starts a fresh interval; the aggregator merges snapshots
//! into run [`Totals`] and a per-second series. Nothing is sent per request, and memory is
//! bounded by the number of distinct request names (capped), never by the request count.

mod names;
mod recorder;
mod totals;

pub use names::{NameCap, auto_name};
pub use recorder::{
    CheckCount, FailureKey, FailureKind, PHASES, PhaseHistograms, QUEUEING, Recorder, RequestStats,
    Snapshot, Unfinished,
};
pub use totals::{NameSecond, Second, Totals, ms};

/// Latency histograms record microseconds with 3 significant digits and grow on demand.
pub fn new_histogram() -> hdrhistogram::Histogram<u64> {
    let mut h = hdrhistogram::Histogram::new(3).expect("3 significant figures is valid");
    h.auto(true);
    h
}
