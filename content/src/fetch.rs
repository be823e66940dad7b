//! Downloads a UnixFS file from the swarm: finds providers, asks several of
//! them in parallel over Bitswap, checks every block, stores it and hands
//! the file's bytes on in order ([`fetch`]), a byte range of them
//! ([`fetch_part`], which reads and fetches only the blocks of the range)
//! or its blocks in depth-first order ([`fetch_blocks`], for a CAR).
//!
//! One download is one [`fetch`] call. It walks the DAG in file order with
//! a window of blocks in flight (the walker's look-ahead), spreads the wants
//! over the providers with the fewest in flight, and moves on when a
//! provider is slow (a want times out), does not have a block (`DONT_HAVE`)
//! or is gone. A provider that sends a bad block (bytes for a CID nobody
//! wanted, an oversized block, a refused prefix; see [`WantError::BadBlock`])
//! is dropped for good, disconnected and banned by the node for an hour; a
//! correct block sent twice is not a bad block. Blocks already in the
//! blockstore are read (and rehashed) instead of fetched, so a second call
//! resumes an interrupted download.
//!
//! When the file's size is known beforehand (a signed record states it,
//! [`FetchConfig::expected_size`]), the download stops as soon as the DAG
//! disagrees: the root declares another size, the leaves deliver more, or
//! the blocks received pass what a DAG of that size may take; a file that
//! ends short fails too. A pin fetches under a [`Lease`], which holds
//! every block it reads or stores against eviction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::PeerId;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::bitswap::{Bitswap, WantError};
use super::block::Block;
use super::blockstore::{Blockstore, BlockstoreError, Lease};
use super::quota::dag_allowance;
use super::router::Router;
use super::unixfs::{FileReader, ReadError};

/// How a download behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchConfig {
    /// Most blocks asked for at once.
    pub window: usize,
    /// Most blocks asked of one provider at once.
    pub per_peer: usize,
    /// Slow answers (want timeouts) after which a provider is left out.
    pub strikes: u32,
    /// How often to look for providers again while blocks are missing.
    pub find_interval: Duration,
    /// Give up when no block arrived for this long.
    pub stall_timeout: Duration,
    /// The file's size as a signed record states it: the download fails
    /// with [`FetchError::WrongSize`] or [`FetchError::Oversized`] as soon
    /// as the DAG disagrees (`None`: any size).
    pub expected_size: Option<u64>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            window: 32,
            per_peer: 32,
            strikes: 3,
            find_interval: Duration::from_secs(2),
            stall_timeout: Duration::from_secs(60),
            expected_size: None,
        }
    }
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No block arrived for the stall timeout.
    #[error("no progress for {0:?}: no provider of {1} answered")]
    Stalled(Duration, Cid),
    /// The blocks do not form a valid UnixFS file.
    #[error("not a UnixFS file: {0}")]
    Read(#[from] ReadError),
    /// The local blockstore failed (full, disk error).
    #[error(transparent)]
    Store(#[from] BlockstoreError),
    /// A blocking task failed.
    #[error("internal task failed")]
    Task(#[from] tokio::task::JoinError),
    /// The task that stores fetched blocks stopped (at a store error, which
    /// the download returns instead when it can).
    #[error("the block writer stopped")]
    WriterStopped,
    /// The receiver of the bytes went away.
    #[error("download cancelled")]
    Cancelled,
    /// The file's size differs from the size expected (its root declares
    /// another, or its leaves ended short).
    #[error("the content is {declared} bytes but {stated} were stated")]
    WrongSize {
        /// The size expected (the record's).
        stated: u64,
        /// The size the DAG declares or delivered.
        declared: u64,
    },
    /// The DAG delivered more file bytes, or more block bytes, than a file
    /// of the size expected holds; the download stopped there.
    #[error("the content passed its stated size of {stated} bytes: {received} bytes received")]
    Oversized {
        /// The size expected (the record's).
        stated: u64,
        /// File bytes delivered, or block bytes received, when it stopped.
        received: u64,
    },
}

/// What a finished download did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// The file's size.
    pub size: u64,
    /// Blocks fetched from providers.
    pub fetched: u64,
    /// Blocks that were already local.
    pub local: u64,
    /// Bytes of the distinct blocks of the DAG (fetched and local).
    pub block_bytes: u64,
    /// Providers dropped for sending bad blocks.
    pub dropped: Vec<PeerId>,
}

/// What one provider is doing in this download.
#[derive(Debug, Default)]
struct Provider {
    in_flight: usize,
    /// Blocks it said it does not have.
    lacks: HashSet<Cid>,
    strikes: u32,
}

/// The download's view of its providers (sans-IO: picks who to ask and
/// keeps score).
#[derive(Debug, Default)]
struct Providers {
    peers: HashMap<PeerId, Provider>,
    banned: HashSet<PeerId>,
    /// Round-robin start, so equal providers share the work.
    turn: usize,
}

impl Providers {
    fn add(&mut self, peer: PeerId) -> bool {
        if self.banned.contains(&peer) || self.peers.contains_key(&peer) {
            return false;
        }
        self.peers.insert(peer, Provider::default());
        true
    }

    /// The provider to ask for `cid`: the one with the fewest wants in
    /// flight among those that may have it and have room.
    fn pick(&mut self, cid: &Cid, per_peer: usize) -> Option<PeerId> {
        self.turn = self.turn.wrapping_add(1);
        let mut candidates: Vec<(&PeerId, &Provider)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.in_flight < per_peer && !p.lacks.contains(cid))
            .collect();
        candidates.sort_by_key(|(id, _)| **id);
        let n = candidates.len();
        if n == 0 {
            return None;
        }
        let turn = self.turn % n;
        candidates.rotate_left(turn);
        let peer = *candidates.iter().min_by_key(|(_, p)| p.in_flight)?.0;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.in_flight += 1;
        }
        Some(peer)
    }

    fn done(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
    }

    fn lacks(&mut self, peer: &PeerId, cid: Cid) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.lacks.insert(cid);
        }
    }

    /// Counts a slow answer; returns whether the provider is now left out.
    fn strike(&mut self, peer: &PeerId, limit: u32) -> bool {
        let Some(p) = self.peers.get_mut(peer) else {
            return false;
        };
        p.strikes += 1;
        if p.strikes >= limit {
            self.peers.remove(peer);
            return true;
        }
        false
    }

    fn remove(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Leaves `peer` out for good; returns whether it was not yet.
    fn ban(&mut self, peer: PeerId) -> bool {
        self.peers.remove(&peer);
        self.banned.insert(peer)
    }

    /// Forgets who lacked what, to ask again after a new provider search.
    fn forget_lacks(&mut self) {
        for p in self.peers.values_mut() {
            p.lacks.clear();
        }
    }
}

