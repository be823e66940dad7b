//! The indexer on a real Redis Cluster (`redis-server --cluster-enabled`
//! processes on loopback): a master killed while indexing, scripts lost by
//! the nodes, several indexers sharing the cluster, a password. The
//! scenario suite runs on a cluster too (`scenarios.rs`).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Running, TestIndex};
use ipsr_indexer::{Index, StoreIndex};
use ipsr_testkit::{ClusterOptions, RedisCluster, redis_url, releases, shared_cluster, wait_until};

/// What the cluster index must equal: the keys a single Redis holds for
/// the same node (their names relative to the prefix, their values), and
/// the embedded store's answers.
async fn same_as_single_redis_and_store(cluster: &TestIndex, node: &ipsr_node::Client, name: &str) {
    let single = TestIndex::new(&redis_url(), name);
    let running = Running::start(node, single.index.clone());
    running.caught_up(node).await;
    let (a, b) = (
        cluster.index.dump().await.unwrap(),
        single.index.dump().await.unwrap(),
    );
    let (ka, kb): (BTreeMap<_, _>, BTreeMap<_, _>) =
        (a.iter().cloned().collect(), b.iter().cloned().collect());
    let mut differences = Vec::new();
    for (k, v) in &ka {
        match kb.get(k) {
            None => differences.push(format!("only on the cluster: {k} = {v:.300}")),
            Some(w) if w != v => {
                differences.push(format!("{k}\n  cluster: {v:.300}\n  one Redis: {w:.300}"));
            }
            _ => {}
        }
    }
    for (k, v) in &kb {
        if !ka.contains_key(k) {
            differences.push(format!("only on one Redis: {k} = {v:.300}"));
        }
    }
    assert!(
        differences.is_empty(),
        "the cluster's keys differ from one Redis's:\n{}",
        differences.join("\n")
    );
    let store = StoreIndex::new(node.store().clone());
    assert_eq!(
        cluster.index.stats().await.unwrap(),
        store.stats().await.unwrap()
    );
    assert_eq!(
        cluster.index.recent(100).await.unwrap(),
        store.recent(100).await.unwrap()
    );
    assert_eq!(
        cluster.index.packages(None, 2000).await.unwrap(),
        store.packages(None, 2000).await.unwrap()
    );
}

