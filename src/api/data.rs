//! `data::csv(path)` and `data::json(path)`: test data shared by every user (k6's
//! `SharedArray`, Locust's and Gatling's feeders). A file is read once per run, kept
//! read-only behind an `Arc` and handed to every user and worker: no copy per user. A row
//! becomes a Rhai value only when a script reads it.
//!
//! Paths resolve from the script's folder, and only files in it or below it may be read:
//! the sandbox stays shut otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use rhai::plugin::*;

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

fn error(message: String) -> Box<EvalAltResult> {
    crate::script::script_error(message)
}

/// The rows of one file, as compact as they come.
enum Rows {
    /// A header row, then every field of every row in one string, cut by end offsets:
    /// about the file's own size, where a string per field costed twice that.
    Csv {
        header: Vec<Box<str>>,
        text: String,
        /// `ends[i * width + j]`: where field `j` of row `i` ends in `text`.
        ends: Vec<u32>,
    },
    /// The elements of a top-level JSON array.
    Json(Vec<serde_json::Value>),
}

/// One loaded file with the run-wide cursor of `next()`.
pub struct Dataset {
    name: String,
    rows: Rows,
    next: AtomicUsize,
}

impl Dataset {
    fn len(&self) -> usize {
        match &self.rows {
            Rows::Csv { header, ends, .. } => ends.len() / header.len().max(1),
            Rows::Json(rows) => rows.len(),
        }
    }

    /// Row `i` as a Rhai value: a map of the header's names to strings (CSV), or the
    /// element (JSON).
    fn row(&self, i: usize) -> Result<Dynamic> {
        match &self.rows {
            Rows::Csv { header, text, ends } => {
                let width = header.len();
                let start = |k: usize| if k == 0 { 0 } else { ends[k - 1] as usize };
                let map: rhai::Map = header
                    .iter()
                    .enumerate()
                    .map(|(j, h)| {
                        let k = i * width + j;
                        let field = &text[start(k)..ends[k] as usize];
                        (h.as_ref().into(), Dynamic::from(field.to_owned()))
                    })
                    .collect();
                Ok(map.into())
            }
            Rows::Json(rows) => rhai::serde::to_dynamic(&rows[i])
                .map_err(|e| error(format!("{}: row {i}: {e}", self.name))),
        }
    }
}

/// The `k`-th row this instance hands out: with `--segment i/N`, rows `i-1`, `i-1+N`, …, so
/// no two segments use the same row before the rows run out (`next_unique` never does).
fn striped(k: usize) -> usize {
    let segment = crate::vu::with_user(|u| u.run().settings.segment).unwrap_or_default();
    usize::try_from(segment.nth(k as u64)).unwrap_or(usize::MAX)
}

/// What a script holds: a handle to a shared dataset.
#[derive(Clone)]
pub struct Data(Arc<Dataset>);

/// Resolves `path` inside the script's folder, refusing anything outside it but the files
/// given on the command line (`--data`).
pub(super) fn resolve(path: &str) -> Result<PathBuf> {
    let (dir, allowed) = crate::vu::with_user(|u| {
        let s = &u.run().settings;
        (s.data_dir.clone(), s.data_allowed.clone())
    })
    .map_err(|e| error(e.to_string()))?;
    if let Ok(given) = std::fs::canonicalize(path)
        && allowed.contains(&given)
    {
        return Ok(given);
    }
    let dir =
        dir.ok_or_else(|| error("this script has no folder to read data files from".into()))?;
    let full = std::fs::canonicalize(dir.join(path))
        .map_err(|e| error(format!("data file `{path}`: {e}")))?;
    if !full.starts_with(&dir) {
        return Err(error(format!(
            "data file `{path}` is outside the script's folder {}: scripts may read only files in it or below it, or given with --data",
            dir.display()
        )));
    }
    Ok(full)
}

/// The dataset at `path`, loaded by the first user that asks and shared after that.
fn load(path: &str, parse: fn(&Path) -> std::result::Result<Rows, String>) -> Result<Data> {
    let full = resolve(path)?;
    crate::vu::with_user(|u| {
        let mut loaded = u.run().data.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(any) = loaded.get(&full)
            && let Ok(dataset) = Arc::clone(any).downcast::<Dataset>()
        {
            return Ok(Data(dataset));
        }
        let rows = parse(&full).map_err(|e| error(format!("data file `{path}`: {e}")))?;
        let dataset = Arc::new(Dataset {
            name: path.to_owned(),
            rows,
            next: AtomicUsize::new(0),
        });
        loaded.insert(full, dataset.clone());
        Ok(Data(dataset))
    })
    .map_err(|e| error(e.to_string()))?
}

