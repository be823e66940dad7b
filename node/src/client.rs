//! [`Client`]: the cloneable handle on a running node through which
//! everything else talks to it. Each call is a [`Command`] on a bounded
//! channel to the event loop ([`runtime`](crate::runtime)), most with a
//! `oneshot` for the answer. The node's content is a part of its own
//! ([`Client::content`]), whose router is the node's DHT ([`Routing`]).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use ipsr_content::{Content, PinSpec, Router, Stopped};
use ipsr_proto::{PackageKey, Signed, SignedRecord};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

use crate::error::NodeError;
use crate::metrics::SharedMetrics;
use crate::store::{Store, Stored};

/// What a client asks of the event loop.
pub(crate) enum Command {
    /// Store a record, then gossip and announce it if it is news.
    Publish(Box<Signed>, oneshot::Sender<Result<Stored, NodeError>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Peers(oneshot::Sender<Vec<PeerId>>),
    Dial(Multiaddr, oneshot::Sender<Result<(), NodeError>>),
    PeerScore(PeerId, oneshot::Sender<Option<f64>>),
    MeshPeers(oneshot::Sender<Vec<PeerId>>),
    DhtPeers(oneshot::Sender<usize>),
    DhtGet(PackageKey, DhtReply),
    /// Announce this node as a provider of a CID in the DHT.
    Provide(cid::Cid),
    /// Look for providers of a CID; they come on the channel.
    FindProviders(cid::Cid, mpsc::Sender<PeerId>),
    /// Close every connection to a peer and refuse it for an hour.
    Ban(PeerId),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// Where the answer to a DHT get goes.
pub(crate) type DhtReply = oneshot::Sender<Result<Option<SignedRecord>, NodeError>>;

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

/// The parts a client is made of; the runtime assembles them.
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) store: Arc<Store>,
    pub(crate) blocks: Arc<ipsr_content::blockstore::Blockstore>,
    pub(crate) bitswap: ipsr_content::bitswap::Bitswap,
    pub(crate) peer_id: PeerId,
    pub(crate) log_head: watch::Receiver<u64>,
    pub(crate) metrics: SharedMetrics,
}

impl Client {
    /// A handle from its parts, with the node's DHT as its content's router.
    pub(crate) fn new(parts: Parts) -> Self {
        let routing = Arc::new(Routing(parts.commands.clone()));
        Self {
            content: Content::new(parts.blocks, parts.bitswap, routing.clone()),
            routing,
            commands: parts.commands,
            store: parts.store,
            peer_id: parts.peer_id,
            log_head: parts.log_head,
            metrics: parts.metrics,
        }
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Prometheus metrics in the text exposition format: libp2p's and IPSR's
    /// (records accepted and rejected, sync sessions, store size).
    pub async fn metrics_text(&self) -> Result<String, NodeError> {
        let peers = self.peers().await?.len();
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        let (blocks, bitswap) = (
            self.content.blockstore().clone(),
            self.content.bitswap().stats(),
        );
        tokio::task::spawn_blocking(move || {
            Ok(metrics.encode(store.stats()?, blocks.stats()?, bitswap, peers))
        })
        .await?
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
    /// `gc` keeps it), charged to its author, and announced in the DHT.
    pub async fn publish(&self, record: SignedRecord) -> Result<Stored, NodeError> {
        let copy = record.clone();
        let stored = self.publish_record(record).await?;
        self.pin_published(&copy, None).await;
        Ok(stored)
    }

    /// Stores a verified record durably and announces it on gossipsub,
    /// pinning nothing: for a caller with a pin policy of its own (the
    /// gateway, which takes content only from some authors).
    pub async fn publish_record(&self, record: SignedRecord) -> Result<Stored, NodeError> {
        self.publish_signed(Signed::Record(record)).await
    }

    /// Stores a verified record or identity document durably and announces
    /// it on gossipsub (a release also in the DHT), pinning nothing.
    pub async fn publish_signed(&self, signed: Signed) -> Result<Stored, NodeError> {
        self.ask(|tx| Command::Publish(Box::new(signed), tx))
            .await?
    }

    /// After a publish: pins the release's content (and icon, screenshots)
    /// when its blocks are here, so `gc` keeps them, and provides it. The
    /// pins are charged to the release's author, within `quota` when given;
    /// the content must have the size the record states.
    pub async fn pin_published(&self, record: &SignedRecord, quota: Option<u64>) {
        let Some(release) = record.record().as_release() else {
            return;
        };
        let spec = PinSpec {
            label: Some(format!(
                "{}/{}@{}",
                release.author, release.package, release.version
            )),
            owner: Some(release.author.to_string()),
            size: None,
            quota,
        };
        let content = std::iter::once((*release.cid.cid(), Some(release.size)));
        let media = release
            .metadata
            .icon
            .iter()
            .chain(release.metadata.screenshots.iter())
            .map(|c| (*c.cid(), None));
        for (cid, size) in content.chain(media) {
            let spec = PinSpec {
                size,
                ..spec.clone()
            };
            match self.content.pin_if_complete(cid, &spec).await {
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

    /// Announces this node as a provider of `cid` in the DHT. Peers keep the
    /// announcement for [`Config::provider_record_ttl`](crate::Config); a
    /// pinned root is announced again before then by the re-provide walk,
    /// anything else is not.
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
        Ok(self.routing.send(Command::Ban(peer)).await?)
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

/// The node's DHT and swarm as the [`Router`] of its [`Content`].
#[derive(Debug)]
pub(crate) struct Routing(mpsc::Sender<Command>);

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
