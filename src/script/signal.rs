//! How a task iteration ends, and the uncatchable signals native functions use to end it.
//!
//! `fail("why")` and the run stopping end the current iteration. They travel as Rhai's
//! `ErrorTerminated`, which `try`/`catch` cannot swallow, carrying a [`Signal`] so the user
//! loop can tell them from real script errors. A failed request is different: it raises a
//! [`RequestError`] a script can catch.

use rhai::{Dynamic, EvalAltResult, Position};

#[derive(Debug, Clone)]
pub enum Signal {
    /// `fail(message)`: the iteration failed on purpose (Locust's `RescheduleTask`).
    Fail(String),
    /// The run is stopping.
    Stop,
    /// The script recursed so deep its stack is nearly exhausted.
    StackExhausted,
}

/// Turns a signal into the error a native function returns.
pub fn raise(signal: Signal) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(signal), Position::NONE).into()
}

/// A request that failed (a transport error, a status not in `expect`, a body that is not
/// JSON), as a script sees it: an error `try`/`catch` can catch, with its kind and message
/// (`catch (e) { e.kind }`). It is already counted against the request; uncaught, it ends
/// the iteration without being counted again.
#[derive(Debug, Clone)]
pub struct RequestError {
    /// The failure kind as the reports name it: `connect`, `timeout`, `status`, `body`…
    pub kind: String,
    pub message: String,
    /// The response's status, 0 when there was no response.
    pub status: i64,
    /// The request's name (`GET /items/[id]`).
    pub request: String,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.request, self.kind, self.message)
    }
}

/// Raises a failed request as a catchable error.
pub fn request_failed(error: RequestError) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from(error), Position::NONE).into()
}

/// A plain runtime error raised by a native function (bad arguments and the like); it is
/// counted as a script failure with the caller's location.
pub fn script_error(message: impl Into<String>) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(message.into().into(), Position::NONE).into()
}

/// How one call into the script ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Completed,
    /// `fail()`; the message as given.
    Failed(String),
    /// Already recorded against the request.
    RequestFailed,
    Stopped,
    /// A script error with its location, ready to show.
    Error(String),
}

/// Classifies the result of a script call. `script` names the file for locations.
pub fn ending(result: Result<Dynamic, Box<EvalAltResult>>, script: &str) -> Ending {
    let err = match result {
        Ok(_) => return Ending::Completed,
        Err(e) => e,
    };
    let inner = err.unwrap_inner();
    if let EvalAltResult::ErrorRuntime(value, _) = inner
        && value.is::<RequestError>()
    {
        return Ending::RequestFailed;
    }
    if let EvalAltResult::ErrorTerminated(token, pos) = inner
        && let Some(signal) = token.clone().try_cast::<Signal>()
    {
        return match signal {
            Signal::Fail(m) => Ending::Failed(m),
            Signal::Stop => Ending::Stopped,
            Signal::StackExhausted => Ending::Error(format!(
                "recursion too deep: the script stack is nearly exhausted at {}",
                location(script, *pos)
            )),
        };
    }
    Ending::Error(describe(&err, script))
}

/// `message at file:line:column`, naming the innermost error and where it happened.
pub fn describe(err: &EvalAltResult, script: &str) -> String {
    let inner = err.unwrap_inner();
    let pos = if inner.position().is_none() {
        err.position()
    } else {
        inner.position()
    };
    let text = match inner {
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
        // Only top-level code (while checked) and `shape` are bounded by operations.
        EvalAltResult::ErrorTooManyOperations(_) => {
            "ran past its operation limit (an endless loop?)".to_owned()
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => format!(
            "{what} is over the script's limit (raise it with options.max_string, \
             max_array or max_map)"
        ),
        other => {
            let full = other.to_string();
            let suffix = format!(" ({})", other.position());
            full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
        }
    };
    format!("{text} at {}", location(script, pos))
}

pub fn location(script: &str, pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{script}:{l}:{c}"),
        (Some(l), None) => format!("{script}:{l}"),
        _ => script.to_owned(),
    }
}
