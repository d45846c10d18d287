//! `fn shape(elapsed)`: a load shape written in the script, Locust's `LoadTestShape.tick()`.
//! Called about once a second with the seconds since the start; returns the users wanted
//! (a number, or `#{ users: 100, spawn_rate: 10 }`), or `()` to end the run. It is plain
//! arithmetic on time: it runs on its own engine, with no user, no requests and a bounded
//! number of operations, so a mistake in it cannot hang a worker.

use rhai::{AST, CallFnOptions, Dynamic, Engine, Map, Scope};

use super::engine_with;
use crate::script::{EngineConfig, SHAPE, SyntaxError, compile, describe};

/// Operations one call may take: a shape is a few comparisons, not a computation.
const MAX_OPERATIONS: u64 = 1_000_000;

/// What the shape wants now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Want {
    pub users: u64,
    /// Users started (or stopped) per second on the way there; `None`: all at once.
    pub spawn_rate: Option<f64>,
    /// `#{ rate: 200 }`: iterations started per second instead of users (the open model);
    /// `users` is then 0.
    pub rate: Option<f64>,
}

impl Want {
    /// `users` users, started at once.
    pub fn users(users: u64) -> Self {
        Self {
            users,
            spawn_rate: None,
            rate: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("shape({elapsed}): {message}")]
pub struct ShapeError {
    pub elapsed: f64,
    pub message: String,
}

/// The compiled shape function of one script.
pub struct Shape {
    engine: Engine,
    ast: AST,
    name: String,
}

impl Shape {
    pub fn new(name: &str, source: &str, config: &EngineConfig) -> Result<Self, SyntaxError> {
        // The script's own API and limits (its guard finds no user and does nothing), plus
        // an operation bound of its own.
        let mut engine = engine_with(config);
        engine.set_max_operations(MAX_OPERATIONS);
        let ast = compile(&engine, name, source)?;
        Ok(Self {
            engine,
            ast,
            name: name.to_owned(),
        })
    }

    /// What the shape wants `elapsed` seconds into the run; `None` ends the run.
    pub fn at(&self, elapsed: f64) -> Result<Option<Want>, ShapeError> {
        let fail = |message: String| ShapeError { elapsed, message };
        // Only the function: the script's top-level code is the users' to run, not this.
        let value: Dynamic = self
            .engine
            .call_fn_with_options(
                CallFnOptions::new().eval_ast(false),
                &mut Scope::new(),
                &self.ast,
                SHAPE,
                (elapsed,),
            )
            .map_err(|e| fail(describe(&e, &self.name)))?;
        if value.is_unit() {
            return Ok(None);
        }
        let count = |v: &Dynamic, what: &str| {
            v.as_int()
                .ok()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| fail(format!("`{what}` must be a whole number >= 0, got {v}")))
        };
        let number = |v: &Dynamic, what: &str| -> Result<f64, ShapeError> {
            let r = v
                .as_float()
                .or_else(|_| v.as_int().map(|i| i as f64))
                .map_err(|_| fail(format!("`{what}` must be a number, got {v}")))?;
            if r.is_finite() && r >= 0.0 {
                Ok(r)
            } else {
                Err(fail(format!("`{what}` must be 0 or more, got {r}")))
            }
        };
        if let Some(map) = value.read_lock::<Map>()
            && let Some(rate) = map.get("rate")
        {
            if let Some(key) = map.keys().find(|k| k.as_str() != "rate") {
                return Err(fail(format!(
                    "unknown key `{key}` with `rate` (a shape returns #{{ rate }} or #{{ users, spawn_rate }})"
                )));
            }
            return Ok(Some(Want {
                users: 0,
                spawn_rate: None,
                rate: Some(number(rate, "rate")?),
            }));
        }
        if let Some(map) = value.read_lock::<Map>() {
            let users = map
                .get("users")
                .ok_or_else(|| fail("the map must have `users`".into()))
                .and_then(|v| count(v, "users"))?;
            let spawn_rate = match map.get("spawn_rate") {
                None => None,
                Some(v) => {
                    let r = v
                        .as_float()
                        .or_else(|_| v.as_int().map(|i| i as f64))
                        .map_err(|_| fail(format!("`spawn_rate` must be a number, got {v}")))?;
                    if !(r.is_finite() && r > 0.0) {
                        return Err(fail(format!("`spawn_rate` must be > 0, got {r}")));
                    }
                    Some(r)
                }
            };
            if let Some(key) = map
                .keys()
                .find(|k| !["users", "spawn_rate"].contains(&k.as_str()))
            {
                return Err(fail(format!(
                    "unknown key `{key}` (known: users, spawn_rate; or rate alone)"
                )));
            }
            return Ok(Some(Want {
                users,
                spawn_rate,
                rate: None,
            }));
        }
        Ok(Some(Want::users(count(&value, "the result")?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(src: &str) -> Shape {
        Shape::new("s.rhai", src, &EngineConfig::default()).unwrap()
    }

    #[test]
    fn numbers_maps_and_unit_are_understood() {
        let s = shape(
            r#"fn shape(t) {
                   if t < 10.0 { 5 }
                   else if t < 20.0 { #{ users: 50, spawn_rate: 10 } }
                   else { () }
               }"#,
        );
        assert_eq!(s.at(0.0).unwrap(), Some(Want::users(5)));
        assert_eq!(
            s.at(12.0).unwrap(),
            Some(Want {
                users: 50,
                spawn_rate: Some(10.0),
                rate: None,
            })
        );
        assert_eq!(s.at(20.0).unwrap(), None);
        let r = shape("fn shape(t) { #{ rate: 250 } }");
        assert_eq!(r.at(0.0).unwrap().unwrap().rate, Some(250.0));
    }

    #[test]
    fn top_level_code_is_not_run_and_the_api_is_there() {
        let s = shape(
            r#"const options = #{ wait_time: between(1, 3) };
               let boom = 1 / 0;
               fn shape(t) { if env("NO_SUCH_VAR_HERE", "x") == "x" { 2 } else { 3 } }"#,
        );
        assert_eq!(s.at(0.0).unwrap(), Some(Want::users(2)));
    }

    #[test]
    fn mistakes_are_errors_not_hangs() {
        for (src, says) in [
            ("fn shape(t) { -1 }", "whole number"),
            ("fn shape(t) { #{ user: 3 } }", "must have `users`"),
            ("fn shape(t) { #{ users: 3, spawn_rate: 0 } }", "spawn_rate"),
            ("fn shape(t) { #{ rate: -1 } }", "`rate` must be 0 or more"),
            (
                "fn shape(t) { #{ rate: 5, users: 2 } }",
                "unknown key `users` with `rate`",
            ),
            ("fn shape(t) { loop {} }", "operation limit"),
            ("fn shape(t) { t.nope }", "s.rhai:1"),
        ] {
            let e = shape(src).at(1.0).unwrap_err().to_string();
            assert!(e.contains(says), "{src}: {e}");
        }
    }
}
