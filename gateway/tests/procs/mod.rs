//! Real processes for the gateway's end-to-end test and benchmark: spawn,
//! read start-up lines, kill on drop. Every wait is bounded.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The longest any step waits.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A daemon started by the test, killed on drop (`ipsr_testnet::Proc`).
pub struct Proc(ipsr_testnet::Proc);

impl Proc {
    pub fn spawn(command: &mut Command) -> Self {
        Self(ipsr_testnet::Proc::spawn(command).unwrap())
    }

    /// The rest of the first stdout line starting with `prefix`.
    pub fn line(&self, prefix: &str) -> String {
        self.0
            .line(prefix, TIMEOUT)
            .unwrap_or_else(|| panic!("no `{prefix}` line"))
    }
}

/// The workspace binary `name`, from the folder `cargo test --workspace`
/// builds it in (built here when missing).
pub fn binary(name: &str) -> PathBuf {
    ipsr_testnet::binaries().unwrap().join(name)
}

pub fn node_args(data: &Path) -> Vec<String> {
    vec![
        "--data-dir".into(),
        data.display().to_string(),
        "--listen".into(),
        "/ip4/127.0.0.1/tcp/0".into(),
        "--api".into(),
        "127.0.0.1:0".into(),
    ]
}

pub fn wait_for<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    ipsr_testnet::wait_for(TIMEOUT, check).unwrap_or_else(|| panic!("timed out waiting for {what}"))
}
