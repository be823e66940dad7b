//! Bitswap 1.2.0 on the node's swarm (through `libp2p-stream`), client and
//! server. The wire protocol as IPSR speaks it is in `docs/bitswap.md`.
//!
//! * `message`: the protobuf schema, CID prefixes, length-prefixed frames,
//!   and decoding into checked domain values (every received block is
//!   hashed; a message only carries blocks whose bytes match their CID).
//! * `ledger`: the server's decisions without IO: per-peer wantlists, what
//!   to answer for each want, remembered wants, batching into messages.
//! * `recent`: the CIDs this node wanted recently, so that a late or
//!   repeated correct block is a harmless duplicate, not a bad block.
//! * `inbound`: the caps on inbound streams (per peer, in all), the task
//!   that takes new streams, and the task that reads one, with its idle
//!   timeout.
//! * this file: the [`Bitswap`] handle, the actor, and the writer and
//!   server tasks.
//!
//! Stream model (spec, "Streams"): the side that sends wants opens its own
//! stream; the answers come back on a *separate* stream that the responder
//! opens. So, per peer, we keep one outbound stream (opened on first use,
//! reopened once on error, closed after `outbound_idle` with nothing to
//! send) written by a writer task; everything we send to that peer (wants,
//! cancels, blocks, presences) goes through it. The accept task gives every
//! inbound stream, up to the caps, a reader task that decodes frames and
//! hands them to the actor.
//!
//! ```text
//!  Bitswap handle ──events──▶ actor ──wants──▶ writer(peer) ──stream──▶ peer
//!                               ▲                   ▲
//!  accept ─▶ reader(stream) ────┘ messages          │ frames (bounded)
//!                               └─wantlists─▶ ledger ◀── server worker(peer)
//!                                                         └ spawn_blocking(BlockSource)
//! ```
//!
//! Memory is bounded per peer: a server worker looks up at most
//! `lookup_concurrency` blocks at once, builds one message of at most 4 MiB,
//! and waits on the writer's channel of `outbound_queue` frames; a peer has
//! at most `max_inbound_streams_per_peer` streams read at once, each holding
//! at most twice the bytes of its current frame received so far plus
//! 64 KiB, never more than 4 MiB.
//!
//! The integrator must call [`Bitswap::peer_disconnected`] when the last
//! connection to a peer closes (wants to it then fail with
//! [`WantError::Disconnected`]), and [`Bitswap::block_added`] when the
//! blockstore gains a block.

mod inbound;
mod ledger;
mod message;
mod recent;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cid::Cid;
use futures::stream::BoxStream;
use futures::{AsyncWriteExt as _, StreamExt as _};
use libp2p::{PeerId, Stream, StreamProtocol};
use libp2p_stream::{Control, OpenStreamError};
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{debug, error, trace};

use self::inbound::StreamSlots;
use self::ledger::{Answer, Batcher, Found, Ledger, Lookup};
use self::message::{Frame, Message, Presence, WantEntry, WantType, Wantlist};
use self::recent::RecentWants;
use crate::block::{self, Block};

/// The protocol IPSR speaks and opens streams with.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.2.0");

/// Also accepted inbound, and used outbound when a peer does not speak
/// 1.2.0. A 1.1.0 peer never asks for Have or DontHave, so it never gets a
/// presence from us.
pub const PROTOCOL_1_1: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.1.0");

/// The largest message sent or accepted (4 MiB; the length prefix not
/// counted).
pub const MAX_MESSAGE_SIZE: usize = message::MAX_MESSAGE_SIZE;

/// How long opening a stream to a peer may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Capacity of the actor's inbox.
const EVENT_QUEUE: usize = 256;
/// Inbound streams read at once, all peers together.
const MAX_INBOUND_STREAMS: usize = 1024;
/// Wantlist entries per message we send (about 60 bytes each).
const ENTRIES_PER_MESSAGE: usize = 8192;
/// Lookups a server worker takes from the ledger at a time.
const LOOKUP_BATCH: usize = 32;

/// Where the server side gets blocks. Implemented by the blockstore.
pub trait BlockSource: Send + Sync + 'static {
    /// The block named `cid`, if held. May block on disk: Bitswap calls it
    /// from `spawn_blocking`.
    fn get(&self, cid: &Cid) -> Option<Block>;
    /// The size of the block named `cid`, if held. May block like `get`.
    fn size_of(&self, cid: &Cid) -> Option<u64>;
}

