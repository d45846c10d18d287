//! The script's `log::*` functions: messages tagged with the current user's id, written to
//! the run's log sink (`crate::script::Logger`).

use rhai::plugin::*;

use crate::script::Level;

fn log_current(level: Level, message: &str) {
    let _ = crate::vu::with_user(|u| u.run().log.log(level, u.id, message));
}

/// `log::debug/info/warn/error(message)`: messages from the script, tagged with the
/// virtual user's id and shown when at or above `--log-level` (default `info`).
#[export_module]
pub mod log_api {
    /// Logs at debug level (hidden unless `--log-level debug`).
    ///
    /// ```rhai
    /// log::debug(`token is ${this.token}`);
    /// ```
    pub fn debug(message: &str) {
        super::log_current(super::Level::Debug, message);
    }

    /// Logs at info level.
    ///
    /// ```rhai
    /// log::info("registered");
    /// ```
    pub fn info(message: &str) {
        super::log_current(super::Level::Info, message);
    }

    /// Logs at warn level.
    ///
    /// ```rhai
    /// log::warn(`slow response: ${r.elapsed} ms`);
    /// ```
    pub fn warn(message: &str) {
        super::log_current(super::Level::Warn, message);
    }

    /// Logs at error level.
    ///
    /// ```rhai
    /// log::error(`unexpected body: ${r.text}`);
    /// ```
    pub fn error(message: &str) {
        super::log_current(super::Level::Error, message);
    }
}
