//! Helpers shared by the benches: `ipsr-node` processes on loopback and
//! an HTTP client for their API.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `ipsr-node` process, killed when dropped.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) p2p: String,
    pub(crate) api: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    .arg(dir)
    .env("RUST_LOG", "error")
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for b in bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    let mut child = cmd.spawn().expect("start ipsr-node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut p2p, mut api) = (None, None);
    while api.is_none() {
        let line = lines.next().expect("node output").unwrap();
        if let Some(a) = line.strip_prefix("listening on: ") {
            p2p.get_or_insert(a.to_owned());
        } else if let Some(a) = line.strip_prefix("api: ") {
            api = Some(a.to_owned());
        }
    }
    // Keep draining stdout so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Node {
        child,
        p2p: p2p.unwrap(),
        api: api.unwrap(),
    }
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(40)))
        .build()
        .into()
}

pub(crate) fn get_json(agent: &ureq::Agent, url: &str) -> serde_json::Value {
    let mut r = agent.get(url).call().unwrap();
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}
