//! The indexer loop: tail a node's log from the durable cursor, verify each
//! record, write the batch into Redis, then advance the cursor.
//!
//! The cursor moves only after a batch's writes succeeded, so a crash or an
//! outage replays at most one batch (at-least-once delivery); writes are
//! idempotent, so the state is as if every record had been applied once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ipsr_proto::SignedRecord;
use tracing::{debug, info, warn};

use crate::source::{Entry, Source};
use crate::{IndexError, RedisIndex};

/// How the indexer pages and retries.
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    /// Log entries per page (the node caps it at 1000; default 1000).
    pub batch: usize,
    /// How long one long-poll waits for new entries (default 30 s).
    pub wait: Duration,
    /// First delay after a failure (default 100 ms); doubled on each
    /// failure in a row, up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest delay between retries (default 5 s).
    pub max_backoff: Duration,
    /// Threads verifying signatures (default: the available parallelism).
    pub verify_threads: usize,
}

impl Default for IndexerConfig {
    fn default() -> Self {
        Self {
            batch: 1000,
            wait: Duration::from_secs(30),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            verify_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Counters and gauges of an indexer, shared with whoever exposes them.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Log entries verified and written (replays included).
    pub records_indexed: AtomicU64,
    /// Log entries that failed verification (skipped).
    pub records_invalid: AtomicU64,
    /// Batches written.
    pub batches: AtomicU64,
    /// Packages whose state a batch changed.
    pub packages_changed: AtomicU64,
    /// Failed Redis operations (each retried).
    pub redis_errors: AtomicU64,
    /// Failed reads of the node's log (each retried).
    pub source_errors: AtomicU64,
    /// Compare-and-set conflicts with other writers.
    pub write_conflicts: AtomicU64,
    /// 1 while the last Redis operation succeeded, 0 after a failure.
    pub redis_up: AtomicU64,
    /// The cursor: the last log position indexed.
    pub cursor: AtomicU64,
    /// The node's log head as last seen.
    pub head: AtomicU64,
}

impl Metrics {
    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 10] = [
            (
                "ipsr_indexer_records_total",
                "counter",
                "log entries verified and written, replays included",
                &self.records_indexed,
            ),
            (
                "ipsr_indexer_invalid_records_total",
                "counter",
                "log entries that failed verification",
                &self.records_invalid,
            ),
            (
                "ipsr_indexer_batches_total",
                "counter",
                "batches written",
                &self.batches,
            ),
            (
                "ipsr_indexer_packages_changed_total",
                "counter",
                "package states changed",
                &self.packages_changed,
            ),
            (
                "ipsr_indexer_redis_errors_total",
                "counter",
                "failed redis operations, each retried",
                &self.redis_errors,
            ),
            (
                "ipsr_indexer_source_errors_total",
                "counter",
                "failed reads of the node log, each retried",
                &self.source_errors,
            ),
            (
                "ipsr_indexer_write_conflicts_total",
                "counter",
                "compare-and-set conflicts with other writers",
                &self.write_conflicts,
            ),
            (
                "ipsr_indexer_redis_up",
                "gauge",
                "1 if the last redis operation succeeded",
                &self.redis_up,
            ),
            (
                "ipsr_indexer_cursor",
                "gauge",
                "last log position indexed",
                &self.cursor,
            ),
            (
                "ipsr_indexer_log_head",
                "gauge",
                "the node's log head as last seen",
                &self.head,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// Tails one node's log into one Redis keyspace.
#[derive(Debug)]
pub struct Indexer<S> {
    source: S,
    index: RedisIndex,
    config: IndexerConfig,
    metrics: Arc<Metrics>,
}

/// Exponential backoff state.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn new(config: &IndexerConfig) -> Self {
        Self {
            next: config.min_backoff,
            min: config.min_backoff,
            max: config.max_backoff,
        }
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
    }
    fn reset(&mut self) {
        self.next = self.min;
    }
}

impl<S: Source> Indexer<S> {
    /// An indexer of `source` into `index`.
    pub fn new(source: S, index: RedisIndex, config: IndexerConfig) -> Self {
        Self {
            source,
            index,
            config,
            metrics: Arc::default(),
        }
    }

    /// Its metrics (shared; they keep counting while it runs).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until `shutdown` completes. Failures of Redis or of the node
    /// are retried with capped exponential backoff, never returned; it
    /// returns an error only for damaged data in Redis.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), IndexError> {
        tokio::select! {
            r = self.run_forever() => r,
            () = shutdown => {
                info!("indexer stopping");
                Ok(())
            }
        }
    }

    async fn run_forever(&mut self) -> Result<(), IndexError> {
        let (metrics, config, index) = (&*self.metrics, &self.config, &self.index);
        let mut backoff = Backoff::new(config);
        let node = loop {
            match self.source.node_id().await {
                Ok(id) => break id,
                Err(e) => {
                    metrics.source_errors.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "cannot reach the node; retrying");
                    backoff.wait().await;
                }
            }
        };
        backoff.reset();
        let mut cursor = retry(index, metrics, config, |i| {
            let node = node.clone();
            async move { i.cursor(&node).await }
        })
        .await?;
        info!(%node, cursor, prefix = index.prefix(), "indexing the node's log");
        let mut prefetched: Option<Batch> = None;
        loop {
            metrics.cursor.store(cursor, Ordering::Relaxed);
            let batch = match prefetched.take() {
                Some(b) if b.after == cursor => Ok(b),
                _ => fetch(&mut self.source, metrics, config, cursor).await?,
            };
            let batch = match batch {
                Ok(b) => {
                    backoff.reset();
                    b
                }
                Err(e) => {
                    metrics.source_errors.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "cannot read the node's log; retrying");
                    backoff.wait().await;
                    continue;
                }
            };
            metrics.head.store(batch.head, Ordering::Relaxed);
            if batch.head < cursor {
                warn!(
                    head = batch.head,
                    cursor,
                    "the node's log is behind the cursor (store replaced?): starting again from 0"
                );
                retry(index, metrics, config, |i| {
                    let n = node.clone();
                    async move { i.reset_cursor(&n).await }
                })
                .await?;
                cursor = 0;
                continue;
            }
            let Some(last) = batch.last else {
                // Idle: check that Redis did not lose data meanwhile (a
                // restart without persistence), which no write revealed.
                let durable = retry(index, metrics, config, |i| {
                    let n = node.clone();
                    async move { i.cursor(&n).await }
                })
                .await?;
                if durable < cursor {
                    warn!(
                        durable,
                        cursor, "redis lost data: indexing again from its cursor"
                    );
                    cursor = durable;
                }
                continue;
            };
            // Write this batch while the next page is read and verified.
            let write = write(index, metrics, config, &node, cursor, last, batch.records);
            let read_next = fetch(&mut self.source, metrics, config, last);
            let (written, next) = tokio::join!(write, read_next);
            match written? {
                Ok(outcome) => {
                    metrics
                        .records_indexed
                        .fetch_add(batch.count, Ordering::Relaxed);
                    metrics.batches.fetch_add(1, Ordering::Relaxed);
                    metrics
                        .packages_changed
                        .fetch_add(outcome.changed as u64, Ordering::Relaxed);
                    metrics
                        .write_conflicts
                        .fetch_add(outcome.conflicts, Ordering::Relaxed);
                    debug!(
                        cursor = last,
                        head = batch.head,
                        changed = outcome.changed,
                        unchanged = outcome.unchanged,
                        "batch indexed"
                    );
                    cursor = last;
                }
                Err(durable) => {
                    // The durable cursor is behind where this batch started:
                    // Redis lost data (restarted empty?). Index again from there.
                    warn!(
                        durable,
                        cursor, "redis lost data: indexing again from its cursor"
                    );
                    cursor = durable;
                }
            }
            match next? {
                Ok(b) => prefetched = Some(b),
                Err(e) => {
                    metrics.source_errors.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "cannot read the node's log; retrying");
                }
            }
        }
    }
}

