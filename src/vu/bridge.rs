//! The coroutine bridge: how a synchronous Rhai script waits for an async request.
//!
//! Rhai cannot `.await`. Each virtual user therefore runs its script on its own stackful
//! coroutine (a [`Fiber`]). A native function such as `http::get` builds a future and calls
//! [`suspend`], which switches back to the user's driver task; the driver awaits the future on
//! the worker's tokio runtime and resumes the fiber with the result. To the script it is an
//! ordinary call; to tokio it is an ordinary task.
//!
//! This is the one module in stampede whose `unsafe` is about more than registering a
//! file descriptor (`runner/precise.rs`). The invariants it relies on:
//!
//! 1. `ACTIVE` holds a pointer to a fiber's [`Yielder`] only while that fiber is executing on
//!    this thread: it is set when the fiber starts or is resumed and restored (by a drop
//!    guard, so also on panic) when control comes back to [`Fiber::resume`]'s caller.
//! 2. The yielder lives on the fiber's own stack frame for the whole life of the coroutine
//!    body, so while the fiber runs the pointer is valid.
//! 3. [`await_on_fiber`] only dereferences the pointer from code running on that fiber,
//!    because the only code that runs while `ACTIVE` is set is the fiber's own body (fibers
//!    never resume one another: it refuses while no fiber is active).
//! 4. The future in a [`Suspension`] is pinned in [`await_on_fiber`]'s frame on the fiber's
//!    stack. That frame is suspended until the fiber is resumed and is unwound if the fiber
//!    is dropped; the driver polls the future only between the yield and its next resume of
//!    (or drop of) the fiber, and never keeps the suspension past that.
//!
//! Dropping a suspended fiber unwinds its stack (corosensei's force-unwind), so Rust
//! destructors on it still run; the user driver prefers resuming with [`Resume::Stop`].

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;

use corosensei::stack::{DefaultStack, Stack};
use corosensei::{Coroutine, CoroutineResult, Yielder};

/// A future handed out of a fiber for its driver to poll. It is not boxed: it stays pinned
/// on the fiber's stack, in the frame of [`await_on_fiber`], which cannot return before the
/// fiber is resumed (invariant 4), so a request costs no allocation and no copy of its
/// future here.
pub struct Suspension {
    /// Lifetime erased: the future borrows locals of the suspended frame.
    future: NonNull<dyn Future<Output = ()> + 'static>,
    /// A think-time sleep can be cut short when the run stops; a request in flight is
    /// allowed to finish (so the tool's counts match the server's) until the hard stop.
    pub interruptible: bool,
}

impl Suspension {
    /// The future to poll until it completes, before the fiber is resumed.
    pub fn future(&mut self) -> Pin<&mut (dyn Future<Output = ()> + '_)> {
        // SAFETY: invariant 4: the future is pinned in a frame of the suspended fiber that
        // lives until the fiber is resumed or dropped, and the driver consumes the
        // suspension before doing either; `&mut self` keeps the borrow unique.
        unsafe { Pin::new_unchecked(self.future.as_mut()) }
    }
}

/// What a fiber is resumed with.
pub enum Resume {
    /// First resume: start the body.
    Start,
    /// The awaited future completed.
    Done,
    /// The run is stopping; the future was dropped unfinished.
    Stop,
}

type FiberYielder = Yielder<Resume, Suspension>;

#[derive(Clone, Copy)]
struct Active {
    yielder: *const FiberYielder,
    stack_limit: usize,
}

thread_local! {
    static ACTIVE: Cell<Option<Active>> = const { Cell::new(None) };
}

/// `suspend` was called from code that is not running on a fiber (e.g. a unit test calling a
/// native function directly, or the `check` command evaluating top-level code).
#[derive(Debug, thiserror::Error)]
#[error("this function can only be used while a virtual user is running")]
pub struct NotInFiber;

/// One virtual user's coroutine and its stack.
pub struct Fiber<R> {
    coroutine: Coroutine<Resume, Suspension, R, DefaultStack>,
    yielder: Rc<Cell<*const FiberYielder>>,
    stack_limit: usize,
}

impl<R: 'static> Fiber<R> {
    /// Creates a fiber that will run `body` on a fresh stack of `stack_size` bytes. Only the
    /// pages the script touches cost memory; the rest is reserved address space.
    pub fn new(stack_size: usize, body: impl FnOnce() -> R + 'static) -> std::io::Result<Self> {
        let stack = DefaultStack::new(stack_size)?;
        let stack_limit = stack.limit().get();
        let yielder = Rc::new(Cell::new(std::ptr::null()));
        let slot = yielder.clone();
        let coroutine = Coroutine::with_stack(stack, move |y: &FiberYielder, _start: Resume| {
            let ptr = y as *const FiberYielder;
            slot.set(ptr);
            ACTIVE.with(|a| {
                a.set(Some(Active {
                    yielder: ptr,
                    stack_limit,
                }))
            });
            drop(slot);
            body()
        });
        Ok(Self {
            coroutine,
            yielder,
            stack_limit,
        })
    }

    /// Runs the fiber until it suspends or returns. A panic inside the fiber propagates here.
    pub fn resume(&mut self, input: Resume) -> CoroutineResult<Suspension, R> {
        let yielder = self.yielder.get();
        let active = (!yielder.is_null()).then_some(Active {
            yielder,
            stack_limit: self.stack_limit,
        });
        let _restore = Restore(ACTIVE.with(|a| a.replace(active)));
        self.coroutine.resume(input)
    }
}

