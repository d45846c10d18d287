//! One test at a time, started, steered and stopped from the browser: the run goes on its
//! own thread through the same runner as `stampede run`, with the default scenario steered
//! from outside; an observer turns the runner's once-a-second merge into the document every
//! page receives. Nothing here runs per request.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::form::Model;
pub use super::form::{EditForm, ScenarioChoice, SessionError, StartForm};
use crate::cli::{RunArgs, RunFlags};
use crate::metrics::{Second, Totals};
use crate::plan::{Plan, Steering};
use crate::report::{Format, Report, Row, RunInfo, Threshold};
use crate::runner::{Observer, Outcome, Shutdown};

/// Where the script comes from.
#[derive(Debug, Clone)]
pub enum Script {
    File(PathBuf),
    /// The demo's embedded scenario.
    Inline {
        name: String,
        source: String,
    },
}

/// The reports of a run, built in memory for download.
pub struct Downloads {
    pub json: Vec<u8>,
    pub html: Vec<u8>,
    /// (file suffix, bytes): `stats`, `failures`, `history`, `scenarios`.
    pub csv: Vec<(&'static str, Vec<u8>)>,
}

/// Shared between the web handlers and the run's observer.
#[derive(Default)]
struct Shared {
    reset: AtomicBool,
    /// A download of a running test was asked for: the observer builds one at its next merge.
    wanted: AtomicBool,
    /// Counts the downloads built, so a waiting request sees a new one.
    built: AtomicU64,
    /// The run has ended and its final downloads are kept.
    finished: AtomicBool,
    downloads: Mutex<Option<Arc<Downloads>>>,
    /// Every complete second of the run, for a page that opens mid-run.
    history: Mutex<Vec<Second>>,
    /// The script's last log lines.
    log: Mutex<Option<Arc<Mutex<crate::script::Tail>>>>,
}

/// Log lines the page shows.
const LOG_TAIL: usize = 100;

struct Current {
    /// Started with an arrival rate (the open model) rather than users.
    by_rate: bool,
    shutdown: Shutdown,
    steering: Arc<Steering>,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The web UI's one test session.
pub struct Session {
    script: Script,
    flags: RunFlags,
    defaults: StartForm,
    /// How the script's tests are shaped from the page.
    model: Model,
    /// The script's own scenarios (empty for a script without them).
    scenarios: Vec<ScenarioChoice>,
    /// Set when the UI shuts down: no test starts after it.
    closed: AtomicBool,
    current: Mutex<Option<Current>>,
    runs: AtomicU64,
    live: watch::Sender<Arc<String>>,
}

impl Session {
    /// Checks the script (as `stampede run` would, before any traffic) and prepares the
    /// form's defaults from its options and `flags`.
    pub fn new(script: Script, flags: RunFlags) -> Result<Self, crate::cli::PlanError> {
        let (plan, _) = build(&script, &flags)?;
        let defaults = StartForm {
            users: plan.users.max(1),
            spawn_rate: if plan.spawn_rate > 0.0 {
                plan.spawn_rate
            } else {
                plan.users.max(1) as f64
            },
            host: plan.settings.host.clone().unwrap_or_default(),
            run_time_s: plan.run_time.map(|d| d.as_secs_f64()),
            scenarios: None,
            rate: None,
            max_users: None,
        };
        let scenarios = plan
            .scenarios
            .iter()
            .filter(|s| s.is_explicit())
            .map(|s| ScenarioChoice {
                name: s.name.clone(),
                executor: s.executor.name(),
            })
            .collect();
        let (live, _) = watch::channel(Arc::new(String::new()));
        let session = Self {
            script,
            flags,
            defaults,
            model: Model::of(&plan),
            scenarios,
            closed: AtomicBool::new(false),
            current: Mutex::new(None),
            runs: AtomicU64::new(0),
            live,
        };
        session.publish(&json!({
            "status": "ready",
            "run": 0,
            "script": session.script_name(),
            "defaults": session.defaults,
            "model": session.model,
            "scenarios_offered": session.scenarios,
        }));
        Ok(session)
    }

