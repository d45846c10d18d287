//! `options.scenarios`: k6's scenarios with k6's executor names and option keys (snake_case,
//! "users" where k6 says "VUs"), read from the script and turned into the plan's
//! [`Scenario`]s. Every mistake names its scenario and key, before any traffic.

use std::collections::BTreeMap;
use std::time::Duration;

use rhai::{AST, Dynamic, Map};

use super::options::{count, dyn_duration, positive_count, rate, wait_time, weights};
use super::{PlanError, Probe, RunFlags};
use crate::plan::{Executor, RateSpec, RateStage, Scenario, Schedule, Stage, WhenBusy};
use crate::script::EngineConfig;

/// The most users all scenarios together may run: far past what one process holds (each
/// user reserves a stack), low enough that no count of users can overflow.
const MAX_USERS: u64 = 100_000_000;

/// The highest arrival rate, as `--rate` allows.
const MAX_RATE: f64 = 10_000_000.0;

/// k6's default `gracefulStop`, `gracefulRampDown` and `maxDuration`.
pub const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(30);
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(600);

/// Keys every executor takes.
const COMMON: &[&str] = &[
    "executor",
    "start_time",
    "graceful_stop",
    "tags",
    "exec",
    "tasks",
    "wait_time",
];

/// The keys of each executor besides [`COMMON`].
fn keys(executor: Executor) -> &'static [&'static str] {
    match executor {
        Executor::ConstantVus => &["users", "duration"],
        Executor::RampingVus => &["start_users", "stages", "graceful_ramp_down"],
        Executor::PerVuIterations | Executor::SharedIterations => {
            &["users", "iterations", "max_duration"]
        }
        Executor::ConstantArrivalRate => &[
            "rate",
            "time_unit",
            "duration",
            "pre_allocated_users",
            "max_users",
            "when_busy",
        ],
        Executor::RampingArrivalRate => &[
            "start_rate",
            "time_unit",
            "stages",
            "pre_allocated_users",
            "max_users",
            "when_busy",
        ],
        Executor::Shape => &[
            "graceful_ramp_down",
            "pre_allocated_users",
            "max_users",
            "when_busy",
        ],
        Executor::Default => &[],
    }
}

/// One scenario as the script wrote it: its keys read and typed, not yet checked against
/// each other or the script's functions.
#[derive(Debug, Clone, Default)]
pub struct ScenarioSpec {
    pub name: String,
    executor: Option<Executor>,
    values: BTreeMap<String, Dynamic>,
}

/// Reads `scenarios: #{ name: #{ executor: "…", … }, … }`; every problem names its scenario.
pub fn parse(v: &Dynamic) -> Result<Vec<ScenarioSpec>, Vec<String>> {
    let Some(map) = v.read_lock::<Map>() else {
        return Err(vec![
            "expected a map of scenarios, e.g. #{ browse: #{ executor: \"constant-vus\", users: 10, duration: \"1m\" } }"
                .into(),
        ]);
    };
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    if map.is_empty() {
        problems.push("no scenario given".into());
    }
    for (name, body) in map.iter() {
        let fail = |m: String| format!("scenario `{name}`: {m}");
        let Some(body) = body.read_lock::<Map>() else {
            problems.push(fail(format!("expected a map, got {}", body.type_name())));
            continue;
        };
        let executor = match body.get("executor").map(|e| e.to_string()) {
            None => {
                problems.push(fail(format!(
                    "`executor` is missing (one of: {})",
                    Executor::NAMES.join(", ")
                )));
                None
            }
            Some(e) => Executor::parse(&e).or_else(|| {
                problems.push(fail(format!(
                    "unknown executor `{e}` (known: {})",
                    Executor::NAMES.join(", ")
                )));
                None
            }),
        };
        if let Some(executor) = executor {
            for key in body.keys() {
                if !COMMON.contains(&key.as_str()) && !keys(executor).contains(&key.as_str()) {
                    let known: Vec<_> = COMMON.iter().chain(keys(executor)).copied().collect();
                    problems.push(fail(format!(
                        "unknown key `{key}` for {} (known: {})",
                        executor.name(),
                        known.join(", ")
                    )));
                }
            }
        }
        specs.push(ScenarioSpec {
            name: name.to_string(),
            executor,
            values: body
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        });
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(problems)
    }
}

/// What a scenario is built against: the script's functions and defaults.
pub struct Context<'a> {
    pub ast: &'a AST,
    /// The script's tasks with their weights (the default for a scenario without `exec`
    /// or `tasks`).
    pub tasks: &'a [(String, u32)],
    /// The script's own `fn shape(elapsed)`, if any.
    pub has_shape: bool,
    /// The most the shape asks for (checked before traffic), when it has one.
    pub shape_peak: Option<super::plan::ShapePeak>,
}

