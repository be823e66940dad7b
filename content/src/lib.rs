//! `ipsr-content`: the bytes behind a package record's CID, as
//! IPFS-compatible blocks (`docs/content.md`). It stands apart from the
//! daemon so that a tool can compute a CID without linking a swarm; the
//! network half is behind the `net` feature.
//!
//! Always built (no libp2p, no async runtime):
//! * [`block`]: a [`Block`] is bytes plus the CID they were checked against;
//!   the codecs and the one hash IPSR accepts.
//! * [`unixfs`]: import of a file into a UnixFS DAG (the IPIP-499 profiles)
//!   and reading a file back from its blocks. Sans-IO.
//! * [`blockstore`]: blocks as files in a data dir, pins, `gc`, a size
//!   limit with eviction of unpinned blocks (least recently used first) and
//!   per-owner pin quotas (the accounting in `quota` and the eviction
//!   choice in `evict` are sans-IO).
//!
//! With the `net` feature:
//! * [`bitswap`]: Bitswap 1.2.0 on a libp2p swarm (through
//!   `libp2p-stream`), client and server.
//! * [`fetch`]: downloads a DAG from several providers in parallel.
//! * `router`: the [`Router`] trait, what content needs of the DHT and the
//!   swarm (the node implements it).
//! * `handle`: [`Content`], the handle the node hands out
//!   (`client.content()`): `add`, `cat`, `cat_range`, `pin`, `unpin`,
//!   `pins`, `gc`, `stat`, and, for the gateway's raw blocks and CARs,
//!   `block`, `cat_blocks`, `put_block` and `check_local_file`.
//! * `source`: [`Source`], the blockstore as what Bitswap serves from.
//!
//! ```
//! use ipsr_content::unixfs::{Importer, Profile};
//!
//! let mut importer = Importer::new(Profile::V1_2025);
//! let blocks = importer.push(b"hello world");
//! let (imported, last) = importer.finish();
//! assert_eq!(blocks.len() + last.len(), 1);
//! // The CID `ipfs add --cid-version 1` gives for the same 11 bytes.
//! assert_eq!(
//!     imported.root.to_string(),
//!     "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
//! );
//! ```

pub mod block;
pub mod blockstore;
mod evict;
mod quota;
pub mod unixfs;

#[cfg(feature = "net")]
pub mod bitswap;
#[cfg(feature = "net")]
pub mod fetch;
#[cfg(feature = "net")]
mod handle;
#[cfg(feature = "net")]
mod router;
#[cfg(feature = "net")]
mod source;

pub use block::{Block, BlockError, MAX_BLOCK_SIZE};
#[cfg(feature = "net")]
pub use handle::{Content, ContentError, ContentStat, PinSpec};
#[cfg(feature = "net")]
pub use router::{Router, Stopped};
#[cfg(feature = "net")]
pub use source::Source;
