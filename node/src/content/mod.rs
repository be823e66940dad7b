//! Package content: the bytes behind a record's CID, as IPFS-compatible
//! blocks (`docs/content.md`).
//!
//! * [`block`]: a [`Block`] is bytes plus the CID they were checked against.
//! * [`unixfs`]: import of a file into a UnixFS DAG (the IPIP-499 profiles)
//!   and reading a file back from its blocks. Sans-IO.
//! * [`blockstore`]: blocks as files in the data dir, pins, `gc`, a size limit.
//! * [`bitswap`]: Bitswap 1.2.0 on the node's swarm, client and server.
//! * [`fetch`]: downloads a DAG from several providers in parallel.
//!
//! The node's [`Client`](crate::Client) offers all of it as `add`, `cat`,
//! `pin`, `unpin`, `pins`, `gc` and `stat`, and, for the gateway's raw
//! blocks and CARs, `block` (one block, local or from the swarm),
//! `cat_blocks` (a file's blocks in depth-first order), `put_block` and
//! `check_local_file`.

pub mod bitswap;
pub mod block;
pub mod blockstore;
mod client;
pub mod fetch;
pub mod unixfs;

pub use block::{Block, BlockError, MAX_BLOCK_SIZE};
pub use client::{ContentError, ContentStat};

/// What Bitswap serves from: the node's blockstore, held weakly so that a
/// stopped node's store closes even while Bitswap tasks wind down.
#[derive(Debug)]
pub(crate) struct Source(pub(crate) std::sync::Weak<blockstore::Blockstore>);

/// Bitswap serves blocks straight from the blockstore (without rehashing:
/// they were checked when stored). A disk error is logged and answered as
/// "not here".
impl bitswap::BlockSource for Source {
    fn get(&self, cid: &cid::Cid) -> Option<Block> {
        let store = self.0.upgrade()?;
        store.get(cid).unwrap_or_else(|e| {
            tracing::warn!(%cid, error = %e, "cannot read a block to serve");
            None
        })
    }

    fn size_of(&self, cid: &cid::Cid) -> Option<u64> {
        let store = self.0.upgrade()?;
        store.size_of(cid).unwrap_or_else(|e| {
            tracing::warn!(%cid, error = %e, "cannot read a block to serve");
            None
        })
    }
}
