//! The commands, from parsed arguments to an exit code.

use std::io::Write;

use crate::cli::{Cli, Command, DemoArgs, Plan, PlanError};
use crate::report::summary::Summary;
use crate::report::{Format, Report, RunInfo};
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
            execute(plan, |_, _| Ok(()))
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
        Command::Demo(args) => demo(args),
        Command::DemoServer { port, race } => {
            runner::raise_nofile();
            let server = crate::demo::spawn(port, race)?;
            println!(
                "demo API listening on {} (race: {}); Ctrl-C to stop",
                server.url(),
                if race { "on" } else { "off" }
            );
            std::io::stdout().flush()?;
            loop {
                std::thread::park();
            }
        }
        Command::ApiDocs => {
            print!("{}", script::api_reference());
            Ok(exit::OK)
        }
    }
}

/// `stampede demo`: the demo API in-process, the bundled scenario against it.
fn demo(args: DemoArgs) -> anyhow::Result<u8> {
    let server = crate::demo::spawn(0, args.race)?;
    let mut flags = args.flags;
    flags.host = Some(server.url());
    let plan = Plan::from_source(
        &flags,
        crate::demo::CITIES_SCRIPT_NAME.into(),
        crate::demo::CITIES_SCRIPT.into(),
    )?;
    eprintln!(
        "demo API on {} (race: {}); running {} with {} users for {}",
        server.url(),
        if args.race { "on" } else { "off" },
        crate::demo::CITIES_SCRIPT_NAME,
        plan.users,
        plan.run_time
            .map(|d| humantime::format_duration(d).to_string())
            .unwrap_or_else(|| "until Ctrl-C".into()),
    );
    execute(plan, |report, out| {
        explain_demo(report, out, &server, args.race)
    })
}

/// After the summary: what the demo's numbers mean.
fn explain_demo(
    report: &Report,
    out: &mut dyn Write,
    server: &crate::demo::DemoServer,
    race: bool,
) -> std::io::Result<()> {
    let reads = report.outcome.totals.get("GET", "/cities/[id]");
    let served: u64 = server.stats.snapshot().values().sum();
    writeln!(
        out,
        "\nThe demo API served {served} requests by its own count."
    )?;
    if let Some(r) = reads.filter(|r| r.failures > 0) {
        writeln!(
            out,
            "{} of {} read-backs ({:.1}%) of a city the same user had just created failed: \
             the API answered as another user. That is the shared current-user race{}.",
            r.failures,
            r.requests,
            100.0 * r.failures as f64 / r.requests.max(1) as f64,
            if race { " (--race)" } else { "" }
        )?;
    } else if reads.is_some() {
        writeln!(out, "Every read-back returned the city just written.")?;
    }
    Ok(())
}

/// Runs a plan, prints the summary (plus `after`), writes the output files, and decides
/// the exit code. Runs the same after Ctrl-C, so nothing is lost.
fn execute(
    plan: Plan,
    after: impl FnOnce(&Report, &mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<u8> {
    let info = RunInfo::new(&plan);
    let thresholds = plan.thresholds.clone();
    let outputs = plan.outputs.clone();
    let fail_on_error = plan.fail_on_error;
    let bench_line = plan.bench_line;
    let outcome = runner::run(plan)?;
    let report = Report::new(&info, &outcome, &thresholds);
    let mut out = std::io::stdout().lock();
    Summary.write(&report, &mut out)?;
    after(&report, &mut out)?;
    if bench_line {
        let all = outcome.totals.aggregated();
        writeln!(
            out,
            "BENCH requests={} failures={}",
            all.requests, all.failures
        )?;
    }
    out.flush()?;
    drop(out);
    let written = report::write_outputs(&report, &outputs);
    for path in written.as_ref().map(Vec::as_slice).unwrap_or_default() {
        eprintln!("wrote {}", path.display());
    }
    written?;
    let failed_requests = outcome.totals.aggregated().failures > 0;
    Ok(if outcome.setup_failed {
        exit::SETUP_FAILED
    } else if report.thresholds_failed() || (fail_on_error && failed_requests) {
        exit::THRESHOLD
    } else {
        exit::OK
    })
}

/// Maps an error to its exit code: problems found before traffic are usage errors.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<PlanError>().is_some() || e.downcast_ref::<runner::LimitError>().is_some() {
        exit::USAGE
    } else {
        1
    }
}