fn parse_csv(path: &Path) -> std::result::Result<Rows, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    let header = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(Into::into)
        .collect();
    let (mut text, mut ends) = (String::new(), Vec::new());
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|e| e.to_string())? {
        for field in record.iter() {
            text.push_str(field);
            let end = u32::try_from(text.len())
                .map_err(|_| "larger than 4 GiB of fields; split it".to_string())?;
            ends.push(end);
        }
    }
    text.shrink_to_fit();
    ends.shrink_to_fit();
    Ok(Rows::Csv { header, text, ends })
}

fn parse_json(path: &Path) -> std::result::Result<Rows, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    match serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| e.to_string())? {
        serde_json::Value::Array(rows) => Ok(Rows::Json(rows)),
        _ => Err("expected a JSON array of rows".into()),
    }
}

#[export_module]
pub mod data_api {
    pub type Data = super::Data;

    /// Loads a CSV file with a header row, once per run, shared read-only by every user.
    /// Each row reads as a map from the header's names to strings. The path is relative
    /// to the script's folder, and the file must be in it or below it.
    ///
    /// ```rhai
    /// const USERS = data::csv("users.csv");
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn csv(path: &str) -> super::Result<Data> {
        super::load(path, super::parse_csv)
    }

    /// Loads a JSON file holding an array, once per run, shared read-only by every user.
    ///
    /// ```rhai
    /// const ITEMS = data::json("items.json");
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn json(path: &str) -> super::Result<Data> {
        super::load(path, super::parse_json)
    }

    /// How many rows.
    ///
    /// ```rhai
    /// log::info(`${USERS.len()} users to log in`);
    /// ```
    #[rhai_fn(name = "len", pure, global)]
    pub fn len(d: &mut Data) -> i64 {
        d.0.len() as i64
    }

    /// The next row, unique across every user of the run until the rows run out, then
    /// from the first again (round-robin).
    ///
    /// ```rhai
    /// let u = USERS.next();
    /// http::post("/login", #{ json: #{ name: u.name, password: u.password } });
    /// ```
    #[rhai_fn(return_raw, name = "next", pure, global)]
    pub fn next(d: &mut Data) -> super::Result<Dynamic> {
        let n = d.0.len();
        if n == 0 {
            return Err(super::error(format!("{}: no rows", d.0.name)));
        }
        let i = striped(d.0.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) % n;
        d.0.row(i)
    }

    /// The next unique row, or `()` once every row has been handed out (for data that
    /// must not be used twice, such as accounts to register).
    ///
    /// ```rhai
    /// let u = USERS.next_unique();
    /// if u == () { fail("no accounts left"); }
    /// ```
    #[rhai_fn(return_raw, name = "next_unique", pure, global)]
    pub fn next_unique(d: &mut Data) -> super::Result<Dynamic> {
        let i = striped(d.0.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        if i >= d.0.len() {
            return Ok(Dynamic::UNIT);
        }
        d.0.row(i)
    }

    /// A row picked at random (reproducible with `--seed`).
    ///
    /// ```rhai
    /// let item = ITEMS.random();
    /// ```
    #[rhai_fn(return_raw, name = "random", pure, global)]
    pub fn random(d: &mut Data) -> super::Result<Dynamic> {
        let n = d.0.len();
        if n == 0 {
            return Err(super::error(format!("{}: no rows", d.0.name)));
        }
        let i = crate::vu::with_user(|u| rand::Rng::random_range(&mut *u.rng.borrow_mut(), 0..n))
            .map_err(|e| super::error(e.to_string()))?;
        d.0.row(i)
    }

    /// Row `i` (from 0).
    ///
    /// ```rhai
    /// let first = USERS.row(0);
    /// ```
    #[rhai_fn(return_raw, name = "row", pure, global)]
    pub fn row(d: &mut Data, i: i64) -> super::Result<Dynamic> {
        match usize::try_from(i).ok().filter(|i| *i < d.0.len()) {
            Some(i) => d.0.row(i),
            None => Err(super::error(format!(
                "{}: no row {i} ({} rows)",
                d.0.name,
                d.0.len()
            ))),
        }
    }

    /// This user's own row: the same one every time, `(vu_id() - 1) % len`.
    ///
    /// ```rhai
    /// let me = USERS.for_user();
    /// ```
    #[rhai_fn(return_raw, name = "for_user", pure, global)]
    pub fn for_user(d: &mut Data) -> super::Result<Dynamic> {
        let n = d.0.len();
        if n == 0 {
            return Err(super::error(format!("{}: no rows", d.0.name)));
        }
        let id = crate::vu::with_user(|u| u.id).map_err(|e| super::error(e.to_string()))?;
        d.0.row((id.saturating_sub(1) as usize) % n)
    }
}
