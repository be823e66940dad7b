//! The indexer loop: tail a node's log from the durable cursor, verify each
//! record, write the batch into Redis, then advance the cursor.
//!
//! The cursor moves only after a batch's writes succeeded, so a crash or an
//! outage replays at most the two batches being written (at-least-once
//! delivery); writes are idempotent, so the state is as if every record had
//! been applied once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ipsr_proto::Signed;
use tracing::{debug, info, warn};

use crate::redis_index::Unsynced;
use crate::source::{Page, Source};
use crate::verifier::Verifier;
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
    /// Shared with the blocking task verifying the next page.
    verifier: Arc<Mutex<Verifier>>,
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
        let verifier = Arc::new(Mutex::new(Verifier::new(config.verify_threads)));
        Self {
            source,
            index,
            config,
            metrics: Arc::default(),
            verifier,
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
        let mut cursor = retry(index, metrics, config, |i| {
            let node = node.clone();
            async move { i.cursor(&node).await }
        })
        .await?;
        info!(%node, cursor, prefix = index.prefix(), "indexing the node's log");
        // Each round reads the log from `cursor` until the writer needs to
        // start again elsewhere (Redis lost data, or the node's store was
        // replaced). Reading, verifying and writing go on at once, with a
        // bounded number of pages between them.
        loop {
            metrics.cursor.store(cursor, Ordering::Relaxed);
            let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
            let reader = read_pages(
                &mut self.source,
                &self.verifier,
                metrics,
                config,
                cursor,
                tx,
            );
            let writer = write_pages(index, metrics, config, &node, cursor, rx);
            cursor = tokio::select! {
                // The reader first: when it stops on an error, the writer
                // also ends (no more pages), and the error must win.
                biased;
                end = reader => {
                    // The reader stops only on an error retrying cannot fix.
                    end?;
                    return Err(IndexError::ReaderStopped);
                }
                from = writer => from?,
            };
        }
    }
}

/// Verified pages the reader may hold ready beyond the one being written
/// and the one being read.
const READ_AHEAD: usize = 3;

/// Reads the log page after page from `after` and verifies each page while
/// the next is read, then hands it to the writer; failures of the source
/// are retried with backoff. Returns when the writer is gone, or on an
/// error retrying cannot fix.
async fn read_pages<S: Source>(
    source: &mut S,
    verifier: &Arc<Mutex<Verifier>>,
    metrics: &Metrics,
    config: &IndexerConfig,
    after: u64,
    pages: tokio::sync::mpsc::Sender<Batch>,
) -> Result<(), IndexError> {
    // At most one page read and waiting to be verified.
    let (read_tx, mut read_rx) = tokio::sync::mpsc::channel::<(u64, Page)>(1);
    let reading = async move {
        let mut after = after;
        let mut backoff = Backoff::new(config);
        loop {
            match source.page(after, config.batch, config.wait).await {
                Ok(page) => {
                    backoff.reset();
                    let next = page.next.max(after);
                    if read_tx.send((after, page)).await.is_err() {
                        return;
                    }
                    after = next;
                }
                Err(e) => {
                    metrics.source_errors.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "cannot read the node's log; retrying");
                    backoff.wait().await;
                }
            }
        }
    };
    let verifying = async move {
        while let Some((after, page)) = read_rx.recv().await {
            let batch = verify_page(verifier, metrics, after, page).await?;
            if pages.send(batch).await.is_err() {
                break;
            }
        }
        Ok(())
    };
    tokio::select! {
        () = reading => Ok(()),
        r = verifying => r,
    }
}

/// Writes the pages read from `cursor` on, in order, advancing the cursor
/// after each. Returns where reading must start again: 0 when the node's
/// log is behind the cursor (its store was replaced), or Redis's durable
/// cursor when Redis lost data.
///
/// A page is written in two stages: its packages' states (the
/// compare-and-set scripts), then their entries outside their slots and the
/// cursor. The second stage of a page runs while the next page waits or
/// goes through its first stage, so the indexer and Redis work at the same
/// time. This is safe because writes are the same compare-and-set
/// operations as with several writers at once, and the cursor still
/// advances in order, each time after both stages of a page are done.
async fn write_pages(
    index: &RedisIndex,
    metrics: &Metrics,
    config: &IndexerConfig,
    node: &str,
    mut cursor: u64,
    mut pages: tokio::sync::mpsc::Receiver<Batch>,
) -> Result<u64, IndexError> {
    // The page whose first stage is done, if any; it ends at `taken`.
    let mut stored: Option<Stored> = None;
    let mut taken = cursor;
    loop {
        let finishing = finish(index, metrics, config, node, stored.take());
        let taking = async {
            let Some(batch) = pages.recv().await else {
                return Ok::<_, IndexError>(Next::Closed);
            };
            metrics.head.store(batch.head, Ordering::Relaxed);
            match batch.to {
                to if to > batch.after && batch.after == taken && batch.head >= taken => {
                    let records = &batch.records;
                    // On a cluster, confirmed on a replica of every master
                    // with no failover in between, else written again.
                    let (outcome, unsynced) = retry(index, metrics, config, |i| async move {
                        let topology = i.topology().await?;
                        let written = i.write_signed(records).await?;
                        i.confirm(topology.as_ref()).await?;
                        Ok(written)
                    })
                    .await?;
                    Ok(Next::Stored(Stored {
                        from: taken,
                        to,
                        head: batch.head,
                        count: batch.count,
                        outcome,
                        unsynced,
                    }))
                }
                _ => Ok(Next::Other(batch)),
            }
        };
        let (finished, next) = tokio::join!(finishing, taking);
        match finished? {
            Ok(Some(to)) => cursor = to,
            Ok(None) => {}
            Err(durable) => {
                // The durable cursor is behind where the page started: Redis
                // lost data (restarted empty?). Index again from there; what
                // the next page wrote meanwhile is written again, harmlessly.
                warn!(
                    durable,
                    cursor, "redis lost data: indexing again from its cursor"
                );
                return Ok(durable);
            }
        }
        // Here every page taken is finished: `cursor == taken`.
        let batch = match next? {
            Next::Closed => return Ok(cursor),
            Next::Stored(page) => {
                taken = page.to;
                stored = Some(page);
                continue;
            }
            Next::Other(batch) => batch,
        };
        if batch.after != cursor {
            // Not expected (pages come in order); read again from the cursor.
            return Ok(cursor);
        }
        if batch.head < cursor {
            warn!(
                head = batch.head,
                cursor,
                "the node's log is behind the cursor (store replaced?): starting again from 0"
            );
            retry(index, metrics, config, |i| async move {
                i.reset_cursor(node).await
            })
            .await?;
            return Ok(0);
        }
        // Idle (an empty page): check that Redis did not lose data meanwhile
        // (a restart without persistence), which no write revealed.
        let durable = retry(
            index,
            metrics,
            config,
            |i| async move { i.cursor(node).await },
        )
        .await?;
        if durable < cursor {
            warn!(
                durable,
                cursor, "redis lost data: indexing again from its cursor"
            );
            return Ok(durable);
        }
    }
}

