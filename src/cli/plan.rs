//! From flags and script to a validated [`Plan`]: every problem is found here, before the
//! first request.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rhai::{AST, Dynamic, Map, Scope};

use super::{RunArgs, RunFlags, ScriptOptions};
use crate::http::{ClientFactory, ClientOptions, DEFAULT_MAX_BODY, DEFAULT_TIMEOUT};
use crate::plan::{Executor, Plan, RateSpec, Scenario, Schedule};
use crate::report::Reporting;
use crate::script::{self, EngineConfig, Hooks, Level, Limits, Lint, Logger, describe};
use crate::vu::{RunState, ScenarioState};
use crate::vu::{User, UserSettings, WaitTime, Worker};

/// Everything wrong before traffic starts; the process exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read script {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Syntax(#[from] script::SyntaxError),
    #[error("{name}: error in top-level code: {message}")]
    TopLevel { name: String, message: String },
    #[error("{}", problems_text(.name, .problems))]
    Invalid { name: String, problems: Vec<String> },
    #[error("--{flag}: {message}")]
    Flag { flag: &'static str, message: String },
    #[error("cannot open log file {path}: {source}")]
    LogFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Threshold(#[from] crate::report::ThresholdError),
    #[error("output file: {0}")]
    Output(#[from] crate::report::OutputError),
    #[error(transparent)]
    Client(#[from] crate::http::ClientError),
}

/// One line a problem, each starting with the script's name (and its line and column when
/// the problem says where).
fn problems_text(name: &str, problems: &[String]) -> String {
    problems
        .iter()
        .map(|p| {
            if p.starts_with(&format!("{name}:")) {
                p.clone()
            } else {
                format!("{name}: {p}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A compiled script with its options read and its functions linted.
pub struct Probe {
    pub name: String,
    pub source: String,
    pub ast: AST,
    pub options: ScriptOptions,
    pub lint: Lint,
    pub hooks: Hooks,
    /// Data files its top-level code loaded.
    pub data: crate::vu::DataFiles,
}

pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// k6's default for `gracefulRampDown`.
pub const DEFAULT_GRACEFUL_RAMP_DOWN: Duration = Duration::from_secs(30);
/// k6's defaults for `setupTimeout` and `teardownTimeout`.
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_TEARDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// Operations the top-level code may run while the script is checked (seconds of work).
const PROBE_OPERATIONS: u64 = 20_000_000;
/// Coroutine stack per user: reserved address space, only touched pages cost memory.
pub const STACK_SIZE: usize = 1024 * 1024;

/// Compiles `source`, runs its top-level code (no requests allowed there) to read the
/// `options` map, and lints its functions. `import_dir` is the script's folder, which
/// `import` resolves from.
pub fn probe(
    name: &str,
    source: &str,
    import_dir: Option<PathBuf>,
    data_allowed: &[PathBuf],
) -> Result<Probe, PlanError> {
    let mut engine = crate::api::engine_with(&EngineConfig {
        limits: Limits::default(),
        import_dir: import_dir.clone(),
    });
    // Top-level code declares constants and options; one that runs this long is stuck
    // (`loop {}`), and `check` must say so rather than hang.
    engine.set_max_operations(PROBE_OPERATIONS);
    let ast = script::compile(&engine, name, source)?;
    let settings = UserSettings {
        host: None,
        client: ClientOptions::default(),
        seed: None,
        iterations_per_user: None,
        wait: WaitTime::None,
        stack_size: STACK_SIZE,
        trace: None,
        data_dir: import_dir.clone(),
        data_allowed: data_allowed.to_vec(),
        segment: Default::default(),
    };
    let run = Arc::new(RunState::new(
        settings,
        None,
        Logger::stderr(Level::Info),
        Default::default(),
    ));
    let cohort = Rc::new(crate::vu::Cohort::new(
        Arc::new(ScenarioState::session(&run)),
        crate::vu::TaskTable::none(),
    ));
    let worker = Rc::new(Worker {
        run,
        clients: ClientFactory::new(&ClientOptions::default())
            .expect("default TLS config is valid"),
        setup_data: Dynamic::UNIT,
        base: None,
        names: Default::default(),
    });
    let user = Rc::new(User::new(0, worker, cohort));
    let mut scope = Scope::new();
    {
        let _entered = crate::vu::enter(&user);
        engine
            .run_ast_with_scope(&mut scope, &ast)
            .map_err(|e| PlanError::TopLevel {
                name: name.to_owned(),
                message: describe(&e, name),
            })?;
    }
    let invalid = |problems| PlanError::Invalid {
        name: name.to_owned(),
        problems,
    };
    let options = match scope.get("options") {
        None => ScriptOptions::default(),
        Some(v) => {
            let map = v.read_lock::<Map>().ok_or_else(|| {
                invalid(vec![format!(
                    "`options` must be a map like #{{ users: 10 }}, not {}",
                    v.type_name()
                )])
            })?;
            ScriptOptions::from_map(&map).map_err(invalid)?
        }
    };
    let mut lint = script::lint(&ast, options.tasks.as_ref());
    lint.problems.extend(crate::api::lint::requests(&ast, name));
    if !lint.problems.is_empty() {
        return Err(invalid(lint.problems));
    }
    let hooks = Hooks::of(&ast);
    let data = std::mem::take(&mut *user.run().data.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Probe {
        name: name.to_owned(),
        source: source.to_owned(),
        ast,
        options,
        lint,
        hooks,
        data,
    })
}

fn read(path: &Path) -> Result<(String, String), PlanError> {
    let source = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok((path.display().to_string(), source))
}

/// The folder a script's imports resolve from: its own, whatever the working directory.
fn script_dir(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned())
}

/// `stampede check`: everything `run` validates, without traffic.
pub fn check(path: &Path) -> Result<Probe, PlanError> {
    let (name, source) = read(path)?;
    probe(&name, &source, Some(script_dir(path)), &[])
}

/// Users over time, from `--users`/`--spawn-rate` or `--stages` (flags first, then options);
/// the two ways cannot be mixed.
fn schedule(args: &RunFlags, o: &ScriptOptions) -> Result<Schedule, PlanError> {
    let stages = args
        .stages
        .clone()
        .map(|s| s.0)
        .or_else(|| o.stages.clone());
    let users = args.users.or(o.users);
    let rate = args.spawn_rate.or(o.spawn_rate);
    if let Some(spec) = args.rate.clone() {
        return arrival_rate(
            args,
            spec,
            stages.is_some() || users.is_some() || rate.is_some(),
        );
    }
    if args.pre_allocated_users.is_some() || args.max_users.is_some() || args.when_busy.is_some() {
        return Err(PlanError::Flag {
            flag: "max-users",
            message: "--pre-allocated-users, --max-users and --when-busy are for --rate".into(),
        });
    }
    if let Some(stages) = stages {
        if users.is_some() || rate.is_some() {
            return Err(PlanError::Flag {
                flag: "stages",
                message: "stages set the users over time; leave out --users and \
                          --spawn-rate (and their options)"
                    .into(),
            });
        }
        return Ok(Schedule::Stages { start: 0, stages });
    }
    let users = users.unwrap_or(1);
    if users == 0 {
        return Err(PlanError::Flag {
            flag: "users",
            message: "must be at least 1".into(),
        });
    }
    let rate = rate.unwrap_or(users as f64);
    if !(rate.is_finite() && rate > 0.0) {
        return Err(PlanError::Flag {
            flag: "spawn-rate",
            message: format!("must be > 0, got {rate}"),
        });
    }
    Ok(Schedule::Spawn { users, rate })
}

/// How far ahead a shape is sampled before traffic, to validate it and find its peak.
const SHAPE_LOOKAHEAD: Duration = Duration::from_secs(3600);

/// `fn shape(elapsed)`: checked by calling it for every second of the run (or its first hour)
/// before any traffic, which finds mistakes early and the most users it will want.
fn shape_schedule(
    args: &RunFlags,
    o: &ScriptOptions,
    name: &str,
    source: &str,
    engine: &EngineConfig,
) -> Result<Schedule, PlanError> {
    let invalid = |problem: String| PlanError::Invalid {
        name: name.to_owned(),
        problems: vec![problem],
    };
    let others = args.users.or(o.users).is_some()
        || args.spawn_rate.or(o.spawn_rate).is_some()
        || args.stages.is_some()
        || o.stages.is_some()
        || args.rate.is_some();
    if others {
        return Err(invalid(
            "`fn shape(elapsed)` sets the users over time; leave out --users, --spawn-rate, \
             --stages and --rate (and their options)"
                .into(),
        ));
    }
    match shape_peak(args, o, name, source, engine)? {
        ShapePeak::Users(peak) => Ok(Schedule::Shape { peak }),
        ShapePeak::Rate(peak) => arrival_rate(args, RateSpec::Shaped { peak }, false),
    }
}

/// The most `fn shape` asks for before traffic: users, or (returning `#{ rate }`)
/// iterations a second. One shape drives one model.
#[derive(Debug, Clone, Copy)]
pub enum ShapePeak {
    Users(u64),
    Rate(f64),
}

/// The most `fn shape` asks for, calling it for every second of the run (or its first
/// hour); its errors, a shape that mixes users and rates, and one that never asks for a
/// user or an iteration are reported.
pub(super) fn shape_peak(
    args: &RunFlags,
    o: &ScriptOptions,
    name: &str,
    source: &str,
    engine: &EngineConfig,
) -> Result<ShapePeak, PlanError> {
    let invalid = |problem: String| PlanError::Invalid {
        name: name.to_owned(),
        problems: vec![problem],
    };
    let shape = crate::api::Shape::new(name, source, engine)?;
    let horizon = args
        .run_time
        .or(o.run_time)
        .unwrap_or(SHAPE_LOOKAHEAD)
        .min(SHAPE_LOOKAHEAD);
    let (mut users, mut rate) = (None::<u64>, None::<f64>);
    for second in 0..=horizon.as_secs() {
        let Some(want) = shape
            .at(second as f64)
            .map_err(|e| invalid(e.to_string()))?
        else {
            break;
        };
        match want.rate {
            Some(r) => rate = Some(rate.unwrap_or(0.0).max(r)),
            None => users = Some(users.unwrap_or(0).max(want.users)),
        }
        if users.is_some() && rate.is_some() {
            return Err(invalid(format!(
                "`shape` returns users at some seconds and a rate at others (at {second} s); \
                 one shape drives one model"
            )));
        }
    }
    match (users, rate) {
        (_, Some(r)) if r > 0.0 => Ok(ShapePeak::Rate(r)),
        (Some(u), _) if u > 0 => Ok(ShapePeak::Users(u)),
        _ => Err(invalid(
            "`shape` never asks for a user or an iteration (it returns 0 or () from the start)"
                .into(),
        )),
    }
}

/// Whether a flag sets the load model, which replaces the script's `scenarios`.
pub(super) fn load_flags(args: &RunFlags) -> bool {
    args.users.is_some()
        || args.spawn_rate.is_some()
        || args.stages.is_some()
        || args.rate.is_some()
}

/// `--rate` (or a shape that returns rates): the open model, with its pool of users.
pub(super) fn arrival_rate(
    args: &RunFlags,
    spec: RateSpec,
    mixed: bool,
) -> Result<Schedule, PlanError> {
    let flag = |flag, message: &str| PlanError::Flag {
        flag,
        message: message.into(),
    };
    if mixed {
        return Err(flag(
            "rate",
            "an arrival rate replaces --users, --spawn-rate and --stages (and their options)",
        ));
    }
    let pre_allocated = args
        .pre_allocated_users
        .unwrap_or_else(|| (spec.peak().ceil() as u64).clamp(1, 1000));
    let max = args.max_users.unwrap_or_else(|| {
        pre_allocated
            .saturating_mul(10)
            .min(10_000)
            .max(pre_allocated)
    });
    if pre_allocated == 0 {
        return Err(flag("pre-allocated-users", "must be at least 1"));
    }
    if max < pre_allocated {
        return Err(flag(
            "max-users",
            "must not be less than --pre-allocated-users",
        ));
    }
    Ok(Schedule::Rate {
        rate: spec,
        pre_allocated,
        max,
        when_busy: args.when_busy.unwrap_or_default(),
    })
}

/// `stampede run`: the plan and what its reports are asked for, from the flags and the
/// script.
pub fn build(args: &RunArgs) -> Result<(Plan, Reporting), PlanError> {
    let (name, source) = read(&args.script)?;
    decide(&args.flags, name, source, Some(script_dir(&args.script)))
}

/// Like [`build`] with the script given as text (the demo's embedded scenario);
/// `import_dir` is where its imports resolve from (`None`: it may not import).
pub fn from_source(
    args: &RunFlags,
    name: String,
    source: String,
    import_dir: Option<PathBuf>,
) -> Result<(Plan, Reporting), PlanError> {
    decide(args, name, source, import_dir)
}

impl Plan {
    /// [`build`]'s plan alone (tests and embedders that read no reports).
    pub fn build(args: &RunArgs) -> Result<Plan, PlanError> {
        build(args).map(|(plan, _)| plan)
    }

    /// [`from_source`]'s plan alone.
    pub fn from_source(
        args: &RunFlags,
        name: String,
        source: String,
        import_dir: Option<PathBuf>,
    ) -> Result<Plan, PlanError> {
        decide(args, name, source, import_dir).map(|(plan, _)| plan)
    }
}

fn decide(
    args: &RunFlags,
    name: String,
    source: String,
    import_dir: Option<PathBuf>,
) -> Result<(Plan, Reporting), PlanError> {
    {
        let data_allowed = args
            .data_files
            .iter()
            .map(|p| {
                std::fs::canonicalize(p).map_err(|e| PlanError::Flag {
                    flag: "data",
                    message: format!("{}: {e}", p.display()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let probe = probe(&name, &source, import_dir.clone(), &data_allowed)?;
        let o = probe.options.clone();
        let engine = EngineConfig {
            limits: Limits {
                string: o.max_string.unwrap_or(Limits::DEFAULT_STRING),
                array: o.max_array.unwrap_or(Limits::DEFAULT_ARRAY),
                map: o.max_map.unwrap_or(Limits::DEFAULT_MAP),
            },
            import_dir,
        };
        let explicit = super::scenarios::from_probe(args, &probe, &engine)?;
        let stop_timeout = args
            .stop_timeout
            .or(o.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        let scenarios = match explicit {
            Some(list) => list,
            None => {
                let schedule = if probe.hooks.shape {
                    shape_schedule(args, &o, &name, &source, &engine)?
                } else {
                    schedule(args, &o)?
                };
                vec![Scenario {
                    name: "default".into(),
                    executor: if probe.hooks.shape {
                        Executor::Shape
                    } else {
                        Executor::Default
                    },
                    schedule,
                    tasks: probe.lint.tasks.clone(),
                    start_time: Duration::ZERO,
                    duration: None,
                    graceful_stop: stop_timeout,
                    graceful_ramp_down: args
                        .graceful_ramp_down
                        .or(o.graceful_ramp_down)
                        .unwrap_or(DEFAULT_GRACEFUL_RAMP_DOWN),
                    iterations: None,
                    iterations_per_user: None,
                    wait: None,
                    tags: Default::default(),
                    first_user: 0,
                }]
            }
        };
        let segment = args.segment.unwrap_or_default();
        let mut iterations = args.iterations.or(o.iterations);
        let fingerprint = crate::plan::fingerprint(
            &source,
            &scenarios,
            &format!(
                "{:?} {:?} {iterations:?} {:?} {:?}",
                args.host.as_ref().or(o.host.as_ref()),
                args.run_time.or(o.run_time),
                args.seed.or(o.seed),
                args.iterations_per_user.or(o.iterations_per_user),
            ),
        );
        let mut scenarios = scenarios;
        segment
            .apply(&mut scenarios, &mut iterations)
            .map_err(|message| PlanError::Flag {
                flag: "segment",
                message,
            })?;
        let host = args
            .host
            .clone()
            .or(o.host)
            .map(|h| h.trim_end_matches('/').to_owned());
        if let Some(h) = &host {
            let message = if !(h.starts_with("http://") || h.starts_with("https://")) {
                Some(format!(
                    "`{}` must start with http:// or https://",
                    crate::http::redact(h)
                ))
            } else {
                crate::http::Base::parse(h).err().map(|e| e.to_string())
            };
            if let Some(message) = message {
                return Err(PlanError::Flag {
                    flag: "host",
                    message,
                });
            }
        }
        let users: u64 = scenarios.iter().map(|s| s.schedule.peak()).sum();
        let spawn_rate = match scenarios.as_slice() {
            [only] => match only.schedule {
                Schedule::Spawn { rate, .. } if only.executor == Executor::Default => rate,
                _ => 0.0,
            },
            _ => 0.0,
        };
        // A script without scenarios runs as long as its stages; with scenarios, until
        // the last one ends (each stops itself).
        let implicit_length = match scenarios.as_slice() {
            [only] if matches!(only.executor, Executor::Default | Executor::Shape) => {
                only.schedule.length()
            }
            _ => None,
        };
        let workers = args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, 256);
        let thresholds = o
            .thresholds
            .iter()
            .flatten()
            .chain(&args.thresholds)
            .map(|t| crate::report::thresholds::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        for t in &thresholds {
            if let Some(wanted) = &t.scenario
                && !scenarios.iter().any(|s| &s.name == wanted)
            {
                let known: Vec<_> = scenarios.iter().map(|s| s.name.as_str()).collect();
                return Err(PlanError::Invalid {
                    name: name.clone(),
                    problems: vec![format!(
                        "threshold `{}` names scenario `{wanted}`, which does not exist (scenarios: {})",
                        t.text,
                        known.join(", ")
                    )],
                });
            }
        }
        let outputs = args.outputs.outputs();
        outputs.check()?;
        let log = match &args.log_file {
            None => Logger::stderr(args.log_level),
            Some(path) => {
                let file = std::fs::File::create(path).map_err(|source| PlanError::LogFile {
                    path: path.clone(),
                    source,
                })?;
                Logger::new(args.log_level, Box::new(std::io::LineWriter::new(file)))
            }
        };
        let run_time = args.run_time.or(o.run_time).or(implicit_length);
        let warnings = scenarios
            .iter()
            .filter(|s| run_time.is_some_and(|t| s.start_time >= t))
            .map(|s| {
                format!(
                    "warning: scenario `{}` starts at {}, not before the run time ({}): it will not run",
                    s.name,
                    humantime::format_duration(s.start_time),
                    humantime::format_duration(run_time.unwrap_or_default())
                )
            })
            .collect();
        let client = ClientOptions {
            timeout: args.timeout.or(o.timeout).unwrap_or(DEFAULT_TIMEOUT),
            tls: args
                .http
                .tls(!(args.insecure || o.insecure.unwrap_or(false))),
            version: args.http.version(o.http_version),
            proxy: args.http.proxy(),
            no_proxy: args.http.noproxy.clone(),
            max_body: args.max_body.or(o.max_body).unwrap_or(DEFAULT_MAX_BODY),
            max_redirects: args
                .max_redirects
                .or(o.max_redirects)
                .unwrap_or(crate::http::DEFAULT_MAX_REDIRECTS),
        };
        // A CA file, client certificate or proxy URL that cannot be used is a usage error,
        // before any traffic, not a worker that fails to start.
        ClientFactory::new(&client)?;
        let plan = Plan {
            script_name: name,
            source,
            hooks: probe.hooks,
            settings: UserSettings {
                host,
                client,
                seed: args.seed.or(o.seed).map(|seed| segment.seed(seed)),
                iterations_per_user: args.iterations_per_user.or(o.iterations_per_user),
                wait: o.wait_time.unwrap_or_default(),
                stack_size: STACK_SIZE,
                trace: args.trace.then_some(crate::vu::Trace {
                    secrets: args.trace_secrets,
                    body_limit: 2048,
                }),
                data_dir: engine.import_dir.clone(),
                data_allowed: data_allowed.clone(),
                segment,
            },
            users,
            spawn_rate,
            run_time,
            warnings,
            data: probe.data,
            steering: None,
            start_at: args.start_at,
            fingerprint,
            scenarios,
            iterations,
            stop_timeout,
            setup_timeout: args
                .setup_timeout
                .or(o.setup_timeout)
                .unwrap_or(DEFAULT_SETUP_TIMEOUT),
            teardown_timeout: args
                .teardown_timeout
                .or(o.teardown_timeout)
                .unwrap_or(DEFAULT_TEARDOWN_TIMEOUT),
            engine,
            workers: workers.min(users as usize).max(1),
            log,
        };
        let reporting = Reporting {
            thresholds,
            fail_on_error: args.fail_on_error,
            outputs,
            quiet: args.quiet,
            bench_line: args.bench_line,
            prometheus: prometheus(args)?,
        };
        Ok((plan, reporting))
    }
}

/// `--prometheus`, checked before any traffic.
fn prometheus(args: &RunFlags) -> Result<Option<crate::prometheus::Config>, PlanError> {
    let Some(url) = &args.prometheus else {
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) || url::Url::parse(url).is_err()
    {
        return Err(PlanError::Flag {
            flag: "prometheus",
            message: format!(
                "`{url}` is not an http:// or https:// URL of a remote-write endpoint"
            ),
        });
    }
    let labels = &args.prometheus_label;
    if let Some((key, _)) = labels
        .iter()
        .enumerate()
        .find_map(|(i, (k, v))| labels[..i].iter().any(|(k2, _)| k2 == k).then_some((k, v)))
    {
        return Err(PlanError::Flag {
            flag: "prometheus-label",
            message: format!("`{key}` is given twice; a series has one value for each label"),
        });
    }
    Ok(Some(crate::prometheus::Config {
        url: url.clone(),
        interval: args.prometheus_interval.unwrap_or(Duration::from_secs(5)),
        labels: args.prometheus_label.clone(),
    }))
}
