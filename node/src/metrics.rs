//! Prometheus metrics: libp2p's own (connections, gossipsub, Kademlia,
//! identify, ping) and IPSR counters, encoded for `GET /metrics`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::dht_store::DhtStoreStats;
use crate::store::Stats;
use ipsr_content::bitswap::BitswapStats;
use ipsr_content::blockstore::BlockstoreStats;

type Labels = Vec<(String, String)>;

/// The IPSR counters; cheap to clone (each handle shares its value).
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    /// Records kept (new to this node), by where they came from.
    accepted: Family<Labels, Counter>,
    /// Records refused, by reason (the `VerifyError::reason` labels).
    rejected: Family<Labels, Counter>,
    /// Records dropped (or publishes refused) because their author was
    /// over its rate, by source.
    throttled: Family<Labels, Counter>,
    /// Records dropped (or publishes refused) because the store's write
    /// queue was full, by source.
    shed: Family<Labels, Counter>,
    /// Records from the future (by this node's clock), by source and by
    /// what became of them (`service/held.rs`).
    future: Family<Labels, Counter>,
    /// Sync sessions, by outcome.
    sync_sessions: Family<Labels, Counter>,
    /// Negentropy rounds of finished sessions.
    sync_rounds: Counter,
    store_records: Gauge,
    store_releases: Gauge,
    log_head: Gauge,
    log_entries: Gauge,
    blockstore_blocks: Gauge,
    blockstore_bytes: Gauge,
    blockstore_limit: Gauge,
    pinned_bytes: Gauge,
    reserved_bytes: Gauge,
    evicted_blocks: Counter,
    evicted_bytes: Counter,
    /// Pins refused, by `reason` = storage / quota / size.
    pins_refused: Family<Labels, Counter>,
    pins: Gauge,
    /// Bitswap totals, by `direction` = sent / received.
    bitswap_blocks: Family<Labels, Counter>,
    bitswap_bytes: Family<Labels, Counter>,
    bitswap_bad_blocks: Counter,
    /// Inbound provider records, by `outcome` (kept, or why refused).
    provider_records: Family<Labels, Counter>,
    /// DHT values put again by the republish walk.
    republished: Counter,
    /// Pinned roots announced again by the re-provide walk.
    reprovided: Counter,
    /// What the in-memory DHT store holds.
    dht_records: Gauge,
    dht_record_bytes: Gauge,
    dht_providers: Gauge,
    dht_provider_bytes: Gauge,
    bitswap_duplicate_blocks: Counter,
    /// Inbound Bitswap streams closed by us, by `reason` = refused / idle.
    bitswap_streams_closed: Family<Labels, Counter>,
    /// Peers with an open connection.
    peers_connected: Gauge,
}

/// The process's figures (`crate::process`), under Prometheus' standard
/// names.
#[derive(Debug, Default)]
struct ProcessGauges {
    resident_memory_bytes: Gauge,
    virtual_memory_bytes: Gauge,
    cpu_seconds: Counter<f64, AtomicU64>,
    open_fds: Gauge,
    max_fds: Gauge,
    threads: Gauge,
    start_time_seconds: Gauge<f64, AtomicU64>,
}

impl ProcessGauges {
    fn register(&self, registry: &mut Registry) {
        let p = registry.sub_registry_with_prefix("process");
        p.register(
            "resident_memory_bytes",
            "Resident memory size in bytes",
            self.resident_memory_bytes.clone(),
        );
        p.register(
            "virtual_memory_bytes",
            "Virtual memory size in bytes",
            self.virtual_memory_bytes.clone(),
        );
        p.register(
            "cpu_seconds",
            "User and system CPU time spent, in seconds",
            self.cpu_seconds.clone(),
        );
        p.register("open_fds", "Open file descriptors", self.open_fds.clone());
        p.register(
            "max_fds",
            "The soft limit on open file descriptors",
            self.max_fds.clone(),
        );
        p.register("threads", "Threads of the process", self.threads.clone());
        p.register(
            "start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            self.start_time_seconds.clone(),
        );
    }

    /// Brings the figures up to a new reading.
    fn update(&self, s: &crate::process::Sample) {
        let set = |g: &Gauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        set(&self.resident_memory_bytes, s.resident_bytes);
        set(&self.virtual_memory_bytes, s.virtual_bytes);
        set(&self.open_fds, s.open_fds);
        set(&self.max_fds, s.max_fds.unwrap_or(u64::MAX));
        set(&self.threads, s.threads);
        self.start_time_seconds.set(s.start_time_seconds);
        let grew = s.cpu_seconds - self.cpu_seconds.get();
        if grew > 0.0 {
            self.cpu_seconds.inc_by(grew);
        }
    }
}