    pub fn script_name(&self) -> String {
        match &self.script {
            Script::File(p) => p.display().to_string(),
            Script::Inline { name, .. } => name.clone(),
        }
    }

    pub fn defaults(&self) -> &StartForm {
        &self.defaults
    }

    /// The latest document, and a receiver of the next ones.
    pub fn subscribe(&self) -> watch::Receiver<Arc<String>> {
        self.live.subscribe()
    }

    pub fn latest(&self) -> Arc<String> {
        self.live.borrow().clone()
    }

    fn publish(&self, doc: &Value) {
        self.live.send_replace(Arc::new(doc.to_string()));
    }

    /// Starts a test with `form`'s users, spawn rate, host and run time.
    pub fn start(self: &Arc<Self>, form: StartForm) -> Result<(), SessionError> {
        form.check()?;
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current
            .as_ref()
            .is_some_and(|c| c.thread.as_ref().is_some_and(|t| !t.is_finished()))
        {
            return Err(SessionError::Running);
        }
        if self.closed.load(Ordering::Relaxed) {
            return Err(SessionError::Closing);
        }
        let mut flags = self.flags.clone();
        let host = form.host.trim();
        if !host.is_empty() {
            flags.host = Some(host.to_owned());
        }
        flags.run_time = form
            .run_time_s
            .filter(|s| *s > 0.0)
            .and_then(|s| crate::duration::from_secs(s).ok());
        let (mut plan, reporting) =
            build(&self.script, &flags).map_err(|e| SessionError::Plan(e.to_string()))?;
        let steered = self.model == Model::Steered;
        match self.model {
            Model::Steered => form.shape(&mut plan),
            Model::Scenarios => self.choose(&mut plan, form.scenarios.as_deref())?,
            Model::Shape => {}
        }
        if flags.run_time.is_none() {
            // An empty run time in the form: until stopped, whatever the script's options say.
            plan.run_time = None;
        }
        crate::runner::ensure_map_count(plan.users)
            .map_err(|e| SessionError::Plan(e.to_string()))?;
        let steering = Arc::new(Steering::new(form.users, form.spawn_rate));
        steering.set_rate(form.rate.unwrap_or(0.0));
        plan.steering = Some(steering.clone());
        let shutdown = Shutdown::default();
        let shared = Arc::new(Shared::default());
        let (log, tail) = plan.log.clone().with_tail(LOG_TAIL);
        plan.log = log;
        *shared.log.lock().unwrap_or_else(|p| p.into_inner()) = Some(tail);
        let run = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let thread = std::thread::Builder::new()
            .name("stampede-web-run".into())
            .spawn({
                let (session, shutdown, shared) = (self.clone(), shutdown.clone(), shared.clone());
                let steering = steering.clone();
                move || session.run(run, plan, reporting, &shutdown, &shared, &steering)
            })
            .map_err(|e| SessionError::Plan(format!("could not start the run: {e}")))?;
        *current = Some(Current {
            by_rate: steered && form.rate.is_some(),
            shutdown,
            steering,
            shared,
            thread: Some(thread),
        });
        Ok(())
    }

    /// Keeps the chosen scenarios of the script's (all when `chosen` is `None`).
    fn choose(&self, plan: &mut Plan, chosen: Option<&[String]>) -> Result<(), SessionError> {
        if let Some(unknown) = chosen
            .unwrap_or_default()
            .iter()
            .find(|c| !self.scenarios.iter().any(|s| &s.name == *c))
        {
            return Err(SessionError::Plan(format!(
                "the script has no scenario `{unknown}`"
            )));
        }
        if let Some(chosen) = chosen {
            plan.scenarios.retain(|s| chosen.contains(&s.name));
        }
        if plan.scenarios.is_empty() {
            return Err(SessionError::Plan("choose at least one scenario".into()));
        }
        Ok(())
    }

