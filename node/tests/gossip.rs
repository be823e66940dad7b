//! In-process multi-node tests of record propagation over gossipsub.
//!
//! Topology (10 nodes on loopback TCP): a ring where node i also dials
//! node i+3, so each node has about four neighbours and most pairs are
//! several hops apart.
//!
//! ```text
//!   0 ─ 1 ─ 2 ─ 3 ─ 4 ─ 5 ─ 6 ─ 7 ─ 8 ─ 9 ─ (0)
//!   └───────────┘   ...  i ─ i+3 (mod 10)
//! ```

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ipsr_node::{Client, Config};
use ipsr_proto::{AuthorKey, ContentId, Record, Release, SignedRecord};

mod common;

use common::wait_until;

async fn network(n: usize) -> (Vec<tempfile::TempDir>, Vec<Client>) {
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..n {
        let dir = tempfile::tempdir().unwrap();
        nodes.push(
            ipsr_node::spawn(Config::local(dir.path().to_owned()))
                .await
                .unwrap(),
        );
        dirs.push(dir);
    }
    let mut addrs = Vec::new();
    for node in &nodes {
        wait_until("the node listens", || async {
            !node.listen_addrs().await.unwrap().is_empty()
        })
        .await;
        let listen = node.listen_addrs().await.unwrap();
        let addr = listen[0]
            .clone()
            .with(libp2p::multiaddr::Protocol::P2p(node.peer_id()));
        addrs.push(addr);
    }
    for (i, node) in nodes.iter().enumerate() {
        for j in [(i + 1) % n, (i + 3) % n] {
            node.dial(addrs[j].clone()).await.unwrap();
        }
    }
    for node in &nodes {
        // Records are forwarded along the gossipsub mesh: wait until it formed.
        wait_until("every node has a mesh", || async {
            node.mesh_peers().await.unwrap().len() >= 3
        })
        .await;
    }
    (dirs, nodes)
}

fn release(key: &AuthorKey, version: &str) -> SignedRecord {
    let cid: ContentId = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        .parse()
        .unwrap();
    Release::new(
        key.author_id(),
        "com.example.app".parse().unwrap(),
        version.parse().unwrap(),
        1,
        cid,
    )
    .sign(key)
    .unwrap()
}

async fn holds(node: &Client, record: &SignedRecord) -> bool {
    node.store().record(&record.id()).unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_published_on_one_node_reaches_all_ten() {
    let (_dirs, nodes) = network(10).await;
    let key = AuthorKey::from_seed(&[1; 32]);
    let record = release(&key, "1.0.0");
    let stored = nodes[3].publish(record.clone()).await.unwrap();
    assert!(stored.is_news());
    for (i, node) in nodes.iter().enumerate() {
        wait_until(&format!("node {i} holds the record"), || {
            holds(node, &record)
        })
        .await;
        // The log head (what API long-polls wait on) follows the store.
        wait_until(&format!("node {i} signals its log head"), || async {
            *node.log_head().borrow() >= 1
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_record_reaches_no_node_and_the_sender_is_penalised() {
    let (_dirs, nodes) = network(10).await;
    let author = AuthorKey::from_seed(&[1; 32]);
    let forger = AuthorKey::from_seed(&[2; 32]);
    // The author's release, re-signed by the forger: a key mismatch.
    let genuine = release(&author, "2.0.0");
    let Record::Release(r) = genuine.record().clone() else {
        unreachable!()
    };
    let mut forged_release = r.clone();
    forged_release.author = forger.author_id();
    let forged = forged_release.sign(&forger).unwrap();
    let mut bytes = forged.to_bytes();
    // Put the author's payload under the forger's key and signature.
    let payload = genuine.payload().to_vec();
    let fp = forged.payload().to_vec();
    let start = bytes.windows(fp.len()).position(|w| w == fp).unwrap();
    bytes.splice(start..start + fp.len(), payload);
    assert!(SignedRecord::from_bytes(&bytes).unwrap().verify().is_err());

    // Let node 0 earn some standing in its neighbours' meshes first: one
    // forgery must outweigh it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    nodes[0].gossip_raw_for_tests(bytes).await.unwrap();
    let sender = nodes[0].peer_id();
    // Node 0's neighbours (1 and 3, which it dialled; 7 and 9, which dialled
    // it) reject the forgery, and gossipsub's invalid-message penalty drops
    // the sender's score below zero (it decays back within seconds).
    wait_until("a neighbour penalises the forger", || async {
        for i in [1, 3, 7, 9] {
            if nodes[i]
                .peer_score(sender)
                .await
                .unwrap()
                .is_some_and(|s| s < 0.0)
            {
                return true;
            }
        }
        false
    })
    .await;
    // A genuine record published afterwards still propagates, and nothing
    // of the forgery was stored anywhere.
    let good = release(&author, "3.0.0");
    nodes[5].publish(good.clone()).await.unwrap();
    for (i, node) in nodes.iter().enumerate() {
        wait_until(&format!("node {i} holds the good record"), || {
            holds(node, &good)
        })
        .await;
        assert_eq!(
            node.store().stats().unwrap().records,
            1,
            "node {i} stored the forgery"
        );
    }
}
