//! The content half of the node's [`Client`]: add, cat, pin, unpin, gc and
//! stat, built from the blockstore, Bitswap, the DHT and [`fetch`].

use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use libp2p::PeerId;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::blockstore::{Blockstore, BlockstoreError, GcReport, Pin};
use super::fetch::{self, FetchConfig, FetchError, FetchReport, Router};
use super::unixfs::{FileReader, ImportError, Imported, Importer, Profile};
use crate::Client;

/// Segments of a download queued between the fetcher and the reader.
const DOWNLOAD_QUEUE: usize = 8;

/// Why a content operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The blockstore failed (full, disk error, corrupt block).
    #[error(transparent)]
    Store(#[from] BlockstoreError),
    /// Import failed.
    #[error("import: {0}")]
    Import(String),
    /// The download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A blocking task failed.
    #[error("internal task failed: {0}")]
    Task(String),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
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

fn task(e: tokio::task::JoinError) -> ContentError {
    ContentError::Task(e.to_string())
}

impl Router for Client {
    fn find_providers(&self, cid: Cid) -> mpsc::Receiver<PeerId> {
        Client::find_providers(self, cid)
    }

    fn ban(&self, peer: PeerId) {
        let client = self.clone();
        tokio::spawn(async move { client.ban(peer).await });
    }
}

impl Client {
    /// The node's blockstore, for reads.
    pub fn blockstore(&self) -> &Arc<Blockstore> {
        &self.blocks
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
        let imported = self.import(chunks, profile).await?;
        let (store, root) = (self.blocks.clone(), imported.root);
        tokio::task::spawn_blocking(move || store.pin(&root, label.as_deref()))
            .await
            .map_err(task)??;
        info!(root = %imported.root, size = imported.size, "added");
        self.provide(imported.root)
            .await
            .map_err(|_| ContentError::Stopped)?;
        Ok(imported)
    }

    /// Imports and stores a file like [`add`](Self::add) but neither pins
    /// nor announces it, so a caller can check the root first (an upload
    /// that must match a signed CID) and [`pin`](Self::pin) it, or leave
    /// its blocks to the next [`gc`](Self::gc). Stopping the sender early
    /// imports what was sent.
    pub async fn import(
        &self,
        mut chunks: mpsc::Receiver<Bytes>,
        profile: Profile,
    ) -> Result<Imported, ContentError> {
        let (store, bitswap) = (self.blocks.clone(), self.bitswap.clone());
        tokio::task::spawn_blocking(move || {
            let mut importer = Importer::new(profile);
            let put = |block: &super::Block| {
                if store.put(block)? {
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
        .await
        .map_err(task)?
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
        let (tx, rx) = mpsc::channel(DOWNLOAD_QUEUE);
        let router: Arc<dyn Router> = Arc::new(self.clone());
        let download = fetch::fetch(
            root,
            self.blocks.clone(),
            self.bitswap.clone(),
            router,
            hint,
            Some(tx),
            FetchConfig::default(),
        );
        (rx, tokio::spawn(download))
    }

    /// Fetches every block of `root` that is not here yet, pins it (with
    /// `label`) and announces this node as a provider.
    pub async fn pin(
        &self,
        root: Cid,
        label: Option<String>,
        hint: Vec<PeerId>,
    ) -> Result<FetchReport, ContentError> {
        let router: Arc<dyn Router> = Arc::new(self.clone());
        let report = fetch::fetch(
            root,
            self.blocks.clone(),
            self.bitswap.clone(),
            router,
            hint,
            None,
            FetchConfig::default(),
        )
        .await?;
        let store = self.blocks.clone();
        tokio::task::spawn_blocking(move || store.pin(&root, label.as_deref()))
            .await
            .map_err(task)??;
        info!(%root, fetched = report.fetched, "pinned");
        self.provide(root)
            .await
            .map_err(|_| ContentError::Stopped)?;
        Ok(report)
    }

    /// Unpins `root`; its blocks go at the next [`gc`](Self::gc). Returns
    /// whether it was pinned.
    pub async fn unpin(&self, root: Cid) -> Result<bool, ContentError> {
        let store = self.blocks.clone();
        Ok(tokio::task::spawn_blocking(move || store.unpin(&root))
            .await
            .map_err(task)??)
    }

    /// The pins.
    pub async fn pins(&self) -> Result<Vec<Pin>, ContentError> {
        let store = self.blocks.clone();
        Ok(tokio::task::spawn_blocking(move || store.pins())
            .await
            .map_err(task)??)
    }

    /// Removes every block that no pin reaches.
    pub async fn gc(&self) -> Result<GcReport, ContentError> {
        let store = self.blocks.clone();
        Ok(tokio::task::spawn_blocking(move || store.gc())
            .await
            .map_err(task)??)
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
        .await
        .map_err(task)?
    }

    /// The size of the file under `root`, read from its root block alone
    /// (`None` when the root block is not here or is not a UnixFS file).
    /// Never walks the DAG.
    pub async fn file_size(&self, root: Cid) -> Result<Option<u64>, ContentError> {
        let store = self.blocks.clone();
        tokio::task::spawn_blocking(move || Ok(file_size(&store, &root)?.flatten()))
            .await
            .map_err(task)?
    }

    /// Announces every pinned root in the DHT (at start; kad repeats it).
    pub(crate) async fn provide_pins(&self) {
        match self.pins().await {
            Ok(pins) => {
                for pin in pins {
                    if self.provide(pin.root).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot read pins"),
        }
    }

    /// After a publish: pins the release's content (and icon, screenshots)
    /// when its blocks are here, so `gc` keeps them, and provides it.
    pub(crate) async fn pin_published(&self, record: &ipsr_proto::SignedRecord) {
        let Some(release) = record.record().as_release() else {
            return;
        };
        let label = format!("{}/{}@{}", release.author, release.package, release.version);
        let cids = std::iter::once(&release.cid)
            .chain(release.metadata.icon.iter())
            .chain(release.metadata.screenshots.iter())
            .map(|c| *c.cid())
            .collect::<Vec<_>>();
        for cid in cids {
            let store = self.blocks.clone();
            let label = label.clone();
            let pinned = tokio::task::spawn_blocking(move || {
                if store.is_complete(&cid)? {
                    store.pin(&cid, Some(&label))?;
                    return Ok::<_, BlockstoreError>(true);
                }
                Ok(false)
            })
            .await;
            match pinned {
                Ok(Ok(true)) => {
                    let _ = self.provide(cid).await;
                }
                Ok(Ok(false)) => debug!(%cid, "published content is not local"),
                Ok(Err(e)) => warn!(%cid, error = %e, "cannot pin published content"),
                Err(e) => warn!(%cid, error = %e, "cannot pin published content"),
            }
        }
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

impl From<ImportError<BlockstoreError>> for ContentError {
    fn from(e: ImportError<BlockstoreError>) -> Self {
        Self::Import(e.to_string())
    }
}