    /// The run's thread: runs the plan, publishing as it goes, then keeps its reports.
    fn run(
        &self,
        run: u64,
        plan: Plan,
        reporting: crate::report::Reporting,
        shutdown: &Shutdown,
        shared: &Arc<Shared>,
        steering: &Arc<Steering>,
    ) {
        let info = RunInfo::new(&plan);
        let by_rate = plan
            .scenarios
            .iter()
            .any(|s| !s.is_explicit() && matches!(s.schedule, crate::plan::Schedule::Rate { .. }));
        let thresholds = reporting.thresholds;
        let terminal = crate::report::live::Live::new(reporting.quiet, plan.run_time, Vec::new());
        let mut observer = WebObserver {
            session: self,
            run,
            info: &info,
            thresholds: &thresholds,
            shared,
            steering,
            by_rate,
            shutdown,
            warnings: Vec::new(),
            terminal,
            resets: 0,
            reset_pending: false,
            reset_at: Duration::ZERO,
        };
        observer.publish("running", Duration::ZERO, 0, &Totals::default());
        match crate::runner::run(plan, shutdown, &mut observer) {
            Ok(outcome) => {
                // The run's last seconds close only at its end: the history becomes the
                // whole series.
                *shared.history.lock().unwrap_or_else(|p| p.into_inner()) =
                    outcome.totals.series().cloned().collect();
                let mut outcome = outcome;
                // After a reset, rates are over the time since it.
                outcome.elapsed = outcome.elapsed.saturating_sub(observer.reset_at);
                let downloads = downloads(&info, &outcome, &thresholds);
                *shared.downloads.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Arc::new(downloads));
                shared.built.fetch_add(1, Ordering::Release);
                shared.finished.store(true, Ordering::Release);
                observer.publish("stopped", outcome.elapsed, 0, &outcome.totals);
            }
            Err(e) => {
                shared.finished.store(true, Ordering::Release);
                observer.warnings.push(format!("the run failed: {e:#}"));
                observer.publish("stopped", Duration::ZERO, 0, &Totals::default());
            }
        }
    }

    /// Stops the running test gracefully (users finish their request and `on_stop`).
    pub fn stop(&self) -> Result<(), SessionError> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let c = current.as_ref().ok_or(SessionError::NotRunning)?;
        c.shutdown.request();
        Ok(())
    }

    /// Changes the running test's users and spawn rate.
    pub fn edit(&self, form: EditForm) -> Result<(), SessionError> {
        form.check()?;
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let c = current
            .as_ref()
            .filter(|c| !c.shutdown.is_requested())
            .ok_or(SessionError::NotRunning)?;
        if self.model != Model::Steered {
            return Err(SessionError::NotSteered);
        }
        match (c.by_rate, form.rate, form.users) {
            (true, Some(rate), _) => c.steering.set_rate(rate),
            (true, None, _) => return Err(SessionError::OtherModel("an arrival rate")),
            (false, None, Some(users)) => {
                crate::runner::ensure_map_count(users)
                    .map_err(|e| SessionError::Plan(e.to_string()))?;
                let (_, spawn_rate) = c.steering.get();
                let spawn_rate = form.spawn_rate.or(spawn_rate).unwrap_or(0.0);
                c.steering.set(users, spawn_rate);
            }
            (false, _, _) => return Err(SessionError::OtherModel("users")),
        }
        Ok(())
    }

