//! Command-line definitions. Flags and the script's options map become one validated
//! [`Plan`] before any traffic.

mod http;
mod options;
mod plan;
mod scenarios;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use http::HttpFlags;
pub use options::{ScriptOptions, duration};

fn stages_flag(text: &str) -> Result<crate::plan::Stages, String> {
    crate::plan::parse_stages(text)
        .map(crate::plan::Stages)
        .map_err(|e| e.to_string())
}
fn start_at(text: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339_weak(text.trim())
        .map_err(|e| format!("`{text}` is not an RFC 3339 time like 2026-11-29T10:00:00Z ({e})"))
}
pub use crate::plan::Plan;
pub use plan::{PlanError, Probe, build, check, from_source, probe};

use crate::script::Level;

/// Load-test HTTP services with Rhai scenario scripts.
#[derive(Debug, Parser)]
#[command(name = "stampede", version, about, long_about = None)]
#[command(after_help = "Exit codes: 0 run completed; 1 a threshold failed (or \
--fail-on-error found a failure); 2 usage or script error (before any traffic); 3 setup() \
failed, timed out or was interrupted, no users ran; 4 internal error (an output file could \
not be written after the run); 130/143 a second Ctrl-C/SIGTERM exited at once. One \
Ctrl-C or SIGTERM stops the run gracefully and still writes every output.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Shown under `stampede run --help`: one line for each load model.
const RUN_EXAMPLES: &str = "Examples:
  stampede run s.rhai --host http://127.0.0.1:8000 -u 50 -r 10 -t 5m   50 users, 10 started a second
  stampede run s.rhai --stages \"30s:100,1m:100,10s:0\"                   ramp users up, hold, down
  stampede run s.rhai --rate 200/s -t 1m                                200 iterations a second (open model)
  stampede run s.rhai --rate \"30s:500/s,1m:500/s\"                       ramp the arrival rate
  stampede run s.rhai -i 1000 --threshold \"p95 < 250ms\" --json r.json   1,000 iterations, gate, file
A script that defines fn shape(elapsed) sets its own users (docs/load-models.md).";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario script against a host.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Compile and lint a script without sending any traffic.
    Check {
        /// The scenario script (.rhai).
        script: PathBuf,
    },
    /// Merge the --json results of a test's segments (--segment i/N) into the result of
    /// the whole: counts add, histograms merge exactly, thresholds are evaluated on the
    /// whole; exit codes are `run`'s.
    Merge(MergeArgs),
    /// Start the built-in demo API and run the bundled cities scenario against it.
    Demo(DemoArgs),
    /// Start, steer and watch tests of a script in the browser (as Locust's web UI).
    ///
    /// Prints the URL (http://127.0.0.1:8089 by default) and serves until Ctrl-C. The
    /// flags set the start form's defaults and every other run setting.
    Web(WebArgs),
    /// Run only the demo API, for trying your own scripts against it.
    DemoServer {
        /// Port on 127.0.0.1 (0 picks a free one; the URL is printed).
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// Reproduce the shared-current-user race.
        #[arg(long)]
        race: bool,
    },
    /// Print the script API reference (Markdown) generated from the functions' docs.
    #[command(hide = true)]
    ApiDocs,
    /// Write Rhai definition files (`*.d.rhai`) for the whole script API, for editors: a
    /// Rhai language server reading them completes and checks stampede scripts.
    Definitions {
        /// The folder to write them to (created if missing).
        #[arg(default_value = ".rhai/definitions")]
        dir: PathBuf,
    },
}

/// `stampede run`: a script and how to run it.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// The scenario script (.rhai).
    pub script: PathBuf,
    #[command(flatten)]
    pub flags: RunFlags,
}

