//! Reading a UnixFS file, or a byte range of it, back from its blocks,
//! sans-IO: [`FileReader`] asks for the next block it needs and turns the
//! blocks it is fed into file bytes; [`seek`] picks, from a node's
//! `blocksizes`, the children whose subtrees hold a range, so a ranged
//! read skips every subtree outside it without reading a block of it.
//!
//! ```text
//!                root  blocksizes [4, 4, 2]        bytes 5..7 wanted
//!              /   |   \
//!   [a b c d] [e f g h] [i j]                      only the middle leaf
//!    0..4      4..8      8..10                     is read: bytes 1..3 of it
//! ```

use std::ops::Range;

use cid::Cid;

use super::node::{self, Node};
use crate::block::Block;

/// The children of a UnixFS node that hold the bytes `range` of the node
/// (offsets from the node's first byte), given `blocksizes`, the file
/// bytes under each child in order: each such child's index and the part
/// of `range` inside it, as offsets from the child's first byte, in order.
/// Children outside the range are skipped whole; an empty range needs no
/// child, and neither does a child that holds no bytes.
///
/// ```
/// use ipsr_content::unixfs::seek;
///
/// // Three leaves of 4, 4 and 2 bytes; bytes 3..9 of the node.
/// let children: Vec<_> = seek(&[4, 4, 2], 3..9).collect();
/// assert_eq!(children, vec![(0, 3..4), (1, 0..4), (2, 0..1)]);
/// // The last byte: only the last leaf.
/// assert_eq!(seek(&[4, 4, 2], 9..10).collect::<Vec<_>>(), vec![(2, 1..2)]);
/// ```
pub fn seek(
    blocksizes: &[u64],
    range: Range<u64>,
) -> impl Iterator<Item = (usize, Range<u64>)> + '_ {
    let mut start = 0u64;
    blocksizes
        .iter()
        .enumerate()
        .map_while(move |(i, &size)| {
            // Past the range: stop rather than walk the remaining sizes.
            if start >= range.end {
                return None;
            }
            let child = start..start.saturating_add(size);
            start = child.end;
            let from = range.start.max(child.start);
            let to = range.end.min(child.end);
            Some((from < to).then(|| (i, from - child.start..to - child.start)))
        })
        .flatten()
}

/// Why [`FileReader::feed`] refused a block, or a DAG could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The block fed is not the one [`FileReader::needed`] asked for.
    #[error("expected block {expected}, got {got}")]
    UnexpectedBlock {
        /// The CID asked for.
        expected: Box<Cid>,
        /// The CID of the block fed.
        got: Box<Cid>,
    },
    /// The reader has already finished or failed.
    #[error("the file has been read completely or the read failed")]
    Finished,
    /// The DAG is not a UnixFS file (a directory, a symlink, ...).
    #[error("{0} is not a unixfs file")]
    NotAFile(Cid),
    /// A node is not valid dag-pb/UnixFS or its links are inconsistent.
    #[error("invalid unixfs node {cid}: {reason}")]
    Invalid {
        /// The block.
        cid: Cid,
        /// What was wrong with it.
        reason: String,
    },
    /// The leaves held a different number of bytes than the root declared.
    #[error("file declared {declared} bytes but its blocks held {actual}")]
    SizeMismatch {
        /// Size the root declared.
        declared: u64,
        /// Bytes the leaves held.
        actual: u64,
    },
}

/// A block the reader still needs.
#[derive(Debug, Clone)]
struct Pending {
    cid: Cid,
    /// The file bytes its parent says its subtree holds (`None` for the
    /// root, which says it itself).
    size: Option<u64>,
    /// The bytes of its subtree wanted, from the subtree's first byte.
    wanted: Range<u64>,
}

