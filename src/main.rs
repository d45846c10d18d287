use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = stampede::cli::Cli::parse();
    match stampede::app::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            stampede::app::exit_code(&e).into()
        }
    }
}
