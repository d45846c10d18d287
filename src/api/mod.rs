//! The functions scripts call (`http::get`, `check`, `vu_id`, `log::info` …), which act on
//! the current virtual user, and the engines that carry them: every engine a script runs
//! on is built here. The language layer (`crate::script`) and the users (`crate::vu`) do
//! not depend on this module; it depends on both.

mod core;
mod data;
mod docs;
mod encoding;
mod exec;
mod http;
pub(crate) mod json;
pub mod lint;
mod log;
mod multipart;
mod response;
mod shape;
mod trace;

use std::rc::Rc;

use rhai::{Engine, exported_module};

pub use docs::api_reference;
pub use response::Response;
pub use shape::{Shape, ShapeError, Want};

use crate::script::{EngineConfig, Hooks, Level, MAX_CALL_LEVELS, Program, SyntaxError, compile};

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
    engine.register_global_module(exported_module!(core::api).into());
    engine.register_global_module(exported_module!(response::response_api).into());
    engine.register_static_module("http", exported_module!(http::http_api).into());
    engine.register_static_module("log", exported_module!(log::log_api).into());
    engine.register_static_module("exec", exported_module!(exec::exec_api).into());
    engine.register_static_module("encoding", exported_module!(encoding::encoding_api).into());
    engine.register_static_module("crypto", exported_module!(encoding::crypto_api).into());
    engine.register_static_module("data", exported_module!(data::data_api).into());
    engine.register_type_with_name::<crate::vu::WaitTime>("WaitTime");
    register_request_error(&mut engine);
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

/// Compiles one worker's copy of the script on an engine of its own.
pub fn program(name: &str, source: &str, config: &EngineConfig) -> Result<Program, SyntaxError> {
    let mut engine = engine_with(config);
    let ast = compile(&engine, name, source)?;
    let shares_constants = declares_constants(&ast);
    if shares_constants {
        resolve_top_level_constants(&mut engine);
    }
    let hooks = Hooks::of(&ast);
    Ok(Program {
        engine,
        ast,
        hooks,
        name: Rc::from(name),
        shares_constants,
    })
}

/// Whether the top level declares a constant besides `options`: only then can a function
/// need one it cannot see.
fn declares_constants(ast: &rhai::AST) -> bool {
    ast.statements().iter().any(|stmt| match stmt {
        rhai::Stmt::Var(var, flags, _) => {
            flags.contains(rhai::ASTFlags::CONSTANT) && var.0.name != "options"
        }
        _ => false,
    })
}

/// Makes the current user's top-level constants visible in every function.
///
/// Rhai functions see only their own variables. Tasks and hooks are called with the
/// top-level scope, so they see its constants; a helper (or a task) called from them would
/// not. With this, a name that is neither local (a compiled index) nor in scope is looked
/// up in the user's top-level constants. Rhai calls the resolver for every variable read,
/// which costs W2 about 1.5 % more instructions, so it is installed only for scripts that
/// declare constants.
fn resolve_top_level_constants(engine: &mut Engine) {
    #[allow(deprecated)] // Rhai marks this hook "volatile", not deprecated.
    engine.on_var(|name, index, context| {
        if index > 0 || context.scope().contains(name) {
            return Ok(None);
        }
        Ok(
            crate::vu::with_user(|u| u.constants.borrow().get(name).cloned())
                .ok()
                .flatten(),
        )
    });
}

/// What `catch (e)` gets for a failed request: `e.kind`, `e.message`, `e.status` (0
/// without a response), `e.request` (its name), and its text when printed.
fn register_request_error(engine: &mut Engine) {
    use crate::script::RequestError;
    engine
        .register_type_with_name::<RequestError>("RequestError")
        .register_get("kind", |e: &mut RequestError| e.kind.clone())
        .register_get("message", |e: &mut RequestError| e.message.clone())
        .register_get("status", |e: &mut RequestError| e.status)
        .register_get("request", |e: &mut RequestError| e.request.clone())
        .register_fn("to_string", |e: &mut RequestError| e.to_string())
        .register_fn("to_debug", |e: &mut RequestError| e.to_string());
}
