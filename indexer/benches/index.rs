//! Indexing throughput: 100,000 records, generated and signed up front,
//! stored in a node's store; a node is started on it with its API, and the
//! indexer tails its log over HTTP into Redis. Prints, in this order:
//!
//! * verify only, with the key cache: decoding and verifying the same
//!   records with the indexer's own `Verifier` (same threads, same author
//!   key caches, pages of the indexer's size), nothing else. The ceiling,
//!   since the indexer verifies every record; the ratio is against it.
//! * verify only, no key cache: each record verified with
//!   `SignedRecord::verify` on the same threads, for comparison.
//! * index into redis: from the start of the indexer to its cursor at the
//!   last record (reading the log, verifying, writing Redis), records/s,
//!   into each of: one private `redis-server`, a Redis Cluster of 3 masters,
//!   and one of 3 masters with a replica each (writes confirmed on a
//!   replica, `docs/redis.md` section 6). The servers are started by the
//!   bench on free ports, with the same binary and settings.
//! * per backend, the CPU time of this process and of each server, and for
//!   a cluster which master holds the keys every batch writes (`packages`,
//!   `recent`, `{global}:stats`): a hot spot shows as one master's CPU
//!   well above the others'.
//! * the ratio of each indexing rate to the first verify-only rate, and of
//!   the clusters' rates to one server's.
//!
//! `cargo bench -p ipsr-indexer --bench index` (the bench's keys are
//! deleted afterwards). `IPSR_BENCH_RECORDS` changes the count;
//! `IPSR_BENCH_SOURCE=local` reads the log in-process instead of over HTTP;
//! `IPSR_BENCH_REDIS=URL` indexes into that Redis (or cluster) only.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipsr_indexer::{
    Entry, HttpSource, Indexer, IndexerConfig, LocalSource, Metrics, RedisConfig, RedisIndex,
    Source, Verifier,
};
use ipsr_proto::{AuthorKey, SignedRecord};
use ipsr_testkit::{ClusterOptions, RedisCluster, RedisServer, cid, free_port, release};

/// The allocator of the `ipsr-indexer` binary, so the bench measures what
/// it runs.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const PACKAGES_PER_AUTHOR: u64 = 20;
const VERSIONS: u64 = 5;

/// Record `i`: author i / 100, package (i / 5) % 20, version i % 5.
fn record(i: u64, keys: &[AuthorKey], t0: u64) -> SignedRecord {
    let per_author = PACKAGES_PER_AUTHOR * VERSIONS;
    let key = &keys[usize::try_from(i / per_author).unwrap()];
    let package = (i / VERSIONS) % PACKAGES_PER_AUTHOR;
    let v = i % VERSIONS;
    release(key, &format!("1.{v}.0"))
        .package(&format!("org.bench{}.app{package}", i / per_author))
        .code(v + 1)
        .seq(i)
        .created_at(t0 + i)
        .cid(cid(u32::try_from(i).unwrap()))
        .size(1_000_000 + i)
        .title(format!("Benchmark app {package} version {v}"))
        .summary("A record of the indexing benchmark")
        .sign()
}

