//! Real processes for the gateway's end-to-end test and benchmark: spawn,
//! read start-up lines, kill on drop. Every wait is bounded.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest any step waits.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A child process, killed on drop.
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The rest of the first stdout line starting with `prefix`.
    pub fn line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no `{prefix}` line"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
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
