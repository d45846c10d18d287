//! The commands, from parsed arguments to an exit code.

use std::io::Write;

use crate::cli::{Cli, Command, DemoArgs, PlanError};
use crate::plan::Plan;
use crate::report::summary::Summary;
use crate::report::{Format, Outputs, Report, RunInfo, Threshold};
use crate::runner::{Outcome, Shutdown};
use crate::{report, runner};

/// Exit codes, documented in `--help` and the README. Each means one thing.
pub mod exit {
    /// The run completed; its thresholds passed (failed requests alone do not change
    /// this without `--fail-on-error`).
    pub const OK: u8 = 0;
    /// A threshold failed, or `--fail-on-error` found a failure.
    pub const THRESHOLD: u8 = 1;
    /// Usage or script error, found before any traffic.
    pub const USAGE: u8 = 2;
    /// `setup()` failed, timed out or was interrupted: no user ran.
    pub const SETUP_FAILED: u8 = 3;
    /// stampede itself failed: an output file could not be written after the run, a
    /// worker could not start.
    pub const INTERNAL: u8 = 4;
    /// A second SIGINT: exit at once (128 + the signal's number, as shells report it).
    pub const INTERRUPTED_TWICE: u8 = 130;
    /// A second SIGTERM.
    pub const TERMINATED_TWICE: u8 = 143;
}

/// Runs one command and returns the exit code. `shutdown` is requested by the binary's
/// signal handler (SIGINT, SIGTERM).
pub fn run(cli: Cli, shutdown: &Shutdown) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => {
            let (plan, reporting) = crate::cli::build(&args)?;
            execute(plan, reporting, shutdown, |_, _| Ok(()))
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
        Command::Merge(args) => merge(args),
        Command::Demo(args) if args.web => {
            let server = crate::demo::spawn(0, args.race)?;
            let mut flags = args.flags;
            flags.host = Some(server.url());
            eprintln!(
                "demo API on {} (race: {})",
                server.url(),
                if args.race { "on" } else { "off" }
            );
            let script = crate::web::Script::Inline {
                name: crate::demo::CITIES_SCRIPT_NAME.into(),
                source: crate::demo::CITIES_SCRIPT.into(),
            };
            web(script, flags, &args.web_flags, shutdown)
        }
        Command::Demo(args) => demo(args, shutdown),
        Command::Web(args) => web(
            crate::web::Script::File(args.script),
            args.flags,
            &args.web,
            shutdown,
        ),
        Command::DemoServer { port, race } => {
            runner::raise_nofile();
            let server = crate::demo::spawn(port, race)?;
            println!(
                "demo API listening on {} (race: {}); Ctrl-C to stop",
                server.url(),
                if race { "on" } else { "off" }
            );
            std::io::stdout().flush()?;
            tokio::runtime::Builder::new_current_thread()
                .build()?
                .block_on(shutdown.requested());
            Ok(exit::OK)
        }
        Command::Definitions { dir } => {
            crate::api::engine()
                .definitions()
                .with_headers(true)
                .write_to_dir(&dir)
                .map_err(|e| {
                    anyhow::anyhow!("cannot write definitions to {}: {e}", dir.display())
                })?;
            println!("wrote the script API's definitions to {}", dir.display());
            Ok(exit::OK)
        }
        Command::ApiDocs => {
            print!("{}", crate::api::api_reference());
            Ok(exit::OK)
        }
    }
}

