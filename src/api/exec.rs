//! `exec::*`: what a script can know about its own run (k6's `k6/execution`): the host, its
//! scenario, how long the run has gone on.

use rhai::plugin::*;

#[export_module]
pub mod exec_api {
    /// The base URL relative paths are joined to (`--host` or `options.host`), or `()`
    /// when there is none.
    ///
    /// ```rhai
    /// log::info(`testing ${exec::host()}`);
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn host() -> Result<Dynamic, Box<EvalAltResult>> {
        super::super::core::user(|u| match &u.run().settings.host {
            Some(h) => Dynamic::from(h.clone()),
            None => Dynamic::UNIT,
        })
    }

    /// The name of the scenario this user runs in (`default` for a script without
    /// `scenarios`; empty in `setup` and `teardown`, which belong to none).
    ///
    /// ```rhai
    /// if exec::scenario() == "buyers" { http::post("/cart", #{ json: #{ item: 1 } }); }
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn scenario() -> Result<String, Box<EvalAltResult>> {
        super::super::core::user(|u| u.cohort.scenario.name.clone())
    }

    /// Seconds since the run started, as a float.
    ///
    /// ```rhai
    /// if exec::elapsed() > 60.0 { http::get("/slow-report"); }
    /// ```
    #[rhai_fn(return_raw, volatile)]
    pub fn elapsed() -> Result<f64, Box<EvalAltResult>> {
        super::super::core::user(|u| u.run().elapsed().as_secs_f64())
    }
}