/// Bitswap settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitswapConfig {
    /// How long [`Bitswap::want_block`] and [`Bitswap::want_have`] wait for
    /// an answer. Default 30 s.
    pub want_timeout: Duration,
    /// Wants a peer may have with us at once; more are dropped. Default 8192.
    pub max_wantlist_entries: usize,
    /// A Have want for a block of at most this many bytes is answered with
    /// the block itself (the spec allows it). Default 1024.
    pub have_block_limit: u64,
    /// Distinct (peer, CID) wants of ours outstanding at once; more fail
    /// with [`WantError::Overloaded`]. Default 16384.
    pub max_outstanding_wants: usize,
    /// Blockstore lookups in flight per peer we serve. Default 4.
    pub lookup_concurrency: usize,
    /// Encoded messages (each at most 4 MiB) queued per peer before the
    /// server waits for the stream. Default 2.
    pub outbound_queue: usize,
    /// Inbound streams one peer may have open at once; a stream beyond this
    /// is reset at once. Default 32.
    pub max_inbound_streams_per_peer: usize,
    /// An inbound stream on which no byte arrives for this long is closed.
    /// Default 30 s.
    pub inbound_idle_timeout: Duration,
    /// Our outbound stream to a peer is closed after this long with nothing
    /// to send, and opened again when needed. Default 10 s: shorter than
    /// the default `inbound_idle_timeout`, so that a peer with the same
    /// rules closes our stream only when we have closed it already.
    pub outbound_idle: Duration,
    /// How long after one of our wants ended (block received, cancelled,
    /// DontHave, peer gone) a correct block for its CID is still a harmless
    /// duplicate rather than an unsolicited block. Default 120 s.
    pub recent_window: Duration,
    /// Ended wants remembered for [`recent_window`](Self::recent_window),
    /// the oldest forgotten first. Default 16384 (about 6 MiB at most).
    pub max_recent_wants: usize,
}

impl Default for BitswapConfig {
    fn default() -> Self {
        Self {
            want_timeout: Duration::from_secs(30),
            max_wantlist_entries: 8192,
            have_block_limit: 1024,
            max_outstanding_wants: 16384,
            lookup_concurrency: 4,
            outbound_queue: 2,
            max_inbound_streams_per_peer: 32,
            inbound_idle_timeout: Duration::from_secs(30),
            outbound_idle: Duration::from_secs(10),
            recent_window: Duration::from_secs(120),
            max_recent_wants: 16384,
        }
    }
}

/// Why a want failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WantError {
    /// The peer said it does not have the block.
    #[error("peer does not have the block")]
    DontHave,
    /// No answer within [`BitswapConfig::want_timeout`].
    #[error("no answer in time")]
    Timeout,
    /// The peer disconnected before answering.
    #[error("peer disconnected")]
    Disconnected,
    /// The stream to the peer failed (could not be opened, or writing failed
    /// twice).
    #[error("stream to peer failed: {0}")]
    Stream(String),
    /// The peer sent a block for a CID this node did not want (now or
    /// recently; bytes sent "for" a CID they do not hash to are such a
    /// block), a block over 2 MiB, or a block prefix IPSR refuses.
    /// Disconnect it and avoid it.
    #[error("peer sent a bad or unsolicited block")]
    BadBlock,
    /// The CID is not one IPSR exchanges (sha2-256; raw or dag-pb).
    #[error("unsupported cid {0}")]
    Unsupported(Cid),
    /// Too many wants outstanding ([`BitswapConfig::max_outstanding_wants`]).
    #[error("too many outstanding wants")]
    Overloaded,
    /// The Bitswap actor is not running.
    #[error("bitswap is shut down")]
    Shutdown,
}

