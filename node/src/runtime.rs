//! The event loop: [`spawn`] wires a node together (identity, store,
//! blockstore, swarm, Bitswap) and starts a [`Runtime`], which owns the
//! [`Swarm`] and carries out what the [`Service`] decides. It translates
//! swarm events and client commands into calls on the service, runs store
//! work and signature checks on the blocking pool, and performs each
//! [`Action`] against the swarm. It holds no rule of its own; what it keeps
//! is bookkeeping (queries and requests under way, by id). The bootstrap
//! [`Schedule`](bootstrap::Schedule) is the other rule-keeper it drives.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use ipsr_content::Source;
use ipsr_content::bitswap::{self, Bitswap};
use ipsr_content::blockstore::{Blockstore, BlockstoreError};
use ipsr_proto::sync::{SyncRequest, SyncResponse};
use ipsr_proto::{PackageKey, ReleaseKey, Signed, SignedRecord, VerifyError};
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::kad;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identify};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::bootstrap;
use crate::client::{Client, Command, DhtReply, Parts};
use crate::config::Config;
use crate::dht::{self, DhtValueError};
use crate::error::NodeError;
use crate::identity;
use crate::metrics::{Counters, Metrics};
use crate::pacing::Page;
use crate::providers::Refused;
use crate::service::{Action, Origin, Service, Settings};
use crate::store::{DhtValue, Store, StoreError, Stored};
use crate::swarm::{Behaviour, BehaviourEvent, KAD_PROTOCOL, RECORDS_TOPIC};
use crate::sync::{self, Items};
use crate::writes::{MAX_QUEUED, Push, Writes};

/// Capacity of the command channel (and of the sync calls).
const COMMANDS: usize = 256;
/// Capacity of the channel of work finished off the loop.
const DONE: usize = 1024;
/// Inbound DHT puts stored at once (each waits for the disk on a thread of
/// the blocking pool, holding a permit of `dht_applying`); past it a put
/// is shed.
const MAX_DHT_APPLYING: usize = 16;

/// Starts a node on the current tokio runtime: loads or creates its
/// identity, opens its store, listens and dials the bootstrap peers.
pub async fn spawn(config: Config) -> Result<Client, NodeError> {
    let dir_lock = crate::data_dir::lock(&config.data_dir)?;
    let key = identity::load_or_create(&config.data_dir)?;
    let store = {
        let path = config.data_dir.join("store.redb");
        Arc::new(tokio::task::spawn_blocking(move || Store::open(&path)).await??)
    };
    let blocks = {
        let (path, limit) = (config.data_dir.join("blocks"), config.blockstore_limit);
        Arc::new(tokio::task::spawn_blocking(move || Blockstore::open(&path, limit)).await??)
    };
    let mut swarm = crate::swarm::build(key, &config)?;
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
    swarm.behaviour_mut().gossipsub.subscribe(&topic)?;
    // A TCP port another process listens on is refused, not shared
    // (`check_tcp_port`); every one is checked before the node listens.
    for addr in &config.listen {
        crate::swarm::check_tcp_port(addr)?;
    }
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|source| NodeError::Listen {
                addr: addr.clone(),
                source,
            })?;
    }
    // What peers are told to dial (provider records carry these: a record
    // without addresses is only usable where the provider is known).
    for addr in &config.announce {
        swarm.add_external_address(addr.clone());
    }
    for addr in &config.bootstrap {
        if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() {
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        }
    }
    if !config.bootstrap.is_empty() {
        // Bootstrap now; kad repeats it every five minutes.
        let _ = swarm.behaviour_mut().kad.bootstrap();
    }
    let peer_id = *swarm.local_peer_id();
    // The loop dials them, and again until they answer (`bootstrap.rs`).
    let joining = bootstrap::Schedule::new(
        config.bootstrap.clone(),
        config.rebootstrap_after,
        Instant::now(),
        bootstrap::seed(&peer_id),
    );
    let (log_tx, log_head) = watch::channel(store.stats()?.log_head);
    let (commands, commands_rx) = mpsc::channel(COMMANDS);
    let (calls_tx, calls_rx) = mpsc::channel(COMMANDS);
    let (done_tx, done_rx) = mpsc::channel(DONE);
    let (metrics, libp2p_metrics) = Metrics::new();
    let service = Service::new(Settings::from(&config), metrics.counters(), Instant::now());
    let runtime = Runtime {
        _dir_lock: dir_lock,
        swarm,
        service,
        counters: metrics.counters(),
        store: store.clone(),
        blocks: blocks.clone(),
        topic,
        commands: commands_rx,
        log_tx,
        listen_addrs: Vec::new(),
        announce_listen: config.announce.is_empty(),
        items: Arc::new(Items::default()),
        calls_tx,
        calls_rx,
        pending: HashMap::new(),
        done_tx,
        done_rx,
        writes: Writes::default(),
        dht_applying: Arc::new(Semaphore::new(MAX_DHT_APPLYING)),
        dht_gets: HashMap::new(),
        dht_identity_gets: HashMap::new(),
        provider_searches: HashMap::new(),
        bitswap: bitswap.clone(),
        joining,
        _stopped: stopped,
        libp2p_metrics,
    };
    info!(%peer_id, "node starting");
    tokio::spawn(runtime.run());
    // The pins are announced by the service's re-provide walk, which
    // starts at once.
    Ok(Client::new(Parts {
        commands,
        store,
        blocks,
        bitswap,
        peer_id,
        log_head,
        metrics: Arc::new(metrics),
    }))
}