/// A master dies while records stream in and are indexed; its replica is
/// promoted. Indexing pauses, resumes by itself, and the index ends equal
/// to one Redis's and the embedded store's: nothing lost (every record in,
/// every global entry written) and nothing applied twice (the counters).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_while_indexing_loses_nothing() {
    let mut cluster = RedisCluster::start(ClusterOptions {
        masters: 3,
        replicas_per_master: 1,
        node_timeout_ms: 1000,
        ..ClusterOptions::default()
    });
    let (_dir, node) = common::node().await;
    let records = releases(3000);
    let test = TestIndex::new(&cluster.url(), "failover");
    let running = Running::start(&node, test.index.clone());
    let publisher = {
        let node = node.clone();
        let records = records.clone();
        tokio::spawn(async move {
            common::publish(&node, records).await;
        })
    };
    // Every batch updates the totals: kill the master that holds them once
    // indexing is under way.
    wait_until("indexing under way", || async {
        running.metrics.records_indexed.load(Ordering::Relaxed) >= 300
    })
    .await;
    let victim = cluster.master_of_key(&format!("{}{{global}}:stats", test.index.prefix()));
    let masters_before = cluster.masters();
    cluster.kill(victim);
    let killed_at = Instant::now();
    // When Redis failed first after the kill, and when it answered again
    // last: the pause of indexing.
    let watch = {
        let metrics = running.metrics.clone();
        tokio::spawn(async move {
            let (mut down, mut up) = (None, None);
            while killed_at.elapsed() < Duration::from_secs(60) {
                match (metrics.redis_up.load(Ordering::Relaxed), down) {
                    (0, None) => down = Some(killed_at.elapsed()),
                    (0, Some(_)) => up = None,
                    (_, Some(_)) if up.is_none() => up = Some(killed_at.elapsed()),
                    _ => {}
                }
                if up.is_some_and(|u: Duration| killed_at.elapsed() > u + Duration::from_secs(5)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (down, up)
        })
    };
    publisher.await.unwrap();
    running.caught_up(&node).await;
    let resumed_after = killed_at.elapsed();
    let (down, up) = watch.await.unwrap();
    eprintln!("failover: indexing paused from {down:?} to {up:?} after the kill");
    assert!(
        down.is_some() && up.is_some(),
        "indexing paused and resumed"
    );
    assert!(
        cluster.wait_until_healthy(Duration::from_secs(30)),
        "the replica took over"
    );
    let masters_after = cluster.masters();
    assert!(!masters_after.contains(&victim));
    assert_ne!(masters_before, masters_after);
    assert!(
        running.metrics.redis_errors.load(Ordering::Relaxed) > 0,
        "the indexer met the failover"
    );
    eprintln!(
        "failover: caught up {:.1} s after the kill, {} redis errors met",
        resumed_after.as_secs_f64(),
        running.metrics.redis_errors.load(Ordering::Relaxed)
    );
    assert_eq!(
        running.metrics.records_indexed.load(Ordering::Relaxed) as usize,
        records.len()
    );
    same_as_single_redis_and_store(&test, &node, "failover_single").await;
}

/// Writes must reach a replica before the cursor moves: with every replica
/// stopped (SIGSTOP: still "online" for the cluster, whose node timeout is
/// long here), a new record's page is not confirmed (`WAIT` times out), so
/// the cursor stays behind and the indexer retries; once the replicas run
/// again, it catches up by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cursor_waits_for_the_replicas() {
    let cluster = RedisCluster::start(ClusterOptions {
        masters: 3,
        replicas_per_master: 1,
        node_timeout_ms: 20_000,
        ..ClusterOptions::default()
    });
    let (_dir, node) = common::node().await;
    let records = releases(20);
    let test = TestIndex::new(&cluster.url(), "confirm");
    let running = Running::start(&node, test.index.clone());
    common::publish(&node, records[..10].to_vec()).await;
    running.caught_up(&node).await;
    let masters = cluster.masters();
    let replicas: Vec<u32> = cluster
        .ports()
        .into_iter()
        .filter(|p| !masters.contains(p))
        .map(|p| {
            let info = cluster.cli(p, &["INFO", "server"]);
            info.lines()
                .find_map(|l| l.strip_prefix("process_id:"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(replicas.len(), 3);
    let signal = |sig: &str| {
        for pid in &replicas {
            let status = std::process::Command::new("kill")
                .args([sig, &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
    };
    let errors_before = running.metrics.redis_errors.load(Ordering::Relaxed);
    signal("-STOP");
    common::publish(&node, records[10..].to_vec()).await;
    let head = node.store().stats().unwrap().log_head;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let held = running.metrics.cursor.load(Ordering::Relaxed);
    let errors = running.metrics.redis_errors.load(Ordering::Relaxed) - errors_before;
    signal("-CONT");
    assert!(held < head, "the cursor moved to {held} without a replica");
    assert!(errors > 0, "the unconfirmed writes were retried");
    running.caught_up(&node).await;
    same_as_single_redis_and_store(&test, &node, "confirm_single").await;
}

/// Nodes that lost their scripts (a restart, a replica promoted without
/// them) answer NOSCRIPT; the scripts are loaded again on them and the
/// writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_lost_by_the_nodes_are_loaded_again() {
    let cluster = RedisCluster::start(ClusterOptions::default());
    let (_dir, node) = common::node().await;
    let records = releases(200);
    let test = TestIndex::new(&cluster.url(), "noscript");
    let running = Running::start(&node, test.index.clone());
    common::publish(&node, records[..100].to_vec()).await;
    running.caught_up(&node).await;
    for port in cluster.masters() {
        assert_eq!(cluster.cli(port, &["SCRIPT", "FLUSH"]), "OK");
    }
    common::publish(&node, records[100..].to_vec()).await;
    running.caught_up(&node).await;
    assert_eq!(running.metrics.records_indexed.load(Ordering::Relaxed), 200);
    same_as_single_redis_and_store(&test, &node, "noscript_single").await;
}

/// Two indexers, each of its own node, write into one cluster under one
/// prefix, each with its own cursor; the nodes got the same records in
/// opposite orders. The index converges to what one Redis holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_indexers_of_two_nodes_converge_on_one_cluster() {
    let records = releases(600);
    let (_dir_a, a) = common::node().await;
    let (_dir_b, b) = common::node().await;
    let test = TestIndex::new(&shared_cluster().url(), "two_indexers");
    let running_a = Running::start(&a, test.index.clone());
    let running_b = Running::start(&b, test.index.clone());
    let (ra, rb) = (records.clone(), records.clone());
    let (na, nb) = (a.clone(), b.clone());
    let pa = tokio::spawn(async move {
        common::publish(&na, ra).await;
    });
    let pb = tokio::spawn(async move {
        common::publish(&nb, rb.into_iter().rev()).await;
    });
    pa.await.unwrap();
    pb.await.unwrap();
    running_a.caught_up(&a).await;
    running_b.caught_up(&b).await;
    // Each node's cursor is its own key.
    let cursor = |n: &ipsr_node::Client| {
        let id = n.peer_id().to_string();
        let index = test.index.clone();
        async move { index.cursor(&id).await.unwrap() }
    };
    assert_eq!(cursor(&a).await, a.store().stats().unwrap().log_head);
    assert_eq!(cursor(&b).await, b.store().stats().unwrap().log_head);
    // Apart from the cursors, the keys are those one node's records give.
    let single = TestIndex::new(&redis_url(), "two_indexers_single");
    let running = Running::start(&a, single.index.clone());
    running.caught_up(&a).await;
    let without_cursors = |dump: Vec<(String, String)>| {
        dump.into_iter()
            .filter(|(k, _)| !k.starts_with("cursor:"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        without_cursors(test.index.dump().await.unwrap()),
        without_cursors(single.index.dump().await.unwrap())
    );
}

/// A cluster that wants a password: the URL carries it to every node, and
/// a wrong one is refused with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_protected_cluster() {
    let cluster = RedisCluster::start(ClusterOptions {
        password: Some("s3cret-pass".into()),
        ..ClusterOptions::default()
    });
    let url = cluster.url();
    assert!(url.starts_with("redis+cluster://:s3cret-pass@"), "{url}");
    let (_dir, node) = common::node().await;
    let test = TestIndex::new(&url, "password");
    let running = Running::start(&node, test.index.clone());
    common::publish(&node, releases(50)).await;
    running.caught_up(&node).await;
    let store = StoreIndex::new(node.store().clone());
    assert_eq!(
        test.index.stats().await.unwrap(),
        store.stats().await.unwrap()
    );

    let wrong = url.replace("s3cret-pass", "wrong");
    let mut config = ipsr_indexer::RedisConfig::new(wrong);
    config.response_timeout = Duration::from_secs(2);
    assert_eq!(
        config.redacted_url(),
        url.replace("s3cret-pass", "***").replace("wrong", "***")
    );
    let refused = ipsr_indexer::RedisIndex::open(&config).unwrap();
    let err = refused.ping().await.unwrap_err().to_string();
    assert!(
        err.contains("WRONGPASS") || err.contains("auth") || err.contains("Auth"),
        "{err}"
    );
}
