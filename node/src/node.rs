//! The node: a thin event loop that owns the libp2p [`Swarm`] and the
//! [`Store`], and a cloneable [`Client`] through which everything else talks
//! to it. Commands carry a `oneshot` reply; every channel is bounded.
//!
//! Inbound gossip is checked off the event loop (signature checks and the
//! durable store write run in `spawn_blocking`), then reported back to
//! gossipsub: `Accept` forwards a record that is news to this node, `Reject`
//! penalises the sender of an invalid one, `Ignore` drops a duplicate or
//! stale one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ipsr_proto::sync::{SyncRequest, SyncResponse};
use ipsr_proto::{PackageKey, Record, ReleaseKey};
use ipsr_proto::{SignedRecord, VerifyError};
use libp2p::StreamProtocol;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::kad::{self, store::RecordStore};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Swarm, allow_block_list, connection_limits, identify, noise, ping, tcp,
    yamux,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::limiter::Limiter;
use crate::metrics::{Counters, Metrics, SharedMetrics};
use crate::store::DhtValue;
use crate::sync::{self, Items, SyncError, SyncReport};
use crate::{Config, Store, StoreError, Stored, identity};
use futures::FutureExt;
use futures::future::BoxFuture;
use ipsr_content::bitswap::{self, Bitswap};
use ipsr_content::blockstore::Blockstore;
use ipsr_content::{Content, Router, Source, Stopped};

/// The gossipsub topic that carries signed records.
pub const RECORDS_TOPIC: &str = "/ipsr/records/1";
/// The Kademlia protocol id.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipsr/kad/1.0.0");
/// How long a peer that sent bad blocks is refused.
const BAN: Duration = Duration::from_secs(60 * 60);
/// Releases re-announced in the DHT per republish tick.
const REPUBLISH_BATCH: usize = 64;

/// The identify protocol version string.
pub const PROTOCOL_VERSION: &str = "/ipsr/1.0.0";

/// Capacity of the command channel.
const COMMANDS: usize = 256;
/// Capacity of the channel of checked gossip.
const CHECKED: usize = 1024;
/// Sync requests a peer may send per second (burst: twice that).
const SYNC_REQUESTS_PER_SEC: u32 = 50;

/// An error starting or talking to a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The identity could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The transport could not be built or could not listen.
    #[error("transport: {0}")]
    Transport(String),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// A blocking task failed.
    #[error("internal task failed: {0}")]
    Task(String),
    /// The blockstore could not be opened.
    #[error("blockstore: {0}")]
    Blockstore(#[from] ipsr_content::blockstore::BlockstoreError),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    /// Peers refused for a while (they sent blocks that do not match).
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<sync::Codec>,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Raw streams, for Bitswap.
    stream: libp2p_stream::Behaviour,
    mdns: libp2p::swarm::behaviour::toggle::Toggle<libp2p::mdns::tokio::Behaviour>,
}

/// What a DHT get found: the package's newest release, and the highest log
/// position the found records were written at.
type DhtFound = Result<(Option<SignedRecord>, Option<u64>), NodeError>;

/// Where the answer to a DHT get goes.
type DhtReply = oneshot::Sender<Result<Option<SignedRecord>, NodeError>>;

/// DHT gets under way: who waits, for which package, what was found so far.
type DhtGets = HashMap<kad::QueryId, (DhtReply, PackageKey, Vec<Vec<u8>>)>;

enum Command {
    Publish(
        Box<SignedRecord>,
        oneshot::Sender<Result<Stored, NodeError>>,
    ),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Peers(oneshot::Sender<Vec<PeerId>>),
    Dial(Multiaddr, oneshot::Sender<Result<(), NodeError>>),
    PeerScore(PeerId, oneshot::Sender<Option<f64>>),
    MeshPeers(oneshot::Sender<Vec<PeerId>>),
    DhtPeers(oneshot::Sender<usize>),
    DhtGet(PackageKey, DhtReply),
    GossipRaw(Vec<u8>),
    /// Announce this node as a provider of a CID in the DHT.
    Provide(cid::Cid),
    /// Look for providers of a CID; they come on the channel.
    FindProviders(cid::Cid, mpsc::Sender<PeerId>),
    /// Close every connection to a peer and refuse it for [`BAN`].
    Ban(PeerId),
}

/// What the blocking checker says about one gossip message.
struct Checked {
    id: MessageId,
    source: PeerId,
    verdict: Result<Option<Stored>, VerifyError>,
}