/// Work finished off the event loop.
enum Done {
    /// Record bytes were verified.
    Checked {
        origin: Origin,
        bytes: Vec<u8>,
        verdict: Box<Result<Signed, VerifyError>>,
    },
    /// A write of records is done: each record's outcome, in order.
    Written(Vec<Write>, Vec<Result<Stored, NodeError>>),
    /// An answer to a peer's sync request.
    Answer(ResponseChannel<SyncResponse>, Box<SyncResponse>),
    /// A sync session with a peer ended.
    Synced(PeerId, sync::Outcome),
    /// Values to put into the DHT (what a local publish announces).
    DhtPut(Vec<DhtValue>),
    /// An inbound DHT put was checked and stored (or refused): the record
    /// as put, and what the store took and this node's best value for it.
    DhtApplied(PeerId, Box<kad::Record>, Result<dht::Kept, DhtValueError>),
    /// A DHT get finished: what was found, verified and stored.
    DhtGot(DhtReply, Box<Result<dht::Found, StoreError>>),
    /// The identity documents found for a package lookup are stored (the
    /// highest log position written); the package's own get comes next.
    DhtIdentityGot(DhtReply, PackageKey, Box<Result<Option<u64>, StoreError>>),
    /// The next releases to republish.
    RepublishRead(Result<Page<ReleaseKey, DhtValue>, StoreError>),
    /// The next pinned roots to re-provide.
    ReprovideRead(Result<Page<cid::Cid, cid::Cid>, BlockstoreError>),
}

/// A verified record on its way into the store; for a local publish, the
/// caller waits on `reply`.
struct Write {
    origin: Origin,
    record: Box<Signed>,
    reply: Option<oneshot::Sender<Result<Stored, NodeError>>>,
}

/// DHT gets under way: who waits, for which package, what was found so far.
type DhtGets = HashMap<kad::QueryId, (DhtReply, PackageKey, Vec<Vec<u8>>)>;

/// Provider searches under way: where found providers go, who was sent.
type ProviderSearches = HashMap<kad::QueryId, (mpsc::Sender<PeerId>, HashSet<PeerId>)>;