/// Reads a UnixFS file, or a byte range of it, back from its blocks,
/// sans-IO: ask [`needed`](FileReader::needed) for the next block, get it
/// from wherever (store, network), [`feed`](FileReader::feed) it, write out
/// the bytes it returns, repeat until `needed` gives `None`.
///
/// Blocks must be fed in the order asked for, depth first (a node, then
/// each child's subtree in link order); the prefetch hints let a
/// downloader fetch the following ones in parallel meanwhile. Each block
/// fed is checked to be the one asked for, [`Block`] guarantees its bytes
/// match its CID, and every node must hold the bytes its parent declares
/// for it, so the bytes returned are the root's.
///
/// A whole read ([`new`](FileReader::new)) asks for every block of the
/// DAG. A ranged read ([`range`](FileReader::range)) asks only for the
/// nodes on the paths to the leaves that overlap the range ([`seek`]): the
/// last byte of a file costs its root, one node per level and one leaf.
pub struct FileReader {
    root: Cid,
    /// The bytes wanted; `None` for the whole file (every block, also
    /// those holding no bytes).
    range: Option<Range<u64>>,
    /// Blocks still needed; the next is last.
    pending: Vec<Pending>,
    total: Option<u64>,
    delivered: u64,
    state: ReaderState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReaderState {
    Reading,
    Done,
    Failed,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("root", &self.root.to_string())
            .field("range", &self.range)
            .field("total", &self.total)
            .field("delivered", &self.delivered)
            .field("state", &self.state)
            .finish()
    }
}

impl FileReader {
    /// A reader of the whole file whose root block is `root`.
    pub fn new(root: Cid) -> Self {
        Self::with(root, None)
    }

    /// A reader of the bytes `range` of the file whose root block is
    /// `root` (cut to the file's size once the root is read; a range past
    /// the end gives no bytes). Only the blocks that hold those bytes are
    /// asked for, with the nodes above them.
    pub fn range(root: Cid, range: Range<u64>) -> Self {
        let end = range.end.max(range.start);
        Self::with(root, Some(range.start..end))
    }

    fn with(root: Cid, range: Option<Range<u64>>) -> Self {
        Self {
            root,
            pending: vec![Pending {
                cid: root,
                size: None,
                wanted: range.clone().unwrap_or(0..u64::MAX),
            }],
            range,
            total: None,
            delivered: 0,
            state: ReaderState::Reading,
        }
    }

    /// The root CID.
    pub fn root(&self) -> &Cid {
        &self.root
    }

    /// The next block to feed, and the blocks expected after it in order
    /// (prefetch hints), or `None` once the file is complete or the read
    /// failed.
    pub fn needed(&self) -> Option<(Cid, Vec<Cid>)> {
        let next = self.next_needed()?;
        let rest = self.pending.iter().rev().skip(1).map(|p| p.cid).collect();
        Some((next, rest))
    }

    /// The next block to feed, without the hints.
    pub fn next_needed(&self) -> Option<Cid> {
        if self.state != ReaderState::Reading {
            return None;
        }
        self.pending.last().map(|p| p.cid)
    }

