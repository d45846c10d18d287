//! The commands, from parsed arguments to an exit code.

use std::io::Write;

use crate::cli::{Cli, Command, Plan, PlanError};
use crate::{report, runner, script};

/// Exit codes, documented in `--help` and the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const THRESHOLD: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const SETUP_FAILED: u8 = 3;
}

/// Runs one command and returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => {
            let plan = Plan::build(&args)?;
            let outcome = runner::run(plan)?;
            let mut out = std::io::stdout().lock();
            report::summary::write(&mut out, &outcome)?;
            out.flush()?;
            Ok(if outcome.setup_failed {
                exit::SETUP_FAILED
            } else {
                exit::OK
            })
        }
        Command::Check { script } => {
            let probe = crate::cli::check(&script)?;
            let tasks: Vec<String> = probe
                .lint
                .tasks
                .iter()
                .map(|(n, w)| format!("{n} (weight {w})"))
                .collect();
            println!("{}: ok; tasks: {}", probe.name, tasks.join(", "));
            Ok(exit::OK)
        }
        Command::ApiDocs => {
            print!("{}", script::api_reference());
            Ok(exit::OK)
        }
    }
}

/// Maps an error to its exit code: problems found before traffic are usage errors.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<PlanError>().is_some() || e.downcast_ref::<runner::LimitError>().is_some()
    {
        exit::USAGE
    } else {
        1
    }
}