/// Work finished off the event loop.
enum Done {
    /// An answer to a peer's sync request.
    Answer(ResponseChannel<SyncResponse>, Box<SyncResponse>),
    /// A sync session with a peer ended.
    Session(PeerId, Result<(SyncReport, Option<u64>), SyncError>),
    /// Values to put into the DHT (from a publish or a republish tick).
    DhtPut(Vec<DhtValue>),
    /// A validated inbound DHT record to keep, with this node's best value.
    DhtKeep(kad::Record),
    /// A DHT get finished: what was found, verified and stored.
    DhtGot(DhtReply, Box<DhtFound>),
    /// The next releases to republish, and where the walk stands.
    Republish(Option<ReleaseKey>),
}

/// A handle on a running node. Cheap to clone; the node stops when the last
/// handle is dropped.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    store: Arc<Store>,
    content: Content,
    routing: Arc<Routing>,
    peer_id: PeerId,
    log_head: watch::Receiver<u64>,
    metrics: SharedMetrics,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Client {
    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Prometheus metrics in the text exposition format: libp2p's and IPSR's
    /// (records accepted and rejected, sync sessions, store size).
    pub async fn metrics_text(&self) -> Result<String, NodeError> {
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        let (blocks, bitswap) = (
            self.content.blockstore().clone(),
            self.content.bitswap().stats(),
        );
        tokio::task::spawn_blocking(move || {
            Ok(metrics.encode(store.stats()?, blocks.stats()?, bitswap))
        })
        .await
        .map_err(task)?
    }

    /// The node's store, for reads.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The node's content: its blockstore, Bitswap and downloads, with
    /// this node's DHT as the router.
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// A receiver of the log head: it changes whenever records are appended.
    pub fn log_head(&self) -> watch::Receiver<u64> {
        self.log_head.clone()
    }

    /// Stores a verified record durably, then announces it on gossipsub.
    /// Returns what the store did with it.
    /// When the release's content is in the blockstore, it is pinned (so
    /// `gc` keeps it) and announced in the DHT.
    pub async fn publish(&self, record: SignedRecord) -> Result<Stored, NodeError> {
        let copy = record.clone();
        let stored = self
            .ask(|tx| Command::Publish(Box::new(record), tx))
            .await??;
        self.pin_published(&copy).await;
        Ok(stored)
    }

    /// After a publish: pins the release's content (and icon, screenshots)
    /// when its blocks are here, so `gc` keeps them, and provides it.
    async fn pin_published(&self, record: &SignedRecord) {
        let Some(release) = record.record().as_release() else {
            return;
        };
        let label = format!("{}/{}@{}", release.author, release.package, release.version);
        let cids = std::iter::once(&release.cid)
            .chain(release.metadata.icon.iter())
            .chain(release.metadata.screenshots.iter())
            .map(|c| *c.cid());
        for cid in cids {
            match self.content.pin_if_complete(cid, &label).await {
                Ok(true) => {}
                Ok(false) => debug!(%cid, "published content is not local"),
                Err(e) => warn!(%cid, error = %e, "cannot pin published content"),
            }
        }
    }

    /// The addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.ask(Command::ListenAddrs).await
    }

    /// The peers the node is connected to.
    pub async fn peers(&self) -> Result<Vec<PeerId>, NodeError> {
        self.ask(Command::Peers).await
    }

    /// How many peers the Kademlia routing table holds (0 until the DHT
    /// is bootstrapped).
    pub async fn dht_peers(&self) -> Result<usize, NodeError> {
        self.ask(Command::DhtPeers).await
    }

    /// Dials an address.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NodeError> {
        self.ask(|tx| Command::Dial(addr, tx)).await?
    }

    /// The gossipsub score of a peer, if known.
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NodeError> {
        self.ask(|tx| Command::PeerScore(peer, tx)).await
    }

    /// The peers in this node's gossipsub mesh for the records topic: the
    /// ones it forwards records to.
    pub async fn mesh_peers(&self) -> Result<Vec<PeerId>, NodeError> {
        self.ask(Command::MeshPeers).await
    }

    /// Looks a package up in the DHT: every record found is verified and
    /// stored, then the package's newest release is returned (also when it
    /// was known before). Works on a node that missed the gossip.
    pub async fn dht_get_package(
        &self,
        key: PackageKey,
    ) -> Result<Option<SignedRecord>, NodeError> {
        self.ask(|tx| Command::DhtGet(key, tx)).await?
    }

    /// Announces this node as a provider of `cid` in the DHT (kad
    /// re-announces it every [`Config::provide_interval`]).
    pub async fn provide(&self, cid: cid::Cid) -> Result<(), NodeError> {
        Ok(self.routing.provide(cid).await?)
    }

    /// Starts a DHT search for providers of `cid`. Providers come on the
    /// returned channel as they are found (the node dials them); it closes
    /// when the search ends.
    pub fn find_providers(&self, cid: cid::Cid) -> mpsc::Receiver<PeerId> {
        self.routing.find_providers(cid)
    }

    /// Closes every connection to `peer` and refuses it for an hour (a
    /// peer that sent blocks whose bytes do not match their CID).
    pub async fn ban(&self, peer: PeerId) -> Result<(), NodeError> {
        self.commands
            .send(Command::Ban(peer))
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Publishes arbitrary bytes on the records topic, bypassing every
    /// check: only for tests of how peers treat bad input.
    #[doc(hidden)]
    pub async fn gossip_raw_for_tests(&self, bytes: Vec<u8>) -> Result<(), NodeError> {
        self.commands
            .send(Command::GossipRaw(bytes))
            .await
            .map_err(|_| NodeError::Stopped)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }
}