impl ScenarioSpec {
    fn get(&self, key: &str) -> Option<&Dynamic> {
        self.values.get(key)
    }

    fn read<T>(
        &self,
        key: &str,
        f: impl Fn(&Dynamic) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        self.get(key)
            .map(|v| f(v).map_err(|e| format!("`{key}`: {e}")))
            .transpose()
    }

    fn need<T>(&self, key: &str, f: impl Fn(&Dynamic) -> Result<T, String>) -> Result<T, String> {
        self.read(key, f)?
            .ok_or_else(|| format!("`{key}` is required for {}", self.executor().name()))
    }

    fn executor(&self) -> Executor {
        self.executor.unwrap_or(Executor::Default)
    }

    /// The plan's scenario, its users numbered after `first_user`.
    pub fn build(&self, cx: &Context, first_user: u64) -> Result<Scenario, String> {
        self.build_inner(cx, first_user)
            .map_err(|e| format!("scenario `{}`: {e}", self.name))
    }

    fn build_inner(&self, cx: &Context, first_user: u64) -> Result<Scenario, String> {
        let executor = self.executor();
        let positive = |v: &Dynamic| match dyn_duration(v)? {
            Duration::ZERO => Err("must be more than 0".to_string()),
            d => Ok(d),
        };
        let mut duration = None;
        let (mut iterations, mut per_user) = (None, None);
        let schedule = match executor {
            Executor::ConstantVus => {
                let users = self.read("users", positive_count)?.unwrap_or(1);
                let d = self.need("duration", positive)?;
                duration = Some(d);
                hold(users, d)
            }
            Executor::RampingVus => {
                let start = self.read("start_users", count)?.unwrap_or(1);
                let stages: Vec<Stage> = self
                    .need("stages", stage_list)?
                    .into_iter()
                    .map(|s| {
                        Ok(Stage {
                            duration: s.duration,
                            target: whole(s.target)?,
                        })
                    })
                    .collect::<Result<_, String>>()?;
                if start == 0 && stages.iter().all(|s| s.target == 0) {
                    return Err("the stages never start a user (every target is 0)".into());
                }
                Schedule::Stages { start, stages }
            }
            Executor::PerVuIterations | Executor::SharedIterations => {
                let users = self.read("users", positive_count)?.unwrap_or(1);
                let n = self.read("iterations", positive_count)?.unwrap_or(1);
                if executor == Executor::PerVuIterations {
                    per_user = Some(n);
                } else {
                    if n < users {
                        return Err(format!(
                            "`iterations` ({n}) must be at least `users` ({users}), as in k6"
                        ));
                    }
                    iterations = Some(n);
                }
                let d = self
                    .read("max_duration", positive)?
                    .unwrap_or(DEFAULT_MAX_DURATION);
                duration = Some(d);
                hold(users, d)
            }
            Executor::ConstantArrivalRate | Executor::RampingArrivalRate => {
                let unit = self
                    .read("time_unit", positive)?
                    .unwrap_or(Duration::from_secs(1));
                // As `--rate`: at most 10,000,000 a second, so arrivals are at least 0.1 µs
                // apart and the dispatcher's arithmetic stays finite.
                let per_second = |r: f64| -> Result<f64, String> {
                    let per = r / unit.as_secs_f64();
                    if per.is_finite() && per <= MAX_RATE {
                        Ok(per)
                    } else {
                        Err(format!(
                            "{r} per {} is more than 10,000,000 iterations a second",
                            humantime::format_duration(unit)
                        ))
                    }
                };
                let rate = if executor == Executor::ConstantArrivalRate {
                    duration = Some(self.need("duration", positive)?);
                    RateSpec::Constant(per_second(self.need("rate", rate)?)?)
                } else {
                    let start = self.read("start_rate", non_negative)?.unwrap_or(0.0);
                    let stages = self.need("stages", stage_list)?;
                    if start == 0.0 && stages.iter().all(|s| s.target == 0.0) {
                        return Err("the rate is 0 throughout (every target is 0)".into());
                    }
                    RateSpec::Stages {
                        start: per_second(start)?,
                        stages: stages
                            .into_iter()
                            .map(|s| {
                                Ok(RateStage {
                                    duration: s.duration,
                                    target: per_second(s.target)?,
                                })
                            })
                            .collect::<Result<_, String>>()?,
                    }
                };
                if self.get("wait_time").is_some() {
                    return Err(
                        "`wait_time` does not apply to an arrival rate: the rate decides when iterations start"
                            .into(),
                    );
                }
                let pre_allocated = self.need("pre_allocated_users", positive_count)?;
                let max = self
                    .read("max_users", positive_count)?
                    .unwrap_or(pre_allocated);
                if max < pre_allocated {
                    return Err(format!(
                        "`max_users` ({max}) must not be less than `pre_allocated_users` ({pre_allocated})"
                    ));
                }
                Schedule::Rate {
                    rate,
                    pre_allocated,
                    max,
                    when_busy: self
                        .read("when_busy", |v| WhenBusy::parse(&v.to_string()))?
                        .unwrap_or_default(),
                }
            }
            Executor::Shape => {
                if !cx.has_shape {
                    return Err("the shape executor needs `fn shape(elapsed)` in the script".into());
                }
                match cx.shape_peak {
                    Some(super::plan::ShapePeak::Rate(peak)) => {
                        let pre_allocated = self
                            .read("pre_allocated_users", positive_count)?
                            .unwrap_or_else(|| (peak.ceil() as u64).clamp(1, 1000));
                        let max = self
                            .read("max_users", positive_count)?
                            .unwrap_or_else(|| pre_allocated.saturating_mul(10).min(10_000))
                            .max(pre_allocated);
                        Schedule::Rate {
                            rate: RateSpec::Shaped { peak },
                            pre_allocated,
                            max,
                            when_busy: self
                                .read("when_busy", |v| WhenBusy::parse(&v.to_string()))?
                                .unwrap_or_default(),
                        }
                    }
                    Some(super::plan::ShapePeak::Users(peak)) => Schedule::Shape { peak },
                    None => Schedule::Shape { peak: 0 },
                }
            }
            Executor::Default => unreachable!("parsed scenarios name their executor"),
        };
        if schedule.length() == Some(Duration::ZERO) {
            return Err("the stages take no time (every duration is 0)".into());
        }
        Ok(Scenario {
            name: self.name.clone(),
            executor,
            schedule,
            tasks: self.tasks(cx)?,
            start_time: self.read("start_time", dyn_duration)?.unwrap_or_default(),
            duration,
            graceful_stop: self
                .read("graceful_stop", dyn_duration)?
                .unwrap_or(DEFAULT_GRACEFUL_STOP),
            graceful_ramp_down: self
                .read("graceful_ramp_down", dyn_duration)?
                .unwrap_or(DEFAULT_GRACEFUL_STOP),
            iterations,
            iterations_per_user: per_user,
            wait: self.read("wait_time", wait_time)?,
            tags: self.read("tags", tags)?.unwrap_or_default(),
            first_user,
        })
    }

