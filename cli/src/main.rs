//! `ipsr-cli`: see `docs/cli.md`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ipsr_cli::Cli::parse();
    match ipsr_cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ipsr_cli::Error::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.to_exit_code()
        }
    }
}