    /// Starts the statistics afresh at the next merge; the test goes on.
    pub fn reset(&self) -> Result<(), SessionError> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let c = current.as_ref().ok_or(SessionError::NotRunning)?;
        c.shared.reset.store(true, Ordering::Relaxed);
        c.shared
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }

    /// Every complete second of the current (or last) test.
    pub fn history(&self) -> Vec<Second> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.as_ref().map_or_else(Vec::new, |c| {
            c.shared
                .history
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
    }

    /// The reports of the last finished test, or of the running one as of its next merge
    /// (within about a second).
    pub async fn downloads(&self) -> Option<Arc<Downloads>> {
        let shared = {
            let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            current.as_ref()?.shared.clone()
        };
        let kept = || {
            shared
                .downloads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        };
        if shared.finished.load(Ordering::Acquire) {
            return kept();
        }
        let before = shared.built.load(Ordering::Acquire);
        shared.wanted.store(true, Ordering::Relaxed);
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if shared.built.load(Ordering::Acquire) > before
                || shared.finished.load(Ordering::Acquire)
            {
                break;
            }
        }
        kept()
    }

    /// Stops a running test and waits for it (the web server is shutting down).
    pub fn shut_down(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let thread = {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            current.as_mut().and_then(|c| {
                c.shutdown.request();
                c.thread.take()
            })
        };
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

fn build(
    script: &Script,
    flags: &RunFlags,
) -> Result<(Plan, crate::report::Reporting), crate::cli::PlanError> {
    match script {
        Script::File(path) => crate::cli::build(&RunArgs {
            script: path.clone(),
            flags: flags.clone(),
        }),
        Script::Inline { name, source } => {
            crate::cli::from_source(flags, name.clone(), source.clone(), None)
        }
    }
}

/// The JSON, HTML and CSV reports of `outcome`, in memory.
fn downloads(info: &RunInfo, outcome: &Outcome, thresholds: &[Threshold]) -> Downloads {
    let report = Report::new(info, outcome, thresholds);
    let render = |format: &dyn Format| {
        let mut bytes = Vec::new();
        // Writing to memory fails only on a bug in a format; the download is then short.
        let _ = format.write(&report, &mut bytes);
        bytes
    };
    Downloads {
        json: render(&crate::report::Json),
        html: render(&crate::report::Html),
        csv: crate::report::csv_files()
            .into_iter()
            .map(|(suffix, format)| (suffix, render(format.as_ref())))
            .collect(),
    }
}

/// The runner's observer for a test started from the web UI.
struct WebObserver<'a> {
    session: &'a Session,
    run: u64,
    info: &'a RunInfo,
    thresholds: &'a [Threshold],
    shared: &'a Shared,
    steering: &'a Steering,
    /// The test follows an arrival rate (not users).
    by_rate: bool,
    shutdown: &'a Shutdown,
    warnings: Vec<String>,
    /// The terminal keeps its live view while the page shows the same numbers.
    terminal: crate::report::live::Live,
    /// Statistics resets so far (the page starts its charts afresh on a new count).
    resets: u64,
    reset_pending: bool,
    /// When the statistics were last reset: rates are over the time since.
    reset_at: Duration,
}

