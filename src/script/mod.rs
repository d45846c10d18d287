//! The scripting language layer: compiling with readable errors, the lint, how a script
//! call ends ([`Signal`], [`Ending`]), the log sink, value limits, and the compiled
//! [`Program`]. It knows nothing of virtual users: the functions scripts call, which act on
//! the current user, are registered by `crate::api`, which builds the engines.

mod lint;
mod log;
mod signal;

use std::path::PathBuf;
use std::rc::Rc;

use rhai::{AST, Engine};

pub use self::log::{Level, Logger, Tail};
pub use lint::{HOOKS, Hooks, Lint, SHAPE, lint};
pub use signal::{
    Ending, RequestError, Signal, describe, ending, location, raise, request_failed, script_error,
};

/// Deep enough for real recursive helpers; the stack guard stops anything deeper before it
/// can crash. Set explicitly because Rhai's debug-build default is tiny.
pub const MAX_CALL_LEVELS: usize = 256;

/// How big a script's values may grow. Without limits `let s = "x"; loop { s += s; }`
/// takes the whole process down (the allocator aborts); with them the task fails with a
/// script error naming the limit, and the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in one string (and in all strings inside one array or map).
    pub string: usize,
    /// Elements in one array or blob (nested arrays count together).
    pub array: usize,
    /// Entries in one object map (nested maps count together).
    pub map: usize,
}

impl Limits {
    /// As large as the default `--max-body`, so any response read can become a string.
    pub const DEFAULT_STRING: usize = 64 * 1024 * 1024;
    pub const DEFAULT_ARRAY: usize = 1_000_000;
    pub const DEFAULT_MAP: usize = 1_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            string: Self::DEFAULT_STRING,
            array: Self::DEFAULT_ARRAY,
            map: Self::DEFAULT_MAP,
        }
    }
}

/// What an engine is built with besides the API: the value limits, and the folder that
/// `import "x"` resolves from (the script's own; `None` for an embedded script, which may
/// not import).
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    pub limits: Limits,
    pub import_dir: Option<PathBuf>,
}

/// A script that did not compile, shown as `file:line:column: message` with the line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(pub String);

/// Compiles `source`; `name` is how the file is shown in errors.
pub fn compile(engine: &Engine, name: &str, source: &str) -> Result<AST, SyntaxError> {
    engine.compile(source).map_err(|e| {
        let pos = e.position();
        let message = e.err_type().to_string();
        let mut text = format!("{}: syntax error: {message}", location(name, pos));
        let col = pos.position().unwrap_or(1);
        if let Some((line, src)) = pos
            .line()
            .and_then(|l| source.lines().nth(l - 1).map(|s| (l, s)))
        {
            let gutter = line.to_string().len();
            text.push_str(&format!(
                "\n{:>gutter$} |\n{line} | {src}\n{:>gutter$} | {:>col$}",
                "", "", "^"
            ));
        }
        SyntaxError(text)
    })
}

/// One worker's copy of the script: engine and AST (Rhai values are not `Send`, so each
/// worker thread compiles its own; it takes milliseconds).
pub struct Program {
    pub engine: Engine,
    pub ast: AST,
    pub hooks: Hooks,
    pub name: Rc<str>,
    /// Whether functions look top-level constants up in the user's copy (the script
    /// declares some besides `options`): only then is the copy made.
    pub shares_constants: bool,
}