/// Restores the previously active fiber (normally none) when `resume` returns or unwinds.
struct Restore(Option<Active>);

impl Drop for Restore {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.0));
    }
}

/// Suspends the running fiber until its driver has polled `future` to completion, and
/// returns the output; or, if the driver resumed the fiber without finishing it (the run
/// is stopping), what it resumed with. The future is dropped here in either case.
pub fn await_on_fiber<F: Future>(
    future: F,
    interruptible: bool,
) -> Result<Result<F::Output, Resume>, NotInFiber> {
    let active = ACTIVE.with(Cell::get).ok_or(NotInFiber)?;
    let output = Cell::new(None);
    // Pinned where it is and polled through a closure: an `async` block awaiting it would
    // move it again on its first poll, and a request's future is a few kilobytes.
    let mut future = std::pin::pin!(future);
    let delivering = std::pin::pin!(std::future::poll_fn(|cx| {
        future.as_mut().poll(cx).map(|done| output.set(Some(done)))
    }));
    // SAFETY: the pinned future is only moved out of here as a pointer that is used while
    // this frame is suspended below (invariant 4); its lifetime is erased for that time.
    let future = unsafe {
        let local: NonNull<dyn Future<Output = ()> + '_> =
            NonNull::from(delivering.get_unchecked_mut());
        std::mem::transmute::<
            NonNull<dyn Future<Output = ()> + '_>,
            NonNull<dyn Future<Output = ()> + 'static>,
        >(local)
    };
    // SAFETY: by invariants 1–3 above, `ACTIVE` is set only while the fiber owning this
    // yielder executes, the yielder outlives that execution, and we are on its stack.
    let yielder = unsafe { &*active.yielder };
    Ok(
        match yielder.suspend(Suspension {
            future,
            interruptible,
        }) {
            Resume::Done => Ok(output
                .take()
                .expect("a fiber is resumed with Done once its future has completed")),
            other => Err(other),
        },
    )
}

/// Bytes left on the running fiber's stack, or `None` outside a fiber. Used by the script
/// guard to stop runaway recursion before it reaches the guard page (which would kill the
/// whole process instead of one task).
pub fn stack_remaining() -> Option<usize> {
    let active = ACTIVE.with(Cell::get)?;
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    Some(here.saturating_sub(active.stack_limit))
}

/// Whether code is running on a fiber (false in `check` and for top-level probing).
pub fn in_fiber() -> bool {
    ACTIVE.with(Cell::get).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive<R: 'static>(mut fiber: Fiber<R>) -> R {
        let mut input = Resume::Start;
        loop {
            match fiber.resume(input) {
                CoroutineResult::Yield(s) => {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    let mut s = s;
                    rt.block_on(s.future());
                    input = Resume::Done;
                }
                CoroutineResult::Return(r) => return r,
            }
        }
    }

    fn ask(n: u32) -> u32 {
        match await_on_fiber(async move { n * 2 }, false).unwrap() {
            Ok(v) => v,
            Err(_) => panic!("unexpected resume"),
        }
    }

    #[test]
    fn suspends_and_resumes_with_values() {
        let fiber = Fiber::new(64 * 1024, || ask(1) + ask(20)).unwrap();
        assert_eq!(drive(fiber), 42);
        assert!(!in_fiber(), "no fiber is active after it returned");
    }

    #[test]
    fn suspend_outside_a_fiber_is_an_error() {
        assert!(await_on_fiber(async {}, true).is_err());
    }

    #[test]
    fn panic_inside_fiber_reaches_the_resumer_and_clears_active() {
        let mut fiber = Fiber::new(64 * 1024, || -> u32 { panic!("boom") }).unwrap();
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fiber.resume(Resume::Start)));
        assert!(r.is_err());
        assert!(!in_fiber());
    }

    #[test]
    fn dropping_a_suspended_fiber_runs_destructors() {
        struct Flag(Rc<Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let mut fiber = Fiber::new(64 * 1024, move || {
            let _flag = Flag(d);
            ask(1)
        })
        .unwrap();
        assert!(matches!(
            fiber.resume(Resume::Start),
            CoroutineResult::Yield(_)
        ));
        drop(fiber);
        assert!(dropped.get());
    }

    #[test]
    fn stack_remaining_shrinks_with_depth() {
        fn depth(n: u32) -> usize {
            let pad = [0u8; 512];
            std::hint::black_box(&pad);
            if n == 0 {
                stack_remaining().unwrap()
            } else {
                depth(n - 1)
            }
        }
        let fiber = Fiber::new(256 * 1024, || (depth(1), depth(50))).unwrap();
        let (shallow, deep) = drive(fiber);
        assert!(deep + 50 * 512 <= shallow, "{deep} vs {shallow}");
        assert_eq!(stack_remaining(), None);
    }
}
