//! Helpers of the indexer's integration tests (and the gateway's API
//! tests): in-process nodes and indexers, indexes under a test prefix.
//! Records, waits, Redis servers and ports come from `ipsr-testkit`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ipsr_indexer::{
    HttpSource, Indexer, IndexerConfig, LocalSource, Metrics, RedisConfig, RedisIndex, Source,
};
use ipsr_node::{Client, Config};
use ipsr_testkit::{unique_prefix, wait_until};

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

/// Publishes `records` to `node`, in order.
pub async fn publish(node: &Client, records: impl IntoIterator<Item = ipsr_proto::SignedRecord>) {
    for r in records {
        node.publish(r).await.unwrap();
    }
}

/// An in-process node in a temp dir, without a per-author rate: the
/// scenarios publish hundreds of one author's records at once (the limit
/// itself is tested with the node).
pub async fn node() -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::local(dir.path().to_owned());
    config.max_records_per_author_per_sec = 0;
    let node = ipsr_node::spawn(config).await.unwrap();
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

/// Serves the node's API on a free port, requiring `token` of every
/// request; returns its base URL.
pub async fn api_with_token(node: &Client, token: ipsr_node::ApiToken) -> String {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let (addr, server) = ipsr_node::serve_api_with_token(node.clone(), loopback, token)
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
        Self::start_from(LocalSource::new(node.clone()), index)
    }

    /// Reading the log over the node API at `api` (`GET /v1/log`).
    pub fn start_http(api: &str, index: RedisIndex) -> Self {
        Self::start_from(HttpSource::new(api), index)
    }

    fn start_from(source: impl Source + 'static, index: RedisIndex) -> Self {
        let indexer = Indexer::new(source, index, fast_config());
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
