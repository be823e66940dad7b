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
//! `pin`, `unpin`, `pins`, `gc` and `stat`.

pub mod bitswap;
pub mod block;
pub mod blockstore;
mod client;
pub mod fetch;
pub mod unixfs;

pub use block::{Block, BlockError, MAX_BLOCK_SIZE};
pub use client::{ContentError, ContentStat};