/// What the writer got from the reader.
enum Next {
    /// The reader is gone.
    Closed,
    /// A page whose first stage is done.
    Stored(Stored),
    /// A page to look at once every earlier one is finished: empty, not
    /// where expected, or from a log behind the cursor.
    Other(Batch),
}

/// A page whose packages' states are stored; its second stage is to do.
#[derive(Debug)]
struct Stored {
    /// Where it starts and ends in the log.
    from: u64,
    to: u64,
    head: u64,
    /// Entries in it (valid or not).
    count: u64,
    outcome: crate::BatchOutcome,
    unsynced: Unsynced,
}

/// The second stage of a page: the entries outside its packages' slots,
/// then the cursor from `from` to `to`. `Ok(None)` without a page;
/// `Err(cursor)` when Redis lost data (see [`RedisIndex::advance_cursor`]).
async fn finish(
    index: &RedisIndex,
    metrics: &Metrics,
    config: &IndexerConfig,
    node: &str,
    page: Option<Stored>,
) -> Result<Result<Option<u64>, u64>, IndexError> {
    let Some(page) = page else {
        return Ok(Ok(None));
    };
    let unsynced = &page.unsynced;
    let conflicts = retry(index, metrics, config, |i| async move {
        let topology = i.topology().await?;
        let conflicts = i.sync_packages(unsynced).await?;
        i.confirm(topology.as_ref()).await?;
        Ok(conflicts)
    })
    .await?;
    let (from, to) = (page.from, page.to);
    let advanced = retry(index, metrics, config, |i| async move {
        i.advance_cursor(node, from, to).await
    })
    .await?;
    if let Err(durable) = advanced {
        return Ok(Err(durable));
    }
    metrics.cursor.store(to, Ordering::Relaxed);
    let outcome = page.outcome;
    metrics
        .records_indexed
        .fetch_add(page.count, Ordering::Relaxed);
    metrics.batches.fetch_add(1, Ordering::Relaxed);
    metrics
        .packages_changed
        .fetch_add(outcome.changed as u64, Ordering::Relaxed);
    metrics
        .write_conflicts
        .fetch_add(outcome.conflicts + conflicts, Ordering::Relaxed);
    debug!(
        cursor = to,
        head = page.head,
        changed = outcome.changed,
        unchanged = outcome.unchanged,
        "batch indexed"
    );
    Ok(Ok(Some(to)))
}

/// A page of the log, verified.
#[derive(Debug)]
struct Batch {
    /// The position it was read after.
    after: u64,
    head: u64,
    /// Where it ends: every position up to here was read (compacted ones
    /// included); `after` when nothing was.
    to: u64,
    /// Entries in it (valid or not).
    count: u64,
    records: Vec<Signed>,
}

/// Verifies a page read after `after`; invalid records are logged,
/// counted and skipped.
async fn verify_page(
    verifier: &Arc<Mutex<Verifier>>,
    metrics: &Metrics,
    after: u64,
    page: Page,
) -> Result<Batch, IndexError> {
    let to = page.next.max(after);
    let count = page.entries.len() as u64;
    let entries = page.entries;
    let verifier = verifier.clone();
    let results = tokio::task::spawn_blocking(move || {
        // Only one page is verified at a time; a panic while verifying
        // leaves the caches valid (they hold only checked keys).
        let mut verifier = verifier.lock().unwrap_or_else(PoisonError::into_inner);
        verifier.verify(&entries)
    })
    .await
    .map_err(IndexError::Task)?;
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
    Ok(Batch {
        after,
        head: page.head,
        to,
        count,
        records,
    })
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
}