struct Runtime {
    /// This process's hold on the data dir, for as long as the loop runs.
    _dir_lock: crate::data_dir::DirLock,
    swarm: Swarm<Behaviour>,
    service: Service,
    /// For the DHT store gauges.
    counters: Counters,
    store: Arc<Store>,
    blocks: Arc<Blockstore>,
    topic: IdentTopic,
    commands: mpsc::Receiver<Command>,
    log_tx: watch::Sender<u64>,
    listen_addrs: Vec<Multiaddr>,
    /// Whether the listen addresses are the ones announced (no
    /// `Config::announce`).
    announce_listen: bool,
    items: Arc<Items>,
    calls_tx: mpsc::Sender<sync::Call>,
    calls_rx: mpsc::Receiver<sync::Call>,
    /// Sync requests sent, by id, with where the answer goes.
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<SyncResponse, OutboundFailure>>>,
    done_tx: mpsc::Sender<Done>,
    done_rx: mpsc::Receiver<Done>,
    /// Records waiting for the store, written a batch at a time.
    writes: Writes<Write>,
    /// Permits of the inbound DHT puts being stored ([`MAX_DHT_APPLYING`]):
    /// each is given back when its store call ends, also if it panics.
    dht_applying: Arc<Semaphore>,
    dht_gets: DhtGets,
    /// Package lookups waiting for the author's identity first.
    dht_identity_gets: DhtGets,
    provider_searches: ProviderSearches,
    bitswap: Bitswap,
    /// When to dial the bootstrap peers (again).
    joining: bootstrap::Schedule,
    /// Dropped with the event loop, which stops Bitswap.
    _stopped: oneshot::Sender<()>,
    libp2p_metrics: libp2p::metrics::Metrics,
}