/// Counters since start (and two gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BitswapStats {
    /// Blocks queued to peers.
    pub blocks_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Blocks received (verified; wanted or not).
    pub blocks_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
    /// Correct blocks for a CID we no longer wanted but did recently
    /// (already received, cancelled): ignored, the sender not blamed.
    pub duplicate_blocks: u64,
    /// Blocks never wanted, oversized, or with a refused prefix.
    pub bad_blocks: u64,
    /// Frames refused (too large, malformed, bad protobuf, cut short).
    pub protocol_errors: u64,
    /// Inbound streams reset at once because the peer, or all peers
    /// together, had as many open as allowed.
    pub streams_refused: u64,
    /// Inbound streams closed because no byte came for the idle timeout.
    pub streams_idle_closed: u64,
    /// Our outstanding wants, distinct (peer, CID).
    pub wants_in_flight: u64,
    /// Wants peers have with us.
    pub peer_wants: u64,
}

#[derive(Debug, Default)]
struct Counters {
    blocks_sent: AtomicU64,
    bytes_sent: AtomicU64,
    blocks_received: AtomicU64,
    bytes_received: AtomicU64,
    duplicate_blocks: AtomicU64,
    bad_blocks: AtomicU64,
    protocol_errors: AtomicU64,
    streams_refused: AtomicU64,
    streams_idle_closed: AtomicU64,
    wants_in_flight: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Locks a mutex, tolerating poisoning (the data stays consistent: every
/// critical section is a few map operations).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Notices from synchronous calls and drops, drained by the actor.
#[derive(Debug, Default)]
struct Notices {
    disconnected: HashSet<PeerId>,
    /// (peer, cid, waiter id) of dropped want futures.
    cancels: Vec<(PeerId, Cid, u64)>,
}

/// The server side's shared state: the ledger and each peer's worker.
#[derive(Debug)]
struct Server {
    ledger: Ledger,
    workers: HashMap<PeerId, Arc<Notify>>,
}

#[derive(Debug)]
struct Inner {
    config: BitswapConfig,
    events: mpsc::Sender<Event>,
    notices: Mutex<Notices>,
    notice: Notify,
    server: Mutex<Server>,
    stats: Counters,
    next_id: AtomicU64,
}

/// A reply channel of one waiting want.
#[derive(Debug)]
enum Reply {
    Block(oneshot::Sender<Result<Block, WantError>>),
    Have(oneshot::Sender<Result<bool, WantError>>),
}

impl Reply {
    fn is_closed(&self) -> bool {
        match self {
            Self::Block(tx) => tx.is_closed(),
            Self::Have(tx) => tx.is_closed(),
        }
    }

    fn fail(self, error: WantError) {
        match self {
            Self::Block(tx) => drop(tx.send(Err(error))),
            Self::Have(tx) => drop(tx.send(Err(error))),
        }
    }
}

#[derive(Debug)]
enum Event {
    Want {
        peer: PeerId,
        cid: Cid,
        id: u64,
        reply: Reply,
    },
    Inbound {
        peer: PeerId,
        message: Message,
    },
    BadBlock {
        peer: PeerId,
    },
    WriterFailed {
        peer: PeerId,
        generation: u64,
        error: String,
    },
}

/// The handle to Bitswap: cheap to clone.
#[derive(Clone)]
pub struct Bitswap {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Bitswap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitswap")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Sends a cancel for a want whose future is dropped before it resolved.
struct CancelOnDrop<'a> {
    inner: &'a Inner,
    peer: PeerId,
    cid: Cid,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.inner.notices)
                .cancels
                .push((self.peer, self.cid, self.id));
            self.inner.notice.notify_one();
        }
    }
}

