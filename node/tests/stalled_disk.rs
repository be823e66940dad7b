//! A node whose disk falls behind: verified records wait for the store in
//! a bounded queue (`writes.rs`), and past it are shed with a clear error
//! instead of piling up in memory; nothing already queued is lost.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ipsr_node::NodeError;
use ipsr_testkit::{TIMEOUT, agent_with_timeout, key, release};

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