impl Runtime {
    async fn run(mut self) {
        self.join();
        let mut armed = self.next_wakeup();
        let mut wakeup = Box::pin(tokio::time::sleep_until(armed));
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(done) = self.done_rx.recv() => self.on_done(done),
                Some(call) = self.calls_rx.recv() => {
                    let id = self.swarm.behaviour_mut().sync.send_request(&call.peer, call.request);
                    self.pending.insert(id, call.reply);
                }
                () = &mut wakeup => self.service.tick(Instant::now()),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
            }
            self.carry_out();
            self.join();
            // Re-arm the timer only when the service's next deadline moved.
            let next = self.next_wakeup();
            if next != armed || wakeup.is_elapsed() {
                armed = next;
                Pin::as_mut(&mut wakeup).reset(armed);
            }
        }
        info!(peer_id = %self.swarm.local_peer_id(), "node stopped");
    }

    fn next_wakeup(&self) -> tokio::time::Instant {
        let next = self.service.next_wakeup();
        let next = self.joining.next_wakeup().map_or(next, |j| j.min(next));
        tokio::time::Instant::from_std(next)
    }

    /// Dials the bootstrap addresses due now, or bootstraps Kademlia.
    fn join(&mut self) {
        use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
        let now = Instant::now();
        while let Some(step) = self.joining.poll(now) {
            let bootstrap::Step::Dial { index, addr } = step else {
                if let Err(e) = self.swarm.behaviour_mut().kad.bootstrap() {
                    debug!(error = %e, "no Kademlia bootstrap");
                }
                continue;
            };
            let opts = match addr.iter().last() {
                Some(libp2p::multiaddr::Protocol::P2p(peer)) => {
                    let kad = &mut self.swarm.behaviour_mut().kad;
                    kad.add_address(&peer, addr.clone());
                    DialOpts::peer_id(peer)
                        .addresses(vec![addr.clone()])
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build()
                }
                _ => DialOpts::unknown_peer_id().address(addr.clone()).build(),
            };
            let id = opts.connection_id();
            self.joining.on_dialing(index, id);
            if let Err(e) = self.swarm.dial(opts) {
                debug!(%addr, error = %e, "cannot dial bootstrap peer");
                self.joining.on_dial_failed(id, now);
            }
        }
    }

    /// Performs every action the service has decided on.
    fn carry_out(&mut self) {
        while let Some(action) = self.service.next_action() {
            match action {
                Action::Report {
                    id,
                    source,
                    acceptance,
                } => {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(&id, &source, acceptance);
                }
                Action::Check { origin, bytes } => self.check_off_loop(origin, bytes),
                Action::Apply { origin, record } => self.apply_off_loop(origin, record, None),
                Action::Gossip(bytes) => {
                    let topic = self.topic.clone();
                    match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
                        Ok(id) => debug!(message = %id, "gossiped"),
                        // Sync brings the record to peers that were not reachable now.
                        Err(e) => debug!(error = %e, "not gossiped"),
                    }
                }
                Action::Announce(key) => self.announce(key),
                Action::DhtPut(values) => self.dht_put(values),
                Action::ReadRepublish { after, limit } => self.read_republish(after, limit),
                Action::ReadReprovide { after, limit } => self.read_reprovide(after, limit),
                Action::Provide(roots) => {
                    for root in roots {
                        self.provide(root);
                    }
                    self.dht_store_gauges();
                }
                Action::StartSync(peer) => {
                    let (store, calls, done) = (
                        self.store.clone(),
                        self.calls_tx.clone(),
                        self.done_tx.clone(),
                    );
                    tokio::spawn(async move {
                        let outcome = sync::session(peer, store, calls).await;
                        let _ = done.send(Done::Synced(peer, outcome)).await;
                    });
                }
                Action::Disconnect(peer) => {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                Action::Ban(peer) => {
                    self.swarm.behaviour_mut().blocked.block_peer(peer);
                }
                Action::Unban(peer) => {
                    self.swarm.behaviour_mut().blocked.unblock_peer(peer);
                }
                Action::LogHead(position) => {
                    self.log_tx.send_if_modified(|head| {
                        let newer = position > *head;
                        *head = (*head).max(position);
                        newer
                    });
                }
            }
        }
    }

    /// Verifies record bytes off the loop and hands the verdict back to
    /// the loop as [`Done::Checked`].
    fn check_off_loop(&self, origin: Origin, bytes: Vec<u8>) {
        let done = self.done_tx.clone();
        tokio::task::spawn_blocking(move || {
            let verdict = Box::new(SignedRecord::from_bytes(&bytes).and_then(|r| r.verify_any()));
            // The loop may have stopped; then nothing is waiting for this.
            let _ = done.blocking_send(Done::Checked {
                origin,
                bytes,
                verdict,
            });
        });
    }

    /// Applies a verified record to the store off the loop, in the next
    /// write (`writes`: one at a time, the records that came meanwhile
    /// together), and hands the outcome back to the loop as
    /// [`Done::Written`]: the one path of gossiped and published records
    /// into the store.
    fn apply_off_loop(
        &mut self,
        origin: Origin,
        record: Box<Signed>,
        reply: Option<oneshot::Sender<Result<Stored, NodeError>>>,
    ) {
        let write = Write {
            origin,
            record,
            reply,
        };
        match self.writes.push(write) {
            Push::Write(batch) => self.write(batch),
            Push::Queued => {}
            // The disk is behind: shed the record rather than hold more
            // (its verdict goes out with the loop's next `carry_out`).
            Push::Full(write) => {
                self.service
                    .on_shed(write.origin, &write.record, Instant::now());
                if let Some(reply) = write.reply {
                    let queued = self.writes.queued();
                    let _ = reply.send(Err(NodeError::StoreBehind { queued }));
                }
            }
        }
    }

    /// Writes `batch` to the store in one transaction off the loop. The
    /// loop hears back even if the write panicked (then with no outcomes:
    /// its callers see their reply dropped), so the next write starts.
    fn write(&self, batch: Vec<Write>) {
        let (store, done) = (self.store.clone(), self.done_tx.clone());
        let task = tokio::task::spawn_blocking(move || {
            let outcomes = apply_all(&store, &batch);
            (batch, outcomes)
        });
        tokio::spawn(async move {
            let written = match task.await {
                Ok((batch, outcomes)) => Done::Written(batch, outcomes),
                Err(e) => {
                    warn!(error = %e, "a store write failed");
                    Done::Written(Vec::new(), Vec::new())
                }
            };
            // The loop may have stopped; then nothing is waiting for this.
            let _ = done.send(written).await;
        });
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
                if self.announce_listen {
                    self.swarm.add_external_address(address.clone());
                }
                self.listen_addrs.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                if self.announce_listen {
                    self.swarm.remove_external_address(&address);
                }
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                debug!(%peer_id, "connected");
                self.joining.on_connected(connection_id, peer_id);
                self.service
                    .on_connected(peer_id, num_established.get() == 1);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                debug!(%peer_id, "disconnected");
                let peers = self.swarm.network_info().num_peers();
                self.joining.on_disconnected(peers, Instant::now());
                self.service.on_disconnected(&peer_id);
                self.bitswap.peer_disconnected(peer_id);
            }
            SwarmEvent::OutgoingConnectionError { connection_id, .. } => {
                self.joining.on_dial_failed(connection_id, Instant::now())
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                self.service
                    .on_gossip(propagation_source, message_id, message.data, Instant::now())
            }
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
                if !self.service.allow_sync_request(peer, Instant::now()) {
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
                    let _ = reply.send(Err(error));
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
                if !self.service.allow_dht_put(source, Instant::now()) {
                    return;
                }
                // A put is stored outside the write queue: while the disk is
                // behind (the queue full) or enough puts wait for it
                // already, it is shed as a gossiped record is, and comes
                // back by sync.
                let permit = match self.dht_applying.clone().try_acquire_owned() {
                    Ok(permit) if self.writes.queued() < MAX_QUEUED => permit,
                    _ => {
                        self.service.on_dht_shed(source);
                        return;
                    }
                };
                let (store, done) = (self.store.clone(), self.done_tx.clone());
                tokio::task::spawn_blocking(move || {
                    let kept = dht::keep(&store, record.key.as_ref(), &record.value);
                    drop(permit);
                    let _ = done.blocking_send(Done::DhtApplied(source, Box::new(record), kept));
                });
            }
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::AddProvider {
                        record: Some(record),
                    },
            } => self.on_provider_record(record),
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                ..
            } => self.on_providers(id, result, step.last),
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetRecord(result),
                step,
                ..
            } => self.on_record_found(id, result, step.last),
            _ => {}
        }
    }

    /// A peer announced itself as a provider (kad checked it is the
    /// sender): within its records budget, the store keeps it or refuses
    /// it by the provider rules; the service counts the verdict.
    fn on_provider_record(&mut self, record: kad::ProviderRecord) {
        let (provider, key, now) = (record.provider, record.key.clone(), Instant::now());
        let verdict = match self.service.allow_dht_put(provider, now) {
            true => self
                .swarm
                .behaviour_mut()
                .kad
                .store_mut()
                .offer(record, now),
            false => Err(Refused::RateLimited),
        };
        self.service
            .on_provider_record(provider, key.as_ref(), verdict);
        self.dht_store_gauges();
    }

    /// Collects the values a DHT get finds; when it ends, verifies and
    /// stores them off the loop.
    fn on_record_found(
        &mut self,
        id: kad::QueryId,
        result: Result<kad::GetRecordOk, kad::GetRecordError>,
        last: bool,
    ) {
        if self.dht_identity_gets.contains_key(&id) {
            return self.on_identity_found(id, result, last);
        }
        let Some((_, _, found)) = self.dht_gets.get_mut(&id) else {
            return;
        };
        if collect(found, result, last)
            && let Some((reply, key, found)) = self.dht_gets.remove(&id)
        {
            let (store, done) = (self.store.clone(), self.done_tx.clone());
            tokio::task::spawn_blocking(move || {
                let result = dht::found(&store, &key, found);
                let _ = done.blocking_send(Done::DhtGot(reply, Box::new(result)));
            });
        }
    }

    /// Collects the identity values a package lookup's first get finds;
    /// when it ends, stores them off the loop.
    fn on_identity_found(
        &mut self,
        id: kad::QueryId,
        result: Result<kad::GetRecordOk, kad::GetRecordError>,
        last: bool,
    ) {
        let Some((_, _, found)) = self.dht_identity_gets.get_mut(&id) else {
            return;
        };
        if collect(found, result, last)
            && let Some((reply, key, found)) = self.dht_identity_gets.remove(&id)
        {
            let (store, done) = (self.store.clone(), self.done_tx.clone());
            tokio::task::spawn_blocking(move || {
                let result = dht::found_identity(&store, &key.author, found);
                let _ = done.blocking_send(Done::DhtIdentityGot(reply, key, Box::new(result)));
            });
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

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Checked {
                origin,
                bytes,
                verdict,
            } => self
                .service
                .on_checked(origin, bytes, *verdict, Instant::now()),
            Done::Written(batch, outcomes) => {
                for (write, outcome) in batch.into_iter().zip(outcomes) {
                    self.service
                        .on_applied(write.origin, &write.record, &outcome, Instant::now());
                    // Gossip and announce before the caller hears back.
                    self.carry_out();
                    if let Some(reply) = write.reply {
                        let _ = reply.send(outcome);
                    }
                }
                if let Some(next) = self.writes.finished() {
                    self.write(next);
                }
            }
            Done::Answer(channel, response) => {
                // The peer may have gone; then there is no one to answer.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, *response);
            }
            Done::Synced(peer, outcome) => self.service.on_synced(peer, outcome),
            Done::DhtPut(values) => self.dht_put(values),
            Done::DhtApplied(source, record, kept) => match kept {
                Ok(kept) => {
                    self.service.on_dht_applied(kept.news, kept.head);
                    if let Some(value) = kept.value {
                        let keep = kad::Record { value, ..*record };
                        let store = self.swarm.behaviour_mut().kad.store_mut();
                        if let Err(e) = store.keep(keep, Instant::now()) {
                            debug!(error = %e, "DHT record not kept");
                        }
                        self.dht_store_gauges();
                    }
                }
                Err(e) => warn!(%source, error = %e, "refused a DHT record"),
            },
            Done::DhtIdentityGot(reply, key, stored) => match *stored {
                Ok(head) => {
                    if let Some(position) = head {
                        self.service.on_dht_stored(position);
                    }
                    let query = self
                        .swarm
                        .behaviour_mut()
                        .kad
                        .get_record(kad::RecordKey::new(&key.dht_key()));
                    self.dht_gets.insert(query, (reply, key, Vec::new()));
                }
                Err(e) => {
                    let _ = reply.send(Err(NodeError::from(e)));
                }
            },
            Done::DhtGot(reply, found) => {
                let result = (*found).map(|(newest, head)| {
                    if let Some(position) = head {
                        self.service.on_dht_stored(position);
                    }
                    newest
                });
                let _ = reply.send(result.map_err(NodeError::from));
            }
            Done::RepublishRead(outcome) => self.service.on_republish_read(outcome, Instant::now()),
            Done::ReprovideRead(outcome) => self.service.on_reprovide_read(outcome, Instant::now()),
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish(record, reply) => {
                match self.service.admit_publish(&record, Instant::now()) {
                    Ok(()) => {
                        let origin = Origin::Local(match &*record {
                            Signed::Record(r) => Some(r.release_key()),
                            Signed::Identity(_) => None,
                        });
                        self.apply_off_loop(origin, record, Some(reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
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
                let _ = reply.send(self.swarm.dial(addr).map_err(NodeError::from));
            }
            Command::PeerScore(peer, reply) => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::MeshPeers(reply) => {
                let hash = self.topic.hash();
                let gossipsub = &self.swarm.behaviour().gossipsub;
                let _ = reply.send(gossipsub.mesh_peers(&hash).copied().collect());
            }
            Command::Provide(cid) => self.provide(cid),
            Command::FindProviders(cid, tx) => {
                let key = kad::RecordKey::new(&cid.hash().to_bytes());
                let query = self.swarm.behaviour_mut().kad.get_providers(key);
                self.provider_searches.insert(query, (tx, HashSet::new()));
            }
            Command::Ban(peer) => self.service.on_ban(peer, Instant::now()),
            Command::DhtGet(key, reply) => {
                // The author's identity first: what the package's records
                // count for depends on it (docs/records.md, section 9).
                let query = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_record(kad::RecordKey::new(&ipsr_proto::identity_dht_key(
                        &key.author,
                    )));
                self.dht_identity_gets
                    .insert(query, (reply, key, Vec::new()));
            }
        }
    }

    /// Reads what this node serves for a release and puts it into the DHT.
    fn announce(&self, key: ReleaseKey) {
        let (store, done) = (self.store.clone(), self.done_tx.clone());
        tokio::task::spawn_blocking(move || match store.dht_values(&key) {
            Ok(values) => {
                let _ = done.blocking_send(Done::DhtPut(values));
            }
            Err(e) => warn!(error = %e, "cannot read DHT values"),
        });
    }

    /// Brings the metrics of the DHT store up to date.
    fn dht_store_gauges(&mut self) {
        let stats = self.swarm.behaviour_mut().kad.store_mut().stats();
        self.counters.dht_store(stats);
    }

    /// Announces this node as a provider of `cid` in the DHT.
    fn provide(&mut self, cid: cid::Cid) {
        let key = kad::RecordKey::new(&cid.hash().to_bytes());
        if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
            warn!(%cid, error = %e, "cannot provide");
        }
    }

    /// Reads up to `limit` releases after `after`, their DHT values and
    /// the number of releases; a short batch ends the walk's pass. A
    /// package's releases are next to each other in key order, so its key
    /// is put once per batch, not once per release.
    fn read_republish(&self, after: Option<ReleaseKey>, limit: usize) {
        let (store, done) = (self.store.clone(), self.done_tx.clone());
        tokio::task::spawn_blocking(move || {
            let outcome = store.release_keys(after.as_ref(), limit).and_then(|keys| {
                let (mut items, mut seen) = (Vec::new(), HashSet::new());
                for key in &keys {
                    for (k, v) in store.dht_values(key)? {
                        if seen.insert(k.clone()) {
                            items.push((k, v));
                        }
                    }
                }
                let next = (keys.len() == limit)
                    .then(|| keys.last().cloned())
                    .flatten();
                let total = store.stats()?.releases;
                Ok(Page { items, next, total })
            });
            let _ = done.blocking_send(Done::RepublishRead(outcome));
        });
    }

    /// Reads up to `limit` pinned roots after `after` and the number of
    /// pins; a short batch ends the walk's pass.
    fn read_reprovide(&self, after: Option<cid::Cid>, limit: usize) {
        let (blocks, done) = (self.blocks.clone(), self.done_tx.clone());
        tokio::task::spawn_blocking(move || {
            let outcome = blocks.pins_after(after.as_ref(), limit).and_then(|roots| {
                let next = (roots.len() == limit)
                    .then(|| roots.last().copied())
                    .flatten();
                let total = blocks.stats()?.pins;
                Ok(Page {
                    items: roots,
                    next,
                    total,
                })
            });
            let _ = done.blocking_send(Done::ReprovideRead(outcome));
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
}

/// Adds a value a DHT get found to `found`; whether the get is over.
fn collect(
    found: &mut Vec<Vec<u8>>,
    result: Result<kad::GetRecordOk, kad::GetRecordError>,
    last: bool,
) -> bool {
    match result {
        Ok(kad::GetRecordOk::FoundRecord(peer_record)) => {
            found.push(peer_record.record.value);
            last
        }
        Ok(kad::GetRecordOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => true,
    }
}

/// Applies one verified record to the store (blocking).
fn apply(store: &Store, record: Signed) -> Result<Stored, NodeError> {
    let mut stored = store.apply_signed(vec![record])?;
    Ok(stored
        .pop()
        .expect("the store answers one outcome per record"))
}

/// Applies a batch of verified records in one transaction (blocking): each
/// one's outcome, in order. Should the transaction fail, each record is
/// tried alone, so one record's failure is not every record's.
fn apply_all(store: &Store, batch: &[Write]) -> Vec<Result<Stored, NodeError>> {
    let records = batch.iter().map(|w| (*w.record).clone()).collect();
    match store.apply_signed(records) {
        Ok(stored) if stored.len() == batch.len() => stored.into_iter().map(Ok).collect(),
        Err(e) if batch.len() == 1 => vec![Err(e.into())],
        _ => batch
            .iter()
            .map(|w| apply(store, (*w.record).clone()))
            .collect(),
    }
}
