//! In-process multi-node tests of record propagation over gossipsub.
//!
//! Topology (10 nodes on loopback TCP): a ring where node i also dials
//! node i+3, so each node has about four neighbours and most pairs are
//! several hops apart. The forgery test adds X, a hostile peer made of
//! stock libp2p gossipsub (no IPSR code), connected to nodes 1, 3, 7, 9.
//! The clock skew test is one node N and such a peer R, a relay whose
//! clock runs ahead. The churn test is a line of three nodes A, B, C and
//! such a peer H that publishes one author's records as fast as it can.
//!
//! ```text
//!   0 ─ 1 ─ 2 ─ 3 ─ 4 ─ 5 ─ 6 ─ 7 ─ 8 ─ 9 ─ (0)
//!   └───────────┘   ...  i ─ i+3 (mod 10)
//!       X ── 1, 3, 7, 9                          N ── R
//!
//!   H ── A ── B ── C
//! ```

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ipsr_node::{Client, RECORDS_TOPIC};
use ipsr_proto::limits::MAX_CLOCK_SKEW_MS;
use ipsr_proto::{AuthorKey, Record, SignedRecord};
use ipsr_testkit::{key, release, wait_until};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};

mod common;

async fn network(n: usize) -> (Vec<tempfile::TempDir>, Vec<Client>, Vec<Multiaddr>) {
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..n {
        let (dir, node, addr) = common::node(|_| {}).await;
        dirs.push(dir);
        nodes.push(node);
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
    (dirs, nodes, addrs)
}

/// A hostile peer: a bare gossipsub swarm that dials `addrs`, joins the
/// records topic and publishes whatever bytes it is handed, bypassing
/// every check an IPSR node makes. Its task stops when the handle drops.
///
/// It publishes only once it has seen as many peers join the topic as it
/// dialled: a node lists the peer in its mesh as soon as it reads the
/// peer's subscription, which can be before the peer has read the node's
/// (and gossipsub refuses to publish to a topic with no known peers).
struct Hostile {
    peer_id: PeerId,
    publish: mpsc::Sender<Publish>,
}

/// Bytes to publish, and where gossipsub's answer goes.
type Publish = (Vec<u8>, oneshot::Sender<Result<(), String>>);

impl Hostile {
    fn start(addrs: &[Multiaddr]) -> Self {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|key| {
                let config = gossipsub::ConfigBuilder::default()
                    .heartbeat_interval(Duration::from_millis(100))
                    .build()
                    .unwrap();
                gossipsub::Behaviour::<
                    gossipsub::IdentityTransform,
                    gossipsub::AllowAllSubscriptionFilter,
                >::new(MessageAuthenticity::Signed(key.clone()), config)
                .unwrap()
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let topic = IdentTopic::new(RECORDS_TOPIC);
        swarm.behaviour_mut().subscribe(&topic).unwrap();
        for addr in addrs {
            swarm.dial(addr.clone()).unwrap();
        }
        let peer_id = *swarm.local_peer_id();
        let (publish, mut rx) = mpsc::channel::<Publish>(1);
        let dialled = addrs.len();
        tokio::spawn(async move {
            let mut joined = HashSet::new();
            loop {
                tokio::select! {
                    event = swarm.select_next_some() => match event {
                        SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, .. }) => {
                            joined.insert(peer_id);
                        }
                        SwarmEvent::Behaviour(gossipsub::Event::Unsubscribed { peer_id, .. }) => {
                            joined.remove(&peer_id);
                        }
                        _ => {}
                    },
                    next = rx.recv(), if joined.len() >= dialled => {
                        let Some((bytes, reply)) = next else { break };
                        let result = swarm
                            .behaviour_mut()
                            .publish(topic.clone(), bytes)
                            .map(|_| ())
                            .map_err(|e| e.to_string());
                        let _ = reply.send(result);
                    }
                }
            }
        });
        Self { peer_id, publish }
    }

    async fn publish(&self, bytes: Vec<u8>) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.publish.send((bytes, tx)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .map_err(|_| "the peers it dialled never joined the topic".to_string())?
            .unwrap()
    }
}