fn main() {
    let n: u64 = std::env::var("IPSR_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_author = PACKAGES_PER_AUTHOR * VERSIONS;
    let keys: Vec<AuthorKey> = (0..n.div_ceil(per_author))
        .map(|a| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&a.to_be_bytes());
            AuthorKey::from_seed(&seed)
        })
        .collect();
    let t0 = ipsr_proto::now_ms() - 86_400_000 * 30;

    let started = Instant::now();
    let chunk = n.div_ceil(threads as u64);
    let records: Vec<SignedRecord> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let keys = &keys;
                s.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(n))
                        .map(|i| record(i, keys, t0))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    println!(
        "generated and signed {n} records in {:.1?}",
        started.elapsed()
    );

    let dir = tempfile::tempdir().unwrap();
    {
        let store = ipsr_node::Store::open(&dir.path().join("store.redb")).unwrap();
        for batch in records.chunks(5000) {
            store.apply(batch.to_vec()).unwrap();
        }
        assert_eq!(store.stats().unwrap().log_head, n);
    }

    // The ceiling: decode + verify only, same records, same code and
    // threads as the indexer (a `Verifier` with its key caches, fed pages of
    // the indexer's size).
    let entries: Vec<Entry> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Entry {
            position: i as u64 + 1,
            bytes: r.to_bytes(),
        })
        .collect();
    let page = IndexerConfig::default().batch;
    let cpu_before = process_cpu();
    let started = Instant::now();
    let mut verifier = Verifier::new(threads);
    let mut valid = 0;
    for chunk in entries.chunks(page) {
        valid += verifier
            .verify(chunk)
            .iter()
            .filter(|(_, r)| r.is_ok())
            .count();
    }
    let verify_time = started.elapsed();
    let verify_cpu = cpu_since(cpu_before);
    assert_eq!(valid as u64, n);
    let verify_rate = n as f64 / verify_time.as_secs_f64();
    println!(
        "verify only ({threads} threads, author key cache, pages of {page}): \
         {verify_rate:>7.0} records/s ({verify_time:.2?}{verify_cpu})"
    );

    // For comparison: every record verified without a key cache.
    let cpu_before = process_cpu();
    let started = Instant::now();
    let chunk = entries.len().div_ceil(threads);
    let plain_valid: usize = std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .filter(|e| {
                            SignedRecord::from_bytes(&e.bytes)
                                .and_then(SignedRecord::verify)
                                .is_ok()
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let plain_time = started.elapsed();
    let plain_cpu = cpu_since(cpu_before);
    assert_eq!(plain_valid as u64, n);
    println!(
        "verify only ({threads} threads, no key cache): {:>7.0} records/s ({plain_time:.2?}{plain_cpu})",
        n as f64 / plain_time.as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = ipsr_node::spawn(ipsr_node::Config::local(dir.path().to_owned()))
            .await
            .unwrap();
        let (addr, server) = ipsr_node::serve_api(node.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        tokio::spawn(server);
        let local = std::env::var("IPSR_BENCH_SOURCE").is_ok_and(|s| s == "local");
        let label = if local { "in-process log" } else { "HTTP log" };
        let api = format!("http://{addr}");
        let run = |index: RedisIndex| {
            let node = node.clone();
            let api = api.clone();
            async move {
                if local {
                    run_indexer(LocalSource::new(node), index, n, threads).await
                } else {
                    run_indexer(HttpSource::new(&api), index, n, threads).await
                }
            }
        };
        let mut rates: Vec<(String, f64)> = Vec::new();
        if let Ok(url) = std::env::var("IPSR_BENCH_REDIS") {
            let rate = index_into(&run, &url, std::slice::from_ref(&url), n, label).await;
            rates.push((url, rate));
        } else {
            let single = RedisServer::start(free_port());
            let rate = index_into(&run, &single.url(), &[single.url()], n, label).await;
            rates.push(("one redis-server".into(), rate));
            drop(single);
            for replicas in [0, 1] {
                let cluster = RedisCluster::start(ClusterOptions {
                    masters: 3,
                    replicas_per_master: replicas,
                    ..ClusterOptions::default()
                });
                let masters: Vec<String> = cluster
                    .masters()
                    .iter()
                    .map(|p| format!("redis://127.0.0.1:{p}"))
                    .collect();
                let rate = index_into(&run, &cluster.url(), &masters, n, label).await;
                for key in ["packages", "recent", "{global}:stats"] {
                    let port = cluster.master_of_key(&format!("ipsr-bench:{key}"));
                    println!("  {key} is on the master at port {port}");
                }
                rates.push((
                    format!("cluster of 3 masters, {replicas} replica(s) each"),
                    rate,
                ));
            }
        }
        for (what, rate) in &rates {
            println!(
                "ratio {:.2}: indexing rate into {what} / verify-only rate with the key cache \
                 (targets: >= 20000 records/s, >= 0.50)",
                rate / verify_rate
            );
        }
        if let Some((_, base)) = rates.first() {
            for (what, rate) in &rates[1..] {
                println!(
                    "ratio {:.2}: {what} / one redis-server (target >= 1.0)",
                    rate / base
                );
            }
        }
    });
}

/// Indexes the `n` records into the Redis or cluster at `url` (keys under
/// `ipsr-bench:`, deleted after) with `run`; prints the rate and the CPU
/// used by this process and by each of `servers` (the masters of a
/// cluster). Returns the rate.
async fn index_into<F, Fut>(run: &F, url: &str, servers: &[String], n: u64, label: &str) -> f64
where
    F: Fn(RedisIndex) -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut config = RedisConfig::new(url);
    config.prefix = "ipsr-bench:".into();
    let index = RedisIndex::open(&config).unwrap();
    index.clear().await.unwrap();
    let mut servers_before = Vec::new();
    for s in servers {
        servers_before.push(redis_cpu(s).await);
    }
    let cpu_before = process_cpu();
    let index_time = run(index.clone()).await;
    let cpu_after = process_cpu();
    let stats = ipsr_indexer::Index::stats(&index).await.unwrap();
    assert_eq!(stats.records, n, "every record indexed once");
    let what = if index.is_cluster() {
        format!("redis cluster, {} masters", servers.len())
    } else {
        "one redis-server".to_owned()
    };
    let index_rate = n as f64 / index_time.as_secs_f64();
    println!("index into {what} ({label}): {index_rate:>7.0} records/s ({index_time:.2?})");
    // CPU time used while indexing, whatever the other load on the machine.
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        print!(
            "  cpu while indexing: this process (node + indexer) {:.2}s",
            b - a
        );
        for (s, before) in servers.iter().zip(servers_before) {
            if let (Some(a), Some(b)) = (before, redis_cpu(s).await) {
                let port = s.rsplit(':').next().unwrap_or(s);
                print!(", redis-server :{port} {:.2}s", b - a);
            }
        }
        println!();
    }
    index.clear().await.unwrap();
    index_rate
}