/// Downloads the file under `root`, storing every block in `store`, and
/// sends its bytes in order on `out` (when given). `hint` are peers to ask
/// before the DHT answers (for example the peer a record came from).
pub async fn fetch(
    root: Cid,
    store: Arc<Blockstore>,
    bitswap: Bitswap,
    router: Arc<dyn Router>,
    hint: Vec<PeerId>,
    out: Option<mpsc::Sender<Bytes>>,
    config: FetchConfig,
) -> Result<FetchReport, FetchError> {
    let out = match out {
        Some(out) => Sink::Bytes(out),
        None => Sink::Nothing,
    };
    let reader = FileReader::new(root);
    download(reader, store, bitswap, router, hint, out, config, None).await
}

/// Like [`fetch`] without output, holding every block read or stored for
/// `lease` (a pin under way), and bounded by the lease's size when the
/// config gives none.
pub(crate) async fn fetch_leased(
    root: Cid,
    bitswap: Bitswap,
    router: Arc<dyn Router>,
    hint: Vec<PeerId>,
    mut config: FetchConfig,
    lease: Arc<Lease>,
) -> Result<FetchReport, FetchError> {
    if config.expected_size.is_none() {
        config.expected_size = lease.size();
    }
    let (reader, store) = (FileReader::new(root), lease.store().clone());
    let (out, lease) = (Sink::Nothing, Some(lease));
    download(reader, store, bitswap, router, hint, out, config, lease).await
}

/// Like [`fetch`], for what `reader` reads: with a
/// [`FileReader::range`], only the blocks that hold the range and the
/// nodes above them are read or fetched (every one checked as in a whole
/// download), and only the range's bytes are sent on `out`. The report's
/// `size` is the file's.
pub async fn fetch_part(
    reader: FileReader,
    store: Arc<Blockstore>,
    bitswap: Bitswap,
    router: Arc<dyn Router>,
    hint: Vec<PeerId>,
    out: mpsc::Sender<Bytes>,
    config: FetchConfig,
) -> Result<FetchReport, FetchError> {
    let out = Sink::Bytes(out);
    download(reader, store, bitswap, router, hint, out, config, None).await
}