impl WebObserver<'_> {
    /// Each of the script's scenarios now (none for a script without them).
    fn scenarios(
        &self,
        elapsed: Duration,
        totals: &Totals,
    ) -> Vec<crate::report::live::ScenarioStatus> {
        match self.info.plan.as_slice() {
            [only] if !only.is_explicit() => Vec::new(),
            all => crate::report::live::scenario_status(elapsed, all, totals),
        }
    }

    fn log_tail(&self) -> Vec<String> {
        let tail = self
            .shared
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        tail.map_or_else(Vec::new, |t| {
            let t = t.lock().unwrap_or_else(|p| p.into_inner());
            t.lines().map(str::to_owned).collect()
        })
    }

    fn publish(&self, status: &str, elapsed: Duration, users: u64, totals: &Totals) {
        let status = if status == "running" && self.shutdown.is_requested() {
            "stopping"
        } else {
            status
        };
        let seconds = elapsed
            .saturating_sub(self.reset_at)
            .as_secs_f64()
            .max(0.001);
        let all = totals.aggregated();
        let rows: Vec<Row> = totals
            .requests()
            .chain(std::iter::once(&all))
            .map(|s| Row::of(s, seconds))
            .collect();
        let names: Vec<&str> = self
            .info
            .scenarios
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let verdicts =
            crate::report::thresholds::evaluate(self.thresholds, totals, &names, seconds);
        let (target_users, spawn_rate) = self.steering.get();
        // The last complete seconds, newest last (the page keys them by second).
        let mut recent: Vec<Second> = totals.series().rev().take(4).cloned().collect();
        recent.reverse();
        recent.extend(
            totals
                .latest()
                .filter(|l| recent.last().is_none_or(|r| r.second < l.second)),
        );
        let doc = json!({
            "status": status,
            "run": self.run,
            "resets": self.resets,
            "model": self.session.model,
            "script": self.session.script_name(),
            "defaults": self.session.defaults,
            "host": self.info.host,
            "elapsed_s": elapsed.as_secs_f64(),
            "users": users,
            "target": { "users": target_users, "spawn_rate": spawn_rate,
                        "rate": self.by_rate.then(|| self.steering.rate()) },
            "percentiles": crate::report::PERCENTILES.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            "rows": rows,
            "iterations": totals.iterations,
            "failed_iterations": totals.failed_iterations,
            "failures": totals.failures().into_iter().map(|(k, n)| json!({
                "kind": k.kind, "method": k.method, "name": k.name, "message": k.message, "count": n,
            })).collect::<Vec<_>>(),
            "checks": totals.checks_in_order().map(|(name, c)| json!({
                "name": name, "passes": c.pass, "fails": c.fail,
            })).collect::<Vec<_>>(),
            "thresholds": verdicts,
            "recent": recent,
            "scenarios_offered": self.session.scenarios,
            "scenarios": self.scenarios(elapsed, totals),
            "warnings": self.warnings,
            "log": self.log_tail(),
        });
        self.session.publish(&doc);
    }
}

impl Observer for WebObserver<'_> {
    fn progress(&mut self, elapsed: Duration, users: u64, totals: &Totals) {
        if std::mem::take(&mut self.reset_pending) {
            // The totals restarted with the interval just merged: about a second ago.
            self.reset_at = elapsed.saturating_sub(Duration::from_secs(1));
        }
        {
            let mut history = self
                .shared
                .history
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            // Complete seconds only; the newest may be replaced by its final count later.
            let newest = totals.latest();
            history.retain(|s| newest.as_ref().is_none_or(|n| s.second < n.second));
            let last = history.last().map(|s| s.second);
            history.extend(
                totals
                    .series()
                    .filter(|s| last.is_none_or(|l| s.second > l))
                    .cloned(),
            );
            if let Some(n) = newest
                && history.last().is_none_or(|l| l.second < n.second)
            {
                history.push(n);
            }
        }
        if self.shared.wanted.swap(false, Ordering::Relaxed) {
            let outcome = Outcome {
                totals: totals.clone(),
                elapsed: elapsed.saturating_sub(self.reset_at),
                interrupted: false,
                setup_failed: false,
                users,
                spawned_after: Duration::ZERO,
                started_at: std::time::SystemTime::now() - elapsed,
                start_late: None,
            };
            let d = downloads(self.info, &outcome, self.thresholds);
            *self
                .shared
                .downloads
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(d));
            self.shared.built.fetch_add(1, Ordering::Release);
        }
        self.terminal.update(elapsed, users, totals);
        self.publish("running", elapsed, users, totals);
    }

    fn finished(&mut self) {
        self.terminal.finish();
    }

    fn take_reset(&mut self) -> bool {
        let reset = self.shared.reset.swap(false, Ordering::Relaxed);
        if reset {
            self.resets += 1;
            self.reset_pending = true;
        }
        reset
    }

    fn warn(&mut self, message: &str) {
        eprintln!("{message}");
        self.warnings.push(message.to_owned());
    }
}
