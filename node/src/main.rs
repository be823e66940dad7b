//! `ipsr-node`: the IPSR daemon.

use clap::{Parser, Subcommand};
use ipsr_node::run::{self, RunArgs};

/// The IPSR daemon: a libp2p node that validates, stores and passes on
/// signed package records.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node until SIGINT or SIGTERM.
    ///
    /// Flags override IPSR_* variables, which override the config file.
    Run(RunArgs),
}

/// jemalloc, with background threads that return freed memory within
/// seconds (`.cargo/config.toml`): under glibc's malloc a busy daemon's
/// resident memory kept creeping up at constant data (`docs/node.md`,
/// "Memory").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    run::init_logging();
    match cli.command {
        Command::Run(args) => run::block_on(run(args)),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let running = run::start(run::settings(args)?).await?;
    running.until_stopped(std::future::pending()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
