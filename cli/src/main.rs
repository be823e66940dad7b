//! `ipsr-cli`: see `docs/cli.md`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Known before parsing, so that a usage error clap finds is JSON too.
    let json = std::env::args_os().skip(1).any(|a| a == "--json");
    let cli = match ipsr_cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if json && e.use_stderr() {
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or("");
                let message = first.strip_prefix("error: ").unwrap_or(first);
                let code = u8::try_from(e.exit_code()).unwrap_or(ipsr_cli::code::USAGE);
                println!("{}", ipsr_cli::json_error("usage", code, message));
            }
            e.exit()
        }
    };
    match ipsr_cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ipsr_cli::Error::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if json {
                println!("{}", e.to_json());
            }
            e.to_exit_code()
        }
    }
}
