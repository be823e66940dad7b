//! `ipsr-cli completions SHELL`.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::{Error, Result};

/// `ipsr-cli completions SHELL`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

/// The program the scripts complete.
const BIN: &str = "ipsr-cli";

/// Runs `completions`.
pub(crate) fn run(args: Args) -> Result<()> {
    let script = script(args.shell)?;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(script.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// The completion script for `shell`.
pub(crate) fn script(shell: Shell) -> Result<String> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut out);
    let script = String::from_utf8(out)
        .map_err(|e| Error::Other(format!("the {shell} completion script is not UTF-8: {e}")))?;
    Ok(match shell {
        Shell::Bash => fix_bash(script),
        _ => script,
    })
}

/// clap_complete 4.6's bash script names the state after a subcommand
/// `ipsr__cli__subcmd__publish` where it walks the words, but matches
/// `ipsr__subcmd__cli__subcmd__publish` where it offers the subcommand's
/// options (it escapes the `-` of the program's name in one place only),
/// so nothing after a subcommand completes. One spelling, the walker's,
/// fixes it; the shell test (`cli/tests/cli/completions.rs`) runs bash on
/// the result.
fn fix_bash(script: String) -> String {
    script.replace("ipsr__subcmd__cli", "ipsr__cli")
}