/// Like [`fetch`], but sends the file's *blocks* on `out` rather than its
/// bytes: every block of the DAG in depth-first order, parents before
/// their children and children in link order (the order a reader needs
/// them), a block that occurs several times in the DAG (repeated chunks)
/// once per occurrence. Each block is sent once it is checked against its
/// CID and read as a valid part of the UnixFS file, so a sequence that
/// ends without an error is the complete DAG of a valid file.
pub async fn fetch_blocks(
    root: Cid,
    store: Arc<Blockstore>,
    bitswap: Bitswap,
    router: Arc<dyn Router>,
    hint: Vec<PeerId>,
    out: mpsc::Sender<Block>,
    config: FetchConfig,
) -> Result<FetchReport, FetchError> {
    let out = Sink::Blocks(out);
    let reader = FileReader::new(root);
    download(reader, store, bitswap, router, hint, out, config, None).await
}

/// Where a download hands on what it read.
#[derive(Debug)]
enum Sink {
    Nothing,
    Bytes(mpsc::Sender<Bytes>),
    Blocks(mpsc::Sender<Block>),
}

/// Checks a download against the size it is expected to have.
#[derive(Debug, Clone, Copy)]
struct SizeBound {
    stated: u64,
    /// Most block bytes the DAG may take.
    allowance: u64,
}

impl SizeBound {
    fn new(stated: Option<u64>) -> Option<Self> {
        stated.map(|stated| Self {
            stated,
            allowance: dag_allowance(stated),
        })
    }

    /// After `received` block bytes in all.
    fn blocks(&self, received: u64) -> Result<(), FetchError> {
        if received > self.allowance {
            return Err(FetchError::Oversized {
                stated: self.stated,
                received,
            });
        }
        Ok(())
    }

