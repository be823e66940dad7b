//! The command line's shape.

use clap::{Parser, Subcommand};

use crate::client::{Client, DEFAULT_NODE};
use crate::commands;
use crate::error::Result;
use crate::output::Output;

/// Publish, download and browse apps on IPSR, the peer-to-peer app repository.
///
/// Talks to a local `ipsr-node` (see `--node`). Exit codes: 0 ok, 1 failure,
/// 2 usage, 3 not found, 4 verification failed, 5 node unreachable,
/// 6 conflict (e.g. version not newer), 7 not supported by the node.
#[derive(Debug, Parser)]
#[command(name = "ipsr-cli", version)]
pub struct Cli {
    /// The node's API address.
    #[arg(long, global = true, env = "IPSR_NODE", default_value = DEFAULT_NODE, value_name = "URL")]
    pub node: String,

    /// Print machine-readable JSON on standard output.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Manage author keys (generate, list, show, import, export).
    Key(commands::key::Args),
    /// Publish a release: import the file into the node, sign and post the record.
    Publish(commands::publish::Args),
    /// Download a release, verify its record and bytes, and pin it on the node.
    Download(commands::download::Args),
    /// Show a package or one release (the record is verified).
    Info(commands::info::Args),
    /// List an author's packages.
    Ls(commands::ls::Args),
    /// Retract a release with a signed yank record.
    Yank(commands::yank::Args),
    /// Check a local file against a published release.
    Verify(commands::verify::Args),
    /// Import a file into the node (or only compute its CID).
    Add(commands::add::Args),
    /// Search packages (needs an index the node does not offer yet).
    Search(commands::search::Args),
    /// List the node's connected peers.
    Peers,
    /// Show the node's status.
    Status,
    /// Print a shell completion script.
    Completions(commands::completions::Args),
}

/// What every command gets.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) node: String,
    pub(crate) out: Output,
}

impl Ctx {
    /// A client of the node named by `--node`.
    pub(crate) fn client(&self) -> Result<Client> {
        Client::new(&self.node)
    }
}

/// Runs the command line.
pub fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        node: cli.node,
        out: Output::new(cli.json),
    };
    match cli.command {
        Command::Key(args) => commands::key::run(&ctx, args),
        Command::Publish(args) => commands::publish::run(&ctx, args),
        Command::Download(args) => commands::download::run(&ctx, args),
        Command::Info(args) => commands::info::run(&ctx, args),
        Command::Ls(args) => commands::ls::run(&ctx, args),
        Command::Yank(args) => commands::yank::run(&ctx, args),
        Command::Verify(args) => commands::verify::run(&ctx, args),
        Command::Add(args) => commands::add::run(&ctx, args),
        Command::Search(args) => commands::search::run(&ctx, args),
        Command::Peers => commands::node::peers(&ctx),
        Command::Status => commands::node::status(&ctx),
        Command::Completions(args) => commands::completions::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
