//! What Bitswap serves from: the blockstore, held weakly so that a stopped
//! node's store closes even while Bitswap tasks wind down.

use std::sync::{Arc, Weak};

use cid::Cid;

use crate::bitswap::BlockSource;
use crate::block::Block;
use crate::blockstore::Blockstore;

/// The blockstore as a [`BlockSource`]: blocks are served straight from it
/// (without rehashing: they were checked when stored). A disk error is
/// logged and answered as "not here".
#[derive(Debug)]
pub struct Source(Weak<Blockstore>);

impl Source {
    /// Serves from `store` while it is open elsewhere.
    pub fn new(store: &Arc<Blockstore>) -> Self {
        Self(Arc::downgrade(store))
    }
}

impl BlockSource for Source {
    fn get(&self, cid: &Cid) -> Option<Block> {
        let store = self.0.upgrade()?;
        store.get(cid).unwrap_or_else(|e| {
            tracing::warn!(%cid, error = %e, "cannot read a block to serve");
            None
        })
    }

    fn size_of(&self, cid: &Cid) -> Option<u64> {
        let store = self.0.upgrade()?;
        store.size_of(cid).unwrap_or_else(|e| {
            tracing::warn!(%cid, error = %e, "cannot read a block to serve");
            None
        })
    }
}