impl Counters {
    pub(crate) fn accepted(&self, source: &str, n: u64) {
        self.accepted
            .get_or_create(&vec![("source".into(), source.into())])
            .inc_by(n);
    }

    pub(crate) fn rejected(&self, source: &str, reason: &str) {
        let labels = vec![
            ("source".into(), source.into()),
            ("reason".into(), reason.into()),
        ];
        self.rejected.get_or_create(&labels).inc();
    }

    pub(crate) fn throttled(&self, source: &str) {
        self.throttled
            .get_or_create(&vec![("source".into(), source.into())])
            .inc();
    }

    pub(crate) fn shed(&self, source: &str) {
        self.shed
            .get_or_create(&vec![("source".into(), source.into())])
            .inc();
    }

    pub(crate) fn future(&self, source: &str, outcome: &str, n: u64) {
        let labels = vec![
            ("source".into(), source.into()),
            ("outcome".into(), outcome.into()),
        ];
        self.future.get_or_create(&labels).inc_by(n);
    }

    pub(crate) fn sync_session(&self, outcome: &str, rounds: u64) {
        self.sync_sessions
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
        self.sync_rounds.inc_by(rounds);
    }

    pub(crate) fn provider_record(&self, outcome: &str) {
        self.provider_records
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
    }

    pub(crate) fn republished(&self, values: u64) {
        self.republished.inc_by(values);
    }

    pub(crate) fn reprovided(&self, roots: u64) {
        self.reprovided.inc_by(roots);
    }

    /// Brings the DHT store gauges up to `stats`.
    pub(crate) fn dht_store(&self, stats: DhtStoreStats) {
        let gauge = |g: &Gauge, v: usize| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        gauge(&self.dht_records, stats.records);
        gauge(&self.dht_record_bytes, stats.record_bytes);
        gauge(&self.dht_providers, stats.providers);
        gauge(&self.dht_provider_bytes, stats.provider_bytes);
    }

    /// Inbound provider records with `outcome` so far.
    #[cfg(test)]
    pub(crate) fn provider_records_with(&self, outcome: &str) -> u64 {
        self.provider_records
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .get()
    }

    /// DHT values republished so far.
    #[cfg(test)]
    pub(crate) fn republished_total(&self) -> u64 {
        self.republished.get()
    }

    /// Pinned roots re-announced so far.
    #[cfg(test)]
    pub(crate) fn reprovided_total(&self) -> u64 {
        self.reprovided.get()
    }

    /// Records kept from `source` so far.
    #[cfg(test)]
    pub(crate) fn accepted_from(&self, source: &str) -> u64 {
        self.accepted
            .get_or_create(&vec![("source".into(), source.into())])
            .get()
    }

    /// Records from `source` refused for `reason` so far.
    #[cfg(test)]
    pub(crate) fn rejected_from(&self, source: &str, reason: &str) -> u64 {
        let labels = vec![
            ("source".into(), source.into()),
            ("reason".into(), reason.into()),
        ];
        self.rejected.get_or_create(&labels).get()
    }

    /// Records from `source` dropped for their author's rate so far.
    #[cfg(test)]
    pub(crate) fn throttled_from(&self, source: &str) -> u64 {
        self.throttled
            .get_or_create(&vec![("source".into(), source.into())])
            .get()
    }

    /// Records from `source` shed because the store was behind, so far.
    #[cfg(test)]
    pub(crate) fn shed_from(&self, source: &str) -> u64 {
        self.shed
            .get_or_create(&vec![("source".into(), source.into())])
            .get()
    }

    /// Records from the future from `source` that met `outcome` so far.
    #[cfg(test)]
    pub(crate) fn future_from(&self, source: &str, outcome: &str) -> u64 {
        let labels = vec![
            ("source".into(), source.into()),
            ("outcome".into(), outcome.into()),
        ];
        self.future.get_or_create(&labels).get()
    }

    /// Sync sessions that ended with `outcome` so far.
    #[cfg(test)]
    pub(crate) fn sync_sessions_with(&self, outcome: &str) -> u64 {
        self.sync_sessions
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .get()
    }
}

