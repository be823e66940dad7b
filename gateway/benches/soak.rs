//! `cargo bench -p ipsr-gateway --bench soak`: a gateway on Redis and 10
//! nodes, fed 1,000 publishes a minute for 10 minutes with downloads and
//! searches running beside them (issue 18). It checks that nothing is lost
//! (every node and the gateway's index end with every release at its last
//! record) and prints, for every process, its resident memory at the start
//! (after a warm-up of a tenth of the run), its peak and at the end, and
//! each node's log entries and store size next to the records it holds.
//!
//! The publishes: 50 authors, each with up to 40 packages; three in four
//! are a new version, one in four re-signs a held release (a newer `seq`,
//! a new summary: churn that supersedes a record). One in twenty carries
//! real content (48 KiB added on the publishing node), which a reader
//! thread downloads through the gateway and checks byte for byte; the same
//! thread searches and loads the home page all along. Records go to the
//! nodes' APIs in turn, and every tenth to the gateway's `/api/v1/publish`.
//!
//! `IPSR_SOAK_MINUTES` (10), `IPSR_SOAK_PER_MINUTE` (1000) and
//! `IPSR_SOAK_NODES` (10) change the size; `IPSR_SOAK_STEADY=1` makes every
//! publish after the warm-up a re-signing, so that the records held stay as
//! many (memory that still grows then does not follow the data); Redis comes from
//! `IPSR_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`), under a key
//! prefix of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/procs/mod.rs"]
mod procs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipsr_proto::{AuthorKey, ContentId, SignedRecord};
use ipsr_testkit::{
    Proc, XorShift, agent_with_timeout, cid, key, pattern, redis_url, release, rss_kib,
    unique_prefix, wait_for,
};
use procs::{binary, node_args};

const AUTHORS: usize = 50;
const PACKAGES_PER_AUTHOR: usize = 40;
const CONTENT_BYTES: usize = 48 * 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One process of the soak: its name, pid, API and data dir.
struct Daemon {
    name: String,
    pid: u32,
    api: String,
    data: PathBuf,
    _proc: Proc,
}

fn gateway(dir: &Path, redis: &str, prefix: &str) -> (Daemon, String, String) {
    let data = dir.join("gateway");
    let mut args = node_args(&data);
    args.extend(
        [
            "--http",
            "127.0.0.1:0",
            "--redis",
            redis,
            "--redis-prefix",
            prefix,
            "--rate-limit",
            "0",
        ]
        .map(String::from),
    );
    let mut proc = Proc::spawn(Command::new(env!("CARGO_BIN_EXE_ipsr-gateway")).args(&args));
    let p2p = proc.expect_line("listening on: ");
    let api = proc.expect_line("api: ");
    let http = proc.expect_line("gateway: ");
    let http = http.split_whitespace().next().unwrap().to_owned();
    let pid = proc.child().id();
    let daemon = Daemon {
        name: "gateway".into(),
        pid,
        api,
        data,
        _proc: proc,
    };
    (daemon, http, p2p)
}

fn node(dir: &Path, i: usize, bootstrap: &str) -> Daemon {
    let data = dir.join(format!("node{i}"));
    let mut args = vec!["run".to_owned()];
    args.extend(node_args(&data));
    args.extend(["--bootstrap".to_owned(), bootstrap.to_owned()]);
    let mut proc = Proc::spawn(Command::new(binary("ipsr-node")).args(&args));
    proc.expect_line("listening on: ");
    let api = proc.expect_line("api: ");
    Daemon {
        name: format!("node{i}"),
        pid: proc.child().id(),
        api,
        data,
        _proc: proc,
    }
}

/// What the soak published: each release's last record (by seq).
#[derive(Default)]
struct Ledger {
    /// `author/package/version` → (author index, package, version, seq, cid).
    releases: BTreeMap<String, Published>,
    /// `(author, package)` → versions published so far.
    versions: BTreeMap<(usize, usize), u64>,
}

#[derive(Clone)]
struct Published {
    author: usize,
    package: String,
    version: String,
    code: u64,
    seq: u64,
    cid: ContentId,
    size: u64,
}

/// A download the reader checks once the gateway knows the release.
struct Download {
    url: String,
    /// The seed of its bytes (`pattern(seed, CONTENT_BYTES)`).
    seed: u64,
    due: Instant,
    deadline: Instant,
}

