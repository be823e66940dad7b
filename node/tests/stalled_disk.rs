//! A node whose disk falls behind: verified records wait for the store in
//! a bounded queue (`writes.rs`), and past it are shed with a clear error
//! (a publish) or ignored (a gossiped record, which sync brings back later)
//! instead of piling up in memory; nothing already queued is lost.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ipsr_node::{Config, NodeError};
use ipsr_testkit::{TIMEOUT, agent_with_timeout, key, release, wait_until};

mod common;

/// Records that wait for the disk at most (`writes::MAX_QUEUED`), and the
/// one being written when the disk stalled.
const QUEUED: usize = 1024;
const SHED: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_sheds_records_past_the_queue_and_loses_none_it_took() {
    let (_dir, node, _) = common::node(|c| c.max_records_per_author_per_sec = 0).await;
    let records: Vec<_> = (0..1 + QUEUED + SHED)
        .map(|i| {
            release(&key(7), "1.0.0")
                .package(&format!("com.example.p{i}"))
                .sign()
        })
        .collect();

    // The disk stalls: every write waits on the store's write lock.
    let hold = node.store().hold_writes().unwrap();
    let mut publishes = Vec::new();
    for (i, record) in records.iter().cloned().enumerate() {
        let node = node.clone();
        publishes.push((i, tokio::spawn(async move { node.publish(record).await })));
        // In this order: the first is written (and stalls), the next
        // QUEUED wait, the rest find the queue full.
        tokio::task::yield_now().await;
    }
    // The shed ones are answered at once, while the disk is still stalled.
    let mut shed = Vec::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while shed.len() < SHED {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} publishes were refused while the disk stalled",
            shed.len()
        );
        let mut waiting = Vec::new();
        for (i, task) in publishes.drain(..) {
            if task.is_finished() {
                match task.await.unwrap() {
                    Err(e @ NodeError::StoreBehind { .. }) => {
                        assert!(e.to_string().contains("try again later"), "{e}");
                        shed.push(i);
                    }
                    other => panic!("publish {i} answered while the disk stalled: {other:?}"),
                }
            } else {
                waiting.push((i, task));
            }
        }
        publishes = waiting;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(publishes.len(), 1 + QUEUED, "queued beyond the bound");
    assert_eq!(
        common::metric(&node, "ipsr_records_shed_total{source=\"local\"}").await,
        SHED as u64
    );

    // Over HTTP, a publish is refused the same way, with a clear code and
    // a hint to come back.
    let (addr, server) = ipsr_node::serve_api(node.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = tokio::spawn(server);
    let refused = records[shed[0]].to_bytes();
    let (status, retry, body) = tokio::task::spawn_blocking(move || {
        let mut response = agent_with_timeout(TIMEOUT)
            .post(format!("http://{addr}/v1/records"))
            .header("content-type", "application/octet-stream")
            .send(&refused[..])
            .unwrap();
        let retry = response.headers().get("retry-after").cloned();
        (
            response.status().as_u16(),
            retry,
            response.body_mut().read_to_string().unwrap(),
        )
    })
    .await
    .unwrap();
    server.abort();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"store_behind\""), "{body}");
    assert_eq!(retry.as_ref().and_then(|v| v.to_str().ok()), Some("1"));

    // The disk catches up: every record that was taken is stored.
    drop(hold);
    for (i, task) in publishes {
        let stored = tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("the queued writes finish once the disk is back")
            .unwrap()
            .unwrap_or_else(|e| panic!("queued publish {i} failed: {e}"));
        assert!(stored.is_news(), "publish {i}");
    }
    assert_eq!(node.store().stats().unwrap().records, (1 + QUEUED) as u64);
    // Nothing is lost for good: a refused publish goes through when tried
    // again.
    for i in shed {
        assert!(node.publish(records[i].clone()).await.unwrap().is_news());
    }
    assert_eq!(node.store().stats().unwrap().records, records.len() as u64);
}

/// A peer floods gossip while this node's disk stalls: the node takes what
/// its queue holds, ignores the rest (counted as shed, the relay not
/// penalised), and once its disk is back, sync brings every record it
/// ignored: nothing is lost, and nothing past the queue was held meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_past_a_stalled_disk_is_shed_then_comes_back_by_sync() {
    const FLOOD: usize = QUEUED + 400;
    let tweak = |c: &mut Config| {
        c.max_records_per_author_per_sec = 0;
        c.max_records_per_peer_per_sec = 100_000;
    };
    let (_a_dir, a, _) = common::node(tweak).await;
    let (_b_dir, b, b_addr) = common::node(tweak).await;
    a.dial(b_addr).await.unwrap();
    for node in [&a, &b] {
        wait_until("the two nodes share a mesh", || async {
            !node.mesh_peers().await.unwrap().is_empty()
        })
        .await;
    }

    let hold = b.store().hold_writes().unwrap();
    // A's own queue takes a write's worth at a time.
    let records: Vec<_> = (0..FLOOD)
        .map(|i| {
            release(&key(8), "1.0.0")
                .package(&format!("com.example.flood{i}"))
                .sign()
        })
        .collect();
    for wave in records.chunks(256) {
        let publishes: Vec<_> = wave
            .iter()
            .cloned()
            .map(|record| {
                let a = a.clone();
                tokio::spawn(async move { a.publish(record).await })
            })
            .collect();
        for publish in publishes {
            assert!(publish.await.unwrap().unwrap().is_news());
        }
    }
    // B took one write and a full queue; every record past them was
    // ignored, while its disk was still stalled.
    let shed = "ipsr_records_shed_total{source=\"gossip\"}";
    let past_the_queue = (FLOOD - 1 - QUEUED) as u64;
    wait_until("the flood past the queue is shed", || async {
        common::metric(&b, shed).await >= past_the_queue
    })
    .await;
    assert_eq!(common::metric(&b, shed).await, past_the_queue);
    assert_eq!(b.store().stats().unwrap().records, 0, "the disk stalled");

    // The disk is back: the queue is written, and sync brings the rest.
    drop(hold);
    wait_until("B holds every record of the flood", || async {
        b.store().stats().unwrap().records == FLOOD as u64
    })
    .await;
    assert_eq!(common::metric(&b, shed).await, past_the_queue);
    // Every record stored is counted once: by gossip at most what was
    // queued, the rest by sync and by the DHT puts B stored (16 at most
    // wait for the disk at once; the others were shed). A sync session
    // counts when it ends, and one that began while the disk stalled may
    // store some queued ones first.
    let accepted = |source: &'static str| {
        let b = b.clone();
        async move {
            common::metric(
                &b,
                &format!("ipsr_records_accepted_total{{source=\"{source}\"}}"),
            )
            .await
        }
    };
    wait_until("every stored record is counted", || async {
        accepted("gossip").await + accepted("sync").await + accepted("dht").await >= FLOOD as u64
    })
    .await;
    let (by_gossip, by_sync, by_dht) = (
        accepted("gossip").await,
        accepted("sync").await,
        accepted("dht").await,
    );
    let dht_shed = common::metric(&b, "ipsr_records_shed_total{source=\"dht\"}").await;
    eprintln!(
        "stored by gossip {by_gossip}, sync {by_sync}, DHT puts {by_dht}; shed DHT puts {dht_shed}"
    );
    assert!(by_gossip <= (1 + QUEUED) as u64, "{by_gossip} by gossip");
    assert_eq!(by_gossip + by_sync + by_dht, FLOOD as u64);
    assert!(dht_shed > 0, "no DHT put was shed while the disk stalled");
}