/// Starts a node on the current tokio runtime: loads or creates its
/// identity, opens its store, listens and dials the bootstrap peers.
pub async fn spawn(config: Config) -> Result<Client, NodeError> {
    let key = identity::load_or_create(&config.data_dir)?;
    let store = {
        let path = config.data_dir.join("store.redb");
        Arc::new(
            tokio::task::spawn_blocking(move || Store::open(&path))
                .await
                .map_err(task)??,
        )
    };
    let blocks = {
        let (path, limit) = (config.data_dir.join("blocks"), config.blockstore_limit);
        Arc::new(
            tokio::task::spawn_blocking(move || Blockstore::open(&path, limit))
                .await
                .map_err(task)??,
        )
    };
    let mut swarm = build_swarm(key, &config)?;
    let (bitswap, bitswap_task) = Bitswap::new(
        swarm.behaviour().stream.new_control(),
        Arc::new(Source::new(&blocks)),
        bitswap::BitswapConfig::default(),
    );
    // Bitswap stops with the event loop (which drops `stopped`).
    let (stopped, on_stop) = oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::select! {
            () = bitswap_task => {}
            _ = on_stop => {}
        }
    });
    let topic = IdentTopic::new(RECORDS_TOPIC);
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .map_err(|e| NodeError::Transport(e.to_string()))?;
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::Transport(e.to_string()))?;
    }
    for addr in &config.bootstrap {
        if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() {
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        }
        if let Err(e) = swarm.dial(addr.clone()) {
            warn!(%addr, error = %e, "cannot dial bootstrap peer");
        }
    }
    if !config.bootstrap.is_empty() {
        // Bootstrap now; kad repeats it every five minutes.
        let _ = swarm.behaviour_mut().kad.bootstrap();
    }
    let peer_id = *swarm.local_peer_id();
    let head = store.stats()?.log_head;
    let (log_tx, log_head) = watch::channel(head);
    let (commands, rx) = mpsc::channel(COMMANDS);
    let (checked_tx, checked_rx) = mpsc::channel(CHECKED);
    let (calls_tx, calls_rx) = mpsc::channel(COMMANDS);
    let (done_tx, done_rx) = mpsc::channel(COMMANDS);
    let (metrics, libp2p_metrics) = Metrics::new();
    let counters = metrics.counters();
    let metrics = Arc::new(metrics);
    let runtime = Runtime {
        swarm,
        store: store.clone(),
        topic,
        commands: rx,
        checked_tx,
        checked_rx,
        log_tx,
        limiter: Limiter::new(
            config.max_records_per_peer_per_sec,
            config.max_records_per_peer_per_sec,
        ),
        listen_addrs: Vec::new(),
        items: Arc::new(Items::default()),
        calls_tx,
        calls_rx,
        pending: HashMap::new(),
        done_tx,
        done_rx,
        sync_limiter: Limiter::new(SYNC_REQUESTS_PER_SEC, SYNC_REQUESTS_PER_SEC * 2),
        syncing: HashSet::new(),
        sync_interval: config.sync_interval,
        next_sync_peer: 0,
        sync_on_connect: config.sync_on_connect,
        dht_gets: HashMap::new(),
        republish_interval: config.dht_republish_interval,
        republish_cursor: None,
        provider_searches: HashMap::new(),
        bitswap: bitswap.clone(),
        bans: Default::default(),
        _stopped: stopped,
        libp2p_metrics,
        counters,
    };
    info!(%peer_id, "node starting");
    tokio::spawn(runtime.run());
    let routing = Arc::new(Routing(commands.clone()));
    let client = Client {
        commands,
        store,
        content: Content::new(blocks, bitswap, routing.clone()),
        routing,
        peer_id,
        log_head,
        metrics,
    };
    client.content.provide_pins().await;
    Ok(client)
}

