//! The async side of a virtual user: resumes its fiber, awaits what it hands out.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use corosensei::CoroutineResult;

use super::bridge::{Fiber, Resume, Suspension};
use super::context::{self, User};
use crate::metrics::FailureKind;

/// Runs `body` as `user` on a fresh fiber until it returns. Failures that end the fiber
/// itself (no stack could be allocated, a panic in a native function) are recorded against
/// the user and yield `None`; the worker and the other users go on.
pub async fn drive<R: 'static>(user: Rc<User>, body: impl FnOnce() -> R + 'static) -> Option<R> {
    let stack = user.run().settings.stack_size;
    let mut fiber = match Fiber::new(stack, body) {
        Ok(f) => f,
        Err(e) => {
            record(
                &user,
                format!("could not allocate a {stack}-byte stack for the user: {e}"),
            );
            return None;
        }
    };
    let mut input = Resume::Start;
    loop {
        let step = {
            let _entered = context::enter(&user);
            catch_unwind(AssertUnwindSafe(|| fiber.resume(input)))
        };
        match step {
            Ok(CoroutineResult::Return(r)) => return Some(r),
            Ok(CoroutineResult::Yield(s)) => input = wait(s, &user).await,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                record(&user, format!("internal error, the user stopped: {what}"));
                return None;
            }
        }
    }
}

fn record(user: &User, message: String) {
    let at = user.location_name();
    user.recorder()
        .failure(FailureKind::Script, String::new(), at, message);
}

/// Awaits a suspension. Think time is cut short when the run stops. Requests are not
/// raced against anything (that would cost every request a waiter registration): at the
/// hard stop the worker aborts its users' tasks, which drops and unwinds their fibers.
async fn wait(mut s: Suspension, user: &User) -> Resume {
    if !s.interruptible {
        s.future().await;
        return Resume::Done;
    }
    tokio::select! {
        biased;
        () = s.future() => Resume::Done,
        _ = user.stop.cancelled() => Resume::Stop,
    }
}