#[derive(Default)]
struct Counters {
    downloads_ok: AtomicU64,
    downloads_failed: AtomicU64,
    searches: AtomicU64,
    search_errors: AtomicU64,
}

fn main() {
    let minutes = env_u64("IPSR_SOAK_MINUTES", 10);
    let per_minute = env_u64("IPSR_SOAK_PER_MINUTE", 1000).max(1);
    let nodes_n = env_u64("IPSR_SOAK_NODES", 10).max(1) as usize;
    let total = minutes * per_minute;
    let pace = Duration::from_secs(60).div_f64(per_minute as f64);
    let run_for = Duration::from_secs(60 * minutes);

    let dir = tempfile::tempdir().unwrap();
    let redis = redis_url();
    let prefix = unique_prefix("soak");
    let (gw, http, gw_p2p) = gateway(dir.path(), &redis, &prefix);
    let nodes: Vec<Daemon> = (0..nodes_n).map(|i| node(dir.path(), i, &gw_p2p)).collect();
    let agent = agent_with_timeout(Duration::from_secs(30));
    for n in &nodes {
        wait_for("the node joined", || {
            let status = get_json(&agent, &format!("{}/v1/status", n.api))?;
            (status["peers"].as_u64()? >= 1).then_some(())
        });
    }
    println!(
        "soak: {nodes_n} nodes + gateway (Redis), {per_minute} publishes/min for {minutes} min \
         ({total} publishes)"
    );

    let daemons: Vec<(String, u32)> = std::iter::once(&gw)
        .chain(&nodes)
        .map(|d| (d.name.clone(), d.pid))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let downloads: Arc<Mutex<Vec<Download>>> = Arc::default();
    let counters = Arc::new(Counters::default());
    let warm_up = run_for / 10;
    let sampler = sample_memory(daemons, warm_up, stop.clone());
    let reader = read_all_along(
        http.clone(),
        downloads.clone(),
        counters.clone(),
        stop.clone(),
    );

    let keys: Vec<AuthorKey> = (0..AUTHORS).map(|a| key(a as u8 + 1)).collect();
    let mut ledger = Ledger::default();
    // `IPSR_SOAK_STEADY=1`: after the warm-up every publish re-signs a
    // held release, so the held set stays the same size.
    let steady = env_u64("IPSR_SOAK_STEADY", 0) == 1;
    let mut rng = XorShift::new(18);
    let mut refused = 0u64;
    let start = Instant::now();
    for t in 0..total {
        let due = start + pace.mul_f64(t as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let seq = t + 1;
        let via_gateway = t % 10 == 9;
        let target = &nodes[t as usize % nodes_n];
        let author = rng.below(AUTHORS as u64) as usize;
        let churn = (t % 4 == 3 || (steady && t >= total / 10)) && !ledger.releases.is_empty();
        let record = if churn {
            // Re-sign a held release of this author (or any): a new summary.
            let pick = rng.below(ledger.releases.len() as u64) as usize;
            let held = ledger.releases.values_mut().nth(pick).unwrap();
            held.seq = seq;
            sign(&keys[held.author], held, &format!("edit {seq}"))
        } else {
            let package = rng.below(PACKAGES_PER_AUTHOR as u64) as usize;
            let code = ledger.versions.entry((author, package)).or_default();
            *code += 1;
            let mut published = Published {
                author,
                package: format!("com.soak.a{author}.app{package}"),
                version: format!("1.0.{code}"),
                code: *code,
                seq,
                cid: cid(u32::try_from(seq).unwrap()),
                size: 1,
            };
            if t % 20 == 0 {
                let bytes = pattern(seq, CONTENT_BYTES);
                let added = post(&agent, &format!("{}/v1/content", target.api), &bytes);
                published.cid = added["cid"].as_str().unwrap().parse().unwrap();
                published.size = added["size"].as_u64().unwrap();
                downloads.lock().unwrap().push(Download {
                    url: format!(
                        "{http}/api/v1/download/{}/{}/{}",
                        keys[author].author_id(),
                        published.package,
                        published.version
                    ),
                    seed: seq,
                    due: Instant::now() + Duration::from_secs(2),
                    deadline: Instant::now() + Duration::from_secs(120),
                });
            }
            let record = sign(&keys[author], &published, "soak");
            let id = format!(
                "{}/{}/{}",
                keys[author].author_id(),
                published.package,
                published.version
            );
            ledger.releases.insert(id, published);
            record
        };
        let url = if via_gateway {
            format!("{http}/api/v1/publish")
        } else {
            format!("{}/v1/records", target.api)
        };
        let answer = post(&agent, &url, &record.to_bytes());
        match answer["change"].as_str() {
            Some("new" | "replaced") => {}
            other => {
                refused += 1;
                eprintln!("publish {t}: {other:?}: {answer}");
            }
        }
    }
    let publishing = start.elapsed();
    println!(
        "published {total} records in {:.1} s ({:.0}/min), {refused} not applied",
        publishing.as_secs_f64(),
        total as f64 * 60.0 / publishing.as_secs_f64()
    );

    // Nothing lost: every node ends with every release.
    let expected = ledger.releases.len() as u64;
    let converged = Instant::now();
    let deadline = converged + Duration::from_secs(300);
    loop {
        let counts: Vec<u64> = nodes
            .iter()
            .chain(std::iter::once(&gw))
            .map(|n| status(&agent, n)["releases"].as_u64().unwrap_or(0))
            .collect();
        if counts.iter().all(|&c| c == expected) {
            println!(
                "converged: every node holds {expected} releases ({:.1} s after the last publish)",
                converged.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "releases lost: expected {expected} on every node, have {counts:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    // ... and the gateway's Redis index serves each one at its last record.
    let mut checked = 0;
    for (id, published) in &ledger.releases {
        let url = format!("{http}/api/v1/package/{id}");
        let view = wait_for("the release in the gateway's index", || {
            let view = get_json(&agent, &url)?;
            (view["seq"].as_u64() == Some(published.seq)).then_some(view)
        });
        assert_eq!(
            view["cid"].as_str(),
            Some(published.cid.to_string().as_str())
        );
        checked += 1;
    }
    println!("gateway index: {checked}/{expected} releases at their last record");

    let stop_at = Instant::now() + Duration::from_secs(60);
    while !downloads.lock().unwrap().is_empty() && Instant::now() < stop_at {
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    let left = downloads.lock().unwrap().len() as u64;
    reader.join().unwrap();
    let memory = sampler.join().unwrap();
    let c = &counters;
    println!(
        "downloads: {} verified, {} failed, {left} never answered; searches: {} ({} errors)",
        c.downloads_ok.load(Ordering::Relaxed),
        c.downloads_failed.load(Ordering::Relaxed),
        c.searches.load(Ordering::Relaxed),
        c.search_errors.load(Ordering::Relaxed),
    );
    println!("resident memory (KiB): start (after warm-up), peak, end; MiB once a minute");
    for m in &memory {
        println!(
            "  {:8} start {:7} peak {:7} end {:7} (end/start {:.2}) | {}",
            m.name,
            m.start(),
            m.peak(),
            m.end(),
            m.end() as f64 / m.start().max(1) as f64,
            m.per_minute(),
        );
    }
    println!("log and store per node: held records, log entries, store.redb bytes per record");
    for n in std::iter::once(&gw).chain(&nodes) {
        let s = status(&agent, n);
        let records = s["records"].as_u64().unwrap_or(0);
        let entries = s["log_entries"]
            .as_u64()
            .or(s["log_head"].as_u64())
            .unwrap_or(0);
        let store = std::fs::metadata(n.data.join("store.redb")).map_or(0, |m| m.len());
        println!(
            "  {:8} records {records:6} log entries {entries:6} ({:.2} per record) store {:.1} MiB ({} B per record)",
            n.name,
            entries as f64 / records.max(1) as f64,
            store as f64 / 1048576.0,
            store / records.max(1),
        );
    }
    let failed = c.downloads_failed.load(Ordering::Relaxed) + left;
    assert_eq!(failed, 0, "downloads failed or never answered");
    assert_eq!(refused, 0, "publishes not applied");
}

fn sign(key: &AuthorKey, p: &Published, summary: &str) -> SignedRecord {
    release(key, &p.version)
        .package(&p.package)
        .code(p.code)
        .seq(p.seq)
        .cid(p.cid)
        .size(p.size)
        .summary(summary)
        .sign()
}

fn status(agent: &ureq::Agent, d: &Daemon) -> serde_json::Value {
    get_json(agent, &format!("{}/v1/status", d.api)).unwrap_or_default()
}

fn get_json(agent: &ureq::Agent, url: &str) -> Option<serde_json::Value> {
    let mut r = agent.get(url).call().ok()?;
    if r.status() != 200 {
        return None;
    }
    serde_json::from_reader(r.body_mut().as_reader()).ok()
}

fn post(agent: &ureq::Agent, url: &str, body: &[u8]) -> serde_json::Value {
    let mut r = agent
        .post(url)
        .header("content-type", "application/octet-stream")
        .send(body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let text = r.body_mut().read_to_string().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({ "error": text }))
}

/// One process's resident memory, sampled every 5 s (KiB).
struct Memory {
    name: String,
    samples: Vec<u64>,
    /// The index of the first sample after the warm-up.
    warm: usize,
}

impl Memory {
    fn start(&self) -> u64 {
        self.samples.get(self.warm).copied().unwrap_or(0)
    }
    fn peak(&self) -> u64 {
        self.samples.iter().copied().max().unwrap_or(0)
    }
    fn end(&self) -> u64 {
        self.samples.last().copied().unwrap_or(0)
    }
    /// One sample a minute (every 12th), for a look at the trend.
    fn per_minute(&self) -> String {
        let picked: Vec<String> = self
            .samples
            .iter()
            .step_by(12)
            .map(|k| format!("{}", k / 1024))
            .collect();
        picked.join(" ")
    }
}

/// Samples every process's resident memory every 5 s until `stop` (and
/// once more then); the first sample after `warm_up` is the start.
fn sample_memory(
    daemons: Vec<(String, u32)>,
    warm_up: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Memory>> {
    std::thread::spawn(move || {
        let began = Instant::now();
        let mut out: Vec<Memory> = daemons
            .iter()
            .map(|(name, _)| Memory {
                name: name.clone(),
                samples: Vec::new(),
                warm: 0,
            })
            .collect();
        loop {
            let last = stop.load(Ordering::Relaxed);
            let warm = began.elapsed() >= warm_up;
            for ((_, pid), memory) in daemons.iter().zip(&mut out) {
                if !warm {
                    memory.warm = memory.samples.len() + 1;
                }
                memory.samples.push(rss_kib(Some(*pid)).unwrap_or(0));
            }
            if last {
                return out;
            }
            let next = Instant::now() + Duration::from_secs(5);
            while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
}

/// Searches, home pages and due downloads through the gateway until `stop`.
fn read_all_along(
    http: String,
    downloads: Arc<Mutex<Vec<Download>>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let agent = agent_with_timeout(Duration::from_secs(30));
        let words = ["soak", "app1", "com", "a7", "edit"];
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let url = match i % 3 {
                0 => format!("{http}/"),
                _ => format!("{http}/api/v1/packages?q={}", words[i % words.len()]),
            };
            counters.searches.fetch_add(1, Ordering::Relaxed);
            let failure = match agent.get(&url).call() {
                Ok(r) if r.status() == 200 => None,
                Ok(mut r) => Some(format!(
                    "{} {}",
                    r.status(),
                    r.body_mut().read_to_string().unwrap_or_default()
                )),
                Err(e) => Some(e.to_string()),
            };
            if let Some(failure) = failure {
                // The first few, to say what went wrong.
                if counters.search_errors.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("search failed: {url}: {failure}");
                }
            }
            let now = Instant::now();
            let ready: Vec<Download> = {
                let mut pending = downloads.lock().unwrap();
                let (ready, wait): (Vec<_>, Vec<_>) = pending.drain(..).partition(|d| d.due <= now);
                *pending = wait;
                ready
            };
            for d in ready {
                match agent.get(&d.url).call() {
                    Ok(mut r) if r.status() == 200 => {
                        let body = r.body_mut().with_config().limit(u64::MAX).read_to_vec();
                        let ok = body.is_ok_and(|b| b == pattern(d.seed, CONTENT_BYTES));
                        let counter = if ok {
                            &counters.downloads_ok
                        } else {
                            &counters.downloads_failed
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    // Not indexed yet: try again later, until its deadline.
                    _ if Instant::now() < d.deadline => {
                        downloads.lock().unwrap().push(Download {
                            due: Instant::now() + Duration::from_secs(1),
                            ..d
                        });
                    }
                    _ => {
                        counters.downloads_failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}