/// Yamux with each stream's receive window capped at 1 MiB. rust-yamux
/// refuses frames over 1 MiB (and closes the connection), yet grows a busy
/// stream's window up to the connection's 1 GiB budget; peers such as
/// js-yamux send frames as large as the window, so a window over 1 MiB
/// breaks Bitswap from Helia. libp2p-yamux only exposes the stream count:
/// 4093 streams × 256 KiB guaranteed leaves 0.75 MiB of the 1 GiB budget
/// for growth, so no stream's window passes 1 MiB.
fn yamux_config() -> yamux::Config {
    let mut config = yamux::Config::default();
    config.set_max_num_streams(4093);
    config
}

/// The node's DHT and swarm as the [`Router`] of its [`Content`].
#[derive(Debug)]
struct Routing(mpsc::Sender<Command>);

impl Routing {
    async fn send(&self, command: Command) -> Result<(), Stopped> {
        self.0.send(command).await.map_err(|_| Stopped)
    }
}

impl Router for Routing {
    fn find_providers(&self, cid: cid::Cid) -> mpsc::Receiver<PeerId> {
        let (tx, rx) = mpsc::channel(32);
        if let Err(mpsc::error::TrySendError::Full(command)) =
            self.0.try_send(Command::FindProviders(cid, tx))
        {
            let commands = self.0.clone();
            tokio::spawn(async move { commands.send(command).await });
        }
        rx
    }

    fn ban(&self, peer: PeerId) {
        let commands = self.0.clone();
        tokio::spawn(async move { commands.send(Command::Ban(peer)).await });
    }

    fn provide(&self, cid: cid::Cid) -> BoxFuture<'_, Result<(), Stopped>> {
        self.send(Command::Provide(cid)).boxed()
    }

    fn peers(&self) -> BoxFuture<'_, Result<Vec<PeerId>, Stopped>> {
        async move {
            let (tx, rx) = oneshot::channel();
            self.send(Command::Peers(tx)).await?;
            rx.await.map_err(|_| Stopped)
        }
        .boxed()
    }
}

fn task(e: tokio::task::JoinError) -> NodeError {
    NodeError::Task(e.to_string())
}

