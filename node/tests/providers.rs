//! In-process tests of provider records in the DHT: peers keep the records
//! they are sent (within the rules), answer `GET_PROVIDERS` from them, and
//! let them expire.
//!
//! ```text
//!   40 nodes; node i bootstraps from 2 random earlier nodes (seeded):
//!
//!   n0 ── n1 ── n3 ── ...          p adds a file whose key p is not among
//!    \    |  \   |                 the 20 closest to; a node also outside
//!     n2 ─┘   n4 ─ ... ── far      them finds p as a provider through the
//!                                  records the closest keep, and downloads
//!
//!   p ──┐                          p and q provide, p stops; h keeps both
//!   q ──┼── h ── a                 records for 3 s, q renews its own; a,
//!   x ──┘                          which knows only h, finds q but not p.
//!                                  x sends a bad key and more than its share
//!
//!   p (DHT client) ── h ── a       h keeps p's record but not p in its
//!                                  routing table; a dials p at the
//!                                  addresses the record carries
//! ```

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipsr_content::unixfs::{self, Profile};
use ipsr_node::{Client, Config};
use ipsr_testkit::{TIMEOUT, XorShift, pattern, wait_until};
use libp2p::kad::{KBucketKey, RecordKey};
use libp2p::{Multiaddr, PeerId};
use sha2::{Digest, Sha256};

mod common;

/// Nodes in the large network: more than twice k (20).
const NODES: usize = 40;
/// Kademlia's k: how many closest peers a provider record goes to.
const K: usize = 20;
/// The file the provider adds.
const FILE: usize = 1024 * 1024;

/// A node that syncs no records (these tests are about the DHT alone).
async fn node(tweak: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Client, Multiaddr) {
    common::node(|config| {
        config.sync_on_connect = false;
        config.sync_interval = Duration::from_secs(3600);
        tweak(config);
    })
    .await
}

/// Every provider a DHT search for `cid` from `node` finds, until it ends.
async fn providers_of(node: &Client, cid: cid::Cid) -> HashSet<PeerId> {
    let mut found = node.find_providers(cid);
    let mut all = HashSet::new();
    tokio::time::timeout(TIMEOUT, async {
        while let Some(peer) = found.recv().await {
            all.insert(peer);
        }
    })
    .await
    .expect("the search ended");
    all
}

/// The CID `add` gives `data` (imported, not stored).
fn root_of(data: &[u8]) -> cid::Cid {
    unixfs::import(data, Profile::V1_2025, |_| Ok::<_, std::io::Error>(()))
        .unwrap()
        .root
}

/// Where `peer` ranks among `peers` by XOR distance to the provider key of
/// `cid` (0: the closest).
fn rank(peer: PeerId, peers: &[PeerId], cid: &cid::Cid) -> usize {
    let key = KBucketKey::new(RecordKey::new(&cid.hash().to_bytes()));
    let distance = |p: &PeerId| key.distance(&KBucketKey::from(*p));
    let mine = distance(&peer);
    peers.iter().filter(|p| distance(p) < mine).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outside_the_closest_finds_a_provider_outside_them_among_40() {
    let started = Instant::now();
    let mut rng = XorShift::new(17);
    let mut nodes: Vec<(tempfile::TempDir, Client, Multiaddr)> = Vec::new();
    for i in 0..NODES {
        // Two random earlier nodes (the second node knows only the first).
        let mut bootstrap = Vec::new();
        while bootstrap.len() < i.min(2) {
            let addr = nodes[rng.below(i as u64) as usize].2.clone();
            if !bootstrap.contains(&addr) {
                bootstrap.push(addr);
            }
        }
        nodes.push(node(|config| config.bootstrap = bootstrap).await);
    }
    let clients: Vec<Client> = nodes.iter().map(|(_, c, _)| c.clone()).collect();
    let peers: Vec<PeerId> = clients.iter().map(Client::peer_id).collect();
    wait_until("every node has a routing table", || async {
        for c in &clients {
            if c.dht_peers().await.unwrap() < 2 {
                return false;
            }
        }
        true
    })
    .await;
    eprintln!("{NODES} nodes up in {:?}", started.elapsed());

    // A provider and a seeker, both outside the k closest nodes to the
    // file's provider key: the provider's record reaches the seeker only
    // through the records the closest keep. (Connections do not show it:
    // every Kademlia walk connects nodes, and gossipsub keeps each such
    // connection open, so 40 nodes end up nearly all connected to each
    // other within seconds, whatever the test picks.)
    let mut chosen = None;
    'search: for seed in 0..8u64 {
        let file = Bytes::from(pattern(seed, FILE));
        let root = root_of(&file);
        let far: Vec<usize> = (0..NODES)
            .rev()
            .filter(|&i| rank(peers[i], &peers, &root) >= K)
            .take(2)
            .collect();
        if let [p, far] = far[..] {
            chosen = Some((p, far, file, root));
            break 'search;
        }
    }
    let (p, far, file, root) = chosen.expect("two nodes outside the k closest");
    let provider = &clients[p];
    let seeker = &clients[far];

    let added = provider
        .content()
        .add_bytes(file.clone(), Profile::V1_2025, Some("far".into()))
        .await
        .unwrap();
    assert_eq!(added.root, root);
    // The closest nodes keep the provider's record; the provider is not
    // among them, so it is not asked.
    wait_until("the closest nodes keep the provider record", || async {
        let mut keeping = 0;
        for c in &clients {
            keeping += common::provider_records(c, "kept").await.min(1);
        }
        keeping >= (K / 2) as u64
    })
    .await;
    let found = providers_of(seeker, root).await;
    assert!(found.contains(&peers[p]), "n{far} found n{p}: {found:?}");

    let fetch_started = Instant::now();
    let (got, _) = common::cat(seeker, root, Vec::new()).await;
    assert_eq!(
        hex::encode(Sha256::digest(&got)),
        hex::encode(Sha256::digest(&file)),
        "byte-identical"
    );
    assert!(
        seeker.peers().await.unwrap().contains(&peers[p]),
        "connected to n{p}"
    );
    eprintln!(
        "n{far} found n{p} and fetched 1 MiB from it in {:?}; whole test {:?}",
        fetch_started.elapsed(),
        started.elapsed()
    );
}

