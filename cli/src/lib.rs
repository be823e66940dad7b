//! `ipsr-cli`: the IPSR command line. It keeps author keys, publishes
//! releases through a local node (or a gateway), downloads and verifies
//! them, and browses and searches what the node or gateway holds.
//! `docs/cli.md` is the user's guide: commands, exit codes, the key file
//! format.
//!
//! * `cli`: [`Cli`], the arguments (clap derive), and [`run`], which
//!   dispatches to `commands/`: one module per subcommand, each with its
//!   `Args` and a `run`.
//! * [`keys`]: author key files (XDG config dir, mode 0600, passphrase).
//! * `client`: [`Client`], a blocking client of the node's HTTP API or a
//!   gateway's JSON API ([`Server`]); never trusted, everything is verified
//!   here.
//! * `token`: the node's API token (`--node-token-file`,
//!   `IPSR_NODE_TOKEN_FILE`, `IPSR_NODE_TOKEN`), for a node that requires
//!   one.
//! * `check`: what the CLI checks itself: signed records, and content bytes
//!   against their CID (with `ipsr-content`, which links no libp2p).
//! * `identity`: authors' identities as served, checked from the author id;
//!   key arguments; copies of releases kept for `resign`.
//! * `apk`: what `publish` reads from an APK's manifest, and its checks.
//! * `rotation`: an APK's v3 proof of rotation (its certificate lineage),
//!   read from the APK Signing Block.
//! * `spec`: `AUTHOR/PACKAGE[@VERSION]` arguments ([`PackageSpec`],
//!   [`ReleaseSpec`], [`VersionSel`]).
//! * `output`: [`Output`], lines for people, or JSON with `--json`.
//! * `error`: [`Error`], every failure, each with its exit code ([`code`]).
//!
//! ```no_run
//! use clap::Parser;
//! let cli = ipsr_cli::Cli::parse_from(["ipsr-cli", "status", "--json"]);
//! ipsr_cli::run(cli)?;
//! # Ok::<(), ipsr_cli::Error>(())
//! ```

mod apk;
mod check;
mod cli;
mod client;
mod commands;
mod error;
mod identity;
pub mod keys;
mod output;
mod rotation;
mod spec;
mod token;

pub use cli::{Cli, Command, run};
pub use client::{Client, DEFAULT_NODE, Server};
pub use error::{Error, Result, code, json_error};
pub use output::Output;
pub use spec::{PackageSpec, ReleaseSpec, VersionSel};