    /// Its `exec` function alone, its `tasks` (a list or a map of weights), or the
    /// script's tasks; each must be a function without parameters that is not a hook.
    fn tasks(&self, cx: &Context) -> Result<Vec<(String, u32)>, String> {
        let callable = |name: &str| {
            !crate::script::HOOKS.contains(&name)
                && name != crate::script::SHAPE
                && cx
                    .ast
                    .iter_functions()
                    .any(|f| f.name == name && f.params.is_empty())
        };
        let check = |key: &str, name: &str| {
            if callable(name) {
                Ok(())
            } else {
                let tasks: Vec<_> = cx.tasks.iter().map(|(t, _)| t.as_str()).collect();
                Err(format!(
                    "`{key}` names `{name}`, which is not a function without parameters in the script (tasks: {})",
                    tasks.join(", ")
                ))
            }
        };
        if self.get("exec").is_some() && self.get("tasks").is_some() {
            return Err("give `exec` (one function) or `tasks` (several), not both".into());
        }
        if let Some(exec) = self.get("exec") {
            let name = exec
                .clone()
                .into_string()
                .map_err(|t| format!("`exec`: expected a function name, got {t}"))?;
            check("exec", &name)?;
            return Ok(vec![(name, 1)]);
        }
        let Some(list) = self.get("tasks") else {
            return Ok(cx.tasks.to_vec());
        };
        let weighted: Vec<(String, i64)> = match list.read_lock::<rhai::Array>() {
            Some(names) => names.iter().map(|n| (n.to_string(), 1)).collect(),
            None => weights(list)
                .map_err(|e| format!("`tasks`: {e}"))?
                .into_iter()
                .collect(),
        };
        let mut out = Vec::new();
        for (name, w) in weighted {
            check("tasks", &name)?;
            let w = u32::try_from(w)
                .map_err(|_| format!("`tasks`: weight of `{name}` must be a whole number >= 0"))?;
            out.push((name, w));
        }
        if out.iter().all(|(_, w)| *w == 0) {
            return Err("`tasks`: no task has a positive weight".into());
        }
        Ok(out)
    }
}