/// `stampede web`: the web UI until Ctrl-C (which stops a running test gracefully first).
fn web(
    script: crate::web::Script,
    flags: crate::cli::RunFlags,
    listen: &crate::cli::WebFlags,
    shutdown: &Shutdown,
) -> anyhow::Result<u8> {
    runner::raise_nofile();
    let session = crate::web::Session::new(script, flags)?;
    let config = crate::web::WebConfig {
        addr: std::net::SocketAddr::new(listen.web_host, listen.web_port),
        auth: listen.web_auth.clone(),
    };
    if !listen.web_host.is_loopback() {
        eprintln!(
            "warning: the web UI listens on {}: anyone who can reach this machine can start load from it{}",
            listen.web_host,
            if config.auth.is_some() {
                " with the login"
            } else {
                "; add --web-auth user:password"
            }
        );
    }
    let server = crate::web::spawn(session, &config)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.addr))?;
    println!(
        "stampede web UI on {} (script {}); Ctrl-C to stop",
        server.url(),
        server.session.script_name()
    );
    std::io::stdout().flush()?;
    tokio::runtime::Builder::new_current_thread()
        .build()?
        .block_on(shutdown.requested());
    server.stop();
    Ok(exit::OK)
}

/// `stampede demo`: the demo API in-process, the bundled scenario against it.
fn demo(args: DemoArgs, shutdown: &Shutdown) -> anyhow::Result<u8> {
    let server = crate::demo::spawn(0, args.race)?;
    let mut flags = args.flags;
    flags.host = Some(server.url());
    let (plan, reporting) = crate::cli::from_source(
        &flags,
        crate::demo::CITIES_SCRIPT_NAME.into(),
        crate::demo::CITIES_SCRIPT.into(),
        None,
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
    execute(plan, reporting, shutdown, |report, out| {
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
/// the exit code. Runs the same after Ctrl-C or SIGTERM, so nothing is lost; the files do
/// not depend on the summary reaching stdout, and when the script has a `teardown` they are
/// written before it too, so a `teardown` that hangs cannot keep them from existing.
fn execute(
    plan: Plan,
    reporting: crate::report::Reporting,
    shutdown: &Shutdown,
    after: impl FnOnce(&Report, &mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<u8> {
    let info = RunInfo::new(&plan);
    let segmented = !plan.settings.segment.is_whole();
    let crate::report::Reporting {
        thresholds,
        fail_on_error,
        outputs,
        quiet,
        bench_line,
        prometheus,
    } = reporting;
    let pusher = prometheus.map(|config| {
        let names = info.scenarios.iter().map(|s| s.name.clone()).collect();
        crate::prometheus::Pusher::start(&config, plan.settings.segment, names)
    });
    let mut terminal = Terminal {
        live: crate::report::live::Live::new(
            quiet,
            plan.run_time,
            match plan.scenarios.as_slice() {
                [only] if !only.is_explicit() => Vec::new(),
                all => all.to_vec(),
            },
        )
        .with_workers(plan.workers),
        info: &info,
        thresholds: &thresholds,
        outputs: &outputs,
        pusher,
    };
    let outcome = runner::run(plan, shutdown, &mut terminal)?;
    if let Some(pusher) = terminal.pusher.take() {
        let url = pusher.url().to_owned();
        let pushed = pusher.finish(&outcome.totals);
        if let Some(error) = pushed.error {
            eprintln!(
                "warning: {} of {} pushes to {url} failed; the last: {error}",
                pushed.failed,
                pushed.sent + pushed.failed
            );
        }
    }
    let report = Report::new(&info, &outcome, &thresholds);
    if let Err(e) = print_summary(&report, after, bench_line) {
        eprintln!(
            "warning: the summary could not be written to stdout ({e}); the output files are written regardless"
        );
    }
    write_files(&info, &outcome, &thresholds, &outputs, true)?;
    if segmented && report.thresholds_failed() {
        // A share of the test is judged on the whole, not alone: a request count or a rate
        // that fails here may pass for the whole, and a failure count may do the opposite.
        eprintln!(
            "note: a threshold failed on this segment's share alone; the exit code leaves it \
             to `stampede merge`, which evaluates the thresholds on the whole"
        );
        return Ok(if outcome.setup_failed {
            exit::SETUP_FAILED
        } else if fail_on_error && outcome.totals.all_failures() > 0 {
            exit::THRESHOLD
        } else {
            exit::OK
        });
    }
    Ok(verdict(&report, fail_on_error))
}

/// `stampede merge`: the segments' results as one, reported as a run is: the summary,
/// the files asked for, the thresholds evaluated on the whole, `run`'s exit codes.
fn merge(args: crate::cli::MergeArgs) -> anyhow::Result<u8> {
    let extra = args
        .thresholds
        .iter()
        .map(|t| crate::report::thresholds::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(PlanError::from)?;
    let outputs = args.outputs.outputs();
    outputs.check().map_err(PlanError::from)?;
    let merged = crate::merge::merge(&args.files, args.force)?;
    for warning in &merged.warnings {
        eprintln!("{warning}");
    }
    let mut thresholds = merged.thresholds;
    for t in extra {
        // A threshold the runs had already is evaluated once.
        if !thresholds.iter().any(|had| had.text == t.text) {
            thresholds.push(t);
        }
    }
    let report = Report::new(&merged.info, &merged.outcome, &thresholds);
    if !args.quiet
        && let Err(e) = print_summary(&report, |_, _| Ok(()), false)
    {
        eprintln!("warning: the summary could not be written to stdout ({e})");
    }
    write_files(&merged.info, &merged.outcome, &thresholds, &outputs, true)?;
    Ok(verdict(&report, args.fail_on_error))
}

/// `run`'s exit code for a finished report.
fn verdict(report: &Report, fail_on_error: bool) -> u8 {
    let failed = report.outcome.totals.all_failures() > 0;
    if report.outcome.setup_failed {
        exit::SETUP_FAILED
    } else if report.thresholds_failed() || (fail_on_error && failed) {
        exit::THRESHOLD
    } else {
        exit::OK
    }
}

/// What the CLI shows while a run goes on: the live view, warnings on stderr, and the files
/// written once before `teardown`.
struct Terminal<'a> {
    live: crate::report::live::Live,
    info: &'a RunInfo,
    thresholds: &'a [Threshold],
    outputs: &'a Outputs,
    pusher: Option<crate::prometheus::Pusher>,
}

impl runner::Observer for Terminal<'_> {
    fn progress(
        &mut self,
        elapsed: std::time::Duration,
        users: u64,
        totals: &crate::metrics::Totals,
    ) {
        self.live.update(elapsed, users, totals);
        if let Some(pusher) = &mut self.pusher {
            pusher.tick(totals);
        }
    }

    fn finished(&mut self) {
        self.live.finish();
    }

    fn warn(&mut self, message: &str) {
        eprintln!("{message}");
    }

    fn before_teardown(&mut self, so_far: &Outcome) {
        // Best effort: the final write after teardown reports any error.
        let _ = write_files(self.info, so_far, self.thresholds, self.outputs, false);
    }
}

fn print_summary(
    report: &Report,
    after: impl FnOnce(&Report, &mut dyn Write) -> std::io::Result<()>,
    bench_line: bool,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    Summary.write(report, &mut out)?;
    after(report, &mut out)?;
    if bench_line {
        let all = report.outcome.totals.aggregated();
        writeln!(
            out,
            "BENCH requests={} failures={}",
            all.requests, all.failures
        )?;
    }
    out.flush()
}

/// Writes every requested file; `announce` says which on stderr.
fn write_files(
    info: &RunInfo,
    outcome: &Outcome,
    thresholds: &[Threshold],
    outputs: &Outputs,
    announce: bool,
) -> Result<(), report::OutputError> {
    let report = Report::new(info, outcome, thresholds);
    let written = report::write_outputs(&report, outputs);
    if announce {
        for path in written.as_ref().map(Vec::as_slice).unwrap_or_default() {
            eprintln!("wrote {}", path.display());
        }
    }
    written.map(drop)
}

/// Maps an error to its exit code: problems found before traffic are usage errors; the
/// rest are stampede's own failures.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<PlanError>().is_some()
        || e.downcast_ref::<runner::LimitError>().is_some()
        || e.downcast_ref::<crate::merge::MergeError>().is_some()
    {
        exit::USAGE
    } else {
        exit::INTERNAL
    }
}