impl Bitswap {
    /// Creates the handle and the actor future, which the caller spawns.
    /// Registers [`PROTOCOL`] and [`PROTOCOL_1_1`] as inbound protocols on
    /// `control` (so call it once per swarm). The actor runs until the swarm
    /// (its `libp2p_stream::Behaviour`) is dropped.
    pub fn new(
        mut control: Control,
        source: Arc<dyn BlockSource>,
        config: BitswapConfig,
    ) -> (Bitswap, impl Future<Output = ()> + Send + 'static) {
        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        let inner = Arc::new(Inner {
            server: Mutex::new(Server {
                ledger: Ledger::new(config.max_wantlist_entries, config.have_block_limit),
                workers: HashMap::new(),
            }),
            config,
            events,
            notices: Mutex::new(Notices::default()),
            notice: Notify::new(),
            stats: Counters::default(),
            next_id: AtomicU64::new(0),
        });
        let incoming: Option<BoxStream<'static, (PeerId, Stream)>> = match (
            control.accept(PROTOCOL),
            control.accept(PROTOCOL_1_1),
        ) {
            (Ok(v12), Ok(v11)) => Some(futures::stream::select(v12, v11).boxed()),
            (Ok(v12), Err(_)) => Some(v12.boxed()),
            (Err(e), _) => {
                error!(error = %e, "bitswap protocol already registered; not accepting streams");
                None
            }
        };
        let config = &inner.config;
        let actor = Actor {
            recent: RecentWants::new(config.recent_window, config.max_recent_wants),
            inner: inner.clone(),
            control,
            source,
            rx,
            peers: HashMap::new(),
            wants: HashMap::new(),
            generation: 0,
        };
        (Bitswap { inner }, actor.run(incoming))
    }

    async fn want<T>(
        &self,
        peer: PeerId,
        cid: Cid,
        reply: Reply,
        rx: oneshot::Receiver<Result<T, WantError>>,
    ) -> Result<T, WantError> {
        if block::check_cid(&cid).is_err() {
            return Err(WantError::Unsupported(cid));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .events
            .send(Event::Want {
                peer,
                cid,
                id,
                reply,
            })
            .await
            .map_err(|_| WantError::Shutdown)?;
        let mut guard = CancelOnDrop {
            inner: &self.inner,
            peer,
            cid,
            id,
            armed: true,
        };
        let result = match tokio::time::timeout(self.inner.config.want_timeout, rx).await {
            Err(_) => return Err(WantError::Timeout), // the guard cancels
            Ok(Err(_)) => Err(WantError::Shutdown),
            Ok(Ok(result)) => result,
        };
        guard.armed = false;
        result
    }

    /// Asks `peer` for the block `cid` (want type Block, sendDontHave set)
    /// and returns it verified. Fails with [`WantError::DontHave`],
    /// [`WantError::Timeout`], [`WantError::Disconnected`],
    /// [`WantError::Stream`], or [`WantError::BadBlock`] if the peer sent a
    /// block we did not ask it for or bytes that do not match (the caller
    /// should disconnect it). Dropping the future sends a cancel.
    pub async fn want_block(&self, peer: PeerId, cid: Cid) -> Result<Block, WantError> {
        let (tx, rx) = oneshot::channel();
        self.want(peer, cid, Reply::Block(tx), rx).await
    }

    /// Asks `peer` whether it has `cid` (want type Have, sendDontHave set).
    /// Fails like [`Bitswap::want_block`], except that DontHave is `Ok(false)`.
    pub async fn want_have(&self, peer: PeerId, cid: Cid) -> Result<bool, WantError> {
        let (tx, rx) = oneshot::channel();
        self.want(peer, cid, Reply::Have(tx), rx).await
    }

    /// Tells the server side that the block `cid` is now available locally:
    /// peers whose wants for it we could not serve get it now.
    pub fn block_added(&self, cid: Cid) {
        let server = &mut *lock(&self.inner.server);
        for peer in server.ledger.on_new_block(&cid) {
            if let Some(worker) = server.workers.get(&peer) {
                worker.notify_one();
            }
        }
    }

    /// Tells Bitswap that the last connection to `peer` closed: our wants
    /// to it fail with [`WantError::Disconnected`], its wants are forgotten.
    pub fn peer_disconnected(&self, peer: PeerId) {
        lock(&self.inner.notices).disconnected.insert(peer);
        self.inner.notice.notify_one();
    }

    /// Current counters.
    pub fn stats(&self) -> BitswapStats {
        let s = &self.inner.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BitswapStats {
            blocks_sent: get(&s.blocks_sent),
            bytes_sent: get(&s.bytes_sent),
            blocks_received: get(&s.blocks_received),
            bytes_received: get(&s.bytes_received),
            duplicate_blocks: get(&s.duplicate_blocks),
            bad_blocks: get(&s.bad_blocks),
            protocol_errors: get(&s.protocol_errors),
            streams_refused: get(&s.streams_refused),
            streams_idle_closed: get(&s.streams_idle_closed),
            wants_in_flight: get(&s.wants_in_flight),
            peer_wants: lock(&self.inner.server).ledger.total_wants() as u64,
        }
    }
}

