//! What `stampede check` verifies about a script's functions before any traffic: hooks take
//! no parameters, tasks exist and take none, task weights name real tasks.

use std::collections::BTreeMap;

use rhai::AST;

/// Functions with a lifecycle meaning; every other function not starting with `_` is a task.
pub const HOOKS: [&str; 4] = ["on_start", "on_stop", "setup", "teardown"];

/// `fn shape(elapsed)`: the load shape (Locust's `LoadTestShape.tick`), not a task.
pub const SHAPE: &str = "shape";

/// Which hooks a script defines.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hooks {
    pub on_start: bool,
    pub on_stop: bool,
    pub setup: bool,
    pub teardown: bool,
    /// `fn shape(elapsed)` sets the users over time.
    pub shape: bool,
}

impl Hooks {
    pub fn of(ast: &AST) -> Self {
        let has = |n: &str| {
            ast.iter_functions()
                .any(|f| f.name == n && f.params.is_empty())
        };
        Self {
            on_start: has("on_start"),
            on_stop: has("on_stop"),
            setup: has("setup"),
            teardown: has("teardown"),
            shape: ast
                .iter_functions()
                .any(|f| f.name == SHAPE && f.params.len() == 1),
        }
    }
}

/// The task table a script yields, or the problems that prevent running it.
#[derive(Debug, Default)]
pub struct Lint {
    /// (task, weight) sorted by name; weight 0 means disabled.
    pub tasks: Vec<(String, u32)>,
    pub problems: Vec<String>,
}

/// Checks the functions of `ast` against the `tasks` weights from the options map.
pub fn lint(ast: &AST, weights: Option<&BTreeMap<String, i64>>) -> Lint {
    let mut out = Lint::default();
    let mut tasks: Vec<String> = Vec::new();
    let mut with_params: BTreeMap<String, usize> = BTreeMap::new();
    for f in ast.iter_functions() {
        let name = f.name.to_string();
        if f.name == SHAPE {
            if f.params.len() != 1 {
                out.problems.push(format!(
                    "`shape` must take one parameter (the seconds since the start), but takes {}",
                    f.params.len()
                ));
            }
        } else if HOOKS.contains(&f.name) {
            if !f.params.is_empty() {
                out.problems.push(format!(
                    "hook `{name}` must take no parameters, but takes {} ({}); use `this` for per-user state",
                    f.params.len(),
                    f.params.join(", ")
                ));
            }
        } else if !f.name.starts_with('_') && !f.name.starts_with("anon$") {
            if f.params.is_empty() {
                tasks.push(name);
            } else {
                with_params.insert(name, f.params.len());
            }
        }
    }
    // Function order in the AST is not source order; sort so task tables (and seeded
    // runs) are deterministic.
    tasks.sort();
    tasks.dedup();
    for (name, n) in &with_params {
        if !tasks.contains(name) {
            out.problems.push(format!(
                "function `{name}` takes {n} parameter(s), so it cannot be a task; \
                 rename it `_{name}` to make it a helper"
            ));
        }
    }
    let mut weighted: BTreeMap<&str, u32> = BTreeMap::new();
    for (name, w) in weights.into_iter().flatten() {
        if !tasks.contains(name) {
            let hint = if HOOKS.contains(&name.as_str()) {
                " (it is a hook)".to_string()
            } else if with_params.contains_key(name) {
                " (it takes parameters)".to_string()
            } else {
                format!(" (tasks: {})", tasks.join(", "))
            };
            out.problems.push(format!(
                "option `tasks` gives a weight to `{name}`, which is not a task{hint}"
            ));
            continue;
        }
        match u32::try_from(*w) {
            Ok(w) => {
                weighted.insert(name, w);
            }
            Err(_) => out.problems.push(format!(
                "option `tasks`: weight of `{name}` must be a whole number >= 0, got {w}"
            )),
        }
    }
    out.tasks = tasks
        .iter()
        .map(|t| (t.clone(), weighted.get(t.as_str()).copied().unwrap_or(1)))
        .collect();
    if tasks.is_empty() {
        out.problems.push(
            "no task defined: add a function such as `fn browse() { http::get(\"/\"); }`".into(),
        );
    } else if out.tasks.iter().all(|(_, w)| *w == 0) {
        out.problems
            .push("every task has weight 0, so users would have nothing to do".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint_src(src: &str, weights: &[(&str, i64)]) -> Lint {
        let ast = rhai::Engine::new().compile(src).unwrap();
        let w: BTreeMap<String, i64> = weights.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        lint(&ast, Some(&w))
    }

    #[test]
    fn finds_tasks_and_weights() {
        let l = lint_src(
            "fn on_start() {} fn a() {} fn b() {} fn _helper(x) {}",
            &[("a", 3), ("b", 0)],
        );
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        assert_eq!(l.tasks, vec![("a".into(), 3), ("b".into(), 0)]);
    }

    #[test]
    fn reports_every_problem() {
        let l = lint_src("fn on_start(x) {} fn t(a, b) {}", &[("ghost", 1)]);
        let all = l.problems.join("\n");
        assert!(
            all.contains("hook `on_start` must take no parameters"),
            "{all}"
        );
        assert!(all.contains("`t` takes 2 parameter(s)"), "{all}");
        assert!(all.contains("`ghost`, which is not a task"), "{all}");
        assert!(all.contains("no task defined"), "{all}");
    }
}
