//! Blocks on disk: one file per block under the blocks dir, pins in a small
//! redb database beside them, a garbage collector that keeps what pins
//! reach, and an optional size limit (`docs/content.md`, "Blockstore on
//! disk").
//!
//! Layout of `<dir>` (the node uses `<data-dir>/blocks`):
//!
//! ```text
//! <dir>/pins.redb                      pins: root CID -> created, label
//! <dir>/<xy>/<name>                    one block; <name> = lowercase base32
//!                                      (RFC 4648, no padding) of the CID's
//!                                      multihash, <xy> = its next-to-last
//!                                      two characters (kubo flatfs
//!                                      `next-to-last/2`)
//! <dir>/<xy>/.tmp-<name>-<pid>-<n>     a write in progress
//! ```
//!
//! Every call is synchronous file IO; async callers run them under
//! `tokio::task::spawn_blocking`. A [`Blockstore`] is `Send + Sync` and is
//! meant to be shared behind an `Arc`.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cid::Cid;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tracing::{debug, warn};

use super::block::{Block, BlockError, RAW};
use super::unixfs::links_of;

/// Pins: CID bytes -> JSON of [`PinValue`].
const PINS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("pins");
/// File name of the pins database inside the blocks dir.
const PINS_FILE: &str = "pins.redb";
/// Prefix of temporary files (never a valid block name: base32 has no `.`).
const TMP_PREFIX: &str = ".tmp-";