/// Our outbound side to one peer, owned by the actor.
#[derive(Debug)]
struct PeerIo {
    /// Frames for the writer (server answers).
    frames: mpsc::Sender<Frame>,
    /// Want entries for the writer (client side), sent before frames.
    entries: Arc<WantQueue>,
    generation: u64,
}

#[derive(Debug, Default)]
struct WantQueue {
    entries: Mutex<Vec<WantEntry>>,
    notify: Notify,
}

impl WantQueue {
    fn push(&self, entry: WantEntry) {
        lock(&self.entries).push(entry);
        self.notify.notify_one();
    }
}

/// Our wants to one peer for one CID.
#[derive(Debug)]
struct ClientWant {
    want_type: WantType,
    waiters: Vec<(u64, Reply)>,
}

struct Actor {
    inner: Arc<Inner>,
    control: Control,
    source: Arc<dyn BlockSource>,
    rx: mpsc::Receiver<Event>,
    peers: HashMap<PeerId, PeerIo>,
    wants: HashMap<(PeerId, Cid), ClientWant>,
    /// Our wants that ended lately, node-wide.
    recent: RecentWants,
    generation: u64,
}

impl Actor {
    async fn run(mut self, incoming: Option<BoxStream<'static, (PeerId, Stream)>>) {
        // Inbound streams are taken by a task of their own, so that a busy
        // actor never makes libp2p-stream drop one (see `inbound.rs`). The
        // actor stops when that task does, that is when the swarm is gone.
        let (accepting, mut accept_ended) = oneshot::channel::<()>();
        let _never_ends = match incoming {
            Some(incoming) => {
                let config = &self.inner.config;
                let slots =
                    StreamSlots::new(config.max_inbound_streams_per_peer, MAX_INBOUND_STREAMS);
                let inner = self.inner.clone();
                tokio::spawn(async move {
                    inbound::accept_streams(incoming, slots, inner).await;
                    drop(accepting);
                });
                None
            }
            None => Some(accepting),
        };
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.rx.recv() => match event {
                    Some(event) => self.on_event(event),
                    None => break,
                },
                _ = &mut accept_ended => break,
                () = self.inner.notice.notified() => self.on_notices(),
                _ = sweep.tick() => self.sweep(),
            }
            self.inner
                .stats
                .wants_in_flight
                .store(self.wants.len() as u64, Ordering::Relaxed);
        }
        debug!("bitswap actor stopped");
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Want {
                peer,
                cid,
                id,
                reply,
            } => self.on_want(peer, cid, id, reply),
            Event::Inbound { peer, message } => self.on_inbound(peer, message),
            Event::BadBlock { peer } => self.on_bad_block(peer),
            Event::WriterFailed {
                peer,
                generation,
                error,
            } => {
                if self
                    .peers
                    .get(&peer)
                    .is_some_and(|io| io.generation == generation)
                {
                    debug!(%peer, %error, "bitswap stream failed");
                    self.peers.remove(&peer);
                    self.fail_peer(peer, &WantError::Stream(error));
                }
            }
        }
    }

    /// The peer's outbound side, started if needed.
    fn peer_io(&mut self, peer: PeerId) -> &PeerIo {
        let generation = &mut self.generation;
        let inner = &self.inner;
        let control = &self.control;
        self.peers.entry(peer).or_insert_with(|| {
            *generation += 1;
            let (frames, rx) = mpsc::channel(inner.config.outbound_queue.max(1));
            let entries = Arc::new(WantQueue::default());
            tokio::spawn(write_loop(
                peer,
                control.clone(),
                rx,
                entries.clone(),
                inner.events.clone(),
                *generation,
                inner.config.outbound_idle,
            ));
            PeerIo {
                frames,
                entries,
                generation: *generation,
            }
        })
    }

    fn send_entry(&mut self, peer: PeerId, entry: WantEntry) {
        self.peer_io(peer).entries.push(entry);
    }

    fn on_want(&mut self, peer: PeerId, cid: Cid, id: u64, reply: Reply) {
        let want_type = match reply {
            Reply::Block(_) => WantType::Block,
            Reply::Have(_) => WantType::Have,
        };
        let full = self.wants.len() >= self.inner.config.max_outstanding_wants;
        let send = match self.wants.get_mut(&(peer, cid)) {
            Some(want) => {
                want.waiters.push((id, reply));
                if want.want_type == WantType::Have && want_type == WantType::Block {
                    want.want_type = WantType::Block;
                    true
                } else {
                    false
                }
            }
            None if full => {
                reply.fail(WantError::Overloaded);
                return;
            }
            None => {
                self.wants.insert(
                    (peer, cid),
                    ClientWant {
                        want_type,
                        waiters: vec![(id, reply)],
                    },
                );
                true
            }
        };
        if send {
            trace!(%peer, %cid, ?want_type, "want");
            self.send_entry(peer, WantEntry::want(cid, want_type, true));
        }
    }

    fn on_inbound(&mut self, peer: PeerId, message: Message) {
        if let Some(wantlist) = message.wantlist {
            self.on_wantlist(peer, &wantlist);
        }
        let now = Instant::now();
        for block in message.blocks {
            let stats = &self.inner.stats;
            bump(&stats.blocks_received, 1);
            bump(&stats.bytes_received, block.data().len() as u64);
            let cid = *block.cid();
            if let Some(want) = self.wants.remove(&(peer, cid)) {
                self.recent.ended(cid, now);
                for (_, reply) in want.waiters {
                    match reply {
                        Reply::Block(tx) => drop(tx.send(Ok(block.clone()))),
                        Reply::Have(tx) => drop(tx.send(Ok(true))),
                    }
                }
            } else if self.wanted_lately(&cid, now) {
                // Already received, cancelled, or asked of another peer:
                // the bytes are right (hashed on decoding), so no harm done.
                bump(&stats.duplicate_blocks, 1);
                trace!(%peer, %cid, "duplicate block");
            } else {
                debug!(%peer, %cid, "unsolicited block");
                self.on_bad_block(peer);
            }
        }
        for (cid, presence) in message.presences {
            let Some(want) = self.wants.get_mut(&(peer, cid)) else {
                continue;
            };
            let waiters = std::mem::take(&mut want.waiters);
            for (id, reply) in waiters {
                match (reply, presence) {
                    (Reply::Have(tx), p) => drop(tx.send(Ok(p == Presence::Have))),
                    (Reply::Block(tx), Presence::DontHave) => {
                        drop(tx.send(Err(WantError::DontHave)));
                    }
                    (reply @ Reply::Block(_), Presence::Have) => want.waiters.push((id, reply)),
                }
            }
            if want.waiters.is_empty() {
                self.wants.remove(&(peer, cid));
                if presence == Presence::DontHave {
                    // The server remembers a missing want; revoke it (which
                    // notes the end of the want too).
                    self.cancel(peer, cid);
                } else {
                    self.recent.ended(cid, now);
                }
            }
        }
    }

    fn on_wantlist(&mut self, peer: PeerId, wantlist: &Wantlist) {
        let applied = lock(&self.inner.server).ledger.apply(peer, wantlist);
        if applied.refused > 0 {
            debug!(%peer, refused = applied.refused, "wantlist over its cap");
        }
        if applied.queued == 0 {
            return;
        }
        let frames = self.peer_io(peer).frames.clone();
        let mut server = lock(&self.inner.server);
        if let Some(worker) = server.workers.get(&peer) {
            worker.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        server.workers.insert(peer, wake.clone());
        drop(server);
        tokio::spawn(serve_peer(
            peer,
            self.inner.clone(),
            self.source.clone(),
            frames,
            wake,
        ));
    }

    /// Whether this node wants `cid` of any peer now, or did until lately
    /// ([`BitswapConfig::recent_window`]). The scan of every want runs only
    /// for a block that no want of its sender matches.
    fn wanted_lately(&self, cid: &Cid, now: Instant) -> bool {
        self.recent.contains(cid, now) || self.wants.keys().any(|(_, c)| c == cid)
    }

    /// Sends a cancel for a want that just ended (and was removed).
    fn cancel(&mut self, peer: PeerId, cid: Cid) {
        self.recent.ended(cid, Instant::now());
        if self.peers.contains_key(&peer) {
            self.send_entry(peer, WantEntry::cancel(cid));
        }
    }

    fn on_bad_block(&mut self, peer: PeerId) {
        bump(&self.inner.stats.bad_blocks, 1);
        self.fail_peer(peer, &WantError::BadBlock);
    }

    /// Fails all our wants to `peer`.
    fn fail_peer(&mut self, peer: PeerId, error: &WantError) {
        let keys: Vec<_> = self
            .wants
            .keys()
            .filter(|(p, _)| *p == peer)
            .copied()
            .collect();
        let now = Instant::now();
        for key in keys {
            if let Some(want) = self.wants.remove(&key) {
                self.recent.ended(key.1, now);
                for (_, reply) in want.waiters {
                    reply.fail(error.clone());
                }
            }
        }
    }

    fn on_notices(&mut self) {
        let Notices {
            disconnected,
            cancels,
        } = std::mem::take(&mut *lock(&self.inner.notices));
        for (peer, cid, id) in cancels {
            if let Some(want) = self.wants.get_mut(&(peer, cid)) {
                want.waiters.retain(|(w, _)| *w != id);
                if want.waiters.is_empty() {
                    self.wants.remove(&(peer, cid));
                    self.cancel(peer, cid);
                }
            }
        }
        for peer in disconnected {
            debug!(%peer, "peer disconnected");
            self.fail_peer(peer, &WantError::Disconnected);
            self.peers.remove(&peer);
            let mut server = lock(&self.inner.server);
            server.ledger.remove_peer(&peer);
            if let Some(worker) = server.workers.remove(&peer) {
                worker.notify_one();
            }
        }
    }

    /// Drops waiters whose futures are gone without a cancel notice, and
    /// forgets old ended wants.
    fn sweep(&mut self) {
        self.recent.expire(Instant::now());
        let mut emptied = Vec::new();
        for (key, want) in &mut self.wants {
            want.waiters.retain(|(_, reply)| !reply.is_closed());
            if want.waiters.is_empty() {
                emptied.push(*key);
            }
        }
        for (peer, cid) in emptied {
            self.wants.remove(&(peer, cid));
            self.cancel(peer, cid);
        }
    }
}

