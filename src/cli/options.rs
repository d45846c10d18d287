//! The script's options map (`const options = #{ … }`), read and validated.

use std::collections::BTreeMap;
use std::time::Duration;

use rhai::{Dynamic, Map};

use crate::plan::{Stage, StageError};
use crate::vu::WaitTime;

/// Parses a duration given as `"1m30s"`-style text or a number of seconds (clap's parser
/// for every duration flag).
pub fn duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text).map_err(|e| e.to_string())
}

/// Like [`duration`], for timeouts, where zero makes no sense.
pub fn timeout(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        Duration::ZERO => Err(format!(
            "`{text}`: {}",
            crate::duration::DurationError::Zero
        )),
        d => Ok(d),
    }
}

/// Parses a size given as `"64MiB"`-style text or a number of bytes.
pub fn size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("`{text}` is not a size like 64MiB, 10MB or 512KiB ({e})"))
}

fn dyn_size(v: &Dynamic) -> Result<u64, String> {
    match v.as_int() {
        Ok(n) => u64::try_from(n).map_err(|_| format!("{n} is not a size")),
        Err(_) => size(&v.to_string()),
    }
}

pub(super) fn dyn_duration(v: &Dynamic) -> Result<Duration, String> {
    if let Ok(i) = v.as_int() {
        return duration(&i.to_string());
    }
    if let Ok(f) = v.as_float() {
        return crate::duration::from_secs(f).map_err(|e| e.to_string());
    }
    match v.clone().into_string() {
        Ok(s) => duration(&s),
        Err(t) => Err(format!("expected a duration, got {t}")),
    }
}

pub(super) fn dyn_timeout(v: &Dynamic) -> Result<Duration, String> {
    match dyn_duration(v)? {
        Duration::ZERO => Err(crate::duration::DurationError::Zero.to_string()),
        d => Ok(d),
    }
}

pub(super) fn count(v: &Dynamic) -> Result<u64, String> {
    v.as_int()
        .ok()
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| format!("expected a whole number >= 0, got {v}"))
}

