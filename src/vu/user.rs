//! One virtual user's life, run on its fiber: top-level code, `on_start`, tasks with wait
//! times until the run stops, `on_stop`. `setup` and `teardown` run the same way as
//! sessions of their own.

use std::rc::Rc;
use std::time::{Duration, Instant};

use rhai::{Caches, Dynamic, EvalAltResult, EvalContext, Map, Scope};

use super::context::{Phase, User};
use super::{IfAbandoned, await_in_script, with_user};
use crate::metrics::FailureKind;
use crate::script::{Ending, Program, describe, ending};

/// What a fiber runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// A virtual user: tasks until the run stops.
    User,
    /// `setup()` once before users start; returns its value.
    Setup,
    /// `teardown()` once after they finished.
    Teardown,
}

/// Runs `session` for the current user. For [`Session::Setup`] returns what `setup()`
/// returned, or `None` if it failed (the failure is recorded).
pub fn run_session(program: &Program, session: Session) -> Option<Dynamic> {
    let user = with_user(Rc::clone).expect("a session runs as a user");
    let mut scope = Scope::new();
    // One runtime state and one function-resolution cache for the user's whole life, not
    // one per call as `Engine::call_fn` makes: resolving `check`, `json`, `==`… again on
    // every task call was the largest single cost of a script's own work (callgrind).
    // The top-level code runs in the same state, so that modules it imports stay visible
    // to the tasks and hooks called later.
    let mut global = program.engine.new_global_runtime_state();
    global.lib.push(program.ast.shared_lib().clone());
    let mut caches = Caches::new();
    user.phase.set(Phase::Init);
    #[allow(deprecated)] // Rhai marks its `internals` API deprecated, not going away.
    let top_level = program.engine.eval_statements_raw(
        &mut global,
        &mut caches,
        &mut scope,
        program.ast.statements(),
    );
    if let Err(e) = top_level {
        record(&user, Ending::Error(describe(&e, &program.name)));
        return None;
    }
    // Top-level constants, for the helpers (see `crate::api`'s variable resolver); a
    // script that declares none but `options` has nothing to share.
    if program.shares_constants {
        *user.constants.borrow_mut() = scope
            .iter()
            .filter(|(_, constant, _)| *constant)
            .map(|(name, _, value)| (name.into(), value))
            .collect();
    }
    let mut this = Dynamic::from_map(Map::new());
    let mut call = |phase: Phase, name: &str| {
        user.phase.set(phase);
        let mut context =
            EvalContext::new(&program.engine, &mut global, &mut caches, &mut scope, None);
        let mut result = context
            .new_frame()
            .rewind_scope(true)
            .call_fn_raw(name, true, true, &mut [&mut this])
            .or_else(|e| match *e {
                // `exit(value)` ends the call like a return, as `Engine::call_fn` has it.
                EvalAltResult::Exit(value, _) => Ok(value),
                _ => Err(e),
            });
        // Only `setup` returns a value anyone reads; tasks' results are not copied.
        let value = match (&mut result, phase) {
            (Ok(v), Phase::Setup) => Some(std::mem::take(v)),
            _ => None,
        };
        (ending(result, &program.name), value)
    };
    match session {
        Session::Setup => {
            let (end, value) = call(Phase::Setup, "setup");
            let ok = end == Ending::Completed;
            record(&user, end);
            ok.then(|| value.unwrap_or(Dynamic::UNIT))
        }
        Session::Teardown => {
            let (end, _) = call(Phase::Teardown, "teardown");
            record(&user, end);
            None
        }
        Session::User => {
            if program.hooks.on_start {
                let (end, _) = call(Phase::OnStart, "on_start");
                if end != Ending::Completed {
                    // Without a completed on_start (no login, say) tasks cannot work.
                    record(&user, end);
                    return None;
                }
            }
            task_loop(&user, |task| call(Phase::Task, task).0);
            if program.hooks.on_stop {
                let (end, _) = call(Phase::OnStop, "on_stop");
                record(&user, end);
            }
            None
        }
    }
}

/// Picks and runs tasks, waiting between them, until the run stops or a limit is reached.
fn task_loop(user: &User, mut run_task: impl FnMut(&str) -> Ending) {
    let run = user.run();
    let scenario = &user.cohort.scenario;
    let per_user = scenario.iterations_per_user;
    // Under `constant_pacing`: when the next iteration is meant to start.
    let mut intended: Option<Instant> = None;
    loop {
        if user.stop.is_cancelled()
            || scenario.is_ending()
            || per_user.is_some_and(|n| user.iteration.get() >= n)
        {
            return;
        }
        if let Some((pool, slot)) = &user.pooled {
            // Open model: wait until the dispatcher hands this user an iteration.
            pool.ready(slot);
            let Ok(Some(due)) = await_in_script(pool.next(slot), true) else {
                pool.remove(slot);
                return;
            };
            if !scenario.claim_iteration(run) {
                // Handed out after the budget was spent: it never starts.
                user.recorder().dropped_iteration();
                return;
            }
            let late = tokio::time::Instant::now().saturating_duration_since(due);
            user.recorder().lateness(late);
            user.late.set(Some(late));
        } else if !scenario.claim_iteration(run) {
            return;
        }
        let task = user.cohort.tasks.pick(&mut *user.rng.borrow_mut()).clone();
        *user.task.borrow_mut() = task.clone();
        user.iteration.set(user.iteration.get() + 1);
        user.recorder().iteration();
        let started = scenario.wait.needs_task_time().then(Instant::now);
        if let (Some(start), crate::vu::WaitTime::ConstantPacing(period), None) =
            (started, scenario.wait, &user.pooled)
        {
            // Locust's pacing: each iteration is meant to start a period after the last
            // one started; one that starts later (the last one was slow) is that late.
            let late = intended.map_or(Duration::ZERO, |i| start.saturating_duration_since(i));
            user.late.set(Some(late));
            intended = Some(start + Duration::from_secs_f64(period));
        }
        // An iteration whose coroutine is dropped counts as interrupted, as one the stop
        // cut short does.
        let underway = IfAbandoned::new(|| {
            if let Ok(mut recorder) = user.cohort.recorder.try_borrow_mut() {
                recorder.interrupted_iteration();
            }
        });
        let end = run_task(&task);
        underway.done();
        user.late.set(None);
        let stopped = end == Ending::Stopped;
        match end {
            Ending::Completed => {}
            Ending::Stopped => user.recorder().interrupted_iteration(),
            _ => user.recorder().failed_iteration(),
        }
        user.phase.set(Phase::Task);
        record(user, end);
        if stopped || per_user.is_some_and(|n| user.iteration.get() >= n) {
            return;
        }
        if user.pooled.is_some() {
            continue; // the schedule, not a wait time, says when the next one starts
        }
        let task_time = started.map_or(Duration::ZERO, |s| s.elapsed());
        let pause = scenario.wait.pause(task_time, &mut *user.rng.borrow_mut());
        if pause.is_zero() {
            continue;
        }
        // The pause ends early when the scenario ends: no iteration follows it.
        let finish = &user.finish;
        let pause = async {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = finish.cancelled() => {}
            }
        };
        if await_in_script(pause, true).is_err() {
            return;
        }
    }
}

/// Counts how a script call ended, attributed to where the user was.
fn record(user: &User, end: Ending) {
    let (kind, message) = match end {
        Ending::Completed | Ending::Stopped | Ending::RequestFailed => return,
        Ending::Failed(m) => (FailureKind::Failed, m),
        Ending::Error(m) => (FailureKind::Script, m),
    };
    let at = user.location_name();
    user.recorder().failure(kind, String::new(), at, message);
}
