//! Real processes for the gateway's end-to-end test and benchmark: the
//! workspace's binaries and the arguments of a node on loopback. Processes
//! (killed on drop) and bounded waits come from `ipsr-testkit`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

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