async fn holds(node: &Client, record: &SignedRecord) -> bool {
    node.store().record(&record.id()).unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_published_on_one_node_reaches_all_ten() {
    let (_dirs, nodes, _) = network(10).await;
    let key = AuthorKey::from_seed(&[1; 32]);
    let record = release(&key, "1.0.0").sign();
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
    let (_dirs, nodes, addrs) = network(10).await;
    let author = AuthorKey::from_seed(&[1; 32]);
    let forger = AuthorKey::from_seed(&[2; 32]);
    // The author's release, re-signed by the forger: a key mismatch.
    let genuine = release(&author, "2.0.0").sign();
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

    let neighbours = [1, 3, 7, 9];
    let hostile = Hostile::start(&neighbours.map(|i| addrs[i].clone()));
    let sender = hostile.peer_id;
    wait_until("the hostile peer is in a neighbour's mesh", || async {
        for i in neighbours {
            if nodes[i].mesh_peers().await.unwrap().contains(&sender) {
                return true;
            }
        }
        false
    })
    .await;
    // Let it earn some standing in its neighbours' meshes first: one
    // forgery must outweigh it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    hostile.publish(bytes).await.unwrap();
    // Its neighbours reject the forgery, and gossipsub's invalid-message
    // penalty drops its score below zero (it decays back within seconds).
    wait_until("a neighbour penalises the forger", || async {
        for i in neighbours {
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
    let good = release(&author, "3.0.0").sign();
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

/// A record whose file name holds U+202E RIGHT-TO-LEFT OVERRIDE (shown as
/// `Safeexe.apk`), validly signed by its author, gossiped by a hostile peer
/// X to node N: N refuses it as `invalid` and penalises X, and neither N nor
/// its neighbour M stores it. Topology: X ── N ── M.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_a_bidi_control_is_refused_and_never_propagates() {
    let (_dn, n, n_addr) = common::node(|_| {}).await;
    let (_dm, m, _) = common::node(|_| {}).await;
    m.dial(n_addr.clone()).await.unwrap();
    let x = Hostile::start(&[n_addr]);
    wait_until("X and M are in N's mesh", || async {
        let mesh = n.mesh_peers().await.unwrap();
        mesh.contains(&x.peer_id) && mesh.contains(&m.peer_id())
    })
    .await;
    let author = key(1);
    let Record::Release(mut spoof) = release(&author, "1.0.0").sign().record().clone() else {
        unreachable!()
    };
    spoof.file_name = "Safe\u{202E}kpa.exe".into();
    let bytes = ipsr_proto::noncanonical::signed_anyway(&Record::Release(spoof), &author);
    let refused = SignedRecord::from_bytes(&bytes)
        .unwrap()
        .verify()
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "invalid record: file_name contains U+202E, an invisible or bidirectional formatting character"
    );
    x.publish(bytes).await.unwrap();
    wait_until("N refuses the record as invalid", || async {
        common::metric(
            &n,
            "ipsr_records_rejected_total{source=\"gossip\",reason=\"invalid\"}",
        )
        .await
            == 1
    })
    .await;
    wait_until("N penalises X", || async {
        n.peer_score(x.peer_id)
            .await
            .unwrap()
            .is_some_and(|s| s < 0.0)
    })
    .await;
    // A good record published on N afterwards reaches M; the spoof never
    // did (M saw nothing to refuse), and neither node stored it.
    let good = release(&author, "2.0.0").sign();
    n.publish(good.clone()).await.unwrap();
    wait_until("M holds the good record", || holds(&m, &good)).await;
    let invalid_at_m = common::metric(
        &m,
        "ipsr_records_rejected_total{source=\"gossip\",reason=\"invalid\"}",
    )
    .await;
    assert_eq!(invalid_at_m, 0, "N passed the spoof on");
    for node in [&n, &m] {
        assert_eq!(node.store().stats().unwrap().records, 1);
    }
}

/// Whether `node` has put a gossiped record from the future aside.
async fn held_one(node: &Client) -> bool {
    let metrics = node.metrics_text().await.unwrap();
    metrics.contains("ipsr_records_future_total{source=\"gossip\",outcome=\"held\"} 1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_from_the_future_costs_its_relay_nothing_and_arrives_when_due() {
    let (_dir, node, addr) = common::node(|_| {}).await;
    let relay = Hostile::start(&[addr]);
    wait_until("the relay is in the node's mesh", || async {
        node.mesh_peers().await.unwrap().contains(&relay.peer_id)
    })
    .await;
    // Valid, but ten seconds past the node's one-hour bound.
    let ahead = ipsr_proto::now_ms() + MAX_CLOCK_SKEW_MS + 10_000;
    let record = release(&key(1), "1.0.0").created_at(ahead).sign();
    relay.publish(record.to_bytes()).await.unwrap();
    // The verdict is given when the record is held (or, on a machine that
    // stalled for ten seconds, when it is taken at once).
    wait_until("the node checked the record", || async {
        held_one(&node).await || holds(&node, &record).await
    })
    .await;
    // No penalty: asked right after the verdict, before any decay.
    let score = node.peer_score(relay.peer_id).await.unwrap();
    assert!(score.is_some_and(|s| s >= 0.0), "score {score:?}");
    assert!(node.peers().await.unwrap().contains(&relay.peer_id));
    // The node takes it when its time comes, with nothing gossiped again.
    wait_until("the node holds the record", || holds(&node, &record)).await;
    assert!(node.peers().await.unwrap().contains(&relay.peer_id));
    let score = node.peer_score(relay.peer_id).await.unwrap();
    assert!(score.is_some_and(|s| s >= 0.0), "score {score:?}");
}

/// Records of the churning author a node kept: its log positions (one per
/// record kept, never reused) less the `others` it also kept.
fn kept(node: &Client, others: u64) -> u64 {
    node.store().stats().unwrap().log_head - others
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_churning_author_is_throttled_network_wide_and_others_get_through() {
    // One record a second per author, five at once; gossip alone (no sync).
    const RATE: u64 = 1;
    const BURST: u64 = 5;
    let tweak = |c: &mut ipsr_node::Config| {
        c.max_records_per_author_per_sec = RATE as u32;
        c.author_records_burst = BURST as u32;
        c.sync_on_connect = false;
        c.sync_interval = Duration::from_secs(3600);
    };
    let (_da, a, a_addr) = common::node(tweak).await;
    let (_db, b, b_addr) = common::node(tweak).await;
    let (_dc, c, _) = common::node(tweak).await;
    a.dial(b_addr).await.unwrap();
    c.dial(b.listen_addrs().await.unwrap()[0].clone())
        .await
        .unwrap();
    let hostile = Hostile::start(&[a_addr]);
    for (node, peers) in [(&a, 2), (&b, 2), (&c, 1)] {
        wait_until("the line's meshes formed", || async {
            node.mesh_peers().await.unwrap().len() >= peers
        })
        .await;
    }

    // H sends 60 records replacing each other, 20 ms apart (so that they
    // arrive in order, each news to a node without limits), then one of
    // another author; C publishes a third author's.
    let started = Instant::now();
    let churner = key(1);
    for seq in 1..=60 {
        let r = release(&churner, "1.0.0").seq(seq).sign();
        hostile.publish(r.to_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let other = release(&key(2), "1.0.0").sign();
    hostile.publish(other.to_bytes()).await.unwrap();
    let honest = release(&key(3), "1.0.0").sign();
    c.publish(honest.clone()).await.unwrap();
    for node in [&a, &b, &c] {
        wait_until("the other authors' records arrive", || async {
            holds(node, &other).await && holds(node, &honest).await
        })
        .await;
    }
    // Stragglers, if any, arrive within this.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Nobody kept (nor so passed on) more of the churning author than its
    // budget over the time it took; each kept at most what the one before
    // it passed on.
    let budget = BURST + RATE * started.elapsed().as_secs() + 1;
    let (in_a, in_b, in_c) = (kept(&a, 2), kept(&b, 2), kept(&c, 2));
    println!("of 60 records of one author: A kept {in_a}, B {in_b}, C {in_c}; budget {budget}");
    assert!(
        in_a >= 1 && in_a <= budget,
        "A kept {in_a} of 60, budget {budget}"
    );
    assert!(in_b <= in_a && in_c <= in_b, "A {in_a}, B {in_b}, C {in_c}");
    let dropped = common::metric(&a, "ipsr_records_throttled_total{source=\"gossip\"}").await;
    assert!(dropped >= 60 - budget, "A dropped {dropped}");
    // Each node still holds one record of each release, and its log one
    // entry each: the churning author's earlier ones were compacted.
    for node in [&a, &b, &c] {
        let stats = node.store().stats().unwrap();
        assert_eq!((stats.records, stats.log_entries), (3, 3));
    }
    // Dropping an author's records is no fault of the peer that sent them:
    // H keeps its standing at A, and A at B.
    for (node, peer) in [(&a, hostile.peer_id), (&b, a.peer_id())] {
        let score = node.peer_score(peer).await.unwrap();
        assert!(score.is_some_and(|s| s >= 0.0), "score {score:?}");
        assert!(node.peers().await.unwrap().contains(&peer));
    }
}
