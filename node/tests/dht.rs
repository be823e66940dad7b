//! In-process test of the DHT path: a node that missed the gossip and does
//! not sync finds a package through Kademlia.
//!
//! ```text
//!   a ─ b          a publishes; the record is put to b's DHT store
//!        \
//!         c        c joins later, talks only Kademlia, and gets the package
//! ```

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ipsr_node::Client;
use ipsr_proto::AuthorKey;
use ipsr_testkit::{TIMEOUT, agent_with_timeout, release, wait_until, yank};
use libp2p::Multiaddr;

mod common;

/// A node; `sync: false` turns catch-up off, so only the DHT can inform it.
async fn node(sync: bool) -> (tempfile::TempDir, Client, Multiaddr) {
    common::node(|config| {
        if !sync {
            config.sync_on_connect = false;
            config.sync_interval = Duration::from_secs(3600);
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dht_get_finds_a_package_on_a_node_that_never_saw_the_gossip() {
    let (_da, a, a_addr) = node(true).await;
    let (_db, b, b_addr) = node(true).await;
    b.dial(a_addr).await.unwrap();
    wait_until("b is connected", || async {
        !b.peers().await.unwrap().is_empty()
    })
    .await;
    // Identify tells each side the other serves the DHT.
    wait_until("a and b are in each other's routing table", || async {
        a.dht_peers().await.unwrap() >= 1 && b.dht_peers().await.unwrap() >= 1
    })
    .await;

    let key = AuthorKey::from_seed(&[4; 32]);
    let v1 = release(&key, "1.0.0")
        .package("com.example.dht")
        .seq(1)
        .sign();
    let v2 = release(&key, "2.0.0")
        .package("com.example.dht")
        .code(2)
        .seq(2)
        .sign();
    // The yank (seq 3) goes out before the release it retracts (seq 2), so
    // no node ever puts 2.0.0 under the package key: a lookup that reads a
    // package key written before a yank would miss the yank (it is stored
    // under the release's key only), which this test is not about.
    a.publish(v1.clone()).await.unwrap();
    let yank = yank(&key, "2.0.0")
        .package("com.example.dht")
        .reason("bad")
        .seq(3)
        .sign();
    let yank_id = yank.id();
    a.publish(yank).await.unwrap();
    a.publish(v2.clone()).await.unwrap();
    wait_until("b holds the yank and 2.0.0", || async {
        b.store().record(&yank_id).unwrap().is_some()
            && b.store().record(&v2.id()).unwrap().is_some()
    })
    .await;

    let (_dc, c, _) = node(false).await;
    c.dial(b_addr.clone()).await.unwrap();
    let pkey = v1.record().package_key();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let found = loop {
        if let Some(found) = c.dht_get_package(pkey.clone()).await.unwrap() {
            break found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the DHT never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // 2.0.0 was yanked: the newest release is 1.0.0, and c now holds it.
    assert_eq!(found, v1);
    assert!(c.store().record(&v1.id()).unwrap().is_some());

    // The same through the HTTP API of another node that never synced: a
    // package it does not know is looked up in the DHT.
    let (_dd, d, _) = node(false).await;
    d.dial(b_addr).await.unwrap();
    let (api, server) = ipsr_node::serve_api(d.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    tokio::spawn(server);
    let url = format!("http://{api}/v1/packages/{}/{}", pkey.author, pkey.package);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let body = loop {
        let url = url.clone();
        let (status, body) = tokio::task::spawn_blocking(move || {
            let mut response = agent_with_timeout(TIMEOUT).get(&url).call().unwrap();
            (
                response.status().as_u16(),
                response.body_mut().read_to_string().unwrap(),
            )
        })
        .await
        .unwrap();
        if status == 200 {
            break body;
        }
        assert_eq!(status, 404, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the API never found it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["newest"], "1.0.0", "{json}");
}

/// An author with an identity document: the DHT carries the document with
/// the records, so a node that never synced counts what the signer key
/// signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dht_get_brings_the_authors_identity_with_the_package() {
    let (_da, a, a_addr) = node(true).await;
    let (_db, b, b_addr) = node(true).await;
    b.dial(a_addr).await.unwrap();
    wait_until("a and b are in each other's routing table", || async {
        a.dht_peers().await.unwrap() >= 1 && b.dht_peers().await.unwrap() >= 1
    })
    .await;

    let main = AuthorKey::from_seed(&[31; 32]);
    let laptop = AuthorKey::from_seed(&[32; 32]);
    let genesis = ipsr_proto::Identity {
        signers: vec![laptop.author_id()],
        created_at: 10,
        seq: 10,
        ..ipsr_proto::Identity::implicit(main.author_id())
    }
    .sign(&[&main])
    .unwrap();
    a.publish_signed(ipsr_proto::Signed::Identity(genesis.clone()))
        .await
        .unwrap();
    let v1 = release(&main, "1.0.0")
        .package("com.example.dhtidentity")
        .seq(20)
        .build()
        .sign(&laptop)
        .unwrap();
    a.publish(v1.clone()).await.unwrap();
    wait_until("b holds the release", || async {
        b.store().record(&v1.id()).unwrap().is_some()
    })
    .await;

    let (_dc, c, _) = node(false).await;
    c.dial(b_addr).await.unwrap();
    let pkey = v1.record().package_key();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let found = loop {
        if let Some(found) = c.dht_get_package(pkey.clone()).await.unwrap() {
            break found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the DHT never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(found, v1);
    let identity = c.store().identity(&main.author_id()).unwrap();
    assert_eq!(identity.head(), Some(&genesis));
}