/// `users` users from the start, for `d`.
fn hold(users: u64, d: Duration) -> Schedule {
    Schedule::Stages {
        start: users,
        stages: vec![Stage {
            duration: d,
            target: users,
        }],
    }
}

pub(super) fn whole(x: f64) -> Result<u64, String> {
    if x.fract() == 0.0 && x >= 0.0 {
        Ok(x as u64)
    } else {
        Err(format!(
            "a stage's `target` must be a whole number of users, got {x}"
        ))
    }
}

fn non_negative(v: &Dynamic) -> Result<f64, String> {
    let r = v
        .as_float()
        .or_else(|_| v.as_int().map(|i| i as f64))
        .map_err(|t| format!("expected a number, got {t}"))?;
    if r.is_finite() && r >= 0.0 {
        Ok(r)
    } else {
        Err(format!("must be 0 or more, got {r}"))
    }
}

/// `[#{ duration: "30s", target: 100 }, …]`, targets as numbers (users or a rate).
pub(super) fn stage_list(v: &Dynamic) -> Result<Vec<RateStage>, String> {
    let list = v
        .read_lock::<rhai::Array>()
        .ok_or_else(|| "expected an array of #{ duration, target } maps".to_string())?;
    if list.is_empty() {
        return Err("no stages given".into());
    }
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let map = item
                .read_lock::<Map>()
                .ok_or_else(|| format!("stage {i}: expected #{{ duration, target }}"))?;
            let (mut duration, mut target) = (None, None);
            for (key, v) in map.iter() {
                match key.as_str() {
                    "duration" => {
                        duration = Some(dyn_duration(v).map_err(|e| format!("stage {i}: {e}"))?)
                    }
                    "target" => {
                        target =
                            Some(non_negative(v).map_err(|e| format!("stage {i}: `target` {e}"))?)
                    }
                    other => {
                        return Err(format!(
                            "stage {i}: unknown key `{other}` (known: duration, target)"
                        ));
                    }
                }
            }
            match (duration, target) {
                (Some(duration), Some(target)) => Ok(RateStage { duration, target }),
                _ => Err(format!("stage {i}: needs both `duration` and `target`")),
            }
        })
        .collect()
}

/// `#{ team: "checkout" }`: names to text.
fn tags(v: &Dynamic) -> Result<BTreeMap<String, String>, String> {
    let map = v.read_lock::<Map>().ok_or_else(|| {
        format!(
            "expected a map like #{{ team: \"checkout\" }}, got {}",
            v.type_name()
        )
    })?;
    Ok(map
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The script's `scenarios`, built and numbered; `None` when it has none or a flag sets
/// the load model instead.
pub fn from_probe(
    args: &RunFlags,
    probe: &Probe,
    engine: &EngineConfig,
) -> Result<Option<Vec<Scenario>>, PlanError> {
    let o = &probe.options;
    let Some(specs) = o
        .scenarios
        .as_ref()
        .filter(|_| !super::plan::load_flags(args))
    else {
        return Ok(None);
    };
    let invalid = |problems| PlanError::Invalid {
        name: probe.name.clone(),
        problems,
    };
    if o.users.is_some() || o.spawn_rate.is_some() || o.stages.is_some() {
        return Err(invalid(vec![
            "options `users`, `spawn_rate` and `stages` set the one implicit scenario; \
             with `scenarios`, give each scenario its own"
                .into(),
        ]));
    }
    let shape_peak = if probe.hooks.shape {
        Some(super::plan::shape_peak(
            args,
            o,
            &probe.name,
            &probe.source,
            engine,
        )?)
    } else {
        None
    };
    let cx = Context {
        ast: &probe.ast,
        tasks: &probe.lint.tasks,
        has_shape: probe.hooks.shape,
        shape_peak,
    };
    let mut built = Vec::new();
    let mut problems = Vec::new();
    let mut first_user = 0;
    for spec in specs {
        match spec.build(&cx, first_user) {
            Ok(s) => match first_user.checked_add(s.schedule.peak()) {
                Some(next) if next <= MAX_USERS => {
                    first_user = next;
                    built.push(s);
                }
                _ => problems.push(format!(
                    "scenario `{}`: the scenarios would run more than {MAX_USERS} users in all",
                    s.name
                )),
            },
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(Some(built))
    } else {
        Err(invalid(problems))
    }
}
