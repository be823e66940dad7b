//! In-process tests of catch-up over `/ipsr/sync/1.0.0`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use ipsr_node::Client;
use ipsr_proto::{RecordId, SignedRecord};
use ipsr_testkit::{key, release, wait_until};
use libp2p::Multiaddr;

mod common;

async fn node() -> (tempfile::TempDir, Client, Multiaddr) {
    common::node(|_| {}).await
}

fn releases(seed: u8, n: usize) -> Vec<SignedRecord> {
    let key = key(seed);
    (0..n)
        .map(|i| release(&key, &format!("1.0.{i}")).code(i as u64).sign())
        .collect()
}

fn ids(node: &Client) -> BTreeSet<RecordId> {
    node.store()
        .record_ids()
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_obtains_all_500_records() {
    // 500 records of one author at once are past its default rate (a burst
    // of 200): this test is about sync, which that rate does not apply to.
    let (_a_dir, a, a_addr) = common::node(|c| c.max_records_per_author_per_sec = 0).await;
    for record in releases(1, 500) {
        assert!(a.publish(record).await.unwrap().is_news());
    }
    let (_b_dir, b, _) = node().await;
    b.dial(a_addr).await.unwrap();
    wait_until("the late joiner holds all 500", || async {
        ids(&b).len() == 500
    })
    .await;
    assert_eq!(ids(&a), ids(&b));
    // Every record also reached the joiner's log, for its consumers.
    assert_eq!(b.store().stats().unwrap().log_head, 500);
    assert_eq!(*b.log_head().borrow(), 500);
}

/// Two groups, {a, b} and {c, d}, publish while apart, then one link heals
/// the partition:
///
/// ```text
///   a ─ b       c ─ d      then     a ─ b ─ c ─ d
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_groups_converge_after_healing() {
    let (_da, a, _) = node().await;
    let (_db, b, b_addr) = node().await;
    let (_dc, c, c_addr) = node().await;
    let (_dd, d, d_addr) = node().await;
    a.dial(b_addr).await.unwrap();
    c.dial(d_addr).await.unwrap();
    let (left, right) = (releases(2, 20), releases(3, 20));
    for r in &left {
        a.publish(r.clone()).await.unwrap();
    }
    for r in &right {
        d.publish(r.clone()).await.unwrap();
    }
    wait_until("each group agrees", || async {
        ids(&b).len() == 20 && ids(&c).len() == 20
    })
    .await;
    assert!(ids(&a).is_disjoint(&ids(&c)), "the groups were apart");

    b.dial(c_addr).await.unwrap();
    let all: BTreeSet<RecordId> = left.iter().chain(&right).map(SignedRecord::id).collect();
    for (name, node) in [("a", &a), ("b", &b), ("c", &c), ("d", &d)] {
        wait_until(&format!("{name} holds all 40"), || async {
            ids(node) == all
        })
        .await;
    }
}
