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

use ipsr_node::{Client, Config};
use ipsr_proto::{AuthorKey, ContentId, Release, Yank};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn node(sync: bool) -> (tempfile::TempDir, Client, Multiaddr) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::local(dir.path().to_owned());
    if !sync {
        config.sync_on_connect = false;
        config.sync_interval = Duration::from_secs(3600);
    }
    let node = ipsr_node::spawn(config).await.unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while node.listen_addrs().await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let addr = node.listen_addrs().await.unwrap()[0]
        .clone()
        .with(Protocol::P2p(node.peer_id()));
    (dir, node, addr)
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
    // 2.0.0 was yanked: the newest release is 1.0.0, and c now holds it.
    assert_eq!(found, v1);
    assert!(c.store().record(&v1.id()).unwrap().is_some());
    // c never synced and joined after the gossip: all it holds came through
    // the DHT (its get, or puts that were still running when it joined).
    assert!(
        c.store().record(&v2.id()).unwrap().is_none()
            || c.store().package(&pkey).unwrap().unwrap().newest() == Some(&v1)
    );
}
