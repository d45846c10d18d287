//! The running virtual user, as seen by native script functions.
//!
//! A worker thread runs many users but executes one at a time, so "the current user" is a
//! thread-local set by the driver around each resume of a user's fiber. Native functions
//! (`http::get`, `check`, `vu_id` …) reach their user through [`with_user`].

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderMap;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rhai::Dynamic;

use super::{RunState, ScenarioState};
use crate::http::ClientFactory;
use crate::metrics::Recorder;

/// Which part of the script a user is running; decides what is allowed and how errors are
/// attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Top-level code: no requests, no sleeping.
    Init,
    Setup,
    OnStart,
    Task,
    OnStop,
    Teardown,
}

impl Phase {
    /// During the closing hooks the run's stop signal must not cut the script short.
    pub fn is_closing(self) -> bool {
        matches!(self, Phase::OnStop | Phase::Teardown)
    }
}

/// The users of one scenario on one worker: what they share and where they record. One
/// recorder per scenario and worker, so each scenario's numbers are its own and recording
/// stays a lock-free lookup.
pub struct Cohort {
    pub scenario: Arc<ScenarioState>,
    pub tasks: super::TaskTable,
    pub recorder: RefCell<Recorder>,
}

impl Cohort {
    pub fn new(scenario: Arc<ScenarioState>, tasks: super::TaskTable) -> Self {
        Self {
            scenario,
            tasks,
            recorder: RefCell::new(Recorder::default()),
        }
    }
}

/// State of one worker thread shared by its users.
pub struct Worker {
    pub run: Arc<RunState>,
    pub clients: ClientFactory,
    /// The value `setup()` returned, converted once per worker.
    pub setup_data: Dynamic,
    /// `--host`, parsed once; relative request paths are joined to it.
    pub base: Option<crate::http::Base>,
    /// Request names derived from paths, so a repeated path is named without work.
    pub names: RefCell<NameCache>,
}

/// Path → (request name, whether an id was replaced).
pub type NameCache = rustc_hash::FxHashMap<Box<str>, (Rc<str>, bool)>;

/// Paths remembered by [`Worker::name_for`]; past this, names are derived each time.
const NAME_CACHE: usize = 1024;

impl Worker {
    /// The request name for `path` (ids replaced, see [`crate::metrics::auto_name`]) and
    /// whether an id was replaced.
    pub fn name_for(&self, path: &str) -> (Rc<str>, bool) {
        if let Some(hit) = self.names.borrow().get(path) {
            return hit.clone();
        }
        let (name, grouped) = crate::metrics::auto_name(path);
        let entry = (Rc::<str>::from(name), grouped);
        let mut names = self.names.borrow_mut();
        if names.len() < NAME_CACHE {
            names.insert(path.into(), entry.clone());
        }
        entry
    }
}

/// One virtual user.
pub struct User {
    /// 1-based; 0 for the `setup`/`teardown` session and for `check`.
    pub id: u64,
    pub worker: Rc<Worker>,
    /// Its scenario on this worker.
    pub cohort: Rc<Cohort>,
    pub phase: Cell<Phase>,
    /// The task being run, for attributing script failures.
    pub task: RefCell<Rc<str>>,
    /// Task iterations this user has started.
    pub iteration: Cell<u64>,
    pub rng: RefCell<SmallRng>,
    /// Created on the first request, so users that never send one cost no client.
    client: OnceCell<Rc<crate::http::Client>>,
    /// Headers sent with every request of this user (`http::set_header`).
    pub headers: RefCell<HeaderMap>,
    /// When the user was last resumed: the start of its time slice.
    pub slice_start: Cell<Instant>,
    /// Set when this user should stop: with the run (a child of its stop token), or on its
    /// own when a ramp retires it. It finishes its request, skips the rest of its task,
    /// runs `on_stop` and ends.
    pub stop: tokio_util::sync::CancellationToken,
    /// Set when its scenario ends (a child of the scenario's `finish`, so waiting on it
    /// does not take the lock every user of the scenario shares): a pause between
    /// iterations ends early, as no iteration follows it.
    pub finish: tokio_util::sync::CancellationToken,
    /// Under an arrival rate: the pool this user takes its iterations from, and its place
    /// in it. `None`: the user paces itself (wait times).
    pub pooled: Option<(Rc<super::Pool>, Rc<super::Slot>)>,
    /// While an iteration on a schedule runs (an arrival rate, `constant_pacing`): how late
    /// it started after it was meant to, added to its requests' corrected latency.
    pub late: Cell<Option<std::time::Duration>>,
    /// The constants its top-level code declared, for functions that cannot see its
    /// scope: a helper called from a task (Rhai functions see only their own variables).
    pub constants: RefCell<rhai::Map>,
}

impl User {
    pub fn new(id: u64, worker: Rc<Worker>, cohort: Rc<Cohort>) -> Self {
        let rng = match worker.run.settings.seed {
            // Mix the user id in so users draw different but reproducible sequences.
            Some(seed) => SmallRng::seed_from_u64(seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            None => SmallRng::from_os_rng(),
        };
        Self {
            id,
            stop: cohort.scenario.stop.child_token(),
            finish: cohort.scenario.finish.child_token(),
            worker,
            cohort,
            phase: Cell::new(Phase::Init),
            task: RefCell::new(Rc::from("")),
            iteration: Cell::new(0),
            rng: RefCell::new(rng),
            client: OnceCell::new(),
            headers: RefCell::new(HeaderMap::new()),
            slice_start: Cell::new(Instant::now()),
            pooled: None,
            late: Cell::new(None),
            constants: RefCell::new(rhai::Map::new()),
        }
    }

    pub fn run(&self) -> &RunState {
        &self.worker.run
    }

    /// Where this user's measurements go: its scenario's recorder on this worker.
    pub fn recorder(&self) -> std::cell::RefMut<'_, Recorder> {
        self.cohort.recorder.borrow_mut()
    }

    /// Whether this is the `setup`/`teardown` session (or `check`'s probe), not a user.
    pub fn is_session(&self) -> bool {
        self.id == 0
    }

    /// This user's HTTP client (its own cookie jar and connections, like a Locust session).
    pub fn client(&self) -> &Rc<crate::http::Client> {
        self.client
            .get_or_init(|| Rc::new(self.worker.clients.build()))
    }

    /// Where a failure is attributed: the task name, or the hook.
    pub fn location_name(&self) -> String {
        match self.phase.get() {
            Phase::Init => "(top level)".into(),
            Phase::Setup => "setup()".into(),
            Phase::OnStart => "on_start()".into(),
            Phase::Task => format!("{}()", self.task.borrow()),
            Phase::OnStop => "on_stop()".into(),
            Phase::Teardown => "teardown()".into(),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<User>>> = const { RefCell::new(None) };
}

/// Makes `user` current until the guard drops (restoring whichever was current before).
pub fn enter(user: &Rc<User>) -> Entered {
    user.slice_start.set(Instant::now());
    Entered(CURRENT.with(|c| c.replace(Some(user.clone()))))
}

pub struct Entered(Option<Rc<User>>);

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = self.0.take());
    }
}

/// No user is running on this thread (a native function was called outside a run).
#[derive(Debug, thiserror::Error)]
#[error("this function is only available while a virtual user runs")]
pub struct NoUser;

/// Runs `f` with the current user.
pub fn with_user<R>(f: impl FnOnce(&Rc<User>) -> R) -> Result<R, NoUser> {
    let user = CURRENT.with(|c| c.borrow().clone()).ok_or(NoUser)?;
    Ok(f(&user))
}
