use std::process::ExitCode;

use clap::Parser;
use stampede::app::exit;
use stampede::cli::Command;
use stampede::runner::Shutdown;

fn main() -> ExitCode {
    let cli = stampede::cli::Cli::parse();
    let shutdown = Shutdown::default();
    // Only commands that run something stop gracefully; the others keep the default
    // (a Ctrl-C ends them at once).
    let runs = matches!(
        cli.command,
        Command::Run(_) | Command::Demo(_) | Command::DemoServer { .. } | Command::Web(_)
    );
    let stopping = if matches!(cli.command, Command::DemoServer { .. }) {
        "stopping the demo server"
    } else {
        "stopping; users finish their request and run on_stop (Ctrl-C again to exit at once)"
    };
    if runs && let Err(e) = watch_signals(shutdown.clone(), stopping) {
        eprintln!("warning: cannot watch for Ctrl-C and SIGTERM: {e}");
    }
    match stampede::app::run(cli, &shutdown) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            stampede::app::exit_code(&e).into()
        }
    }
}

/// SIGINT (Ctrl-C) and SIGTERM (`timeout`, Docker, Kubernetes) both stop the run gracefully:
/// users finish their request and run `on_stop`, then the summary, every output file and
/// `teardown` follow. A second signal of either kind exits at once, whatever is running
/// (a hung `teardown`, a stuck `on_stop`). This is the binary's business, not the
/// library's: only here may the process exit early.
fn watch_signals(shutdown: Shutdown, stopping: &'static str) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Registered now, before any traffic, so no signal between two listeners is lost.
    let (mut int, mut term) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("stampede-signals".into())
        .spawn(move || {
            rt.block_on(async {
                loop {
                    let (name, code) = tokio::select! {
                        _ = int.recv() => ("Ctrl-C", exit::INTERRUPTED_TWICE),
                        _ = term.recv() => ("SIGTERM", exit::TERMINATED_TWICE),
                    };
                    if shutdown.is_requested() {
                        eprintln!("\n{name} again: exiting at once, without a summary");
                        std::process::exit(code.into());
                    }
                    eprintln!("\n{name}: {stopping}");
                    shutdown.request();
                }
            })
        })?;
    Ok(())
}
