//! Helpers shared by the in-process multi-node tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use ipsr_node::{Client, Config};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// The longest any test waits for one thing.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `check` every 50 ms until it holds; fails the test after [`TIMEOUT`].
pub(crate) async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `len` pseudo-random bytes (see [`ipsr_testnet::pattern`]).
pub(crate) fn pattern(seed: u64, len: usize) -> Vec<u8> {
    ipsr_testnet::pattern(seed, len)
}

/// A node on loopback in a temp dir (`Config::local`, then `tweak`), once
/// it listens: its dir, its handle and its dialable address.
pub(crate) async fn node(
    tweak: impl FnOnce(&mut Config),
) -> (tempfile::TempDir, Client, Multiaddr) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::local(dir.path().to_owned());
    tweak(&mut config);
    let node = ipsr_node::spawn(config).await.unwrap();
    wait_until("the node listens", || async {
        !node.listen_addrs().await.unwrap().is_empty()
    })
    .await;
    let addr = node.listen_addrs().await.unwrap()[0]
        .clone()
        .with(Protocol::P2p(node.peer_id()));
    (dir, node, addr)
}
