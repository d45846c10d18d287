//! Reading one `--json` result back: checked to be a stampede result of this schema version,
//! then typed. Only what a merge needs is read; the histograms stay base64 until combined.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::MergeError;
use crate::metrics::{CheckCount, FailureKind, Second, Unfinished};
use crate::report::{RunInfo, SCHEMA_VERSION};

/// One result file, as written by `stampede run --json`.
#[derive(Deserialize)]
pub struct ResultFile {
    pub run: RunInfo,
    pub duration_s: f64,
    pub spawn_s: f64,
    #[serde(default)]
    pub started_unix_ms: Option<u64>,
    #[serde(default)]
    pub start_late_s: Option<f64>,
    pub interrupted: bool,
    pub setup_failed: bool,
    #[serde(flatten)]
    pub whole: Part,
    pub thresholds: Vec<VerdictIn>,
    pub scenarios: Vec<ScenarioPart>,
}

#[derive(Deserialize)]
pub struct VerdictIn {
    pub threshold: ThresholdIn,
}

#[derive(Deserialize)]
pub struct ThresholdIn {
    pub text: String,
}

#[derive(Deserialize)]
pub struct ScenarioPart {
    pub name: String,
    #[serde(flatten)]
    pub part: Part,
}

/// The numbers of the whole run or of one scenario.
#[derive(Deserialize)]
pub struct Part {
    pub iterations: u64,
    pub failed_iterations: u64,
    pub dropped_iterations: u64,
    pub interrupted_iterations: u64,
    #[serde(default)]
    pub iteration_lateness_histogram: Option<String>,
    #[serde(default)]
    pub timings_histograms: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub protocols: BTreeMap<String, u64>,
    pub auto_grouped_requests: u64,
    pub unfinished: Unfinished,
    pub requests: Vec<RequestIn>,
    pub failures: Vec<FailureIn>,
    pub checks: Vec<CheckIn>,
    pub series: Vec<Second>,
}

#[derive(Deserialize)]
pub struct RequestIn {
    pub method: String,
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    pub bytes: u64,
    pub retries: u64,
    pub avg_ms: f64,
    pub histogram: String,
    pub corrected_histogram: Option<String>,
    #[serde(default)]
    pub sum_us: Option<u64>,
}

#[derive(Deserialize)]
pub struct FailureIn {
    pub kind: FailureKind,
    pub method: String,
    pub name: String,
    pub message: String,
    pub count: u64,
}

#[derive(Deserialize)]
pub struct CheckIn {
    pub name: String,
    #[serde(flatten)]
    pub count: CheckCount,
}

/// Just enough to tell a stampede result of this version from anything else, before the
/// whole file is typed (which would fail with a less helpful message).
#[derive(Deserialize)]
struct Header {
    schema: Option<String>,
    version: Option<u32>,
}

/// Reads and checks one file.
pub fn read(path: &Path) -> Result<ResultFile, MergeError> {
    let bytes = std::fs::read(path).map_err(|source| MergeError::Read {
        path: path.to_owned(),
        source,
    })?;
    let json = |source: serde_json::Error| MergeError::Json {
        path: path.to_owned(),
        truncated: source.is_eof(),
        source,
    };
    let header: Header = serde_json::from_slice(&bytes).map_err(json)?;
    if header.schema.as_deref() != Some("stampede-result") {
        return Err(MergeError::NotAResult(path.to_owned()));
    }
    if header.version != Some(SCHEMA_VERSION) {
        return Err(MergeError::Version {
            path: path.to_owned(),
            found: header.version,
        });
    }
    serde_json::from_slice(&bytes).map_err(json)
}

/// A base64 HdrHistogram (V2, plain or deflated) back as an auto-resizing histogram.
pub fn histogram(
    path: &Path,
    what: &str,
    text: &str,
) -> Result<hdrhistogram::Histogram<u64>, MergeError> {
    use base64::Engine as _;
    let bad = |reason: String| MergeError::Histogram {
        path: path.to_owned(),
        what: what.to_owned(),
        reason,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| bad(e.to_string()))?;
    let mut h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| bad(format!("{e:?}")))?;
    h.auto(true);
    Ok(h)
}
