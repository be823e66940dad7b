//! Helpers shared by the in-process multi-node tests (the general ones
//! are in `ipsr-testkit`).

#![allow(dead_code, clippy::unwrap_used)]

use ipsr_node::{Client, Config};
use ipsr_testkit::wait_until;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

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
