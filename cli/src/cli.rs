//! The command line's shape.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::client::{Client, DEFAULT_NODE};
use crate::commands;
use crate::error::{Error, Result};
use crate::output::Output;
use crate::token::NodeToken;

/// Publish, download and browse apps on IPSR, the peer-to-peer app repository.
///
/// Talks to a local `ipsr-node` (see `--node`), or to a gateway (`--gateway`)
/// when no node runs; trusts neither: records and bytes are verified here.
/// Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 verification failed,
/// 5 node or gateway unreachable, 6 conflict (e.g. version not newer),
/// 7 not supported (by the node or the gateway).
#[derive(Debug, Parser)]
#[command(name = "ipsr-cli", version)]
pub struct Cli {
    /// The node's API address [env: IPSR_NODE] [default: http://127.0.0.1:5050].
    #[arg(long, global = true, value_name = "URL", conflicts_with = "gateway")]
    pub node: Option<String>,

    /// A file holding the node's API token, sent as `Authorization: Bearer`:
    /// needed when the node's API is off loopback (its token is then in the
    /// node's DATA_DIR/api-token) or was started with --api-token-file
    /// [env: IPSR_NODE_TOKEN_FILE, or the token itself in IPSR_NODE_TOKEN].
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "gateway")]
    pub node_token_file: Option<PathBuf>,

    /// Use this gateway instead of a node: read packages from its JSON API and
    /// publish through it, e.g. `https://gateway.example.org` [env: IPSR_GATEWAY].
    /// Everything is still verified here.
    #[arg(long, global = true, value_name = "URL")]
    pub gateway: Option<String>,

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
    /// Publish a release: import the file into the node (or upload it with the
    /// record through a gateway), sign and post the record.
    Publish(commands::publish::Args),
    /// Download a release, verify its record and bytes, and pin it on the node.
    Download(commands::download::Args),
    /// Show a package or one release (the record is verified).
    Info(commands::info::Args),
    /// List an author's packages.
    Ls(commands::ls::Args),
    /// Retract a release with a signed yank record.
    Yank(commands::yank::Args),
    /// Show or change an author's identity: signer and admin keys,
    /// thresholds, profile (revoke a stolen key here).
    Identity(commands::identity::Args),
    /// Sign a release again with a current signer key, after its signer was
    /// removed from the identity.
    Resign(commands::resign::Args),
    /// Add a signature to a signed record or identity document in a file
    /// (for records that need several signers).
    Sign(commands::sign::SignArgs),
    /// Publish a signed record or identity document from a file.
    Post(commands::sign::PostArgs),
    /// Check a local file against a published release.
    Verify(commands::verify::Args),
    /// Import a file into the node (or only compute its CID; no gateway).
    Add(commands::add::Args),
    /// Search packages by name and title, on the node or the gateway.
    Search(commands::search::Args),
    /// List the node's connected peers (not through a gateway).
    Peers,
    /// Show the node's status (or a gateway's health).
    Status,
    /// Print a shell completion script.
    Completions(commands::completions::Args),
}

/// What the commands talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A node's local API.
    Node(String),
    /// A gateway's JSON API.
    Gateway(String),
}

impl Endpoint {
    /// `--node` and `--gateway` (clap refuses both), else `IPSR_NODE` and
    /// `IPSR_GATEWAY` (`env` reads a variable; empty counts as unset), else
    /// the default node. A flag wins over either variable, so a shell that
    /// exports `IPSR_NODE` can still use `--gateway` once.
    pub(crate) fn resolve(
        node: Option<String>,
        gateway: Option<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        if let Some(url) = gateway {
            return Ok(Self::Gateway(url));
        }
        if let Some(url) = node {
            return Ok(Self::Node(url));
        }
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        match (var("IPSR_NODE"), var("IPSR_GATEWAY")) {
            (Some(_), Some(_)) => Err(Error::Usage(
                "IPSR_NODE and IPSR_GATEWAY are both set; unset one, or pass --node URL or --gateway URL".into(),
            )),
            (Some(url), None) => Ok(Self::Node(url)),
            (None, Some(url)) => Ok(Self::Gateway(url)),
            (None, None) => Ok(Self::Node(DEFAULT_NODE.into())),
        }
    }
}

/// What every command gets.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) endpoint: Endpoint,
    /// The node's API token, if one was given (never sent to a gateway).
    pub(crate) node_token: Option<NodeToken>,
    pub(crate) out: Output,
}

impl Ctx {
    /// A client of the node (`--node`, with its token) or the gateway
    /// (`--gateway`).
    pub(crate) fn client(&self) -> Result<Client> {
        match (&self.endpoint, &self.node_token) {
            (Endpoint::Node(url), Some(token)) => Client::new(url)?.with_token(token.secret()),
            (Endpoint::Node(url), None) => Client::new(url),
            (Endpoint::Gateway(url), _) => Client::gateway(url),
        }
    }

    /// Whether the commands go through a gateway.
    pub(crate) fn is_gateway(&self) -> bool {
        matches!(self.endpoint, Endpoint::Gateway(_))
    }
}

/// Runs the command line.
pub fn run(cli: Cli) -> Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let endpoint = Endpoint::resolve(cli.node, cli.gateway, env)?;
    let node_token = match endpoint {
        Endpoint::Node(_) => NodeToken::resolve(cli.node_token_file, env)?,
        Endpoint::Gateway(_) => None,
    };
    let ctx = Ctx {
        endpoint,
        node_token,
        out: Output::new(cli.json),
    };
    match cli.command {
        Command::Key(args) => commands::key::run(&ctx, args),
        Command::Publish(args) => commands::publish::run(&ctx, args),
        Command::Download(args) => commands::download::run(&ctx, args),
        Command::Info(args) => commands::info::run(&ctx, args),
        Command::Ls(args) => commands::ls::run(&ctx, args),
        Command::Yank(args) => commands::yank::run(&ctx, args),
        Command::Identity(args) => commands::identity::run(&ctx, args),
        Command::Resign(args) => commands::resign::run(&ctx, args),
        Command::Sign(args) => commands::sign::sign(&ctx, args),
        Command::Post(args) => commands::sign::post(&ctx, args),
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

    use super::Endpoint;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn flags_win_over_variables_and_two_variables_are_refused() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let both = env(&[("IPSR_NODE", "http://n"), ("IPSR_GATEWAY", "https://g")]);
        let resolve = |node: Option<&str>, gateway: Option<&str>| {
            Endpoint::resolve(node.map(Into::into), gateway.map(Into::into), both)
        };
        assert_eq!(
            resolve(None, Some("https://x")).ok(),
            Some(Endpoint::Gateway("https://x".into()))
        );
        assert_eq!(
            resolve(Some("http://x"), None).ok(),
            Some(Endpoint::Node("http://x".into()))
        );
        assert!(resolve(None, None).is_err());
        let gateway = Endpoint::resolve(
            None,
            None,
            env(&[("IPSR_GATEWAY", "https://g"), ("IPSR_NODE", "")]),
        );
        assert_eq!(gateway.ok(), Some(Endpoint::Gateway("https://g".into())));
        let default = Endpoint::resolve(None, None, env(&[]));
        assert_eq!(
            default.ok(),
            Some(Endpoint::Node(super::DEFAULT_NODE.into()))
        );
    }
}