/// A page of the log, verified.
#[derive(Debug)]
struct Batch {
    /// The position it was read after.
    after: u64,
    head: u64,
    /// Its last position, `None` when empty.
    last: Option<u64>,
    /// Entries in it (valid or not).
    count: u64,
    records: Vec<SignedRecord>,
}

/// Reads the page after `after` and verifies it; invalid records are
/// logged, counted and skipped.
async fn fetch<S: Source>(
    source: &mut S,
    metrics: &Metrics,
    config: &IndexerConfig,
    after: u64,
) -> Result<Result<Batch, crate::SourceError>, IndexError> {
    let page = match source.page(after, config.batch, config.wait).await {
        Ok(page) => page,
        Err(e) => return Ok(Err(e)),
    };
    let last = page.entries.last().map(|e| e.position);
    let count = page.entries.len() as u64;
    let threads = config.verify_threads.max(1);
    let entries = page.entries;
    let results = tokio::task::spawn_blocking(move || verify_all(entries, threads))
        .await
        .map_err(|e| IndexError::Task(e.to_string()))?;
    let mut records = Vec::with_capacity(results.len());
    for (position, result) in results {
        match result {
            Ok(r) => records.push(r),
            Err(e) => {
                metrics.records_invalid.fetch_add(1, Ordering::Relaxed);
                warn!(position, error = %e, "log entry does not verify: skipped");
            }
        }
    }
    Ok(Ok(Batch {
        after,
        head: page.head,
        last,
        count,
        records,
    }))
}