pub(super) fn positive_count(v: &Dynamic) -> Result<u64, String> {
    match count(v)? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

pub(super) fn rate(v: &Dynamic) -> Result<f64, String> {
    let r = v
        .as_float()
        .or_else(|_| v.as_int().map(|i| i as f64))
        .map_err(|t| format!("expected a number, got {t}"))?;
    if r.is_finite() && r > 0.0 {
        Ok(r)
    } else {
        Err(format!("must be > 0, got {r}"))
    }
}

/// `["p95 < 250ms", …]` or `#{ "GET /x": "p95 < 1s", "/y": ["p99 < 2s"] }`.
fn thresholds(v: &Dynamic) -> Result<Vec<String>, String> {
    let texts = |v: &Dynamic| -> Result<Vec<String>, String> {
        if let Some(list) = v.read_lock::<rhai::Array>() {
            list.iter()
                .map(|t| {
                    t.clone()
                        .into_string()
                        .map_err(|t| format!("expected threshold strings, got {t}"))
                })
                .collect()
        } else {
            v.clone()
                .into_string()
                .map(|s| vec![s])
                .map_err(|t| format!("expected a threshold string, got {t}"))
        }
    };
    match v.read_lock::<Map>() {
        Some(map) => {
            let mut out = Vec::new();
            for (scope, v) in map.iter() {
                out.extend(texts(v)?.into_iter().map(|t| format!("{scope}: {t}")));
            }
            Ok(out)
        }
        None => texts(v),
    }
}

/// `[#{ duration: "30s", target: 100 }, …]`.
pub(super) fn stages(v: &Dynamic) -> Result<Vec<Stage>, String> {
    let stages = super::scenarios::stage_list(v)?
        .into_iter()
        .map(|s| {
            Ok(Stage {
                duration: s.duration,
                target: super::scenarios::whole(s.target)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    crate::plan::schedule_check(0, &stages).map_err(|e: StageError| e.to_string())?;
    Ok(stages)
}

pub(super) fn weights(v: &Dynamic) -> Result<BTreeMap<String, i64>, String> {
    let map = v
        .read_lock::<Map>()
        .ok_or_else(|| format!("expected a map of task weights, got {}", v.type_name()))?;
    map.iter()
        .map(|(k, w)| {
            w.as_int()
                .map(|w| (k.to_string(), w))
                .map_err(|_| format!("weight of `{k}` must be a whole number, got {w}"))
        })
        .collect()
}

/// Declares every script option once, with its type and how its value is read: the
/// struct, the list of known names and the map reader are generated from this. (The flags
/// that override them are clap's, declared in `cli/mod.rs`; the merge is `flag.or(option)`.)
macro_rules! script_options {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty = $read:expr ),* $(,)?) => {
        /// Options as the script declared them; command-line flags override each one.
        #[derive(Debug, Default, Clone)]
        pub struct ScriptOptions {
            $( $(#[$doc])* pub $name: Option<$ty>, )*
        }

        /// Every option a script may set; anything else is reported, so typos do not pass
        /// silently.
        pub const KNOWN: &[&str] = &[ $( stringify!($name) ),* ];

        impl ScriptOptions {
            /// Reads one option; `None` for a name that is not one.
            fn read(&mut self, key: &str, v: &Dynamic) -> Option<Result<(), String>> {
                let read: Result<(), String> = match key {
                    $( stringify!($name) => {
                        let parse: fn(&Dynamic) -> Result<$ty, String> = $read;
                        parse(v).map(|x| self.$name = Some(x))
                    } )*
                    _ => return None,
                };
                Some(read)
            }
        }
    };
}

script_options! {
    host: String = |v| Ok(v.to_string()),
    users: u64 = count,
    spawn_rate: f64 = rate,
    run_time: Duration = dyn_duration,
    iterations: u64 = count,
    iterations_per_user: u64 = count,
    tasks: BTreeMap<String, i64> = weights,
    wait_time: WaitTime = wait_time,
    timeout: Duration = dyn_timeout,
    insecure: bool = |v| v.as_bool().map_err(|_| "expected true or false".to_string()),
    max_body: u64 = dyn_size,
    max_redirects: usize = |v| count(v).map(to_usize),
    /// `"1.1"`, `"2"` or `"auto"` (the `--http1.1` and `--http2` flags).
    http_version: crate::http::HttpVersion = |v| {
        let text = v.clone().into_string().map_err(|_| "expected a string".to_string())?;
        super::http::http_version(&text)
    },
    stop_timeout: Duration = dyn_duration,
    setup_timeout: Duration = dyn_timeout,
    teardown_timeout: Duration = dyn_timeout,
    seed: u64 = count,
    /// Script value limits: bytes in a string, elements in an array, entries in a map.
    max_string: usize = |v| match dyn_size(v)? {
        0 => Err("must be at least 1 byte".into()),
        n => Ok(to_usize(n)),
    },
    max_array: usize = |v| positive_count(v).map(to_usize),
    max_map: usize = |v| positive_count(v).map(to_usize),
    /// k6's top-level `stages` shortcut: a `ramping-vus` ramp from 0 users.
    stages: Vec<Stage> = stages,
    graceful_ramp_down: Duration = dyn_duration,
    /// `scenarios`: k6's scenarios, each with its executor.
    scenarios: Vec<super::scenarios::ScenarioSpec> =
        |v| super::scenarios::parse(v).map_err(|each| each.join("; ")),
    /// Threshold texts, scoped ones written `scope: metric op value`.
    thresholds: Vec<String> = thresholds,
}

/// `between(a, b)`, `constant(s)` or `constant_pacing(s)`.
pub(super) fn wait_time(v: &Dynamic) -> Result<WaitTime, String> {
    v.clone()
        .try_cast::<WaitTime>()
        .ok_or_else(|| "expected between(a, b), constant(s) or constant_pacing(s)".to_string())
}

impl ScriptOptions {
    /// Reads the options map; returns every problem found, each naming its option.
    pub fn from_map(map: &Map) -> Result<Self, Vec<String>> {
        let mut o = ScriptOptions::default();
        let mut problems = Vec::new();
        for (key, v) in map {
            let read = o
                .read(key, v)
                .unwrap_or_else(|| Err(format!("unknown option (known: {})", KNOWN.join(", "))));
            if let Err(e) = read {
                problems.push(format!("option `{key}`: {e}"));
            }
        }
        if problems.is_empty() {
            Ok(o)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_both_forms() {
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("2.5").unwrap(), Duration::from_millis(2500));
        assert!(duration("soon").is_err());
    }

    #[test]
    fn sizes_parse_from_text_or_bytes() {
        assert_eq!(size("64MiB").unwrap(), 64 << 20);
        assert_eq!(size("10 MB").unwrap(), 10_000_000);
        assert!(size("lots").is_err());
        let engine = crate::api::engine();
        let map: Map = engine
            .eval(r#"#{ max_body: "512KiB", insecure: true }"#)
            .unwrap();
        let o = ScriptOptions::from_map(&map).unwrap();
        assert_eq!((o.max_body, o.insecure), (Some(512 << 10), Some(true)));
        let map: Map = engine.eval("#{ max_body: 1000, insecure: 1 }").unwrap();
        let problems = ScriptOptions::from_map(&map).unwrap_err().join("\n");
        assert!(
            problems.contains("option `insecure`: expected true or false"),
            "{problems}"
        );
    }

    #[test]
    fn unknown_and_bad_options_are_named() {
        let engine = crate::api::engine();
        let map: Map = engine
            .eval(r#"#{ users: 5, run_tmie: "3s", spawn_rate: -1, tasks: #{ a: 2 } }"#)
            .unwrap();
        let problems = ScriptOptions::from_map(&map).unwrap_err().join("\n");
        assert!(
            problems.contains("option `run_tmie`: unknown option"),
            "{problems}"
        );
        assert!(
            problems.contains("option `spawn_rate`: must be > 0"),
            "{problems}"
        );
        let ok: Map = engine
            .eval(r#"#{ users: 5, run_time: "3s", wait_time: between(1, 2) }"#)
            .unwrap();
        let o = ScriptOptions::from_map(&ok).unwrap();
        assert_eq!(o.run_time, Some(Duration::from_secs(3)));
        assert_eq!(o.wait_time, Some(WaitTime::Between(1.0, 2.0)));
    }
}
