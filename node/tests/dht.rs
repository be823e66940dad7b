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
use ipsr_proto::{AuthorKey, ContentId, Release, Yank};
use libp2p::Multiaddr;

mod common;

use common::TIMEOUT;

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
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while b.peers().await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Identify tells a about b's DHT support; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let key = AuthorKey::from_seed(&[4; 32]);
    let cid: ContentId = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        .parse()
        .unwrap();
    let package = "com.example.dht".parse().unwrap();
    let mut v1 = Release::new(key.author_id(), package, "1.0.0".parse().unwrap(), 1, cid);
    v1.seq = 1;
    let mut v2 = v1.clone();
    v2.version = "2.0.0".parse().unwrap();
    v2.version_code = 2;
    v2.seq = 2;
    let v1 = v1.sign(&key).unwrap();
    let v2 = v2.sign(&key).unwrap();
    a.publish(v1.clone()).await.unwrap();
    a.publish(v2.clone()).await.unwrap();
    let mut yank = Yank::new(
        key.author_id(),
        v2.record().package().clone(),
        "2.0.0".parse().unwrap(),
        "bad".into(),
    );
    yank.seq = 3;
    a.publish(yank.sign(&key).unwrap()).await.unwrap();

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
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let mut response = agent.get(&url).call().unwrap();
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