fn build_swarm(
    key: libp2p::identity::Keypair,
    config: &Config,
) -> Result<Swarm<Behaviour>, NodeError> {
    let transport = |e: &dyn std::fmt::Display| NodeError::Transport(e.to_string());
    let heartbeat = config.gossip_heartbeat;
    let dht_server = config.dht_server;
    let mdns = config.mdns;
    let provide_interval = config.provide_interval;
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_connections))
        .with_max_established_per_peer(Some(config.max_connections_per_peer))
        .with_max_pending_incoming(Some(config.max_connections / 2 + 1));
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux_config,
        )
        .map_err(|e| transport(&e))?
        .with_quic()
        .with_behaviour(
            |key| -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
                let gossip_config = gossipsub::ConfigBuilder::default()
                    .validate_messages()
                    .validation_mode(gossipsub::ValidationMode::Strict)
                    .heartbeat_interval(heartbeat)
                    // Keep messages in the cache (where validation results must
                    // find them) for at least 5 s, whatever the heartbeat.
                    .history_length(history_length(heartbeat))
                    .max_transmit_size(ipsr_proto::limits::MAX_RECORD_BYTES + 1024)
                    .message_id_fn(|m: &gossipsub::Message| {
                        use sha2::Digest;
                        MessageId::from(sha2::Sha256::digest(&m.data).to_vec())
                    })
                    .build()?;
                let mut gossipsub = gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Signed(key.clone()),
                    gossip_config,
                )?;
                let topic = IdentTopic::new(RECORDS_TOPIC);
                let params = score_params(&topic);
                gossipsub.with_peer_score(params, gossipsub::PeerScoreThresholds::default())?;
                Ok(Behaviour {
                    limits: connection_limits::Behaviour::new(limits),
                    blocked: Default::default(),
                    identify: identify::Behaviour::new(identify::Config::new(
                        PROTOCOL_VERSION.into(),
                        key.public(),
                    )),
                    ping: ping::Behaviour::default(),
                    gossipsub,
                    kad: {
                        let peer = key.public().to_peer_id();
                        let mut cfg = kad::Config::new(KAD_PROTOCOL);
                        cfg.set_record_filtering(kad::StoreInserts::FilterBoth);
                        cfg.set_max_packet_size(64 * 1024);
                        let store = kad::store::MemoryStore::with_config(
                            peer,
                            kad::store::MemoryStoreConfig {
                                max_records: 100_000,
                                max_value_bytes: ipsr_proto::limits::MAX_RECORD_BYTES,
                                max_provided_keys: 1_000_000,
                                ..Default::default()
                            },
                        );
                        cfg.set_provider_publication_interval(Some(provide_interval));
                        let mut kad = kad::Behaviour::with_config(peer, store, cfg);
                        if dht_server {
                            kad.set_mode(Some(kad::Mode::Server));
                        }
                        kad
                    },
                    stream: libp2p_stream::Behaviour::new(),
                    // LAN discovery sends multicast beyond this machine: opt-in only.
                    mdns: match mdns {
                        true => Some(libp2p::mdns::tokio::Behaviour::new(
                            libp2p::mdns::Config::default(),
                            key.public().to_peer_id(),
                        )?),
                        false => None,
                    }
                    .into(),
                    sync: request_response::Behaviour::with_codec(
                        sync::Codec,
                        [(sync::PROTOCOL, ProtocolSupport::Full)],
                        request_response::Config::default()
                            .with_request_timeout(Duration::from_secs(30))
                            .with_max_concurrent_streams(64),
                    ),
                })
            },
        )
        .map_err(|e| transport(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    Ok(swarm)
}

struct Runtime {
    swarm: Swarm<Behaviour>,
    store: Arc<Store>,
    topic: IdentTopic,
    commands: mpsc::Receiver<Command>,
    checked_tx: mpsc::Sender<Checked>,
    checked_rx: mpsc::Receiver<Checked>,
    log_tx: watch::Sender<u64>,
    limiter: Limiter,
    listen_addrs: Vec<Multiaddr>,
    items: Arc<Items>,
    calls_tx: mpsc::Sender<sync::Call>,
    calls_rx: mpsc::Receiver<sync::Call>,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<SyncResponse, String>>>,
    done_tx: mpsc::Sender<Done>,
    done_rx: mpsc::Receiver<Done>,
    sync_limiter: Limiter,
    syncing: HashSet<PeerId>,
    sync_interval: Duration,
    next_sync_peer: usize,
    sync_on_connect: bool,
    dht_gets: DhtGets,
    republish_interval: Duration,
    republish_cursor: Option<ReleaseKey>,
    /// Provider searches under way: where found providers go, who was sent.
    provider_searches: HashMap<kad::QueryId, (mpsc::Sender<PeerId>, HashSet<PeerId>)>,
    bitswap: Bitswap,
    /// Banned peers, oldest first, with when their ban ends.
    bans: std::collections::VecDeque<(Instant, PeerId)>,
    /// Dropped with the event loop, which stops Bitswap.
    _stopped: oneshot::Sender<()>,
    libp2p_metrics: libp2p::metrics::Metrics,
    counters: Counters,
}

impl Runtime {
    async fn run(mut self) {
        let mut republish_timer = tokio::time::interval(self.republish_interval);
        republish_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sync_timer = tokio::time::interval(self.sync_interval);
        sync_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(checked) = self.checked_rx.recv() => self.on_checked(checked),
                Some(call) = self.calls_rx.recv() => {
                    let id = self.swarm.behaviour_mut().sync.send_request(&call.peer, call.request);
                    self.pending.insert(id, call.reply);
                }
                Some(done) = self.done_rx.recv() => self.on_done(done),
                _ = sync_timer.tick() => {
                    self.sync_with_next_peer();
                    self.lift_bans();
                }
                _ = republish_timer.tick() => self.republish(),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command).await,
                    None => break,
                },
            }
        }
        info!(peer_id = %self.swarm.local_peer_id(), "node stopped");
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        match &event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.libp2p_metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.libp2p_metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.libp2p_metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.libp2p_metrics.record(e),
            _ => {}
        }
        self.libp2p_metrics.record(&event);
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.listen_addrs.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                debug!(%peer_id, "connected");
                if num_established.get() == 1 && self.sync_on_connect {
                    self.start_sync(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                debug!(%peer_id, "disconnected");
                self.limiter.forget(&peer_id);
                self.bitswap.peer_disconnected(peer_id);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message.data),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    debug!(%peer, %addr, "found on the LAN");
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocols.contains(&KAD_PROTOCOL) => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            _ => {}
        }
    }

    fn on_sync_event(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                if !self.sync_limiter.allow(peer, Instant::now()) {
                    let busy = SyncResponse::Error("rate limited".into());
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, busy);
                    return;
                }
                let (store, items, done) =
                    (self.store.clone(), self.items.clone(), self.done_tx.clone());
                tokio::task::spawn_blocking(move || {
                    let response = sync::answer(&store, &items, request);
                    let _ = done.blocking_send(Done::Answer(channel, Box::new(response)));
                });
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "sync request failed")
            }
            Event::ResponseSent { .. } => {}
        }
    }

    fn on_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => {
                if !self.limiter.allow(source, Instant::now()) {
                    debug!(%source, "DHT put rate limited");
                    return;
                }
                let (store, done) = (self.store.clone(), self.done_tx.clone());
                tokio::task::spawn_blocking(move || match dht_inbound(&store, &record) {
                    Ok(Some(value)) => {
                        let keep = kad::Record { value, ..record };
                        let _ = done.blocking_send(Done::DhtKeep(keep));
                    }
                    Ok(None) => {}
                    Err(e) => warn!(%source, error = %e, "refused a DHT record"),
                });
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                ..
            } => self.on_providers(id, result, step.last),
            kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            } => {
                let kad::QueryResult::GetRecord(result) = result else {
                    return;
                };
                let Some((_, _, found)) = self.dht_gets.get_mut(&id) else {
                    return;
                };
                let finished = match result {
                    Ok(kad::GetRecordOk::FoundRecord(peer_record)) => {
                        found.push(peer_record.record.value);
                        step.last
                    }
                    Ok(kad::GetRecordOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => true,
                };
                if finished && let Some((reply, key, found)) = self.dht_gets.remove(&id) {
                    let (store, done) = (self.store.clone(), self.done_tx.clone());
                    tokio::task::spawn_blocking(move || {
                        let result = dht_found(&store, &key, found);
                        let _ = done.blocking_send(Done::DhtGot(reply, Box::new(result)));
                    });
                }
            }
            _ => {}
        }
    }

    /// Passes found providers to the search's channel and dials them while
    /// the query still knows their addresses.
    fn on_providers(
        &mut self,
        id: kad::QueryId,
        result: Result<kad::GetProvidersOk, kad::GetProvidersError>,
        last: bool,
    ) {
        let me = *self.swarm.local_peer_id();
        let Some((tx, sent)) = self.provider_searches.get_mut(&id) else {
            return;
        };
        let mut finished = last || tx.is_closed();
        let mut dial = Vec::new();
        match result {
            Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                for peer in providers {
                    if peer == me || !sent.insert(peer) {
                        continue;
                    }
                    dial.push(peer);
                    if tx.try_send(peer).is_err() {
                        finished = true;
                    }
                }
            }
            Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => {
                finished = true
            }
        }
        for peer in dial {
            if !self.swarm.is_connected(&peer) {
                let _ = self.swarm.dial(peer);
            }
        }
        if finished {
            self.provider_searches.remove(&id);
            if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                query.finish();
            }
        }
    }

    /// Announces the next few releases in the DHT, walking the whole store
    /// over successive ticks, so records outlive their DHT expiry and a
    /// restarted node's records are findable again.
    fn republish(&mut self) {
        let (store, done) = (self.store.clone(), self.done_tx.clone());
        let cursor = self.republish_cursor.clone();
        tokio::task::spawn_blocking(move || {
            let result = store
                .release_keys(cursor.as_ref(), REPUBLISH_BATCH)
                .and_then(|keys| {
                    let mut values = Vec::new();
                    for key in &keys {
                        values.extend(store.dht_values(key)?);
                    }
                    Ok((keys.last().cloned(), values))
                });
            match result {
                Ok((next, values)) => {
                    let _ = done.blocking_send(Done::DhtPut(values));
                    let _ = done.blocking_send(Done::Republish(next));
                }
                Err(e) => warn!(error = %e, "republish failed"),
            }
        });
    }

    fn dht_put(&mut self, values: Vec<DhtValue>) {
        for (key, value) in values {
            let record = kad::Record::new(kad::RecordKey::new(&key), value);
            if let Err(e) = self
                .swarm
                .behaviour_mut()
                .kad
                .put_record(record, kad::Quorum::One)
            {
                debug!(error = %e, "DHT put failed");
            }
        }
    }

    /// Starts a sync session with `peer` unless one is running.
    fn start_sync(&mut self, peer: PeerId) {
        if !self.syncing.insert(peer) {
            return;
        }
        let (store, calls, done) = (
            self.store.clone(),
            self.calls_tx.clone(),
            self.done_tx.clone(),
        );
        tokio::spawn(async move {
            let result = sync::session(peer, store, calls).await;
            let _ = done.send(Done::Session(peer, result)).await;
        });
    }

    /// Lets banned peers back once their ban is over.
    fn lift_bans(&mut self) {
        let now = Instant::now();
        while let Some((until, peer)) = self.bans.front().copied() {
            if until > now {
                break;
            }
            self.bans.pop_front();
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
    }

    /// Now and then, sync with the next connected peer in turn, so that a
    /// record that missed this node's gossip arrives anyway.
    fn sync_with_next_peer(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if peers.is_empty() {
            return;
        }
        self.next_sync_peer = (self.next_sync_peer + 1) % peers.len();
        self.start_sync(peers[self.next_sync_peer]);
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Answer(channel, response) => {
                // The peer may have gone; then there is no one to answer.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, *response);
            }
            Done::Session(peer, result) => {
                self.syncing.remove(&peer);
                match result {
                    Ok((report, head)) => {
                        debug!(%peer, ?report, "synced");
                        self.counters.accepted("sync", report.kept as u64);
                        self.counters.sync_session("ok", report.rounds as u64);
                        if let Some(position) = head {
                            self.bump_position(position);
                        }
                    }
                    Err(SyncError::InvalidRecord(e)) => {
                        self.counters.rejected("sync", e.reason());
                        self.counters.sync_session("invalid_record", 0);
                        warn!(%peer, error = %e, "peer sent an invalid record during sync; disconnecting");
                        let _ = self.swarm.disconnect_peer_id(peer);
                    }
                    Err(e) => {
                        debug!(%peer, error = %e, "sync failed");
                        self.counters.sync_session("failed", 0);
                    }
                }
            }
            Done::DhtPut(values) => self.dht_put(values),
            Done::DhtKeep(record) => {
                if let Err(e) = self.swarm.behaviour_mut().kad.store_mut().put(record) {
                    debug!(error = %e, "DHT store full");
                }
            }
            Done::DhtGot(reply, result) => {
                let result = (*result).map(|(newest, head)| {
                    if let Some(position) = head {
                        self.bump_position(position);
                    }
                    newest
                });
                let _ = reply.send(result);
            }
            Done::Republish(next) => self.republish_cursor = next,
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, data: Vec<u8>) {
        if !self.limiter.allow(source, Instant::now()) {
            debug!(%source, "rate limited");
            self.report(&id, &source, MessageAcceptance::Ignore);
            return;
        }
        let store = self.store.clone();
        let tx = self.checked_tx.clone();
        tokio::task::spawn_blocking(move || {
            let verdict = SignedRecord::from_bytes(&data)
                .and_then(|r| r.verify())
                .map(|record| match store.apply(vec![record]) {
                    Ok(mut stored) => stored.pop(),
                    Err(e) => {
                        warn!(error = %e, "store failed");
                        None
                    }
                });
            // The loop may have stopped; then nothing is waiting for this.
            let _ = tx.blocking_send(Checked {
                id,
                source,
                verdict,
            });
        });
    }

    fn on_checked(&mut self, checked: Checked) {
        let acceptance = match &checked.verdict {
            Err(e) => {
                warn!(source = %checked.source, reason = e.reason(), error = %e, "rejected record");
                self.counters.rejected("gossip", e.reason());
                MessageAcceptance::Reject
            }
            Ok(Some(stored)) if stored.is_news() => {
                debug!(record = %stored.id, "accepted record");
                self.counters.accepted("gossip", 1);
                self.bump_log(stored);
                MessageAcceptance::Accept
            }
            Ok(_) => MessageAcceptance::Ignore,
        };
        self.report(&checked.id, &checked.source, acceptance);
    }

    fn report(&mut self, id: &MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
    }

    fn bump_log(&self, stored: &Stored) {
        if let Some(position) = stored.position {
            self.bump_position(position);
        }
    }

    fn bump_position(&self, position: u64) {
        self.log_tx.send_if_modified(|head| {
            let newer = position > *head;
            *head = (*head).max(position);
            newer
        });
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish(record, reply) => {
                let key = record.release_key();
                let store = self.store.clone();
                let bytes = record.to_bytes();
                let stored = tokio::task::spawn_blocking(move || store.apply(vec![*record])).await;
                let result = match stored {
                    Ok(Ok(mut stored)) => {
                        let stored = stored.pop().expect("one record in, one result out");
                        self.bump_log(&stored);
                        if stored.is_news() {
                            self.counters.accepted("local", 1);
                            self.gossip(bytes);
                            self.announce(key);
                        }
                        Ok(stored)
                    }
                    Ok(Err(e)) => Err(e.into()),
                    Err(e) => Err(task(e)),
                };
                let _ = reply.send(result);
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::DhtPeers(reply) => {
                let kad = &mut self.swarm.behaviour_mut().kad;
                let _ = reply.send(kad.kbuckets().map(|b| b.num_entries()).sum());
            }
            Command::Dial(addr, reply) => {
                let result = self
                    .swarm
                    .dial(addr)
                    .map_err(|e| NodeError::Transport(e.to_string()));
                let _ = reply.send(result);
            }
            Command::PeerScore(peer, reply) => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::MeshPeers(reply) => {
                let hash = self.topic.hash();
                let mesh = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .mesh_peers(&hash)
                    .copied()
                    .collect();
                let _ = reply.send(mesh);
            }
            Command::GossipRaw(bytes) => self.gossip(bytes),
            Command::Provide(cid) => {
                let key = kad::RecordKey::new(&cid.hash().to_bytes());
                if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
                    warn!(%cid, error = %e, "cannot provide");
                }
            }
            Command::FindProviders(cid, tx) => {
                let key = kad::RecordKey::new(&cid.hash().to_bytes());
                let query = self.swarm.behaviour_mut().kad.get_providers(key);
                self.provider_searches.insert(query, (tx, HashSet::new()));
            }
            Command::Ban(peer) => {
                warn!(%peer, "banned for an hour");
                self.swarm.behaviour_mut().blocked.block_peer(peer);
                self.bans.push_back((Instant::now() + BAN, peer));
            }
            Command::DhtGet(key, reply) => {
                let query = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_record(kad::RecordKey::new(&key.dht_key()));
                self.dht_gets.insert(query, (reply, key, Vec::new()));
            }
        }
    }

    /// Puts what this node serves for a release into the DHT.
    fn announce(&mut self, key: ReleaseKey) {
        let (store, done) = (self.store.clone(), self.done_tx.clone());
        tokio::task::spawn_blocking(move || match store.dht_values(&key) {
            Ok(values) => {
                let _ = done.blocking_send(Done::DhtPut(values));
            }
            Err(e) => warn!(error = %e, "cannot read DHT values"),
        });
    }

    fn gossip(&mut self, bytes: Vec<u8>) {
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            Ok(id) => debug!(message = %id, "gossiped"),
            // Sync brings the record to peers that were not reachable now.
            Err(e) => debug!(error = %e, "not gossiped"),
        }
    }
}