async fn open(control: &mut Control, peer: PeerId) -> Result<Stream, String> {
    let attempt = async {
        match control.open_stream(peer, PROTOCOL).await {
            Err(OpenStreamError::UnsupportedProtocol(_)) => {
                control.open_stream(peer, PROTOCOL_1_1).await
            }
            other => other,
        }
    };
    match tokio::time::timeout(OPEN_TIMEOUT, attempt).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out opening a stream".to_owned()),
    }
}

async fn write_frames(stream: &mut Stream, frames: &[Frame]) -> std::io::Result<()> {
    for frame in frames {
        message::write_frame(stream, frame).await?;
    }
    stream.flush().await
}

/// Writes everything we send to `peer` over one outbound stream.
async fn write_loop(
    peer: PeerId,
    mut control: Control,
    mut rx: mpsc::Receiver<Frame>,
    queue: Arc<WantQueue>,
    events: mpsc::Sender<Event>,
    generation: u64,
    idle: Duration,
) {
    let mut stream: Option<Stream> = None;
    loop {
        let mut frames = Vec::new();
        tokio::select! {
            biased;
            () = queue.notify.notified() => {}
            frame = rx.recv() => match frame {
                Some(frame) => frames.push(frame),
                None => break,
            },
            () = tokio::time::sleep(idle), if stream.is_some() => {
                // Close it before the peer's idle timeout resets it.
                if let Some(mut s) = stream.take() {
                    trace!(%peer, "closing an idle bitswap stream");
                    let _ = tokio::time::timeout(Duration::from_secs(1), s.close()).await;
                }
                continue;
            }
        }
        let entries = std::mem::take(&mut *lock(&queue.entries));
        let mut batch: Vec<Frame> = entries
            .chunks(ENTRIES_PER_MESSAGE)
            .map(|chunk| {
                Message {
                    wantlist: Some(Wantlist {
                        entries: chunk.to_vec(),
                        full: false,
                    }),
                    ..Message::default()
                }
                .encode()
            })
            .collect();
        batch.append(&mut frames);
        // Coalesce what is already queued into one flush, up to 8 MiB.
        let mut bytes: usize = batch.iter().map(Frame::len).sum();
        while bytes < 2 * MAX_MESSAGE_SIZE
            && let Ok(frame) = rx.try_recv()
        {
            bytes += frame.len();
            batch.push(frame);
        }
        if batch.is_empty() {
            continue;
        }
        let mut result = Err(String::new());
        for _ in 0..2 {
            let s = match stream.as_mut() {
                Some(s) => s,
                None => match open(&mut control, peer).await {
                    Ok(s) => stream.insert(s),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                },
            };
            match write_frames(s, &batch).await {
                Ok(()) => {
                    result = Ok(());
                    break;
                }
                Err(e) => {
                    debug!(%peer, error = %e, "bitswap write failed");
                    stream = None;
                    result = Err(e.to_string());
                }
            }
        }
        if let Err(error) = result {
            let _ = events
                .send(Event::WriterFailed {
                    peer,
                    generation,
                    error,
                })
                .await;
            return;
        }
    }
    if let Some(mut s) = stream {
        let _ = tokio::time::timeout(Duration::from_secs(1), s.close()).await;
    }
}

