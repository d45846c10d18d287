//! `stampede merge`: the results of the segments of one test (`--segment i/N`, each its own
//! `--json`) combined into the result of the whole, as if one instance had run it. Counts
//! add; latency histograms merge exactly (each file holds them serialized), so the merged
//! percentiles are those of one run over every sample; per-second rows line up by the
//! wall clock. Work grows with files × request names, never with requests.

mod combine;
mod load;

use std::path::PathBuf;

pub use combine::Merged;

/// Why results could not be merged: each is a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no result files given")]
    NoFiles,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {}{source}", if *.truncated { "truncated JSON (the run's file was cut short?): " } else { "not valid JSON: " })]
    Json {
        path: PathBuf,
        truncated: bool,
        source: serde_json::Error,
    },
    #[error("{0}: not a stampede result (no \"schema\": \"stampede-result\")")]
    NotAResult(PathBuf),
    #[error("{path}: schema version {} where this stampede reads version {}; merge with the stampede that wrote it", .found.map_or("(none)".to_string(), |v| v.to_string()), crate::report::SCHEMA_VERSION)]
    Version { path: PathBuf, found: Option<u32> },
    #[error("{path}: the {what} histogram cannot be read: {reason}")]
    Histogram {
        path: PathBuf,
        what: String,
        reason: String,
    },
    #[error(
        "{path} is from another test than {first} (fingerprint {theirs} against {ours}: another script, stampede version or load options); --force merges them anyway"
    )]
    Fingerprint {
        path: PathBuf,
        first: PathBuf,
        theirs: String,
        ours: String,
    },
    #[error(
        "{path} is segment {theirs} where {first} is segment {ours}: the files split the test differently; --force merges them anyway"
    )]
    SegmentCount {
        path: PathBuf,
        first: PathBuf,
        theirs: String,
        ours: String,
    },
    #[error(
        "segment {segment} is given twice ({a} and {b}): its numbers would count twice; --force merges them anyway"
    )]
    Duplicate {
        segment: String,
        a: PathBuf,
        b: PathBuf,
    },
    #[error("{0}: the threshold cannot be read again: {1}")]
    Threshold(PathBuf, crate::report::ThresholdError),
}

/// Reads every file and merges them. `force` merges files of different tests or splits.
pub fn merge(paths: &[PathBuf], force: bool) -> Result<Merged, MergeError> {
    if paths.is_empty() {
        return Err(MergeError::NoFiles);
    }
    combine::combine(read_all(paths)?, force)
}

/// Reads and types the files on every core: parsing the JSON is most of a merge's time.
fn read_all(paths: &[PathBuf]) -> Result<Vec<(PathBuf, load::ResultFile)>, MergeError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(paths.len());
    let chunk = paths.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = paths
            .chunks(chunk)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|p| load::read(p).map(|f| (p.clone(), f)))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut files = Vec::with_capacity(paths.len());
        for part in parts {
            files.extend(part.join().expect("reading a result does not panic")?);
        }
        Ok(files)
    })
}