/// The files a run (or a merge) writes.
#[derive(Debug, Args, Clone, Default)]
pub struct OutputFlags {
    /// Write the whole result, with serialized histograms, as JSON (`stampede merge`
    /// reads it).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write PREFIX_stats.csv, PREFIX_failures.csv and PREFIX_history.csv.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<String>,
    /// Write a self-contained HTML report with charts.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

impl OutputFlags {
    pub fn outputs(&self) -> crate::report::Outputs {
        crate::report::Outputs {
            json: self.json.clone(),
            csv: self.csv.clone(),
            html: self.html.clone(),
        }
    }
}

/// `stampede merge`: result files and what to make of them.
#[derive(Debug, Args, Clone, Default)]
pub struct MergeArgs {
    /// The results (`stampede run --json`), one per segment.
    #[arg(required = true, value_name = "RESULT.json")]
    pub files: Vec<PathBuf>,
    /// Merge results of different tests (fingerprints), splits or repeated segments.
    #[arg(long)]
    pub force: bool,
    /// Pass/fail criterion evaluated on the whole, as `run --threshold` (repeatable; adds
    /// to the thresholds the runs were given).
    #[arg(long = "threshold", value_name = "THRESHOLD")]
    pub thresholds: Vec<String>,
    /// Exit with code 1 if any request failed, even when every threshold passed.
    #[arg(long)]
    pub fail_on_error: bool,
    #[command(flatten)]
    pub outputs: OutputFlags,
    /// No summary on stdout.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `stampede demo`: the demo API plus the bundled scenario.
#[derive(Debug, Args, Clone, Default)]
pub struct DemoArgs {
    /// Reproduce the bug: the API keeps the current user in shared state.
    #[arg(long)]
    pub race: bool,
    /// Start the web UI on the demo instead of running it: the seed story in the browser.
    #[arg(long)]
    pub web: bool,
    #[command(flatten)]
    pub web_flags: WebFlags,
    #[command(flatten)]
    pub flags: RunFlags,
}

/// Where the web UI listens.
#[derive(Debug, Args, Clone)]
pub struct WebFlags {
    /// Address the web UI listens on. Anything but loopback makes it reachable from other
    /// machines: pair it with --web-auth.
    #[arg(long, default_value = "127.0.0.1")]
    pub web_host: std::net::IpAddr,
    /// Port of the web UI (Locust's default, 8089; 0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    pub web_port: u16,
    /// `user:password`: the web UI asks for this login (HTTP basic authentication).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub web_auth: Option<String>,
}

impl Default for WebFlags {
    fn default() -> Self {
        Self {
            web_host: std::net::Ipv4Addr::LOCALHOST.into(),
            web_port: 8089,
            web_auth: None,
        }
    }
}

/// `stampede web SCRIPT`: the script's tests, started and steered from the browser.
#[derive(Debug, Args, Clone)]
pub struct WebArgs {
    pub script: PathBuf,
    #[command(flatten)]
    pub web: WebFlags,
    #[command(flatten)]
    pub flags: RunFlags,
}

/// How to run a scenario. Every flag overrides the same option in the script.
#[derive(Debug, Args, Clone, Default)]
pub struct RunFlags {
    /// Base URL that relative request paths are appended to, e.g. http://127.0.0.1:8000.
    #[arg(long)]
    pub host: Option<String>,
    /// Number of concurrent virtual users [default: 1].
    #[arg(short, long)]
    pub users: Option<u64>,
    /// Users started per second [default: all within one second].
    #[arg(short = 'r', long)]
    pub spawn_rate: Option<f64>,
    /// Ramp the users through stages instead of a fixed number (k6's `ramping-vus`, from
    /// 0 users): DURATION:USERS, comma-separated, e.g. "30s:100,1m:100,10s:0" ramps to 100
    /// users over 30 s, holds them a minute and ramps down over 10 s. The run lasts as long
    /// as the stages unless --run-time is shorter.
    #[arg(long, value_parser = stages_flag, value_name = "STAGES")]
    pub stages: Option<crate::plan::Stages>,
    /// Start iterations at a rate whatever the responses take (the open model): constant,
    /// e.g. 200/s, 12000/m, 5/100ms (k6's `constant-arrival-rate`), or through stages from
    /// 0, e.g. "30s:200/s,1m:200/s,10s:0" (`ramping-arrival-rate`). Each iteration goes to
    /// an idle user of a pool; with none idle it is dropped and counted. Instead of --users.
    #[arg(long, value_parser = crate::plan::RateSpec::parse, value_name = "RATE")]
    pub rate: Option<crate::plan::RateSpec>,
    /// With --rate: users started before the first iteration [default: one per iteration
    /// per second, between 1 and 1000].
    #[arg(long, value_name = "N")]
    pub pre_allocated_users: Option<u64>,
    /// With --rate: the most users the pool may grow to when iterations find none idle
    /// [default: 10 × --pre-allocated-users, at most 10000].
    #[arg(long, value_name = "N")]
    pub max_users: Option<u64>,
    /// With --rate: what an iteration does when every user of a full pool is busy: `drop`
    /// it and count it (k6), or `queue` it for the next free user, its latency counted from
    /// when it was due (wrk2) [default: drop].
    #[arg(long, value_parser = crate::plan::WhenBusy::parse, value_name = "drop|queue")]
    pub when_busy: Option<crate::plan::WhenBusy>,
    /// How long a user retired by a ramp may take to finish its iteration and on_stop
    /// before it is aborted [default: 30s].
    #[arg(long, value_parser = duration)]
    pub graceful_ramp_down: Option<std::time::Duration>,
    /// Stop after this long, e.g. 30s, 5m, 1h30m [default: until the iterations are done,
    /// or Ctrl-C].
    #[arg(short = 't', long, value_parser = duration)]
    pub run_time: Option<std::time::Duration>,
    /// Stop after this many task iterations in total, across all users.
    #[arg(short, long)]
    pub iterations: Option<u64>,
    /// Each user stops after this many task iterations.
    #[arg(long)]
    pub iterations_per_user: Option<u64>,
    /// Seed for random_* functions, making their values reproducible.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Request timeout [default: 30s].
    #[arg(long, value_parser = options::timeout)]
    pub timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub http: http::HttpFlags,
    /// Accept any TLS certificate (self-signed test systems); traffic stays encrypted but
    /// the server is not authenticated.
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Largest response body read; a bigger one fails its request [default: 64MiB].
    #[arg(long, value_parser = options::size, value_name = "SIZE")]
    pub max_body: Option<u64>,
    /// Redirects a request follows before it fails (0: none) [default: 10]; a request's
    /// `redirects` option overrides it.
    #[arg(long, value_name = "N")]
    pub max_redirects: Option<usize>,
    /// After the run stops, how long requests in flight and on_stop may take [default: 10s].
    #[arg(long, value_parser = duration)]
    pub stop_timeout: Option<std::time::Duration>,
    /// How long setup() may take before the run gives up on it [default: 60s].
    #[arg(long, value_parser = options::timeout)]
    pub setup_timeout: Option<std::time::Duration>,
    /// How long teardown() may take; the run's results are written before it starts
    /// [default: 60s].
    #[arg(long, value_parser = options::timeout)]
    pub teardown_timeout: Option<std::time::Duration>,
    /// Worker threads [default: one per core].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Least severe script log level shown.
    #[arg(long, value_enum, default_value = "info")]
    pub log_level: Level,
    /// Write the script's log lines to this file instead of stderr.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// A data file the script may read with data::csv or data::json although it is not
    /// in the script's folder (repeatable); the script names it by this same path.
    #[arg(long = "data", value_name = "FILE")]
    pub data_files: Vec<PathBuf>,
    /// Print every request and response (method, URL, status, headers, the first 2 KiB of
    /// each body, time) with the script's log, for trying a script once, e.g.
    /// `-u 1 -i 1 --trace`. Authorization, cookies and Set-Cookie are redacted.
    #[arg(long)]
    pub trace: bool,
    /// With --trace: show Authorization, cookies and Set-Cookie values as they are.
    #[arg(long, requires = "trace")]
    pub trace_secrets: bool,
    /// No live view or progress lines while running.
    #[arg(short, long)]
    pub quiet: bool,
    /// Pass/fail criterion, e.g. "p95 < 250ms", "failure_rate < 1%",
    /// "GET /items/[id]: p99 < 1s" (repeatable; adds to the script's `thresholds`).
    #[arg(long = "threshold", value_name = "THRESHOLD")]
    pub thresholds: Vec<String>,
    /// Exit with code 1 if any request failed, even when every threshold passed.
    #[arg(long)]
    pub fail_on_error: bool,
    #[command(flatten)]
    pub outputs: OutputFlags,
    /// Run share i of N of the whole test (k6's execution segments), e.g. 2/3: its users,
    /// iterations and data rows are every Nth of the whole, so N instances with 1/N … N/N
    /// run exactly the test one instance would; merge their --json with `stampede merge`.
    #[arg(long, value_name = "i/N", help_heading = "Distributed")]
    pub segment: Option<crate::plan::Segment>,
    /// Begin the load at this moment (RFC 3339, e.g. 2026-11-29T10:00:00Z), so instances
    /// started at different moments start together; one started late says how late.
    #[arg(long, value_parser = start_at, value_name = "TIME", help_heading = "Distributed")]
    pub start_at: Option<std::time::SystemTime>,
    /// Push live metrics to Prometheus with remote-write, e.g.
    /// http://127.0.0.1:9090/api/v1/write (Prometheus started with
    /// --web.enable-remote-write-receiver): every --prometheus-interval and once at the end.
    #[arg(long, value_name = "URL", help_heading = "Live metrics")]
    pub prometheus: Option<String>,
    /// How often to push to --prometheus [default: 5s].
    #[arg(long, value_parser = duration, value_name = "DURATION", help_heading = "Live metrics")]
    pub prometheus_interval: Option<std::time::Duration>,
    /// A label on every series pushed to --prometheus, e.g. testid=checkout-42 (repeatable).
    #[arg(long, value_parser = crate::prometheus::parse_label, value_name = "KEY=VALUE", help_heading = "Live metrics")]
    pub prometheus_label: Vec<(String, String)>,
    /// End stdout with `BENCH requests=N failures=N` for the peer benchmark rig.
    #[arg(long, hide = true)]
    pub bench_line: bool,
}
