//! Helpers shared by the in-process multi-node tests (the general ones
//! are in `ipsr-testkit`).

#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use ipsr_content::fetch::FetchReport;
use ipsr_node::{Client, Config};
use ipsr_testkit::{TIMEOUT, wait_until};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

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

/// Reads the whole file under `root` through `client.cat` (asking the
/// `hint` peers first), within [`TIMEOUT`].
pub(crate) async fn cat(
    client: &Client,
    root: cid::Cid,
    hint: Vec<PeerId>,
) -> (Bytes, FetchReport) {
    let (rx, handle) = client.content().cat(root, hint);
    collect(rx, handle).await
}

/// Reads the bytes `range` of the file under `root` through
/// `client.cat_range`, within [`TIMEOUT`].
pub(crate) async fn cat_range(
    client: &Client,
    root: cid::Cid,
    range: std::ops::Range<u64>,
    hint: Vec<PeerId>,
) -> (Bytes, FetchReport) {
    let (rx, handle) = client.content().cat_range(root, range, hint);
    collect(rx, handle).await
}

async fn collect(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    handle: tokio::task::JoinHandle<Result<FetchReport, ipsr_content::fetch::FetchError>>,
) -> (Bytes, FetchReport) {
    let mut out = Vec::new();
    let read = async {
        while let Some(bytes) = rx.recv().await {
            out.extend_from_slice(&bytes);
        }
        handle.await.unwrap().unwrap()
    };
    let report = tokio::time::timeout(TIMEOUT, read)
        .await
        .expect("download timed out");
    (out.into(), report)
}

/// The value of `metric` (a full name with labels) in `node`'s metrics.
pub(crate) async fn metric(node: &Client, metric: &str) -> u64 {
    let text = node.metrics_text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(metric)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Provider records `node` kept (`outcome="kept"`) or refused for a reason.
pub(crate) async fn provider_records(node: &Client, outcome: &str) -> u64 {
    let name = format!("ipsr_dht_provider_records_total{{outcome=\"{outcome}\"}}");
    metric(node, &name).await
}