/// Checks an inbound DHT record: the value must be a valid signed record
/// stored under its own release or package key. Stores the record, and
/// returns what this node serves under that key (its best value), or `None`
/// when it holds nothing for it (a stale value for a key it does not serve).
fn dht_inbound(store: &Store, record: &kad::Record) -> Result<Option<Vec<u8>>, NodeError> {
    let signed = SignedRecord::from_bytes(&record.value)
        .and_then(|r| r.verify())
        .map_err(|e| NodeError::Transport(format!("invalid DHT value: {e}")))?;
    let key = signed.release_key();
    let under = record.key.as_ref();
    let is_release_key = under == key.dht_key().as_slice();
    let is_package_key = under == key.package_key().dht_key().as_slice();
    if !is_release_key && !is_package_key {
        return Err(NodeError::Transport(
            "DHT value stored under another key".into(),
        ));
    }
    if is_package_key && !matches!(signed.record(), Record::Release(_)) {
        return Err(NodeError::Transport("a yank under a package key".into()));
    }
    store.apply(vec![signed])?;
    Ok(store
        .dht_values(&key)?
        .into_iter()
        .find(|(k, _)| k.as_slice() == under)
        .map(|(_, v)| v))
}

/// Verifies and stores what a DHT get found; returns the package's newest
/// release and the highest log position written.
fn dht_found(store: &Store, key: &PackageKey, found: Vec<Vec<u8>>) -> DhtFound {
    let mut valid = Vec::new();
    for bytes in found {
        match SignedRecord::from_bytes(&bytes).and_then(|r| r.verify()) {
            Ok(r) if r.record().package_key() == *key => valid.push(r),
            Ok(_) => debug!("DHT value for another package"),
            Err(e) => debug!(error = %e, "invalid DHT value"),
        }
    }
    let head = store.apply(valid)?.iter().filter_map(|s| s.position).max();
    let newest = store.package(key)?.and_then(|p| p.newest().cloned());
    Ok((newest, head))
}