    /// After a block was read: the size its root declared, the file bytes
    /// delivered so far, and whether the file is complete.
    fn read(&self, declared: Option<u64>, delivered: u64, done: bool) -> Result<(), FetchError> {
        if let Some(declared) = declared
            && declared != self.stated
        {
            return Err(FetchError::WrongSize {
                stated: self.stated,
                declared,
            });
        }
        if delivered > self.stated {
            return Err(FetchError::Oversized {
                stated: self.stated,
                received: delivered,
            });
        }
        if done && delivered != self.stated {
            return Err(FetchError::WrongSize {
                stated: self.stated,
                declared: delivered,
            });
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
async fn download(
    mut reader: FileReader,
    store: Arc<Blockstore>,
    bitswap: Bitswap,
    router: Arc<dyn Router>,
    hint: Vec<PeerId>,
    out: Sink,
    config: FetchConfig,
    lease: Option<Arc<Lease>>,
) -> Result<FetchReport, FetchError> {
    let bound = SizeBound::new(config.expected_size);
    let root = *reader.root();
    let mut providers = Providers::default();
    for peer in hint {
        providers.add(peer);
    }
    let mut report = FetchReport::default();
    let mut ready: HashMap<Cid, Block> = HashMap::new();
    let mut local_checked: HashSet<Cid> = HashSet::new();
    let mut in_flight: HashSet<Cid> = HashSet::new();
    let mut wants = FuturesUnordered::new();
    let mut found: Option<mpsc::Receiver<PeerId>> = None;
    let mut find_timer = tokio::time::interval(config.find_interval);
    find_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_progress = tokio::time::Instant::now();
    let (writes, writer) = spawn_writer(store.clone(), bitswap.clone(), lease.clone());

    let result = 'download: loop {
        // Hand on every block that is next in file order.
        let (next, ahead) = loop {
            let Some((next, ahead)) = reader.needed() else {
                report.size = reader.total_size().unwrap_or(0);
                if let Some(bound) = bound
                    && let Err(e) = bound.read(reader.total_size(), reader.delivered(), true)
                {
                    break 'download Err(e);
                }
                break 'download Ok(report);
            };
            let Some(block) = ready.remove(&next) else {
                break (next, ahead);
            };
            // A file with repeated chunks needs the same block again.
            if ahead.contains(&next) {
                ready.insert(next, block.clone());
            }
            let segment = match reader.feed(&block) {
                Ok(segment) => segment,
                Err(e) => break 'download Err(e.into()),
            };
            if let Some(bound) = bound
                && let Err(e) = bound.read(reader.total_size(), reader.delivered(), false)
            {
                break 'download Err(e);
            }
            let sent = match &out {
                Sink::Bytes(out) if !segment.is_empty() => {
                    out.send(share(block.data(), segment)).await.is_ok()
                }
                Sink::Blocks(out) => out.send(block).await.is_ok(),
                _ => true,
            };
            if !sent {
                break 'download Err(FetchError::Cancelled);
            }
        };

        // Ask for what is needed soon and is neither here nor asked for.
        for cid in std::iter::once(next).chain(ahead).take(config.window) {
            if ready.contains_key(&cid) || in_flight.contains(&cid) {
                continue;
            }
            if in_flight.len() >= config.window {
                break;
            }
            if local_checked.insert(cid) {
                if let Some(lease) = &lease {
                    lease.hold(&cid);
                }
                let store = store.clone();
                let local =
                    match tokio::task::spawn_blocking(move || store.get_verified(&cid)).await {
                        Ok(local) => local,
                        Err(e) => break 'download Err(FetchError::Task(e)),
                    };
                match local {
                    Ok(Some(block)) => {
                        report.local += 1;
                        report.block_bytes += block.data().len() as u64;
                        if let Some(bound) = bound
                            && let Err(e) = bound.blocks(report.block_bytes)
                        {
                            break 'download Err(e);
                        }
                        ready.insert(cid, block);
                        continue;
                    }
                    Ok(None) => {}
                    Err(BlockstoreError::Corrupt(_)) => {
                        warn!(%cid, "local block is corrupt; fetching it again");
                    }
                    Err(e) => break 'download Err(e.into()),
                }
            }
            let Some(peer) = providers.pick(&cid, config.per_peer) else {
                break;
            };
            in_flight.insert(cid);
            let bitswap = bitswap.clone();
            wants.push(async move { (peer, cid, bitswap.want_block(peer, cid).await) });
        }
        if !ready.is_empty() && ready.contains_key(&next) {
            continue;
        }
        if found.is_none() && (in_flight.is_empty() || providers.peers.is_empty()) {
            found = Some(router.find_providers(root));
        }

        let stall = last_progress + config.stall_timeout;
        tokio::select! {
            Some((peer, cid, result)) = wants.next() => {
                in_flight.remove(&cid);
                providers.done(&peer);
                match result {
                    Ok(block) => {
                        last_progress = tokio::time::Instant::now();
                        report.block_bytes += block.data().len() as u64;
                        // Past the bound: not stored.
                        if let Some(bound) = bound
                            && let Err(e) = bound.blocks(report.block_bytes)
                        {
                            break 'download Err(e);
                        }
                        // Stored by the writer while the download goes on.
                        if writes.send(block.clone()).await.is_err() {
                            break 'download Err(FetchError::WriterStopped);
                        }
                        report.fetched += 1;
                        ready.insert(cid, block);
                    }
                    Err(WantError::DontHave) => providers.lacks(&peer, cid),
                    Err(WantError::Timeout) => {
                        if providers.strike(&peer, config.strikes) {
                            debug!(%peer, "provider too slow; leaving it out");
                        }
                    }
                    Err(WantError::BadBlock) => {
                        // Every want in flight to it fails alike: act once.
                        if providers.ban(peer) {
                            warn!(%peer, %cid, "provider sent a block that was never wanted, oversized or malformed; dropping it");
                            report.dropped.push(peer);
                            router.ban(peer);
                        }
                    }
                    Err(e) => {
                        debug!(%peer, %cid, error = %e, "want failed");
                        providers.remove(&peer);
                    }
                }
            }
            Some(peer) = recv(&mut found) => {
                if providers.add(peer) {
                    debug!(%peer, %root, "found a provider");
                }
            }
            _ = find_timer.tick() => {
                // Look again while blocks wait for someone to ask.
                if in_flight.is_empty() || providers.peers.is_empty() {
                    providers.forget_lacks();
                    found = Some(router.find_providers(root));
                }
            }
            _ = tokio::time::sleep_until(stall) => {
                break 'download Err(FetchError::Stalled(config.stall_timeout, next));
            }
        }
    };
    // Every fetched block is stored before the download counts as done.
    drop(writes);
    let written = writer.await.map_err(FetchError::Task);
    match (result, written) {
        (Ok(report), Ok(Ok(()))) => Ok(report),
        // The writer's own error says why it stopped.
        (Err(FetchError::WriterStopped), Ok(Err(e))) => Err(e),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        (Ok(_), Ok(Err(e))) => Err(e),
    }
}

/// Blocks waiting to be written to the blockstore (each up to 2 MiB).
const WRITE_QUEUE: usize = 16;

/// Block writes under way at once: each ends with an fsync, which waits on
/// the disk rather than the CPU, so a few in parallel write several times
/// faster than one after the other.
const PARALLEL_WRITES: usize = 4;

/// Starts the task that stores fetched blocks, so disk writes overlap the
/// network. It stops at the first error, which its handle returns.
fn spawn_writer(
    store: Arc<Blockstore>,
    bitswap: Bitswap,
    lease: Option<Arc<Lease>>,
) -> (
    mpsc::Sender<Block>,
    tokio::task::JoinHandle<Result<(), FetchError>>,
) {
    let (tx, mut rx) = mpsc::channel::<Block>(WRITE_QUEUE);
    let handle = tokio::spawn(async move {
        let mut writes = FuturesUnordered::new();
        let mut open = true;
        while open || !writes.is_empty() {
            tokio::select! {
                block = rx.recv(), if open && writes.len() < PARALLEL_WRITES => match block {
                    Some(block) => {
                        let (store, lease) = (store.clone(), lease.clone());
                        writes.push(tokio::task::spawn_blocking(move || {
                            let new = match &lease {
                                Some(lease) => lease.put(&block),
                                None => store.put(&block),
                            };
                            new.map(|new| (new, *block.cid()))
                        }));
                    }
                    None => open = false,
                },
                Some(done) = writes.next() => {
                    let (new, cid) = done??;
                    if new {
                        bitswap.block_added(cid);
                    }
                }
            }
        }
        Ok(())
    });
    (tx, handle)
}

/// The bytes of `segment`, a part of `data`, without copying them when
/// they are (they always are for UnixFS leaves).
fn share(data: &Bytes, segment: &[u8]) -> Bytes {
    let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
    let at = segment.as_ptr() as usize;
    if at >= start && at + segment.len() <= end {
        data.slice_ref(segment)
    } else {
        Bytes::copy_from_slice(segment)
    }
}

/// Receives from the provider search while it runs; pends once it ended.
pub(crate) async fn recv(found: &mut Option<mpsc::Receiver<PeerId>>) -> Option<PeerId> {
    match found {
        Some(rx) => match rx.recv().await {
            Some(peer) => Some(peer),
            None => {
                *found = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u8) -> Cid {
        Block::hash(cid::Version::V1, crate::block::RAW, vec![n])
            .unwrap()
            .cid()
            .to_owned()
    }

    #[test]
    fn spreads_wants_over_providers() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut p = Providers::default();
        p.add(a);
        p.add(b);
        let picks: Vec<PeerId> = (0..4).filter_map(|n| p.pick(&cid(n), 16)).collect();
        assert_eq!(picks.iter().filter(|x| **x == a).count(), 2);
        assert_eq!(picks.iter().filter(|x| **x == b).count(), 2);
    }

    #[test]
    fn skips_providers_that_lack_a_block_or_are_full() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut p = Providers::default();
        p.add(a);
        p.add(b);
        p.lacks(&a, cid(1));
        for _ in 0..3 {
            assert_eq!(p.pick(&cid(1), 3), Some(b));
        }
        assert_eq!(p.pick(&cid(1), 3), None, "b is full, a lacks it");
        p.done(&b);
        assert_eq!(p.pick(&cid(1), 3), Some(b));
    }

    #[test]
    fn a_size_bound_stops_at_the_first_disagreement() {
        assert!(SizeBound::new(None).is_none());
        let bound = SizeBound::new(Some(1000)).unwrap();
        // The root declares another size: refused before any leaf.
        assert!(matches!(
            bound.read(Some(200_000_000), 0, false),
            Err(FetchError::WrongSize {
                stated: 1000,
                declared: 200_000_000
            })
        ));
        assert!(matches!(
            bound.read(Some(999), 0, false),
            Err(FetchError::WrongSize { .. })
        ));
        assert!(bound.read(Some(1000), 600, false).is_ok());
        // Leaves delivering more than declared, or ending short.
        assert!(matches!(
            bound.read(Some(1000), 1001, false),
            Err(FetchError::Oversized {
                stated: 1000,
                received: 1001
            })
        ));
        assert!(matches!(
            bound.read(Some(1000), 999, true),
            Err(FetchError::WrongSize { declared: 999, .. })
        ));
        assert!(bound.read(Some(1000), 1000, true).is_ok());
        // Block bytes: the file, an eighth and 64 KiB at most.
        assert!(bound.blocks(1000 + 125 + 65_536).is_ok());
        assert!(matches!(
            bound.blocks(1000 + 125 + 65_537),
            Err(FetchError::Oversized { .. })
        ));
    }

    #[test]
    fn banned_and_slow_providers_are_left_out() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut p = Providers::default();
        p.add(a);
        p.add(b);
        assert!(p.ban(a));
        assert!(!p.ban(a), "banned once");
        assert!(!p.add(a), "a banned provider is not taken back");
        assert!(!p.strike(&b, 2));
        assert!(p.strike(&b, 2));
        assert_eq!(p.pick(&cid(1), 16), None);
    }
}
