//! Helpers shared by the benches: `ipsr-node` processes on loopback and
//! an HTTP client for their API.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use ipsr_testkit::{Proc, agent_with_timeout};

/// A running `ipsr-node` process, killed when dropped.
pub(crate) struct Node {
    pub(crate) pid: u32,
    pub(crate) p2p: String,
    pub(crate) api: String,
    _proc: Proc,
}

pub(crate) fn start(dir: &std::path::Path, bootstrap: &[String]) -> Node {
    // Another build of the node, for A/B runs of one bench binary.
    let bin =
        std::env::var("IPSR_NODE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ipsr-node").into());
    let mut cmd = Command::new(bin);
    cmd.args([
        "run",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--api",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(dir);
    for b in bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    let mut proc = Proc::spawn(&mut cmd);
    let p2p = proc.expect_line("listening on: ");
    let api = proc.expect_line("api: ");
    Node {
        pid: proc.child().id(),
        p2p,
        api,
        _proc: proc,
    }
}

/// An HTTP client for the nodes' APIs, patient with loaded machines.
pub(crate) fn agent() -> ureq::Agent {
    agent_with_timeout(Duration::from_secs(40))
}

pub(crate) fn get_json(agent: &ureq::Agent, url: &str) -> serde_json::Value {
    let mut r = agent.get(url).call().unwrap();
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

/// The number in the variable `name`, or `default`.
pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