/// Heartbeats in gossipsub's message cache: at least 5, and at least 5 s.
fn history_length(heartbeat: Duration) -> usize {
    let beats = Duration::from_secs(5).as_millis() / heartbeat.as_millis().max(1);
    usize::try_from(beats).unwrap_or(usize::MAX).max(5)
}

/// Gossipsub peer scoring for the records topic (see `docs/node.md`): an
/// invalid record costs far more than any good behaviour can earn, so a
/// single forgery drives the sender's score below zero.
fn score_params(topic: &IdentTopic) -> gossipsub::PeerScoreParams {
    let mut params = gossipsub::PeerScoreParams {
        // Good behaviour earns at most this much.
        topic_score_cap: 100.0,
        // Many honest nodes share an address (NAT, phones, local testnets).
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    params.topics.insert(
        topic.hash(),
        gossipsub::TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 0.1,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 300.0,
            first_message_deliveries_weight: 1.0,
            first_message_deliveries_cap: 50.0,
            // Records are rare: staying quiet in the mesh is no fault.
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            invalid_message_deliveries_weight: -1000.0,
            invalid_message_deliveries_decay: 0.3,
            ..Default::default()
        },
    );
    params
}

impl From<Stopped> for NodeError {
    fn from(_: Stopped) -> Self {
        Self::Stopped
    }
}