/// A provider that serves no DHT (Kademlia client mode, as a phone runs)
/// is in no routing table: a node that never met it can dial it only at
/// the addresses its provider record carries, which are the addresses it
/// listens on (`Config::announce` when set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_in_no_routing_table_is_dialled_at_the_addresses_of_its_record() {
    let (_dh, h, h_addr) = node(|_| {}).await;
    let (_dp, p, _) = node(|c| {
        c.bootstrap = vec![h_addr.clone()];
        c.dht_server = false;
    })
    .await;
    wait_until("p knows h", || async { p.dht_peers().await.unwrap() >= 1 }).await;
    let file = Bytes::from(pattern(3, 300_000));
    let root = p
        .content()
        .add_bytes(file.clone(), Profile::V1_2025, None)
        .await
        .unwrap()
        .root;
    wait_until("h keeps p's record", || async {
        common::provider_records(&h, "kept").await >= 1
    })
    .await;
    let (_da, a, _) = node(|c| c.bootstrap = vec![h_addr.clone()]).await;
    wait_until("a knows h", || async { a.dht_peers().await.unwrap() >= 1 }).await;
    assert!(!a.peers().await.unwrap().contains(&p.peer_id()));

    let (got, _) = common::cat(&a, root, Vec::new()).await;
    assert_eq!(got, file);
    assert!(a.peers().await.unwrap().contains(&p.peer_id()), "dialled p");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_record_expires_on_the_node_that_held_it_unless_renewed() {
    // h keeps provider records 3 s; q re-announces its pins every 200 ms.
    let ttl = Duration::from_secs(3);
    let (_dh, h, h_addr) = node(|c| c.provider_record_ttl = ttl).await;
    let (_dq, q, _) = node(|c| {
        c.bootstrap = vec![h_addr.clone()];
        c.provider_record_ttl = ttl;
        c.provide_interval = Duration::from_millis(200);
    })
    .await;
    let (dp, p, _) = node(|c| {
        c.bootstrap = vec![h_addr.clone()];
        c.provide_interval = Duration::from_secs(3600);
    })
    .await;
    let (p_file, q_file) = (Bytes::from(pattern(1, 1000)), Bytes::from(pattern(2, 1000)));
    let p_root = p
        .content()
        .add_bytes(p_file, Profile::V1_2025, None)
        .await
        .unwrap()
        .root;
    let q_root = q
        .content()
        .add_bytes(q_file, Profile::V1_2025, None)
        .await
        .unwrap()
        .root;
    wait_until("h keeps both records", || async {
        common::provider_records(&h, "kept").await >= 2
    })
    .await;
    // p stops: from now on only h's record names it.
    let p_id = p.peer_id();
    drop((p, dp));

    let (_da, a, _) = node(|c| c.bootstrap = vec![h_addr.clone()]).await;
    wait_until("a knows h", || async { a.dht_peers().await.unwrap() >= 1 }).await;
    // Past the TTL, q's record lives on (renewed), p's is gone from h.
    tokio::time::sleep(ttl + Duration::from_secs(1)).await;
    assert!(
        providers_of(&a, q_root).await.contains(&q.peer_id()),
        "q renews its record"
    );
    let found = providers_of(&a, p_root).await;
    assert!(!found.contains(&p_id), "p's record expired on h: {found:?}");
    let renewed = common::provider_records(&h, "kept").await;
    assert!(renewed > 2, "q's record was renewed ({renewed} kept)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_and_records_beyond_a_peers_share_are_not_stored() {
    let (_dh, h, h_addr) = node(|c| c.dht_store.providers_per_peer = 2).await;
    let (dx, x, _) = node(|c| c.bootstrap = vec![h_addr.clone()]).await;
    wait_until("x knows h", || async { x.dht_peers().await.unwrap() >= 1 }).await;
    // A blake3 CID: content no IPSR node can fetch or check.
    let blake3 = cid::Cid::new_v1(
        0x55,
        cid::multihash::Multihash::wrap(0x1e, &[7; 32]).unwrap(),
    );
    x.provide(blake3).await.unwrap();
    let good: Vec<cid::Cid> = (1..=3).map(|n| *ipsr_testkit::cid(n).cid()).collect();
    for cid in &good {
        x.provide(*cid).await.unwrap();
    }
    wait_until("h judged all four", || async {
        common::provider_records(&h, "bad_key").await == 1
            && common::provider_records(&h, "kept").await == 2
            && common::provider_records(&h, "peer_full").await == 1
    })
    .await;
    let x_id = x.peer_id();
    drop((x, dx));

    let (_da, a, _) = node(|c| c.bootstrap = vec![h_addr.clone()]).await;
    wait_until("a knows h", || async { a.dht_peers().await.unwrap() >= 1 }).await;
    assert!(!providers_of(&a, blake3).await.contains(&x_id), "bad key");
    let mut named = 0;
    for cid in &good {
        named += usize::from(providers_of(&a, *cid).await.contains(&x_id));
    }
    assert_eq!(named, 2, "h names x for two of its three keys");
    let text = h.metrics_text().await.unwrap();
    assert!(text.contains("ipsr_dht_store_providers 2"), "{text}");
}