/// Writes a batch, then advances the cursor from `from` to `to`; `Err(cursor)`
/// when Redis lost data (see [`RedisIndex::advance_cursor`]).
async fn write(
    index: &RedisIndex,
    metrics: &Metrics,
    config: &IndexerConfig,
    node: &str,
    from: u64,
    to: u64,
    records: Vec<SignedRecord>,
) -> Result<Result<crate::BatchOutcome, u64>, IndexError> {
    let records = &records;
    let outcome = retry(
        index,
        metrics,
        config,
        |i| async move { i.apply(records).await },
    )
    .await?;
    let advanced = retry(index, metrics, config, |i| async move {
        i.advance_cursor(node, from, to).await
    })
    .await?;
    Ok(advanced.map(|()| outcome))
}

/// Runs a Redis operation until it succeeds, with capped exponential
/// backoff; returns only errors that retrying cannot fix.
async fn retry<T, F, Fut>(
    index: &RedisIndex,
    metrics: &Metrics,
    config: &IndexerConfig,
    op: F,
) -> Result<T, IndexError>
where
    F: Fn(RedisIndex) -> Fut,
    Fut: Future<Output = Result<T, IndexError>>,
{
    let mut backoff = Backoff::new(config);
    let mut failures = 0u32;
    loop {
        match op(index.clone()).await {
            Ok(v) => {
                if failures > 0 {
                    info!(failures, "redis is back");
                }
                metrics.redis_up.store(1, Ordering::Relaxed);
                return Ok(v);
            }
            Err(e) if e.is_transient() => {
                failures += 1;
                metrics.redis_errors.fetch_add(1, Ordering::Relaxed);
                metrics.redis_up.store(0, Ordering::Relaxed);
                if failures == 1 || failures.is_power_of_two() {
                    warn!(error = %e, failures, "redis failed; retrying with backoff");
                }
                backoff.wait().await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Decodes and verifies every entry, on up to `threads` threads, keeping order.
pub fn verify_all(
    entries: Vec<Entry>,
    threads: usize,
) -> Vec<(u64, Result<SignedRecord, ipsr_proto::VerifyError>)> {
    let verify = |e: &Entry| {
        (
            e.position,
            SignedRecord::from_bytes(&e.bytes).and_then(SignedRecord::verify),
        )
    };
    if threads <= 1 || entries.len() < 64 {
        return entries.iter().map(verify).collect();
    }
    let chunk = entries.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|c| scope.spawn(move || c.iter().map(verify).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_encode_as_prometheus_text() {
        let m = Metrics::default();
        m.records_indexed.store(7, Ordering::Relaxed);
        m.redis_up.store(1, Ordering::Relaxed);
        let text = m.encode();
        assert!(
            text.contains(
                "# TYPE ipsr_indexer_records_total counter\nipsr_indexer_records_total 7\n"
            )
        );
        assert!(text.contains("ipsr_indexer_redis_up 1\n"));
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 10);
    }

    #[test]
    fn verify_all_keeps_order_and_flags_bad_entries() {
        let key = ipsr_proto::AuthorKey::from_seed(&[3; 32]);
        let cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
            .parse()
            .expect("cid");
        let entries: Vec<Entry> = (1..=100u64)
            .map(|i| {
                let mut r = ipsr_proto::Release::new(
                    key.author_id(),
                    "com.example.app".parse().expect("name"),
                    format!("1.0.{i}").parse().expect("version"),
                    i,
                    cid,
                );
                r.created_at = 1;
                let mut bytes = r.sign(&key).expect("sign").to_bytes();
                if i == 50 {
                    let last = bytes.len() - 1;
                    bytes[last] ^= 1;
                }
                Entry { position: i, bytes }
            })
            .collect();
        let out = verify_all(entries, 3);
        assert_eq!(
            out.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            (1..=100).collect::<Vec<_>>()
        );
        assert_eq!(out.iter().filter(|(_, r)| r.is_err()).count(), 1);
        assert!(out[49].1.is_err());
    }
}