    /// Feeds the block asked for and returns the file bytes it holds that
    /// are wanted (empty for link nodes), which follow the bytes returned
    /// before.
    pub fn feed<'b>(&mut self, block: &'b Block) -> Result<&'b [u8], ReadError> {
        let Some(expected) = self.next_needed() else {
            return Err(ReadError::Finished);
        };
        if *block.cid() != expected {
            return Err(ReadError::UnexpectedBlock {
                expected: Box::new(expected),
                got: Box::new(*block.cid()),
            });
        }
        match self.step(block) {
            Ok(bytes) => Ok(bytes),
            Err(e) => {
                self.state = ReaderState::Failed;
                Err(e)
            }
        }
    }

    fn step<'b>(&mut self, block: &'b Block) -> Result<&'b [u8], ReadError> {
        let cid = *block.cid();
        let invalid = |reason: String| ReadError::Invalid { cid, reason };
        let Some(mut at) = self.pending.pop() else {
            return Err(ReadError::Finished);
        };
        let node = match node::decode(&cid, block.data()) {
            Ok(node) => node,
            Err(node::DecodeError::NotAFile) if at.size.is_none() => {
                return Err(ReadError::NotAFile(cid));
            }
            Err(node::DecodeError::NotAFile) => {
                return Err(invalid("not a file node inside a file".to_owned()));
            }
            Err(node::DecodeError::Invalid(reason)) => return Err(invalid(reason)),
        };
        let size = node.size();
        match at.size {
            Some(declared) if declared != size => {
                return Err(invalid(format!(
                    "holds {size} bytes where its parent declares {declared}"
                )));
            }
            Some(_) => {}
            None => {
                // The root: now the size is known, cut the range to it.
                self.total = Some(size);
                at.wanted = at.wanted.start.min(size)..at.wanted.end.min(size);
            }
        }
        let bytes: &'b [u8] = match node {
            Node::Leaf(bytes) => {
                // `wanted` lies within the node's size, which is the
                // leaf's length.
                let (from, to) = (at.wanted.start as usize, at.wanted.end as usize);
                bytes.get(from..to).unwrap_or_default()
            }
            Node::Inner(children) => {
                let sizes: Vec<u64> = children.iter().map(|(_, size)| *size).collect();
                let start = self.pending.len();
                if self.range.is_some() {
                    self.pending
                        .extend(seek(&sizes, at.wanted.clone()).map(|(i, wanted)| Pending {
                            cid: children[i].0,
                            size: Some(sizes[i]),
                            wanted,
                        }));
                } else {
                    self.pending
                        .extend(children.iter().map(|&(cid, size)| Pending {
                            cid,
                            size: Some(size),
                            wanted: 0..size,
                        }));
                }
                // The next is last.
                self.pending[start..].reverse();
                &[]
            }
        };
        self.delivered += bytes.len() as u64;
        if self.pending.is_empty() {
            let declared = match &self.range {
                Some(range) => {
                    let total = self.total.unwrap_or(0);
                    range.end.min(total).saturating_sub(range.start.min(total))
                }
                None => self.total.unwrap_or(0),
            };
            if declared != self.delivered {
                return Err(ReadError::SizeMismatch {
                    declared,
                    actual: self.delivered,
                });
            }
            self.state = ReaderState::Done;
        }
        Ok(bytes)
    }

    /// The file's size, known once the root block has been fed.
    pub fn total_size(&self) -> Option<u64> {
        self.total
    }

    /// File bytes returned so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Whether the file (or the range) has been read successfully.
    pub fn is_done(&self) -> bool {
        self.state == ReaderState::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sought(sizes: &[u64], range: Range<u64>) -> Vec<(usize, Range<u64>)> {
        seek(sizes, range).collect()
    }

    #[test]
    fn seek_picks_the_children_that_overlap() {
        let sizes = [4, 4, 2];
        assert_eq!(sought(&sizes, 0..10), vec![(0, 0..4), (1, 0..4), (2, 0..2)]);
        assert_eq!(sought(&sizes, 0..1), vec![(0, 0..1)]);
        assert_eq!(sought(&sizes, 4..8), vec![(1, 0..4)]);
        assert_eq!(sought(&sizes, 3..5), vec![(0, 3..4), (1, 0..1)]);
        assert_eq!(sought(&sizes, 9..10), vec![(2, 1..2)]);
        // Past the end, empty, reversed: nothing.
        assert_eq!(sought(&sizes, 10..20), vec![]);
        assert_eq!(sought(&sizes, 5..5), vec![]);
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 6..2;
        assert_eq!(sought(&sizes, reversed), vec![]);
        // A range beyond the node is cut to it.
        assert_eq!(sought(&sizes, 8..u64::MAX), vec![(2, 0..2)]);
        // Children that hold nothing are never needed.
        assert_eq!(sought(&[0, 3, 0, 3], 0..6), vec![(1, 0..3), (3, 0..3)]);
        assert_eq!(sought(&[], 0..6), vec![]);
    }

    #[test]
    fn seek_stops_after_the_range() {
        // A million children; the first byte must not walk them all (the
        // iterator is lazy, and stops at the first child past the range).
        let sizes = vec![1u64; 1_000_000];
        let mut it = seek(&sizes, 0..1);
        assert_eq!(it.next(), Some((0, 0..1)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn seek_survives_sizes_that_overflow() {
        assert_eq!(
            sought(&[u64::MAX, u64::MAX, 5], u64::MAX - 1..u64::MAX),
            vec![(0, u64::MAX - 1..u64::MAX)]
        );
    }

    proptest! {
        /// The pieces seek picks are, in order, exactly the range's bytes.
        #[test]
        fn seek_covers_the_range_exactly(
            sizes in proptest::collection::vec(0u64..50, 0..40),
            a in 0u64..2100,
            b in 0u64..2100,
        ) {
            let total: u64 = sizes.iter().sum();
            let range = a.min(b)..a.max(b);
            let mut offsets = Vec::new();
            let mut starts = vec![0u64];
            for s in &sizes {
                starts.push(starts.last().unwrap() + s);
            }
            for (i, part) in seek(&sizes, range.clone()) {
                prop_assert!(part.start < part.end && part.end <= sizes[i]);
                offsets.extend((part.start..part.end).map(|o| starts[i] + o));
            }
            let expected: Vec<u64> = (range.start.min(total)..range.end.min(total)).collect();
            prop_assert_eq!(offsets, expected);
        }
    }
}
