//! Reading one `--json` result back: checked to be a stampede result of this schema version,
//! then typed. Only what a merge needs is read; the histograms stay base64 until combined.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::MergeError;
use crate::metrics::{CheckCount, FailureKind, Second, Unfinished};
use crate::report::{RunInfo, SCHEMA_VERSION};

/// One result file, as written by `stampede run --json`; also each of its scenarios, which
/// have the same numbers without the document's own fields (those are `None` there). One
/// type for both rather than `#[serde(flatten)]`, which would buffer every file whole
/// before typing it (twice the time of a merge).
#[derive(Deserialize)]
pub struct ResultFile {
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub run: Option<RunInfo>,
    #[serde(default)]
    pub duration_s: f64,
    #[serde(default)]
    pub spawn_s: f64,
    #[serde(default)]
    pub started_unix_ms: Option<u64>,
    #[serde(default)]
    pub start_late_s: Option<f64>,
    #[serde(default)]
    pub interrupted: bool,
    #[serde(default)]
    pub setup_failed: bool,
    #[serde(default)]
    pub thresholds: Vec<VerdictIn>,
    #[serde(default)]
    pub scenarios: Vec<ResultFile>,
    /// A scenario's name (`None` on the document).
    #[serde(default)]
    pub name: Option<String>,
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

/// The numbers of the whole run or of one scenario.
pub type Part = ResultFile;

impl ResultFile {
    /// The document's description of the run ([`read`] made sure there is one).
    pub fn info(&self) -> &RunInfo {
        self.run
            .as_ref()
            .expect("read() refuses a result without `run`")
    }
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
    let checked = |schema: Option<&str>, version: Option<u32>| {
        if schema != Some("stampede-result") {
            Err(MergeError::NotAResult(path.to_owned()))
        } else if version != Some(SCHEMA_VERSION) {
            Err(MergeError::Version {
                path: path.to_owned(),
                found: version,
            })
        } else {
            Ok(())
        }
    };
    match serde_json::from_slice::<ResultFile>(&bytes) {
        Ok(file) => {
            checked(file.schema.as_deref(), file.version)?;
            if file.run.is_none() {
                return Err(MergeError::NotAResult(path.to_owned()));
            }
            Ok(file)
        }
        // Say first what the file is, if not a result of this version: a better reason
        // than the field the typing stumbled on.
        Err(e) => {
            let header: Header = serde_json::from_slice(&bytes).map_err(json)?;
            checked(header.schema.as_deref(), header.version)?;
            Err(json(e))
        }
    }
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