/// Runs an indexer (verifying on `threads` threads) until its cursor
/// reaches `n`; returns the time taken.
async fn run_indexer<S: Source + 'static>(
    source: S,
    index: RedisIndex,
    n: u64,
    threads: usize,
) -> Duration {
    let config = IndexerConfig {
        wait: Duration::from_secs(1),
        verify_threads: threads,
        ..IndexerConfig::default()
    };
    let indexer = Indexer::new(source, index, config);
    let metrics: std::sync::Arc<Metrics> = indexer.metrics();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(indexer.run(async {
        let _ = rx.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(600);
    while metrics.cursor.load(Ordering::Relaxed) < n {
        assert!(Instant::now() < deadline, "indexing took over 10 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    elapsed
}

/// CPU seconds (user + system) used by this process so far, from
/// `/proc/self/stat` (Linux; `None` elsewhere).
fn process_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): state is the
    // 3rd field, utime and stime the 14th and 15th, in clock ticks (100/s).
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: f64 = rest.next()?.parse().ok()?;
    let stime: f64 = rest.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// `", N.NNs cpu"`: the CPU time this process used since `before`.
fn cpu_since(before: Option<f64>) -> String {
    match (before, process_cpu()) {
        (Some(a), Some(b)) => format!(", {:.2}s cpu", b - a),
        _ => String::new(),
    }
}

/// CPU seconds used by the Redis server so far (`INFO cpu`).
async fn redis_cpu(url: &str) -> Option<f64> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(&mut conn)
        .await
        .ok()?;
    let field = |name: &str| -> Option<f64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
            .trim()
            .parse()
            .ok()
    };
    Some(field("used_cpu_user")? + field("used_cpu_sys")?)
}
