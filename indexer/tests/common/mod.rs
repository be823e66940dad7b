//! Helpers of the indexer's integration tests: records, in-process nodes,
//! Redis prefixes and private `redis-server`s. Every wait is bounded.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ipsr_indexer::{Indexer, IndexerConfig, LocalSource, Metrics, RedisConfig, RedisIndex};
use ipsr_node::{Client, Config};
use ipsr_proto::{AuthorKey, ContentId, Release, SignedRecord, Yank};

/// The longest any test waits for one thing.
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// The shared test Redis.
pub fn redis_url() -> String {
    std::env::var("IPSR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A prefix no other test (or run) uses.
pub fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("ipsr-test:{name}:{}:{nanos}:", std::process::id())
}

/// A Redis index under a fresh prefix; its keys are deleted on drop
/// (with a new connection, also when the test failed).
pub struct TestIndex {
    pub index: RedisIndex,
    url: String,
}

impl TestIndex {
    pub fn new(url: &str, name: &str) -> Self {
        Self::with_recent_cap(url, name, RedisConfig::new(url).recent_cap)
    }

    /// With `recent` trimmed to `cap` entries.
    pub fn with_recent_cap(url: &str, name: &str, cap: usize) -> Self {
        let mut config = RedisConfig::new(url);
        config.prefix = unique_prefix(name);
        config.recent_cap = cap;
        config.response_timeout = Duration::from_secs(2);
        Self {
            index: RedisIndex::open(&config).unwrap(),
            url: url.into(),
        }
    }
}

impl Drop for TestIndex {
    fn drop(&mut self) {
        let prefix = self.index.prefix().to_owned();
        let url = self.url.clone();
        // Drop may run inside a runtime: clear from a plain thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut config = RedisConfig::new(url);
                config.prefix = prefix;
                if let Ok(index) = RedisIndex::open(&config) {
                    let _ = tokio::time::timeout(Duration::from_secs(10), index.clear()).await;
                }
            });
        })
        .join();
    }
}

/// Polls `check` every 50 ms until it holds; fails the test after [`TIMEOUT`].
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn key(seed: u8) -> AuthorKey {
    AuthorKey::from_seed(&[seed; 32])
}

pub fn cid(n: u32) -> ContentId {
    let mut bytes = vec![0x01, 0x55, 0x12, 0x20];
    let mut digest = [0u8; 32];
    digest[..4].copy_from_slice(&n.to_be_bytes());
    bytes.extend(digest);
    ContentId::from_bytes(&bytes).unwrap()
}

/// A base time for `created_at`: now minus a day, so every record is in the past.
pub fn t0() -> u64 {
    ipsr_proto::now_ms() - 86_400_000
}

pub struct Spec<'a> {
    pub key: &'a AuthorKey,
    pub package: &'a str,
    pub version: &'a str,
    pub code: u64,
    pub seq: u64,
    pub cid: u32,
    pub title: &'a str,
}

pub fn release(s: Spec<'_>) -> SignedRecord {
    let mut r = Release::new(
        s.key.author_id(),
        s.package.parse().unwrap(),
        s.version.parse().unwrap(),
        s.code,
        cid(s.cid),
    );
    r.seq = s.seq;
    r.created_at = t0() + s.seq;
    r.metadata.title = s.title.into();
    r.sign(s.key).unwrap()
}

pub fn simple(key: &AuthorKey, package: &str, version: &str, code: u64, seq: u64) -> SignedRecord {
    release(Spec {
        key,
        package,
        version,
        code,
        seq,
        cid: u32::try_from(code).unwrap_or(0),
        title: "",
    })
}

pub fn yank(key: &AuthorKey, package: &str, version: &str, seq: u64) -> SignedRecord {
    let mut y = Yank::new(
        key.author_id(),
        package.parse().unwrap(),
        version.parse().unwrap(),
        "broken".into(),
    );
    y.seq = seq;
    y.created_at = t0() + seq;
    y.sign(key).unwrap()
}

/// An in-process node in a temp dir.
pub async fn node() -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap();
    let node = ipsr_node::spawn(Config::local(dir.path().to_owned()))
        .await
        .unwrap();
    (dir, node)
}

/// Serves the node's API on a free port; returns its base URL.
pub async fn api(node: &Client) -> String {
    let (addr, server) = ipsr_node::serve_api(node.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    tokio::spawn(server);
    format!("http://{addr}")
}

pub fn fast_config() -> IndexerConfig {
    IndexerConfig {
        wait: Duration::from_secs(1),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        ..IndexerConfig::default()
    }
}

/// A running in-process indexer; stopped on drop.
pub struct Running {
    pub metrics: Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn start(node: &Client, index: RedisIndex) -> Self {
        let indexer = Indexer::new(LocalSource::new(node.clone()), index, fast_config());
        let metrics = indexer.metrics();
        let (stop, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            indexer
                .run(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self {
            metrics,
            stop: Some(stop),
            task,
        }
    }

    /// Waits until the indexer's cursor reaches the node's log head.
    pub async fn caught_up(&self, node: &Client) {
        let head = node.store().stats().unwrap().log_head;
        wait_until("the indexer catches up", || async {
            self.metrics.cursor.load(Ordering::Relaxed) >= head
        })
        .await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    ipsr_testnet::free_port().unwrap()
}

/// A private `redis-server` (no persistence), killed on drop.
pub struct RedisServer(pub ipsr_testnet::RedisServer);

impl RedisServer {
    pub fn start(port: u16) -> Self {
        Self(ipsr_testnet::RedisServer::start(port).expect("redis-server is installed"))
    }

    pub fn url(&self) -> String {
        self.0.url()
    }

    pub fn stop(&mut self) {
        self.0.stop();
    }
}
