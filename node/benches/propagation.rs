//! Benchmark: record propagation over many `ipsr-node` processes on
//! loopback, a content fetch by a node far from the provider, a late
//! joiner's catch-up, and an idle node's memory.
//!
//! ```sh
//! cargo bench -p ipsr-node --bench propagation            # 100 nodes, 200 records, 10 far fetches
//! IPSR_BENCH_NODES=10 IPSR_BENCH_RECORDS=50 cargo bench -p ipsr-node --bench propagation
//! ```
//!
//! The topology is sparse and random (seeded): each node bootstraps from 2
//! random earlier nodes. It prints its figures; it asserts nothing
//! (targets: 100% delivered, p99 under 1 s; every far fetch found and
//! downloaded; catch-up of 10 000 records under 5 s; idle RSS under
//! 30 MiB). Every process it starts is killed when it ends, also on
//! failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipsr_proto::SignedRecord;
use ipsr_testkit::{XorShift, key, pattern, release, rss_kib};

mod common;

use common::{Node, agent, env_usize, get_json, start};

fn records(seed: u8, n: usize) -> Vec<SignedRecord> {
    let key = key(seed);
    (0..n)
        .map(|i| {
            release(&key, &format!("1.0.{i}"))
                .package(&format!("com.bench.app{}", i % 100))
                .code(i as u64)
                .sign()
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let n = env_usize("IPSR_BENCH_NODES", 100);
    let r = env_usize("IPSR_BENCH_RECORDS", 200);
    let base = tempfile::tempdir().unwrap();
    let mut rng = XorShift::new(0x9e37_79b9_7f4a_7c15);
    let agent = agent();

    // A random sparse topology: each node bootstraps from up to 2 earlier ones.
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..n {
        let bootstrap: Vec<String> = (0..2.min(i))
            .map(|_| nodes[rng.below(i as u64) as usize].p2p.clone())
            .collect();
        nodes.push(start(&base.path().join(format!("n{i}")), &bootstrap));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for node in &nodes {
        while get_json(&agent, &format!("{}/v1/status", node.api))["peers"].as_u64() == Some(0) {
            assert!(Instant::now() < deadline, "a node found no peer");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::thread::sleep(Duration::from_secs(3)); // let the gossipsub meshes form
    println!("{n} nodes up, publishing {r} records from random nodes");

    // Watch every node's log: when did each record arrive?
    let arrivals: Arc<Mutex<Vec<HashMap<String, Instant>>>> =
        Arc::new(Mutex::new(vec![HashMap::new(); n]));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut watchers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let (api, arrivals, stop, agent) = (
            node.api.clone(),
            arrivals.clone(),
            stop.clone(),
            agent.clone(),
        );
        watchers.push(std::thread::spawn(move || {
            let mut after = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let page = get_json(
                    &agent,
                    &format!("{api}/v1/log?after={after}&wait=1&limit=1000"),
                );
                let now = Instant::now();
                for e in page["entries"].as_array().into_iter().flatten() {
                    after = after.max(e["position"].as_u64().unwrap());
                    arrivals.lock().unwrap()[i]
                        .entry(e["id"].as_str().unwrap().to_owned())
                        .or_insert(now);
                }
            }
        }));
    }

    let mut published = HashMap::new();
    for record in records(1, r) {
        let origin = rng.below(n as u64) as usize;
        let node = &nodes[origin];
        let at = Instant::now();
        let mut resp = agent
            .post(format!("{}/v1/records", node.api))
            .header("content-type", "application/octet-stream")
            .send(record.to_bytes())
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "{}",
            resp.body_mut().read_to_string().unwrap()
        );
        published.insert(record.id().to_string(), (at, origin));
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = arrivals
            .lock()
            .unwrap()
            .iter()
            .all(|a| published.keys().all(|id| a.contains_key(id)));
        if done || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in watchers {
        let _ = w.join();
    }
    let arrivals = arrivals.lock().unwrap();
    // The baseline: each record at the node it was published on, which
    // crosses no network: the machine's own latency (the publish, the
    // write, the watcher's long poll) under this load.
    let (mut delays, mut local) = (Vec::new(), Vec::new());
    for (i, a) in arrivals.iter().enumerate() {
        for (id, (at, origin)) in &published {
            if let Some(seen) = a.get(id) {
                let delay = seen.saturating_duration_since(*at);
                match i == *origin {
                    true => local.push(delay),
                    false => delays.push(delay),
                }
            }
        }
    }
    local.sort();
    println!(
        "baseline, each record at its own node: p50 {:?} p99 {:?}",
        percentile(&local, 0.5),
        percentile(&local, 0.99),
    );
    delays.sort();
    let expected = (n - 1) * r;
    println!(
        "propagation to the other nodes: delivered {}/{} ({:.2}%), delay p50 {:?} p99 {:?} \
         max {:?} (target: p99 < 300 ms at 100 nodes)",
        delays.len(),
        expected,
        100.0 * delays.len() as f64 / expected as f64,
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or_default(),
    );

    let fetches = env_usize("IPSR_BENCH_FETCHES", 10);
    println!("nodes before the far fetches: {}", rss_spread(&nodes));
    // The machine's load: 100 nodes on a small machine queue for the CPU,
    // which shows in every delay above and below.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average (1 min): {}",
        load.split_whitespace().next().unwrap_or("?")
    );
    far_fetch(&agent, &nodes, fetches, &mut rng, base.path());

    // The nodes' memory after the run.
    println!("nodes after the run: {}", rss_spread(&nodes));
    drop(nodes);

    // Late joiner: a node holding 10 000 records, and a new node catching up.
    let count = 10_000;
    let seeded = base.path().join("seeded");
    {
        std::fs::create_dir_all(&seeded).unwrap();
        let store = ipsr_node::Store::open(&seeded.join("store.redb")).unwrap();
        store.apply(records(2, count)).unwrap();
    }
    let holder = start(&seeded, &[]);
    let t0 = Instant::now();
    let joiner = start(
        &base.path().join("joiner"),
        std::slice::from_ref(&holder.p2p),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held = get_json(&agent, &format!("{}/v1/status", joiner.api))["records"]
            .as_u64()
            .unwrap();
        if held as usize >= count || Instant::now() > deadline {
            println!("late joiner: {held}/{count} records in {:?}", t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop((holder, joiner));

    // A fresh node with nothing to do, after 5 s, next to the smallest
    // process of this machine's C library (`sleep`) as the baseline.
    let idle = start(&base.path().join("idle"), &[]);
    let mut floor = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    println!("fresh idle node {}", memory(idle.pid));
    println!("baseline: `sleep` {}", memory(floor.id()));
    let _ = floor.kill();
    let _ = floor.wait();
}

/// A process's resident memory: in all, anonymous (heap, stacks) and of
/// files, and how much of it is the executable's own pages (its code, read
/// from the page cache and shared with every process running it).
fn memory(pid: u32) -> String {
    let field = |name| ipsr_testkit::status_kib(Some(pid), name).unwrap_or(0);
    format!(
        "VmRSS {} KiB (RssAnon {} KiB, RssFile {} KiB, of which the executable {} KiB)",
        field("VmRSS"),
        field("RssAnon"),
        field("RssFile"),
        executable_kib(pid).unwrap_or(0)
    )
}

/// The resident KiB of the mappings of `pid`'s executable file.
fn executable_kib(pid: u32) -> Option<u64> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let exe = exe.to_str()?;
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut ours = false;
    let mut kib = 0;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Rss:") if ours => kib += words.next()?.parse::<u64>().ok()?,
            Some(first) if first.contains('-') && !first.ends_with(':') => {
                ours = line.trim_end().ends_with(exe);
            }
            _ => {}
        }
    }
    Some(kib)
}

/// Far fetches: `count` random nodes each add a 1 MiB file. After 100
/// nodes have run a while nearly every pair is connected (Kademlia's joins
/// and walks dial most of the network), so for each file a new node joins
/// through one random node other than the provider and, as soon as it has
/// a peer and is not connected to the provider, fetches the file: Bitswap's
/// want to its peers cannot reach the provider, so the provider must be
/// found through the DHT. The time is the lookup and the download.
fn far_fetch(
    agent: &ureq::Agent,
    nodes: &[Node],
    count: usize,
    rng: &mut XorShift,
    dir: &std::path::Path,
) {
    let n = nodes.len() as u64;
    let mut added = Vec::new();
    for i in 0..count {
        let at = rng.below(n) as usize;
        let body = pattern(100 + i as u64, 1 << 20);
        let mut resp = agent
            .post(format!("{}/v1/content", nodes[at].api))
            .header("content-type", "application/octet-stream")
            .send(&body[..])
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        let cid = json["cid"].as_str().unwrap().to_owned();
        let provider_id = get_json(agent, &format!("{}/v1/status", nodes[at].api))["peer_id"]
            .as_str()
            .unwrap()
            .to_owned();
        added.push((at, cid, provider_id, body));
    }
    // Give the provider records time to reach the nodes closest to the keys.
    std::thread::sleep(Duration::from_secs(2));
    let (mut times, mut failed, mut connected) = (Vec::new(), 0, 0);
    for (i, (at, cid, provider_id, body)) in added.iter().enumerate() {
        let mut via = rng.below(n) as usize;
        if via == *at {
            via = (via + 1) % nodes.len();
        }
        let far = start(
            &dir.join(format!("far{i}")),
            std::slice::from_ref(&nodes[via].p2p),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let peers = loop {
            let peers = get_json(agent, &format!("{}/v1/peers", far.api));
            let list: Vec<String> = peers["peers"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect();
            if !list.is_empty() || Instant::now() > deadline {
                break list;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if peers.iter().any(|p| p == provider_id) {
            connected += 1;
            continue;
        }
        let t0 = Instant::now();
        let fetched = agent
            .get(format!("{}/v1/content/{cid}", far.api))
            .call()
            .map_err(|e| e.to_string())
            .and_then(|mut r| {
                r.body_mut()
                    .with_config()
                    .limit(u64::MAX)
                    .read_to_vec()
                    .map_err(|e| e.to_string())
            });
        match fetched {
            Ok(bytes) if bytes == *body => times.push(t0.elapsed()),
            Ok(bytes) => {
                failed += 1;
                println!(
                    "far fetch: {} bytes that differ, after {:?}",
                    bytes.len(),
                    t0.elapsed()
                );
            }
            Err(e) => {
                failed += 1;
                println!("far fetch: failed after {:?}: {e}", t0.elapsed());
            }
        }
    }
    times.sort();
    println!(
        "far fetch: {}/{} found through the DHT and downloaded 1 MiB by a new node not \
         connected to the provider ({failed} failed, {connected} connected to it first); \
         time p50 {:?} max {:?}",
        times.len(),
        count,
        percentile(&times, 0.5),
        times.last().copied().unwrap_or_default(),
    );
}

/// The nodes' resident memory: median, 90th percentile and largest.
fn rss_spread(nodes: &[Node]) -> String {
    let mut kib: Vec<u64> = nodes
        .iter()
        .filter_map(|node| rss_kib(Some(node.pid)))
        .collect();
    kib.sort_unstable();
    let at = |p: f64| {
        let i = ((kib.len().max(1) - 1) as f64 * p).round() as usize;
        kib.get(i).copied().unwrap_or(0)
    };
    format!(
        "RSS p50 {} KiB, p90 {} KiB, max {} KiB ({} nodes)",
        at(0.5),
        at(0.9),
        at(1.0),
        kib.len()
    )
}