/// Looks a wanted block up (blocking; run in `spawn_blocking`).
fn look_up(
    source: &dyn BlockSource,
    lookup: Lookup,
    have_block_limit: u64,
) -> (Found, Option<Block>) {
    let get = || match source.get(&lookup.cid) {
        Some(b) if *b.cid() == lookup.cid => (Found::Present(b.data().len() as u64), Some(b)),
        _ => (Found::Missing, None),
    };
    match lookup.want_type {
        WantType::Block => get(),
        WantType::Have => match source.size_of(&lookup.cid) {
            Some(size) if size <= have_block_limit => get(),
            Some(size) => (Found::Present(size), None),
            None => (Found::Missing, None),
        },
    }
}

/// Serves one peer's wants: takes lookups from the ledger, asks the block
/// source, and sends the answers in messages of at most 4 MiB through the
/// writer's bounded channel (which is the backpressure).
async fn serve_peer(
    peer: PeerId,
    inner: Arc<Inner>,
    source: Arc<dyn BlockSource>,
    frames: mpsc::Sender<Frame>,
    wake: Arc<Notify>,
) {
    let limit = inner.config.have_block_limit;
    let concurrency = inner.config.lookup_concurrency.max(1);
    let send = |message: Message| {
        let frames = &frames;
        let stats = &inner.stats;
        async move {
            let blocks = message.blocks.len() as u64;
            let bytes: u64 = message.blocks.iter().map(|b| b.data().len() as u64).sum();
            frames.send(message.encode()).await.ok()?;
            bump(&stats.blocks_sent, blocks);
            bump(&stats.bytes_sent, bytes);
            Some(())
        }
    };
    'serve: loop {
        let lookups = {
            let mut server = lock(&inner.server);
            if !server
                .workers
                .get(&peer)
                .is_some_and(|w| Arc::ptr_eq(w, &wake))
            {
                break;
            }
            server.ledger.next_lookups(&peer, LOOKUP_BATCH)
        };
        if lookups.is_empty() {
            wake.notified().await;
            continue;
        }
        let mut results = futures::stream::iter(lookups)
            .map(|lookup| {
                let source = source.clone();
                async move {
                    let found =
                        tokio::task::spawn_blocking(move || look_up(&*source, lookup, limit))
                            .await
                            .unwrap_or((Found::Missing, None));
                    (lookup, found)
                }
            })
            .buffered(concurrency);
        let mut batcher = Batcher::default();
        while let Some((lookup, (found, block))) = results.next().await {
            let answer = lock(&inner.server).ledger.decide(&peer, &lookup.cid, found);
            let full = match (answer, block) {
                (Some(Answer::Block), Some(block)) => batcher.push_block(block),
                (Some(Answer::Block | Answer::Have), _) => {
                    batcher.push_presence(lookup.cid, Presence::Have)
                }
                (Some(Answer::DontHave), _) => {
                    batcher.push_presence(lookup.cid, Presence::DontHave)
                }
                (None, _) => None,
            };
            if let Some(message) = full
                && send(message).await.is_none()
            {
                break 'serve;
            }
        }
        if let Some(message) = batcher.take()
            && send(message).await.is_none()
        {
            break;
        }
    }
    let mut server = lock(&inner.server);
    if server
        .workers
        .get(&peer)
        .is_some_and(|w| Arc::ptr_eq(w, &wake))
    {
        server.workers.remove(&peer);
    }
    trace!(%peer, "bitswap server worker stopped");
}