/// Everything `GET /metrics` shows.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    counters: Counters,
    process: ProcessGauges,
}

impl Metrics {
    /// A registry with libp2p's metrics and the IPSR counters.
    pub(crate) fn new() -> (Self, libp2p::metrics::Metrics) {
        let mut registry = Registry::default();
        let libp2p = libp2p::metrics::Metrics::new(&mut registry);
        let counters = Counters::default();
        let process = ProcessGauges::default();
        if crate::process::sample().is_some() {
            process.register(&mut registry);
        }
        let ipsr = registry.sub_registry_with_prefix("ipsr");
        ipsr.register(
            "build",
            "The build of this daemon: its version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        ipsr.register(
            "peers_connected",
            "Peers with an open connection",
            counters.peers_connected.clone(),
        );
        ipsr.register(
            "records_accepted",
            "Records kept, by source",
            counters.accepted.clone(),
        );
        ipsr.register(
            "records_rejected",
            "Records refused, by source and reason",
            counters.rejected.clone(),
        );
        ipsr.register(
            "records_throttled",
            "Records dropped, or publishes refused, because their author was over its rate, \
             by source (gossip, held, local)",
            counters.throttled.clone(),
        );
        ipsr.register(
            "records_shed",
            "Records dropped, or publishes refused, because the store's write queue was full \
             (the disk is behind), by source (gossip, held, local)",
            counters.shed.clone(),
        );
        ipsr.register(
            "records_future",
            "Records over an hour ahead of this node's clock, by source and outcome \
             (held, duplicate, too_far, full, evicted, skipped)",
            counters.future.clone(),
        );
        ipsr.register(
            "sync_sessions",
            "Sync sessions, by outcome",
            counters.sync_sessions.clone(),
        );
        ipsr.register(
            "sync_rounds",
            "Negentropy rounds of finished sync sessions",
            counters.sync_rounds.clone(),
        );
        ipsr.register(
            "store_records",
            "Records held in the store",
            counters.store_records.clone(),
        );
        ipsr.register(
            "store_releases",
            "Releases known to the store",
            counters.store_releases.clone(),
        );
        ipsr.register(
            "log_head",
            "Last position of the record log",
            counters.log_head.clone(),
        );
        ipsr.register(
            "log_entries",
            "Entries in the record log (records held, plus equivocation witnesses)",
            counters.log_entries.clone(),
        );
        ipsr.register(
            "blockstore_blocks",
            "Blocks in the blockstore",
            counters.blockstore_blocks.clone(),
        );
        ipsr.register(
            "blockstore_bytes",
            "Bytes of blocks in the blockstore",
            counters.blockstore_bytes.clone(),
        );
        ipsr.register(
            "blockstore_limit_bytes",
            "The blockstore's limit in bytes (0: none)",
            counters.blockstore_limit.clone(),
        );
        ipsr.register(
            "blockstore_pinned_bytes",
            "Bytes charged to pins",
            counters.pinned_bytes.clone(),
        );
        ipsr.register(
            "blockstore_reserved_bytes",
            "Bytes reserved by pins being fetched or imported",
            counters.reserved_bytes.clone(),
        );
        ipsr.register(
            "blockstore_evicted_blocks",
            "Unpinned blocks evicted to stay within the limit",
            counters.evicted_blocks.clone(),
        );
        ipsr.register(
            "blockstore_evicted_bytes",
            "Bytes of unpinned blocks evicted to stay within the limit",
            counters.evicted_bytes.clone(),
        );
        ipsr.register(
            "pins_refused",
            "Pins refused, by reason: storage (pinned data would pass the limit), \
             quota (the author's), size (the content is not of its stated size)",
            counters.pins_refused.clone(),
        );
        ipsr.register("pins", "Pinned content roots", counters.pins.clone());
        ipsr.register(
            "bitswap_blocks",
            "Bitswap blocks, by direction",
            counters.bitswap_blocks.clone(),
        );
        ipsr.register(
            "bitswap_bytes",
            "Bitswap block bytes, by direction",
            counters.bitswap_bytes.clone(),
        );
        ipsr.register(
            "bitswap_bad_blocks",
            "Blocks received that no want matched (now or lately), oversized or malformed",
            counters.bitswap_bad_blocks.clone(),
        );
        ipsr.register(
            "dht_provider_records",
            "Inbound provider records, by outcome (kept, or why refused)",
            counters.provider_records.clone(),
        );
        ipsr.register(
            "dht_republished",
            "DHT values put again by the republish walk",
            counters.republished.clone(),
        );
        ipsr.register(
            "dht_reprovided",
            "Pinned roots announced again by the re-provide walk",
            counters.reprovided.clone(),
        );
        for (name, help, gauge) in [
            (
                "dht_store_records",
                "Value records in the DHT store",
                &counters.dht_records,
            ),
            (
                "dht_store_record_bytes",
                "Bytes of value records in the DHT store",
                &counters.dht_record_bytes,
            ),
            (
                "dht_store_providers",
                "Provider records of other peers in the DHT store",
                &counters.dht_providers,
            ),
            (
                "dht_store_provider_bytes",
                "Bytes of provider records of other peers in the DHT store",
                &counters.dht_provider_bytes,
            ),
        ] {
            ipsr.register(name, help, gauge.clone());
        }
        ipsr.register(
            "bitswap_duplicate_blocks",
            "Correct blocks received again, or after their want ended (not blamed on the sender)",
            counters.bitswap_duplicate_blocks.clone(),
        );
        ipsr.register(
            "bitswap_inbound_streams_closed",
            "Inbound Bitswap streams we closed: refused (over the per-peer or total cap) or idle",
            counters.bitswap_streams_closed.clone(),
        );
        (
            Self {
                registry,
                counters,
                process,
            },
            libp2p,
        )
    }

