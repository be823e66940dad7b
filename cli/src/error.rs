//! The CLI's errors and the exit code of each (`docs/cli.md`, Exit codes).

use std::process::ExitCode;

/// Exit codes, stable for scripts.
pub mod code {
    /// Success.
    pub const OK: u8 = 0;
    /// Any other failure (I/O, the node failed, a wrong passphrase...).
    pub const FAILURE: u8 = 1;
    /// Bad usage: a bad argument, a missing input file, invalid metadata
    /// (clap's own usage errors exit with 2 too).
    pub const USAGE: u8 = 2;
    /// Not found: no such package, version, key or content.
    pub const NOT_FOUND: u8 = 3;
    /// Verification failed: a bad signature, a record that is not what was
    /// asked for, bytes that do not match their CID.
    pub const VERIFICATION: u8 = 4;
    /// The node (or the gateway) cannot be reached.
    pub const UNREACHABLE: u8 = 5;
    /// Conflict: a version that is not newer than the published ones, a key
    /// name that is taken, a record the node did not take.
    pub const CONFLICT: u8 = 6;
    /// Not supported: a node without the feature, a command a gateway does
    /// not offer, a gateway that takes no uploads from this author.
    pub const UNSUPPORTED: u8 = 7;
}

/// A failed command. Each message is one line that says what is wrong and,
/// where it can, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad argument or input file.
    #[error("{0}")]
    Usage(String),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A signature, record or content check failed.
    #[error("{0}")]
    Verification(String),
    /// The node cannot be reached.
    #[error(
        "cannot reach the node at {node} ({reason}); start one with `ipsr-node run` or pass --node URL"
    )]
    Unreachable {
        /// The node's base URL.
        node: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The gateway cannot be reached.
    #[error(
        "cannot reach the gateway at {gateway} ({reason}); check the URL given with --gateway or IPSR_GATEWAY"
    )]
    GatewayUnreachable {
        /// The gateway's base URL.
        gateway: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// A conflict with what is already there.
    #[error("{0}")]
    Conflict(String),
    /// Not offered by the node or the gateway.
    #[error("{0}")]
    Unsupported(String),
    /// Writing the output failed because the reader went away (`| head`):
    /// not reported.
    #[error("broken pipe")]
    BrokenPipe,
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => code::USAGE,
            Error::NotFound(_) => code::NOT_FOUND,
            Error::Verification(_) => code::VERIFICATION,
            Error::Unreachable { .. } | Error::GatewayUnreachable { .. } => code::UNREACHABLE,
            Error::Conflict(_) => code::CONFLICT,
            Error::Unsupported(_) => code::UNSUPPORTED,
            Error::BrokenPipe => code::OK,
            Error::Other(_) => code::FAILURE,
        }
    }

    /// A stable name for the kind of error, for `--json` output: `usage`,
    /// `not_found`, `verification`, `unreachable`, `conflict`,
    /// `unsupported`, `broken_pipe` or `failure`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::NotFound(_) => "not_found",
            Error::Verification(_) => "verification",
            Error::Unreachable { .. } | Error::GatewayUnreachable { .. } => "unreachable",
            Error::Conflict(_) => "conflict",
            Error::Unsupported(_) => "unsupported",
            Error::BrokenPipe => "broken_pipe",
            Error::Other(_) => "failure",
        }
    }

    /// The JSON object printed on standard output for a failed command
    /// with `--json`: `{"error": {"kind", "exit_code", "message"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        json_error(self.kind(), self.exit_code(), &self.to_string())
    }

    /// The [`ExitCode`] for this error.
    pub fn to_exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_code())
    }

    /// An I/O error about `what` (a path or a description).
    pub(crate) fn io(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::BrokenPipe => Error::BrokenPipe,
            std::io::ErrorKind::NotFound => Error::Usage(format!("{what}: no such file")),
            _ => Error::Other(format!("{what}: {e}")),
        }
    }
}

impl From<std::io::Error> for Error {
    /// Output errors (writing to stdout).
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::BrokenPipe => Error::BrokenPipe,
            _ => Error::Other(format!("writing the output: {e}")),
        }
    }
}

/// `{"error": {"kind", "exit_code", "message"}}`, the `--json` form of a
/// failure (the message as on standard error, without `error: `).
pub fn json_error(kind: &str, exit_code: u8, message: &str) -> serde_json::Value {
    serde_json::json!({
        "error": { "kind": kind, "exit_code": exit_code, "message": message }
    })
}

/// The result of a command.
pub type Result<T, E = Error> = std::result::Result<T, E>;
