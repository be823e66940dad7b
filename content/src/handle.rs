//! [`Content`]: the content half of a node's handle: add, cat, pin, unpin,
//! gc and stat, built from the blockstore, Bitswap, a [`Router`] (the
//! node's DHT and swarm) and [`fetch`].

use std::collections::{HashSet, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::PeerId;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::bitswap::{Bitswap, WantError};
use crate::block::Block;
use crate::blockstore::{Blockstore, BlockstoreError, GcReport, Lease, Pin, RefusedFor};
use crate::fetch::{self, FetchConfig, FetchError, FetchReport};
use crate::router::{Router, Stopped};
use crate::unixfs::{FileReader, Imported, Importer, Profile, ReadError};

/// Segments (or blocks) of a download queued between the fetcher and the
/// reader.
const DOWNLOAD_QUEUE: usize = 8;

/// [`Content::block`]: the connected peers asked (with a Have want first)
/// for a block no provider record names, at most.
const ASK_CONNECTED: usize = 16;
/// [`Content::block`]: peers asked for one block at once.
const BLOCK_ASKS: usize = 8;
/// [`Content::block`]: how often the provider search is repeated while no
/// peer is being asked.
const BLOCK_FIND_INTERVAL: Duration = Duration::from_secs(2);

/// Why a content operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The blockstore failed (full, disk error, corrupt block).
    #[error(transparent)]
    Store(#[from] BlockstoreError),
    /// The download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A block of the DAG is not in the blockstore
    /// ([`Content::check_local_file`]).
    #[error("block {0} is not stored")]
    Missing(Box<Cid>),
    /// The stored blocks do not form a valid UnixFS file
    /// ([`Content::check_local_file`]).
    #[error("not a valid unixfs file: {0}")]
    Read(#[source] Box<ReadError>),
    /// A blocking task failed.
    #[error("internal task failed")]
    Task(#[from] tokio::task::JoinError),
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// What a pin is for: its label, who it is charged to, the size the
/// signed record states, and the owner's quota. The default is an
/// unlabelled pin of any size charged to nobody (the node's own user).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinSpec {
    /// Free-form label, e.g. `author/package@1.0.0`.
    pub label: Option<String>,
    /// Who the pin is charged to (an author id).
    pub owner: Option<String>,
    /// The file's size as the record states it: the bytes reserved before
    /// the download, and the size the DAG must have (the download stops as
    /// soon as it does not).
    pub size: Option<u64>,
    /// The most bytes `owner` may have pinned, this pin included.
    pub quota: Option<u64>,
}

impl PinSpec {
    /// A pin labelled `label`, charged to nobody, of any size.
    pub fn labelled(label: Option<String>) -> Self {
        Self {
            label,
            ..Self::default()
        }
    }
}

/// What the node knows about a CID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContentStat {
    /// The CID asked about.
    pub cid: String,
    /// Whether its root block is here.
    pub local: bool,
    /// Whether every block of its DAG is here.
    pub complete: bool,
    /// Whether it is pinned.
    pub pinned: bool,
    /// The file's size, when the root block is here.
    pub size: Option<u64>,
    /// Blocks of the DAG that are here.
    pub blocks: u64,
}

/// A handle on a node's content: its blockstore, its Bitswap and its
/// router. Cheap to clone.
#[derive(Clone)]
pub struct Content {
    blocks: Arc<Blockstore>,
    bitswap: Bitswap,
    router: Arc<dyn Router>,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content")
            .field("blocks", &self.blocks)
            .field("bitswap", &self.bitswap)
            .finish_non_exhaustive()
    }
}

impl Content {
    /// Content from these parts. The node builds it; so can a test with
    /// its own [`Router`].
    pub fn new(blocks: Arc<Blockstore>, bitswap: Bitswap, router: Arc<dyn Router>) -> Self {
        Self {
            blocks,
            bitswap,
            router,
        }
    }

    /// The blockstore, for reads.
    pub fn blockstore(&self) -> &Arc<Blockstore> {
        &self.blocks
    }

    /// The Bitswap handle (its counters, for metrics).
    pub fn bitswap(&self) -> &Bitswap {
        &self.bitswap
    }

    /// Imports a file that arrives in chunks on `chunks` as a UnixFS DAG
    /// with `profile`, stores its blocks, pins the root (with `label`) and
    /// announces it in the DHT. Runs in bounded memory whatever the size.
    pub async fn add(
        &self,
        chunks: mpsc::Receiver<Bytes>,
        profile: Profile,
        label: Option<String>,
    ) -> Result<Imported, ContentError> {
        let lease = self.reserve(&PinSpec::default())?;
        let imported = self
            .import_into(chunks, profile, Some(lease.clone()))
            .await?;
        let (store, root) = (self.blocks.clone(), imported.root);
        tokio::task::spawn_blocking(move || store.pin_leased(&root, label.as_deref(), &lease))
            .await??;
        info!(root = %imported.root, size = imported.size, "added");
        self.router.provide(imported.root).await?;
        Ok(imported)
    }

    /// Starts a pin as `spec` says: reserves the bytes its DAG may take
    /// within the blockstore's limit and the owner's quota, or refuses
    /// ([`BlockstoreError::Full`], [`BlockstoreError::QuotaExceeded`]). The
    /// lease holds the blocks read or stored under it against eviction
    /// until it is dropped; [`pin_leased`](Self::pin_leased) pins with it.
    pub fn reserve(&self, spec: &PinSpec) -> Result<Arc<Lease>, ContentError> {
        let lease = self
            .blocks
            .lease(spec.owner.as_deref(), spec.size, spec.quota)?;
        Ok(Arc::new(lease))
    }

    /// Imports and stores a file like [`add`](Self::add) but neither pins
    /// nor announces it, so a caller can check the root first (an upload
    /// that must match a signed CID) and [`pin`](Self::pin) it, or leave
    /// its blocks to the next [`gc`](Self::gc). Stopping the sender early
    /// imports what was sent.
    pub async fn import(
        &self,
        chunks: mpsc::Receiver<Bytes>,
        profile: Profile,
    ) -> Result<Imported, ContentError> {
        self.import_into(chunks, profile, None).await
    }

    /// [`import`](Self::import), holding every block for `lease` (when
    /// given) so that none is evicted before the pin.
    pub async fn import_into(
        &self,
        mut chunks: mpsc::Receiver<Bytes>,
        profile: Profile,
        lease: Option<Arc<Lease>>,
    ) -> Result<Imported, ContentError> {
        let (store, bitswap) = (self.blocks.clone(), self.bitswap.clone());
        tokio::task::spawn_blocking(move || {
            let mut importer = Importer::new(profile);
            let put = |block: &Block| {
                let new = match &lease {
                    Some(lease) => lease.put(block)?,
                    None => store.put(block)?,
                };
                if new {
                    bitswap.block_added(*block.cid());
                }
                Ok::<_, BlockstoreError>(())
            };
            while let Some(chunk) = chunks.blocking_recv() {
                for block in importer.push(&chunk) {
                    put(&block)?;
                }
            }
            let (imported, last) = importer.finish();
            for block in last {
                put(&block)?;
            }
            Ok::<_, ContentError>(imported)
        })
        .await?
    }

    /// [`add`](Self::add) of bytes already in memory.
    pub async fn add_bytes(
        &self,
        bytes: Bytes,
        profile: Profile,
        label: Option<String>,
    ) -> Result<Imported, ContentError> {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(bytes);
        drop(tx);
        self.add(rx, profile, label).await
    }

    /// Starts reading the file under `root`, from the blockstore and from
    /// providers in the swarm (every block checked against its CID). The
    /// bytes come in order on the receiver; the handle tells how it ended.
    pub fn cat(
        &self,
        root: Cid,
        hint: Vec<PeerId>,
    ) -> (
        mpsc::Receiver<Bytes>,
        JoinHandle<Result<FetchReport, FetchError>>,
    ) {
        self.read(FileReader::new(root), hint)
    }

    /// Starts reading the bytes `range` of the file under `root` like
    /// [`cat`](Self::cat), but reads (from the blockstore, or else from
    /// providers) only the blocks that hold the range and the nodes above
    /// them, each checked against its CID: the last byte of a file costs
    /// its root, one node per level of the DAG and one leaf. A range past
    /// the end of the file is cut to it.
    pub fn cat_range(
        &self,
        root: Cid,
        range: Range<u64>,
        hint: Vec<PeerId>,
    ) -> (
        mpsc::Receiver<Bytes>,
        JoinHandle<Result<FetchReport, FetchError>>,
    ) {
        self.read(FileReader::range(root, range), hint)
    }

    /// Starts the download of what `reader` reads, its bytes on the
    /// receiver.
    fn read(
        &self,
        reader: FileReader,
        hint: Vec<PeerId>,
    ) -> (
        mpsc::Receiver<Bytes>,
        JoinHandle<Result<FetchReport, FetchError>>,
    ) {
        let (tx, rx) = mpsc::channel(DOWNLOAD_QUEUE);
        let download = fetch::fetch_part(
            reader,
            self.blocks.clone(),
            self.bitswap.clone(),
            self.router.clone(),
            hint,
            tx,
            FetchConfig::default(),
        );
        (rx, tokio::spawn(download))
    }

    /// Starts reading the DAG of the file under `root` like
    /// [`cat`](Self::cat), but hands on its *blocks* rather than its bytes:
    /// in depth-first order (parents first, children in link order), a
    /// repeated block once per occurrence, each checked against its CID and
    /// read as part of a valid UnixFS file (see [`fetch::fetch_blocks`]).
    /// What a CAR of the file is made of.
    pub fn cat_blocks(
        &self,
        root: Cid,
        hint: Vec<PeerId>,
    ) -> (
        mpsc::Receiver<Block>,
        JoinHandle<Result<FetchReport, FetchError>>,
    ) {
        let (tx, rx) = mpsc::channel(DOWNLOAD_QUEUE);
        let download = fetch::fetch_blocks(
            root,
            self.blocks.clone(),
            self.bitswap.clone(),
            self.router.clone(),
            hint,
            tx,
            FetchConfig::default(),
        );
        (rx, tokio::spawn(download))
    }

    /// The block named `cid`, whatever it is (a file's root, an inner node,
    /// a leaf): from the blockstore (rehashed; a damaged copy is fetched
    /// again), or else from the swarm, stored on arrival (unpinned). `None`
    /// when no peer sent it within `timeout`.
    ///
    /// From the swarm it is asked, with a Block want, of every provider the
    /// DHT names for `cid` (only the roots of added or pinned files are
    /// announced there), and, with a Have want first and a Block want to
    /// those that have it, of up to 16 connected peers (they may hold a DAG
    /// whose root they announce); at most 8 peers at once. A peer that
    /// sends bytes that do not match is banned like in a download.
    pub async fn block(&self, cid: Cid, timeout: Duration) -> Result<Option<Block>, ContentError> {
        let store = self.blocks.clone();
        let local = tokio::task::spawn_blocking(move || store.get_verified(&cid)).await?;
        match local {
            Ok(Some(block)) => return Ok(Some(block)),
            Ok(None) => {}
            Err(BlockstoreError::Corrupt(_)) => {
                warn!(%cid, "local block is corrupt; fetching it again");
            }
            Err(e) => return Err(e.into()),
        }
        let block = match tokio::time::timeout(timeout, self.block_from_swarm(cid)).await {
            Ok(found) => found?,
            Err(_) => {
                debug!(%cid, ?timeout, "no peer sent the block in time");
                return Ok(None);
            }
        };
        self.put_block(block.clone()).await?;
        Ok(Some(block))
    }

    /// Asks peers for `cid` until one sends it (the caller bounds the time).
    async fn block_from_swarm(&self, cid: Cid) -> Result<Block, ContentError> {
        let connected = self.router.peers().await?;
        // (peer, whether a provider record names it)
        let mut queue: VecDeque<(PeerId, bool)> = connected
            .into_iter()
            .take(ASK_CONNECTED)
            .map(|peer| (peer, false))
            .collect();
        let mut asked: HashSet<PeerId> = queue.iter().map(|(peer, _)| *peer).collect();
        let mut found = Some(self.router.find_providers(cid));
        let mut search = tokio::time::interval(BLOCK_FIND_INTERVAL);
        search.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        search.tick().await;
        let mut wants = FuturesUnordered::new();
        loop {
            while wants.len() < BLOCK_ASKS {
                let Some((peer, provider)) = queue.pop_front() else {
                    break;
                };
                let bitswap = self.bitswap.clone();
                wants.push(async move {
                    let result = if provider {
                        bitswap.want_block(peer, cid).await
                    } else {
                        match bitswap.want_have(peer, cid).await {
                            Ok(true) => bitswap.want_block(peer, cid).await,
                            Ok(false) => Err(WantError::DontHave),
                            Err(e) => Err(e),
                        }
                    };
                    (peer, result)
                });
            }
            tokio::select! {
                Some((peer, result)) = wants.next() => match result {
                    Ok(block) => {
                        debug!(%peer, %cid, "got a block");
                        return Ok(block);
                    }
                    Err(WantError::BadBlock) => {
                        warn!(%peer, %cid, "peer sent a block that does not match its CID; banning it");
                        self.router.ban(peer);
                    }
                    Err(WantError::Shutdown) => return Err(Stopped.into()),
                    Err(e) => debug!(%peer, %cid, error = %e, "block want failed"),
                },
                Some(peer) = fetch::recv(&mut found) => {
                    if asked.insert(peer) {
                        queue.push_back((peer, true));
                    }
                }
                _ = search.tick() => {
                    if wants.is_empty() && queue.is_empty() && found.is_none() {
                        found = Some(self.router.find_providers(cid));
                    }
                }
            }
        }
    }

    /// Stores one block (it was checked against its CID when built) without
    /// pinning it, and offers it to peers that want it. Returns whether it
    /// is new.
    pub async fn put_block(&self, block: Block) -> Result<bool, ContentError> {
        self.put_block_into(block, None).await
    }

    /// [`put_block`](Self::put_block), holding the block for `lease` (when
    /// given).
    pub async fn put_block_into(
        &self,
        block: Block,
        lease: Option<Arc<Lease>>,
    ) -> Result<bool, ContentError> {
        let store = self.blocks.clone();
        let cid = *block.cid();
        let new = tokio::task::spawn_blocking(move || match &lease {
            Some(lease) => lease.put(&block),
            None => store.put(&block),
        })
        .await??;
        if new {
            self.bitswap.block_added(cid);
        }
        Ok(new)
    }

    /// Reads the UnixFS file under `root` from the blockstore alone (never
    /// the swarm), rehashing every block, and returns its size: proof that
    /// every block of its DAG is here and that they form a valid file whose
    /// leaves hold the size its nodes declare. Fails with
    /// [`ContentError::Missing`] at the first absent block, or
    /// [`ContentError::Read`] when the blocks are not a valid file. Reads
    /// the whole file from disk.
    pub async fn check_local_file(&self, root: Cid) -> Result<u64, ContentError> {
        let store = self.blocks.clone();
        tokio::task::spawn_blocking(move || {
            let mut reader = FileReader::new(root);
            while let Some(next) = reader.next_needed() {
                let block = store
                    .get_verified(&next)?
                    .ok_or_else(|| ContentError::Missing(Box::new(next)))?;
                reader
                    .feed(&block)
                    .map_err(|e| ContentError::Read(Box::new(e)))?;
            }
            Ok(reader.total_size().unwrap_or(0))
        })
        .await?
    }

    /// Fetches every block of `root` that is not here yet, pins it (with
    /// `label`) and announces this node as a provider.
    pub async fn pin(
        &self,
        root: Cid,
        label: Option<String>,
        hint: Vec<PeerId>,
    ) -> Result<FetchReport, ContentError> {
        self.pin_with(root, &PinSpec::labelled(label), hint).await
    }

    /// [`pin`](Self::pin) as `spec` says: refused at once past the limit
    /// or the owner's quota ([`reserve`](Self::reserve)); with a size, the
    /// download stops as soon as the DAG is not of that size
    /// ([`FetchError::WrongSize`], [`FetchError::Oversized`]). Nothing is
    /// pinned when it fails.
    pub async fn pin_with(
        &self,
        root: Cid,
        spec: &PinSpec,
        hint: Vec<PeerId>,
    ) -> Result<FetchReport, ContentError> {
        let lease = self.reserve(spec)?;
        self.pin_leased(root, spec.label.clone(), hint, lease).await
    }

    /// Fetches what is missing of `root` under `lease` (bounded by its
    /// size), pins it charged to the lease's owner, and announces it.
    pub async fn pin_leased(
        &self,
        root: Cid,
        label: Option<String>,
        hint: Vec<PeerId>,
        lease: Arc<Lease>,
    ) -> Result<FetchReport, ContentError> {
        let fetched = fetch::fetch_leased(
            root,
            self.bitswap.clone(),
            self.router.clone(),
            hint,
            FetchConfig::default(),
            lease.clone(),
        )
        .await;
        let report = match fetched {
            Ok(report) => report,
            Err(e) => {
                if matches!(
                    e,
                    FetchError::WrongSize { .. } | FetchError::Oversized { .. }
                ) {
                    self.blocks.count_refusal(RefusedFor::Size);
                    warn!(%root, owner = lease.owner().unwrap_or("-"), error = %e, "pin refused: the content is not of its stated size");
                }
                return Err(e.into());
            }
        };
        let store = self.blocks.clone();
        tokio::task::spawn_blocking(move || store.pin_leased(&root, label.as_deref(), &lease))
            .await??;
        info!(%root, fetched = report.fetched, bytes = report.block_bytes, "pinned");
        self.router.provide(root).await?;
        Ok(report)
    }

    /// Unpins `root`; its blocks go at the next [`gc`](Self::gc). Returns
    /// whether it was pinned.
    pub async fn unpin(&self, root: Cid) -> Result<bool, ContentError> {
        let store = self.blocks.clone();
        Ok(tokio::task::spawn_blocking(move || store.unpin(&root)).await??)
    }

    /// The pins.
    pub async fn pins(&self) -> Result<Vec<Pin>, ContentError> {
        let store = self.blocks.clone();
        Ok(tokio::task::spawn_blocking(move || store.pins()).await??)
    }

    /// Removes every block that no pin reaches.
    pub async fn gc(&self) -> Result<GcReport, ContentError> {
        let store = self.blocks.clone();
        Ok(tokio::task::spawn_blocking(move || store.gc()).await??)
    }

    /// What the node holds of `root`.
    pub async fn stat(&self, root: Cid) -> Result<ContentStat, ContentError> {
        let store = self.blocks.clone();
        tokio::task::spawn_blocking(move || {
            let pinned = store.is_pinned(&root)?;
            let Some(size) = file_size(&store, &root)? else {
                return Ok(ContentStat {
                    cid: root.to_string(),
                    local: false,
                    complete: false,
                    pinned,
                    size: None,
                    blocks: 0,
                });
            };
            let (present, missing) = store.dag_blocks(&root)?;
            let complete = missing.is_empty();
            Ok(ContentStat {
                cid: root.to_string(),
                local: true,
                complete,
                pinned,
                size,
                blocks: present,
            })
        })
        .await?
    }

    /// The size of the file under `root`, read from its root block alone
    /// (`None` when the root block is not here or is not a UnixFS file).
    /// Never walks the DAG.
    pub async fn file_size(&self, root: Cid) -> Result<Option<u64>, ContentError> {
        let store = self.blocks.clone();
        tokio::task::spawn_blocking(move || Ok(file_size(&store, &root)?.flatten())).await?
    }

    /// Pins `root` as `spec` says and announces it when every block of
    /// its DAG is here already; fetches nothing. Returns whether it pinned.
    /// With a size in `spec`, a file of another size is not pinned
    /// ([`FetchError::WrongSize`]). A node does this with a release's
    /// content after a local publish, so `gc` keeps it.
    pub async fn pin_if_complete(&self, root: Cid, spec: &PinSpec) -> Result<bool, ContentError> {
        let store = self.blocks.clone();
        if !tokio::task::spawn_blocking(move || store.is_complete(&root)).await?? {
            return Ok(false);
        }
        let lease = self.reserve(spec)?;
        let (store, label, stated) = (self.blocks.clone(), spec.label.clone(), spec.size);
        let pinned = tokio::task::spawn_blocking(move || {
            if !lease.hold_dag(&root)? {
                return Ok(false);
            }
            if let Some(stated) = stated
                && let Some(Some(declared)) = file_size(&store, &root)?
                && declared != stated
            {
                store.count_refusal(RefusedFor::Size);
                return Err(FetchError::WrongSize { stated, declared }.into());
            }
            store.pin_leased(&root, label.as_deref(), &lease)?;
            Ok::<_, ContentError>(true)
        })
        .await??;
        if pinned {
            self.router.provide(root).await?;
        }
        Ok(pinned)
    }
}

/// `None` when the root block is not here; `Some(None)` when it is but is
/// not the root of a UnixFS file; else the file's size.
fn file_size(store: &Blockstore, root: &Cid) -> Result<Option<Option<u64>>, ContentError> {
    let Some(block) = store.get(root)? else {
        return Ok(None);
    };
    let mut reader = FileReader::new(*root);
    Ok(Some(match reader.feed(&block) {
        Ok(_) => reader.total_size(),
        Err(e) => {
            debug!(%root, error = %e, "not a UnixFS file");
            None
        }
    }))
}