    pub(crate) fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// The text exposition format, with the store, peer and process gauges
    /// brought up to date.
    pub(crate) fn encode(
        &self,
        stats: Stats,
        blocks: BlockstoreStats,
        bitswap: BitswapStats,
        peers: usize,
    ) -> String {
        let c = &self.counters;
        let gauge = |g: &Gauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        gauge(&c.peers_connected, peers as u64);
        if let Some(sample) = crate::process::sample() {
            self.process.update(&sample);
        }
        gauge(&c.store_records, stats.records);
        gauge(&c.store_releases, stats.releases);
        gauge(&c.log_head, stats.log_head);
        gauge(&c.log_entries, stats.log_entries);
        gauge(&c.blockstore_blocks, blocks.blocks);
        gauge(&c.blockstore_bytes, blocks.bytes);
        gauge(&c.pins, blocks.pins);
        gauge(&c.blockstore_limit, blocks.limit.unwrap_or(0));
        gauge(&c.pinned_bytes, blocks.pinned_bytes);
        gauge(&c.reserved_bytes, blocks.reserved_bytes);
        // Bitswap keeps totals; bring the counters up to them.
        let total = |counter: &Counter, v: u64| {
            counter.inc_by(v.saturating_sub(counter.get()));
        };
        let direction = |d: &str| vec![("direction".to_owned(), d.to_owned())];
        total(
            &c.bitswap_blocks.get_or_create(&direction("sent")),
            bitswap.blocks_sent,
        );
        total(
            &c.bitswap_blocks.get_or_create(&direction("received")),
            bitswap.blocks_received,
        );
        total(
            &c.bitswap_bytes.get_or_create(&direction("sent")),
            bitswap.bytes_sent,
        );
        total(
            &c.bitswap_bytes.get_or_create(&direction("received")),
            bitswap.bytes_received,
        );
        total(&c.bitswap_bad_blocks, bitswap.bad_blocks);
        total(&c.evicted_blocks, blocks.evicted_blocks);
        total(&c.evicted_bytes, blocks.evicted_bytes);
        let refused = blocks.refused;
        for (reason, n) in [
            ("storage", refused.storage),
            ("quota", refused.quota),
            ("size", refused.size),
        ] {
            let labels = vec![("reason".to_owned(), reason.to_owned())];
            total(&c.pins_refused.get_or_create(&labels), n);
        }
        total(&c.bitswap_duplicate_blocks, bitswap.duplicate_blocks);
        let reason = |r: &str| vec![("reason".to_owned(), r.to_owned())];
        total(
            &c.bitswap_streams_closed.get_or_create(&reason("refused")),
            bitswap.streams_refused,
        );
        total(
            &c.bitswap_streams_closed.get_or_create(&reason("idle")),
            bitswap.streams_idle_closed,
        );
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Shared by the node's clients.
pub(crate) type SharedMetrics = Arc<Metrics>;
