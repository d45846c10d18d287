//! The scripting layer: the Rhai engine with stampede's API, compiling with readable
//! errors, and the per-worker compiled [`Program`].

mod api;
mod docs;
mod http;
mod json;
mod lint;
mod log;
mod response;
mod shape;
mod signal;

use std::path::PathBuf;
use std::rc::Rc;

use rhai::{AST, Engine, exported_module};

pub use self::log::{Level, Logger};
pub use docs::api_reference;
pub use lint::{HOOKS, Hooks, Lint, SHAPE, lint};
pub use response::Response;
pub use shape::{Shape, ShapeError, Want};
pub use signal::{Ending, Signal, describe, ending, location, raise, script_error};

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

/// The engine with default limits and no imports (`check`'s probe of an options map, docs).
pub fn engine() -> Engine {
    engine_with(&EngineConfig::default())
}

/// The engine every script runs on: stampede's API registered, the guard installed.
pub fn engine_with(config: &EngineConfig) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_call_levels(MAX_CALL_LEVELS);
    engine.set_max_expr_depths(128, 64);
    engine.set_max_string_size(config.limits.string);
    engine.set_max_array_size(config.limits.array);
    engine.set_max_map_size(config.limits.map);
    match &config.import_dir {
        Some(dir) => engine.set_module_resolver(
            rhai::module_resolvers::FileModuleResolver::new_with_path(dir),
        ),
        None => engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new()),
    };
    engine.register_global_module(exported_module!(api::api).into());
    engine.register_global_module(exported_module!(response::response_api).into());
    engine.register_static_module("http", exported_module!(http::http_api).into());
    engine.register_static_module("log", exported_module!(log::log_api).into());
    engine.register_type_with_name::<crate::vu::WaitTime>("WaitTime");
    engine.on_progress(crate::vu::guard);
    // `debug` is a reserved word in Rhai; read it as a plain name so `log::debug(…)` parses.
    // Rhai's own `debug(…)` still works: it is resolved by name when called.
    #[allow(deprecated)] // Rhai marks this hook "volatile", not deprecated.
    engine.on_parse_token(|token, _, _| match token {
        rhai::Token::Reserved(s) if &*s == "debug" => rhai::Token::Identifier(s),
        other => other,
    });
    engine.on_print(|s| {
        let _ = crate::vu::with_user(|u| u.run().log.log(Level::Info, u.id, s));
    });
    engine.on_debug(|s, _, _| {
        let _ = crate::vu::with_user(|u| u.run().log.log(Level::Debug, u.id, s));
    });
    engine
}

/// A script that did not compile, shown as `file:line:column: message` with the line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(String);

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
}

impl Program {
    pub fn new(name: &str, source: &str, config: &EngineConfig) -> Result<Self, SyntaxError> {
        let engine = engine_with(config);
        let ast = compile(&engine, name, source)?;
        let hooks = Hooks::of(&ast);
        Ok(Self {
            engine,
            ast,
            hooks,
            name: Rc::from(name),
        })
    }
}