/// Why a blockstore operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockstoreError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Storing the block would take the store over its size limit.
    #[error("blockstore full: limit {limit} bytes, {used} used, {needed} more needed")]
    Full {
        /// The limit in bytes.
        limit: u64,
        /// Bytes in use.
        used: u64,
        /// Size of the block refused.
        needed: u64,
    },
    /// A stored file does not hash to the CID it is stored under.
    #[error("stored block {0} does not match its cid")]
    Corrupt(Cid),
    /// The CID cannot name an IPSR block.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The pins database failed.
    #[error("pins database: {0}")]
    Db(#[from] redb::Error),
    /// A pin entry could not be decoded.
    #[error("bad pin entry: {0}")]
    BadPin(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for BlockstoreError {
            fn from(e: $t) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlockstoreError + '_ {
    move |source| BlockstoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A pinned root: [`Blockstore::gc`] keeps every block reachable from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The root CID.
    pub root: Cid,
    /// When it was pinned, in Unix seconds.
    pub created: u64,
    /// Free-form label, e.g. `com.example.app@1.2.0`.
    pub label: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PinValue {
    created: u64,
    label: Option<String>,
}

/// What [`Blockstore::gc`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcReport {
    /// Blocks removed.
    pub removed: u64,
    /// Bytes freed.
    pub freed: u64,
}

/// Counters of a [`Blockstore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockstoreStats {
    /// Blocks stored.
    pub blocks: u64,
    /// Bytes stored (sum of block sizes).
    pub bytes: u64,
    /// The size limit, if any.
    pub limit: Option<u64>,
    /// Pinned roots.
    pub pins: u64,
}

/// Blocks as files, with pins and garbage collection; see the module docs
/// for the layout.
///
/// Writes are atomic: a block is written to a temp file, fsynced, then
/// hard-linked under its final name (which fails rather than overwrites if
/// another writer got there first), so a crash at any moment leaves either
/// no file or a complete one under a block's name. Leftover temp files are
/// removed by [`open`](Blockstore::open).
pub struct Blockstore {
    dir: PathBuf,
    limit: Option<u64>,
    blocks: AtomicU64,
    bytes: AtomicU64,
    pins: Database,
    /// Held shared by writers (put, delete, pin) and exclusively by gc, so
    /// gc sees a stable set of pins and blocks.
    gc_lock: RwLock<()>,
    tmp_seq: AtomicU64,
    /// The thread that creates the shard directories after `open`.
    shards: ShardMaker,
}

impl std::fmt::Debug for Blockstore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blockstore")
            .field("dir", &self.dir)
            .field("limit", &self.limit)
            .field("blocks", &self.blocks)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Blockstore {
    /// Opens (creating if needed) the store in `dir`, removes temp files
    /// left by a crash and counts the blocks. `limit_bytes` caps the sum of
    /// block sizes; [`put`](Blockstore::put) refuses beyond it.
    pub fn open(dir: &Path, limit_bytes: Option<u64>) -> Result<Self, BlockstoreError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let db_path = dir.join(PINS_FILE);
        let pins = Database::create(&db_path)?;
        let tx = pins.begin_write()?;
        tx.open_table(PINS)?;
        tx.commit()?;

        let store = Self {
            dir: dir.to_owned(),
            limit: limit_bytes,
            blocks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            pins,
            gc_lock: RwLock::new(()),
            tmp_seq: AtomicU64::new(0),
            shards: ShardMaker::start(dir),
        };
        let mut blocks = 0;
        let mut bytes = 0;
        let mut tmp_removed = 0u64;
        store.scan(|entry| match entry {
            Entry::Block { len, .. } => {
                blocks += 1;
                bytes += len;
            }
            Entry::Temp(path) => match fs::remove_file(&path) {
                Ok(()) => tmp_removed += 1,
                Err(e) => warn!(path = %path.display(), error = %e, "cannot remove temp file"),
            },
        })?;
        store.blocks.store(blocks, Ordering::Relaxed);
        store.bytes.store(bytes, Ordering::Relaxed);
        debug!(dir = %dir.display(), blocks, bytes, tmp_removed, "blockstore opened");
        Ok(store)
    }

    /// The directory of the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `block`; returns `false` if it was already there. Safe to
    /// call concurrently, also for the same block.
    pub fn put(&self, block: &Block) -> Result<bool, BlockstoreError> {
        let _guard = self.read_lock();
        let name = file_name(block.cid());
        let shard = self.dir.join(shard_of(&name));
        let path = shard.join(&name);
        if path.exists() {
            return Ok(false);
        }
        let len = block.data().len() as u64;
        self.reserve(len)?;
        match self.write_new(&shard, &path, &name, block.data()) {
            Ok(true) => {
                self.blocks.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Ok(false) => {
                self.bytes.fetch_sub(len, Ordering::Relaxed);
                Ok(false)
            }
            Err(e) => {
                self.bytes.fetch_sub(len, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Adds `len` to the bytes in use unless that passes the limit.
    fn reserve(&self, len: u64) -> Result<(), BlockstoreError> {
        let limit = self.limit;
        self.bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| match limit {
                Some(limit) if used.saturating_add(len) > limit => None,
                _ => Some(used + len),
            })
            .map(|_| ())
            .map_err(|used| BlockstoreError::Full {
                limit: limit.unwrap_or(u64::MAX),
                used,
                needed: len,
            })
    }

    /// Temp file, write, fsync, hard link to the final name. `Ok(false)` if
    /// the final name already existed.
    fn write_new(
        &self,
        shard: &Path,
        path: &Path,
        name: &str,
        data: &[u8],
    ) -> Result<bool, BlockstoreError> {
        match fs::create_dir(shard) {
            // A new shard dir: make its entry in the parent durable.
            Ok(()) => sync_dir(&self.dir)?,
            // Perhaps made by the shard maker, which may not have fsynced
            // the parent yet.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !self.shards.is_durable() {
                    sync_dir(&self.dir)?;
                }
            }
            Err(e) => return Err(io_err(shard)(e)),
        }
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = shard.join(format!("{TMP_PREFIX}{name}-{}-{seq}", std::process::id()));
        let written = (|| {
            let file = write_file(&tmp, data)?;
            // The data and the size; a new file's other metadata (times)
            // need not be durable before the link.
            file.sync_data()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        let linked = match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            // Filesystems without hard links: rename, which replaces a
            // concurrent writer's identical file (still atomic and correct;
            // only the block count could be off by the race).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
                ) =>
            {
                let existed = path.exists();
                fs::rename(&tmp, path)
                    .map(|()| !existed)
                    .map_err(io_err(path))
            }
            Err(e) => Err(io_err(path)(e)),
        };
        if let Err(e) = fs::remove_file(&tmp)
            && e.kind() != io::ErrorKind::NotFound
        {
            warn!(path = %tmp.display(), error = %e, "cannot remove temp file");
        }
        linked
    }

    /// The block named `cid`, if stored. The bytes are NOT re-hashed: the
    /// store only ever holds blocks verified on the way in and written
    /// atomically, so they are trusted (like kubo's `HashOnRead = false`).
    /// Use [`get_verified`](Blockstore::get_verified) to detect disk damage.
    pub fn get(&self, cid: &Cid) -> Result<Option<Block>, BlockstoreError> {
        Ok(self
            .read(cid)?
            .map(|data| Block::trusted(*cid, data.into())))
    }

    /// Like [`get`](Blockstore::get) but re-hashes the bytes; a mismatch is
    /// [`BlockstoreError::Corrupt`].
    pub fn get_verified(&self, cid: &Cid) -> Result<Option<Block>, BlockstoreError> {
        let Some(data) = self.read(cid)? else {
            return Ok(None);
        };
        match Block::new(*cid, data) {
            Ok(block) => Ok(Some(block)),
            Err(BlockError::Mismatch(_) | BlockError::TooLarge { .. }) => {
                Err(BlockstoreError::Corrupt(*cid))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn read(&self, cid: &Cid) -> Result<Option<Vec<u8>>, BlockstoreError> {
        let path = self.path_of(cid);
        match fs::read(&path) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Whether the block is stored.
    pub fn has(&self, cid: &Cid) -> Result<bool, BlockstoreError> {
        Ok(self.size_of(cid)?.is_some())
    }

    /// The stored block's size in bytes.
    pub fn size_of(&self, cid: &Cid) -> Result<Option<u64>, BlockstoreError> {
        let path = self.path_of(cid);
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Removes the block; returns whether it was there.
    pub fn delete(&self, cid: &Cid) -> Result<bool, BlockstoreError> {
        let _guard = self.read_lock();
        self.remove(&self.path_of(cid))
    }

    fn remove(&self, path: &Path) -> Result<bool, BlockstoreError> {
        let len = match fs::metadata(path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(path)(e)),
        };
        match fs::remove_file(path) {
            Ok(()) => {
                self.blocks.fetch_sub(1, Ordering::Relaxed);
                self.bytes.fetch_sub(len, Ordering::Relaxed);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Pins `root` (replacing an existing pin's label and time), so that
    /// [`gc`](Blockstore::gc) keeps it and every block it reaches. The
    /// blocks need not be present yet: pin before downloading.
    pub fn pin(&self, root: &Cid, label: Option<&str>) -> Result<(), BlockstoreError> {
        let _guard = self.read_lock();
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let value = serde_json::to_vec(&PinValue {
            created,
            label: label.map(str::to_owned),
        })
        .map_err(|e| BlockstoreError::BadPin(e.to_string()))?;
        let tx = self.pins.begin_write()?;
        tx.open_table(PINS)?
            .insert(root.to_bytes().as_slice(), value.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Removes the pin of `root`; returns whether there was one. The blocks
    /// stay until the next [`gc`](Blockstore::gc).
    pub fn unpin(&self, root: &Cid) -> Result<bool, BlockstoreError> {
        let _guard = self.read_lock();
        let tx = self.pins.begin_write()?;
        let removed = tx
            .open_table(PINS)?
            .remove(root.to_bytes().as_slice())?
            .is_some();
        tx.commit()?;
        Ok(removed)
    }

    /// Whether `root` is pinned.
    pub fn is_pinned(&self, root: &Cid) -> Result<bool, BlockstoreError> {
        let tx = self.pins.begin_read()?;
        Ok(tx
            .open_table(PINS)?
            .get(root.to_bytes().as_slice())?
            .is_some())
    }

    /// All pins, ordered by CID bytes.
    pub fn pins(&self) -> Result<Vec<Pin>, BlockstoreError> {
        let tx = self.pins.begin_read()?;
        let table = tx.open_table(PINS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let root =
                Cid::try_from(key.value()).map_err(|e| BlockstoreError::BadPin(e.to_string()))?;
            let value: PinValue = serde_json::from_slice(value.value())
                .map_err(|e| BlockstoreError::BadPin(format!("{root}: {e}")))?;
            out.push(Pin {
                root,
                created: value.created,
                label: value.label,
            });
        }
        Ok(out)
    }

    /// Up to `limit` pinned roots after `after` (from the first when
    /// `None`), ordered by CID bytes: a page of a walk over the pins that
    /// never reads them all at once.
    pub fn pins_after(
        &self,
        after: Option<&Cid>,
        limit: usize,
    ) -> Result<Vec<Cid>, BlockstoreError> {
        let tx = self.pins.begin_read()?;
        let table = tx.open_table(PINS)?;
        let start = after.map(Cid::to_bytes).unwrap_or_default();
        let mut out = Vec::new();
        for entry in table.range(start.as_slice()..)? {
            if out.len() == limit {
                break;
            }
            let (key, _) = entry?;
            if after.is_some() && key.value() == start.as_slice() {
                continue;
            }
            out.push(
                Cid::try_from(key.value()).map_err(|e| BlockstoreError::BadPin(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Removes every block not reachable from a pin through dag-pb links.
    /// A pinned DAG with missing blocks keeps the blocks it has. Writers
    /// wait while gc runs.
    pub fn gc(&self) -> Result<GcReport, BlockstoreError> {
        let _guard = self.write_lock();
        let mut keep = HashSet::new();
        for pin in self.pins()? {
            self.walk(&pin.root, |name, _| {
                keep.insert(name);
            })?;
        }
        let mut report = GcReport::default();
        let mut doomed = Vec::new();
        self.scan(|entry| {
            if let Entry::Block { name, path, .. } = entry
                && !keep.contains(&name)
            {
                doomed.push(path);
            }
        })?;
        for path in doomed {
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if self.remove(&path)? {
                report.removed += 1;
                report.freed += len;
            }
        }
        debug!(
            removed = report.removed,
            freed = report.freed,
            kept = keep.len(),
            "gc done"
        );
        Ok(report)
    }

    /// The blocks of the DAG under `root` that are not stored, as far as
    /// the stored blocks tell (the children of a missing node are unknown,
    /// so only the node itself is listed). Empty means complete.
    pub fn missing(&self, root: &Cid) -> Result<Vec<Cid>, BlockstoreError> {
        let mut missing = Vec::new();
        self.walk(root, |_, absent| {
            if let Some(cid) = absent {
                missing.push(cid);
            }
        })?;
        Ok(missing)
    }

    /// How many blocks of the DAG under `root` are stored, and which are
    /// missing (as [`missing`](Self::missing) lists them).
    pub fn dag_blocks(&self, root: &Cid) -> Result<(u64, Vec<Cid>), BlockstoreError> {
        let (mut present, mut missing) = (0, Vec::new());
        self.walk(root, |_, absent| match absent {
            Some(cid) => missing.push(cid),
            None => present += 1,
        })?;
        Ok((present, missing))
    }

    /// Whether every block of the DAG under `root` is stored.
    pub fn is_complete(&self, root: &Cid) -> Result<bool, BlockstoreError> {
        Ok(self.missing(root)?.is_empty())
    }

    /// Depth-first walk of the DAG under `root`: calls `visit(file name,
    /// None)` for each stored block and `visit(file name, Some(cid))` for
    /// each missing one. A stored dag-pb block that does not decode is
    /// kept but not descended into.
    fn walk(
        &self,
        root: &Cid,
        mut visit: impl FnMut(String, Option<Cid>),
    ) -> Result<(), BlockstoreError> {
        let mut seen = HashSet::new();
        let mut stack = vec![*root];
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            let name = file_name(&cid);
            // A raw leaf has no links: whether it is there is all to know.
            if cid.codec() == RAW {
                visit(name, (!self.has(&cid)?).then_some(cid));
                continue;
            }
            let Some(data) = self.read(&cid)? else {
                visit(name, Some(cid));
                continue;
            };
            visit(name, None);
            match links_of(&cid, &data) {
                // Reverse so the stack pops them in link order.
                Ok(links) => stack.extend(links.into_iter().rev()),
                Err(e) => warn!(%cid, error = %e, "stored dag-pb block does not decode"),
            }
        }
        Ok(())
    }

    /// Counters.
    pub fn stats(&self) -> Result<BlockstoreStats, BlockstoreError> {
        let tx = self.pins.begin_read()?;
        let pins = tx.open_table(PINS)?.len()?;
        Ok(BlockstoreStats {
            blocks: self.blocks.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            limit: self.limit,
            pins,
        })
    }

    fn path_of(&self, cid: &Cid) -> PathBuf {
        let name = file_name(cid);
        self.dir.join(shard_of(&name)).join(name)
    }

    /// Calls `f` for every block file and temp file; logs and skips
    /// anything else.
    fn scan(&self, mut f: impl FnMut(Entry)) -> Result<(), BlockstoreError> {
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                warn!(path = %path.display(), "ignoring odd entry in blockstore");
                continue;
            };
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir {
                if !name.starts_with(PINS_FILE) {
                    warn!(path = %path.display(), "ignoring odd file in blockstore");
                }
                continue;
            }
            if name.len() != 2 || !is_base32(name) {
                warn!(path = %path.display(), "ignoring odd directory in blockstore");
                continue;
            }
            for inner in fs::read_dir(&path).map_err(io_err(&path))? {
                let inner = inner.map_err(io_err(&path))?;
                let file = inner.path();
                let Some(file_name) = inner.file_name().to_str().map(str::to_owned) else {
                    warn!(path = %file.display(), "ignoring odd entry in blockstore");
                    continue;
                };
                let meta = match inner.metadata() {
                    Ok(meta) => meta,
                    // Removed meanwhile (a concurrent delete).
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err(&file)(e)),
                };
                if file_name.starts_with(TMP_PREFIX) && meta.is_file() {
                    f(Entry::Temp(file));
                } else if meta.is_file()
                    && file_name.len() >= 3
                    && is_base32(&file_name)
                    && shard_of(&file_name) == name
                {
                    f(Entry::Block {
                        name: file_name,
                        path: file,
                        len: meta.len(),
                    });
                } else {
                    warn!(path = %file.display(), "ignoring odd entry in blockstore");
                }
            }
        }
        Ok(())
    }

    fn read_lock(&self) -> RwLockReadGuard<'_, ()> {
        // The lock guards no data, so a panic elsewhere cannot have left
        // anything half-done behind it.
        self.gc_lock.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, ()> {
        self.gc_lock.write().unwrap_or_else(|e| e.into_inner())
    }
}

enum Entry {
    Block {
        name: String,
        path: PathBuf,
        len: u64,
    },
    Temp(PathBuf),
}

/// Creates all 1024 shard directories (`aa` … `77`) in a thread of its
/// own after [`Blockstore::open`], then fsyncs the blocks dir once, so
/// that a download does not pay for a `mkdir` and a directory fsync with
/// its first block of every shard. Creating an inode is the costly part of
/// a block write on some filesystems (ext4 without a journal scans past
/// recently deleted inodes), and each `put` would otherwise create two.
/// `put` still creates a missing shard itself; dropping the store stops
/// the thread and waits for it.
struct ShardMaker {
    stop: Arc<AtomicBool>,
    durable: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ShardMaker {
    fn start(dir: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let durable = Arc::new(AtomicBool::new(false));
        let (dir, stop_flag, done) = (dir.to_owned(), stop.clone(), durable.clone());
        let thread = std::thread::Builder::new()
            .name("blockstore-shards".to_owned())
            .spawn(move || {
                let mut made = 0u32;
                for a in BASE32 {
                    for b in BASE32 {
                        if stop_flag.load(Ordering::Relaxed) {
                            return;
                        }
                        let shard = dir.join(format!("{}{}", char::from(*a), char::from(*b)));
                        match fs::create_dir(&shard) {
                            Ok(()) => made += 1,
                            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                            Err(e) => {
                                debug!(dir = %shard.display(), error = %e, "cannot make shard dir");
                                return;
                            }
                        }
                    }
                }
                // Also when all were there: an earlier process may have
                // made them and died before its fsync.
                if let Err(e) = sync_dir(&dir) {
                    debug!(error = %e, "cannot sync the blocks dir");
                    return;
                }
                done.store(true, Ordering::Release);
                debug!(made, "shard directories ready");
            })
            .map_err(|e| warn!(error = %e, "cannot start the shard maker"))
            .ok();
        Self {
            stop,
            durable,
            thread,
        }
    }

    /// Whether every shard dir exists and its entry is durable.
    fn is_durable(&self) -> bool {
        self.durable.load(Ordering::Acquire)
    }
}

impl Drop for ShardMaker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Alignment of `O_DIRECT` writes: buffer address, length and offset
/// (4 KiB covers 512-byte and 4 KiB logical sectors).
#[cfg(target_os = "linux")]
const DIRECT_ALIGN: usize = 4096;

#[cfg(target_os = "linux")]
thread_local! {
    /// Each writing thread's aligned staging buffer for `O_DIRECT`, reused
    /// (so neither its pages nor the page cache's are freshly faulted in
    /// for every block). At most one block (2 MiB) plus alignment per
    /// thread.
    static DIRECT_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Creates the new file `path` with `data` in it (not yet synced).
///
/// On Linux the data goes in with `O_DIRECT` when the filesystem takes it:
/// straight from an aligned staging buffer to the disk, without the copy
/// into freshly allocated page-cache pages that dominates a buffered write
/// of a large block on a VM; the padding to the 4 KiB alignment is cut off
/// again with `set_len`. Elsewhere, for tiny blocks, or when the
/// filesystem refuses `O_DIRECT` (tmpfs), it is a plain buffered write.
fn write_file(path: &Path, data: &[u8]) -> io::Result<fs::File> {
    #[cfg(target_os = "linux")]
    if data.len() >= DIRECT_ALIGN {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        match direct {
            Ok(mut file) => {
                let done = DIRECT_BUF.with(|buf| match buf.try_borrow_mut() {
                    Ok(mut buf) => write_direct(&mut file, &mut buf, data),
                    Err(_) => Err(io::Error::from(io::ErrorKind::InvalidInput)),
                });
                match done {
                    Ok(()) => return Ok(file),
                    // Refused (alignment the device does not take): write
                    // the same file again, buffered.
                    Err(e)
                        if e.raw_os_error() == Some(libc::EINVAL)
                            || e.kind() == io::ErrorKind::InvalidInput =>
                    {
                        drop(file);
                        let mut file = fs::OpenOptions::new()
                            .write(true)
                            .truncate(true)
                            .open(path)?;
                        file.write_all(data)?;
                        return Ok(file);
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    let mut file = fs::File::create_new(path)?;
    file.write_all(data)?;
    Ok(file)
}

/// Writes `data` to `file` (opened with `O_DIRECT`, empty) through the
/// aligned part of `buf`, then cuts the file to `data`'s length.
#[cfg(target_os = "linux")]
fn write_direct(file: &mut fs::File, buf: &mut Vec<u8>, data: &[u8]) -> io::Result<()> {
    let padded = data.len().div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
    if buf.len() < padded + DIRECT_ALIGN {
        *buf = vec![0u8; padded + DIRECT_ALIGN];
    }
    let skew = (buf.as_ptr() as usize) % DIRECT_ALIGN;
    let start = (DIRECT_ALIGN - skew) % DIRECT_ALIGN;
    let aligned = buf
        .get_mut(start..start + padded)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let (body, pad) = aligned.split_at_mut(data.len());
    body.copy_from_slice(data);
    pad.fill(0);
    file.write_all(aligned)?;
    if padded != data.len() {
        file.set_len(data.len() as u64)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), BlockstoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The file name of a block: lowercase base32 (RFC 4648, no padding) of
/// its multihash. CIDs differing only in version or codec share the file,
/// which is right: they name the same bytes.
pub(crate) fn file_name(cid: &Cid) -> String {
    base32_lower(&cid.hash().to_bytes())
}

fn base32_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The shard directory: the next-to-last two characters of the name.
fn shard_of(name: &str) -> &str {
    let len = name.len();
    if len < 3 {
        name
    } else {
        &name[len - 3..len - 1]
    }
}

fn is_base32(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| BASE32.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_hold_exactly_the_data_at_any_length() {
        let dir = tempfile::tempdir().unwrap();
        // Below, at and around the direct-IO alignment, and a full block.
        for (i, len) in [0, 1, 4095, 4096, 4097, 65_536 + 3, 1 << 20, (1 << 20) + 1]
            .into_iter()
            .enumerate()
        {
            let data: Vec<u8> = (0..len).map(|n| (n % 251) as u8).collect();
            let path = dir.path().join(format!("f{i}"));
            let file = write_file(&path, &data).unwrap();
            file.sync_data().unwrap();
            drop(file);
            assert_eq!(fs::read(&path).unwrap(), data, "length {len}");
            assert!(write_file(&path, &data).is_err(), "never overwrites");
        }
    }

    #[test]
    fn file_names_are_kubo_style_base32_of_the_multihash() {
        let block = Block::hash(cid::Version::V1, crate::block::RAW, &b"hello world"[..]).unwrap();
        let name = file_name(block.cid());
        // sha2-256 multihashes start 0x12 0x20, "ciq" in base32 (kubo's CIQ...).
        assert!(name.starts_with("ciq"), "{name}");
        // The example in docs/content.md.
        assert_eq!(
            name,
            "ciqlstjhxgju2pqiuuxffv62pwv7vree57rxuu4a52iir55m4lx432i"
        );
        // The example in docs/content.md.
        assert_eq!(
            name,
            "ciqlstjhxgju2pqiuuxffv62pwv7vree57rxuu4a52iir55m4lx432i"
        );
        assert_eq!(name.len(), 55);
        assert_eq!(shard_of(&name), &name[52..54]);
        let v0 = Cid::new_v0(*block.cid().hash()).unwrap();
        assert_eq!(file_name(&v0), name);
        // RFC 4648 section 10 vectors, lowercased and unpadded.
        for (input, expected) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_lower(input.as_bytes()), expected);
        }
    }
}
