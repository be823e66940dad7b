//! UnixFS files, sans-IO: [`Importer`] turns bytes into the blocks of a
//! UnixFS DAG under one of the IPIP-499 [`Profile`]s, and [`FileReader`]
//! turns the blocks of a DAG back into bytes, the whole file or a byte
//! range of it, block by block, asking for the next block it needs; a
//! ranged read descends only into the subtrees that hold the range
//! ([`seek`]). Neither touches the disk or the network; callers move the
//! blocks (`docs/content.md`).
//!
//! ```
//! use ipsr_content::unixfs::{FileReader, Importer, Profile};
//!
//! let mut importer = Importer::new(Profile::V1_2025);
//! let mut blocks = importer.push(b"hello world");
//! let (imported, last) = importer.finish();
//! blocks.extend(last);
//! assert_eq!(
//!     imported.root.to_string(),
//!     "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
//! );
//!
//! let mut reader = FileReader::new(imported.root);
//! let mut out = Vec::new();
//! while let Some((next, _prefetch)) = reader.needed() {
//!     let block = blocks.iter().find(|b| *b.cid() == next).unwrap();
//!     out.extend_from_slice(reader.feed(block).unwrap());
//! }
//! assert_eq!(out, b"hello world");
//! ```

use std::io::Read;
use std::str::FromStr;

use cid::{Cid, Version};
use rust_unixfs::file::adder::{BalancedCollector, Chunker, FileAdder};

use super::block::{Block, DAG_PB, RAW};

mod node;
mod read;

pub use read::{FileReader, ReadError, seek};

/// A UnixFS import profile of IPIP-499: the parameters that, together with
/// the file's bytes, decide its root CID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// `unixfs-v1-2025`: CIDv1, raw leaves, fixed 1 MiB chunks, balanced
    /// layout, at most 1024 links per node.
    #[default]
    V1_2025,
    /// `unixfs-v0-2015`: the legacy default of kubo's `ipfs add`: CIDv0,
    /// dag-pb leaves, fixed 256 KiB chunks, balanced layout, at most 174
    /// links per node.
    V0_2015,
}

impl Profile {
    /// Both profiles.
    pub const ALL: [Profile; 2] = [Profile::V1_2025, Profile::V0_2015];

    /// Bytes per leaf chunk (the last chunk may be shorter).
    pub fn chunk_size(self) -> usize {
        self.params().chunk_size
    }

    /// Most links in one DAG node (the DAG width).
    pub fn width(self) -> usize {
        self.params().width
    }

    /// The CID version of the DAG's dag-pb nodes (raw leaves are always CIDv1).
    pub fn cid_version(self) -> Version {
        self.params().version
    }

    /// Whether leaves are raw blocks (codec 0x55) rather than dag-pb nodes.
    pub fn raw_leaves(self) -> bool {
        self.params().raw_leaves
    }

    /// The IPIP-499 name, e.g. `unixfs-v1-2025`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::V1_2025 => "unixfs-v1-2025",
            Profile::V0_2015 => "unixfs-v0-2015",
        }
    }

    pub(crate) fn params(self) -> Params {
        match self {
            Profile::V1_2025 => Params {
                chunk_size: 1 << 20,
                width: 1024,
                version: Version::V1,
                raw_leaves: true,
            },
            Profile::V0_2015 => Params {
                chunk_size: 256 << 10,
                width: 174,
                version: Version::V0,
                raw_leaves: false,
            },
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that names no [`Profile`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown unixfs profile {0:?} (expected unixfs-v1-2025 or unixfs-v0-2015)")]
pub struct ParseProfileError(pub String);

impl FromStr for Profile {
    type Err = ParseProfileError;

    /// Accepts the IPIP-499 names and the short forms `v1`, `1`, `v0`, `0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unixfs-v1-2025" | "v1" | "1" => Ok(Profile::V1_2025),
            "unixfs-v0-2015" | "v0" | "0" => Ok(Profile::V0_2015),
            other => Err(ParseProfileError(other.to_owned())),
        }
    }
}

/// DAG parameters; the public profiles are fixed points of this, tests use
/// tiny chunks and widths to build deep DAGs from little data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub(crate) chunk_size: usize,
    pub(crate) width: usize,
    pub(crate) version: Version,
    pub(crate) raw_leaves: bool,
}

/// What an import produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// The root CID: the file's name under the profile.
    pub root: Cid,
    /// File bytes imported.
    pub size: u64,
    /// Blocks produced, counting repeats (identical chunks give the same
    /// block more than once).
    pub blocks: u64,
}

/// Streaming UnixFS importer: push the file's bytes, collect the blocks as
/// they complete, then [`finish`](Importer::finish) for the last blocks and
/// the root.
///
/// Memory stays bounded whatever the file size: one chunk of buffered input
/// plus the links not yet folded into a parent node (at most `width` per
/// level of the tree).
pub struct Importer {
    adder: FileAdder,
    chunk_size: usize,
    size: u64,
    blocks: u64,
    last: Option<Cid>,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("chunk_size", &self.chunk_size)
            .field("size", &self.size)
            .field("blocks", &self.blocks)
            .finish()
    }
}

impl Importer {
    /// An importer for `profile`.
    pub fn new(profile: Profile) -> Self {
        Self::with_params(profile.params())
    }

    pub(crate) fn with_params(params: Params) -> Self {
        let adder = FileAdder::builder()
            .with_chunker(Chunker::Size(params.chunk_size))
            .with_collector(BalancedCollector::with_branching_factor(params.width))
            .with_cid_version(params.version)
            .with_raw_leaves(params.raw_leaves)
            .build();
        Self {
            adder,
            chunk_size: params.chunk_size,
            size: 0,
            blocks: 0,
            last: None,
        }
    }

    /// Bytes per chunk; pushing whole multiples of it avoids a copy into
    /// the importer's buffer.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Takes all of `data` and returns the blocks it completed (leaves
    /// first, then any link nodes that filled up), in DAG order. Push in
    /// chunk-sized pieces to keep the returned batch small.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<Block> {
        let mut out = Vec::new();
        self.size += data.len() as u64;
        while !data.is_empty() {
            let (blocks, consumed) = self.adder.push(data);
            for (cid, bytes) in blocks {
                self.last = Some(cid);
                out.push(Block::from_importer(cid, bytes));
            }
            data = &data[consumed..];
        }
        self.blocks += out.len() as u64;
        out
    }

    /// Ends the file: returns the summary and the remaining blocks, the
    /// root being the last block produced overall (it may have come out of
    /// an earlier [`push`](Importer::push) when the file is exactly one
    /// chunk long).
    pub fn finish(self) -> (Imported, Vec<Block>) {
        let Importer {
            adder,
            size,
            mut blocks,
            mut last,
            ..
        } = self;
        let mut out = Vec::new();
        for (cid, bytes) in adder.finish() {
            last = Some(cid);
            out.push(Block::from_importer(cid, bytes));
        }
        blocks += out.len() as u64;
        // The adder always yields at least one block over push + finish
        // (an empty file gives an empty leaf), so `last` is set; the
        // fallback names the empty raw leaf rather than panicking.
        let root = last.unwrap_or_else(empty_raw_leaf);
        (Imported { root, size, blocks }, out)
    }
}

fn empty_raw_leaf() -> Cid {
    use multihash_codetable::{Code, MultihashDigest};
    Cid::new_v1(RAW, Code::Sha2_256.digest(&[]))
}

/// Why [`import`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError<E> {
    /// Reading the input failed.
    #[error("reading the file: {0}")]
    Read(#[source] std::io::Error),
    /// The sink refused a block.
    #[error("storing a block: {0}")]
    Sink(#[source] E),
}

/// Imports everything `reader` yields under `profile`, handing each block
/// to `sink` as soon as it is complete. Reads chunk-sized pieces, so memory
/// stays bounded; wrap slow readers in a `BufReader` if they are not
/// already buffered.
pub fn import<R, E, F>(
    mut reader: R,
    profile: Profile,
    mut sink: F,
) -> Result<Imported, ImportError<E>>
where
    R: Read,
    F: FnMut(Block) -> Result<(), E>,
{
    let mut importer = Importer::new(profile);
    let mut buf = vec![0u8; importer.chunk_size()];
    loop {
        let n = fill(&mut reader, &mut buf).map_err(ImportError::Read)?;
        if n == 0 {
            break;
        }
        for block in importer.push(&buf[..n]) {
            sink(block).map_err(ImportError::Sink)?;
        }
        if n < buf.len() {
            break;
        }
    }
    let (imported, blocks) = importer.finish();
    for block in blocks {
        sink(block).map_err(ImportError::Sink)?;
    }
    Ok(imported)
}

/// Where `part` lies inside `whole` (the DAG-PB decoder returns file bytes
/// as a slice of its own handle on the block's memory; this recovers the
/// position so the bytes can be returned borrowed from the block itself).
fn subslice_range(whole: &[u8], part: &[u8]) -> Option<std::ops::Range<usize>> {
    if part.is_empty() {
        return Some(0..0);
    }
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A dag-pb node that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("invalid dag-pb node {cid}: {reason}")]
pub struct LinksError {
    /// The block.
    pub cid: Cid,
    /// The decoder's complaint.
    pub reason: String,
}

/// The CIDs a block links to, in order: a dag-pb node's links, none for a
/// raw block.
pub fn links(block: &Block) -> Result<Vec<Cid>, LinksError> {
    links_of(block.cid(), block.data())
}

/// [`links`] for bytes known to match `cid`.
pub(crate) fn links_of(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, LinksError> {
    let mut out = Vec::new();
    if cid.codec() == DAG_PB {
        ipld_dagpb::links(data, &mut out).map_err(|e| LinksError {
            cid: *cid,
            reason: e.to_string(),
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn import_all(params: Params, data: &[u8], piece: usize) -> (Imported, Vec<Block>) {
        let mut importer = Importer::with_params(params);
        let mut blocks = Vec::new();
        for part in data.chunks(piece.max(1)) {
            blocks.extend(importer.push(part));
        }
        let (imported, last) = importer.finish();
        blocks.extend(last);
        (imported, blocks)
    }

    fn read_back(root: Cid, blocks: &[Block]) -> Vec<u8> {
        let store: HashMap<Cid, &Block> = blocks.iter().map(|b| (*b.cid(), b)).collect();
        let mut reader = FileReader::new(root);
        let mut out = Vec::new();
        while let Some((next, _)) = reader.needed() {
            out.extend_from_slice(reader.feed(store[&next]).unwrap());
        }
        assert!(reader.is_done());
        assert_eq!(reader.total_size(), Some(out.len() as u64));
        out
    }

    fn depth(root: Cid, blocks: &[Block]) -> usize {
        let store: HashMap<Cid, &Block> = blocks.iter().map(|b| (*b.cid(), b)).collect();
        let mut d = 0;
        let mut cid = root;
        loop {
            let l = links(store[&cid]).unwrap();
            match l.first() {
                Some(c) => {
                    cid = *c;
                    d += 1;
                }
                None => return d,
            }
        }
    }

    const TINY_V1: Params = Params {
        chunk_size: 16,
        width: 4,
        version: Version::V1,
        raw_leaves: true,
    };
    const TINY_V0: Params = Params {
        chunk_size: 16,
        width: 4,
        version: Version::V0,
        raw_leaves: false,
    };

    #[test]
    fn importer_blocks_hash_to_their_cids() {
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        for params in [TINY_V1, TINY_V0] {
            let (_, blocks) = import_all(params, &data, 100);
            for b in &blocks {
                let checked = Block::new(*b.cid(), b.data().clone()).unwrap();
                assert_eq!(&checked, b);
            }
        }
    }

    #[test]
    fn three_level_tree_round_trips_with_tiny_width() {
        // 16-byte chunks, 4 links: 4*4*4*16 + 1 bytes needs depth 4.
        let data: Vec<u8> = (0..(4 * 4 * 4 * 16 + 1) as u32)
            .map(|i| (i % 256) as u8)
            .collect();
        for params in [TINY_V1, TINY_V0] {
            let (imported, blocks) = import_all(params, &data, 7);
            assert_eq!(imported.size, data.len() as u64);
            assert_eq!(imported.blocks, blocks.len() as u64);
            assert_eq!(blocks.last().map(|b| *b.cid()), Some(imported.root));
            assert_eq!(depth(imported.root, &blocks), 4);
            assert_eq!(read_back(imported.root, &blocks), data);
        }
    }

    /// The reader asks for the blocks of a deep DAG in depth-first
    /// pre-order (a node, then each child's subtree in link order): the
    /// order `fetch_blocks` hands them on and a CAR holds them.
    #[test]
    fn blocks_are_needed_in_depth_first_order() {
        let data: Vec<u8> = (0..(4 * 4 * 4 * 16 + 1) as u32)
            .map(|i| (i * 31 % 256) as u8)
            .collect();
        for params in [TINY_V1, TINY_V0] {
            let (imported, blocks) = import_all(params, &data, 50);
            let store: HashMap<Cid, &Block> = blocks.iter().map(|b| (*b.cid(), b)).collect();
            let mut expected = Vec::new();
            let mut stack = vec![imported.root];
            while let Some(cid) = stack.pop() {
                expected.push(cid);
                stack.extend(links(store[&cid]).unwrap().into_iter().rev());
            }
            let mut reader = FileReader::new(imported.root);
            let mut asked = Vec::new();
            while let Some(next) = reader.next_needed() {
                asked.push(next);
                reader.feed(store[&next]).unwrap();
            }
            assert_eq!(asked, expected);
            assert!(expected.len() > 70, "a deep DAG: {}", expected.len());
        }
    }

    #[test]
    fn feed_refuses_a_block_not_asked_for() {
        let data = vec![1u8; 100];
        let (imported, blocks) = import_all(TINY_V1, &data, 100);
        let mut reader = FileReader::new(imported.root);
        let wrong = blocks.iter().find(|b| *b.cid() != imported.root).unwrap();
        assert!(matches!(
            reader.feed(wrong),
            Err(ReadError::UnexpectedBlock { .. })
        ));
        // The reader is still usable after a refusal.
        assert_eq!(read_back(imported.root, &blocks), data);
    }

    #[test]
    fn prefetch_hints_list_the_following_blocks_in_order() {
        let data: Vec<u8> = (0..64u8).collect();
        let (imported, blocks) = import_all(TINY_V1, &data, 64);
        let store: HashMap<Cid, &Block> = blocks.iter().map(|b| (*b.cid(), b)).collect();
        let mut reader = FileReader::new(imported.root);
        let root = store[&imported.root];
        reader.feed(root).unwrap();
        let (next, hints) = reader.needed().unwrap();
        let mut expected = links(root).unwrap();
        assert_eq!(expected.remove(0), next);
        assert_eq!(hints, expected);
    }

    /// Reads `range` of the file, counting the blocks fed.
    fn read_range(root: Cid, blocks: &[Block], range: std::ops::Range<u64>) -> (Vec<u8>, usize) {
        let store: HashMap<Cid, &Block> = blocks.iter().map(|b| (*b.cid(), b)).collect();
        let mut reader = FileReader::range(root, range);
        let (mut out, mut fed) = (Vec::new(), 0);
        while let Some((next, _)) = reader.needed() {
            out.extend_from_slice(reader.feed(store[&next]).unwrap());
            fed += 1;
        }
        assert!(reader.is_done());
        assert_eq!(reader.delivered(), out.len() as u64);
        (out, fed)
    }

    /// A ranged read returns the range's bytes and reads only the nodes on
    /// the paths to the leaves that hold them: the last byte of a 4-level
    /// DAG costs 5 blocks, not the 86 of the whole file.
    #[test]
    fn ranged_reads_read_only_the_blocks_of_the_range() {
        let data: Vec<u8> = (0..(4 * 4 * 4 * 16 + 1) as u32)
            .map(|i| (i * 13 % 256) as u8)
            .collect();
        let size = data.len() as u64;
        for params in [TINY_V1, TINY_V0] {
            let (imported, blocks) = import_all(params, &data, 64);
            let (root, d) = (imported.root, depth(imported.root, &blocks));
            assert_eq!(d, 4);
            let cut = |r: std::ops::Range<u64>| data[r.start as usize..r.end as usize].to_vec();
            // The last byte, the first byte: one path each.
            assert_eq!(
                read_range(root, &blocks, size - 1..size),
                (cut(size - 1..size), d + 1)
            );
            assert_eq!(read_range(root, &blocks, 0..1), (cut(0..1), d + 1));
            // Inside one leaf.
            assert_eq!(read_range(root, &blocks, 17..20), (cut(17..20), d + 1));
            // Across two leaves that share their parent: one more block.
            assert_eq!(read_range(root, &blocks, 30..34), (cut(30..34), d + 2));
            // Across the root's two subtrees: two full paths.
            let (bytes, fed) = read_range(root, &blocks, 1020..size);
            assert_eq!(bytes, cut(1020..size));
            assert_eq!(fed, 2 * d + 1);
            // The whole file: every block.
            let (bytes, fed) = read_range(root, &blocks, 0..size);
            assert_eq!(bytes, data);
            assert_eq!(fed, blocks.len());
            // Empty and past the end: the root alone (it tells the size).
            assert_eq!(read_range(root, &blocks, 100..100), (Vec::new(), 1));
            assert_eq!(read_range(root, &blocks, size..size + 10), (Vec::new(), 1));
            #[allow(clippy::reversed_empty_ranges)]
            let reversed = 5..3;
            assert_eq!(read_range(root, &blocks, reversed), (Vec::new(), 1));
            // Past the end is cut to the file.
            assert_eq!(
                read_range(root, &blocks, size - 2..u64::MAX).0,
                cut(size - 2..size)
            );
        }
    }

    /// A DAG-PB file node over `links` declaring `blocksizes` and
    /// `filesize`.
    fn file_node(links: &[Cid], blocksizes: &[u64], filesize: u64) -> Block {
        let mut unixfs = vec![0x08, 0x02, 0x18];
        let varint = |out: &mut Vec<u8>, mut n: u64| {
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
        };
        varint(&mut unixfs, filesize);
        for size in blocksizes {
            unixfs.push(0x20);
            varint(&mut unixfs, *size);
        }
        let node = ipld_dagpb::PbNode {
            links: links
                .iter()
                .map(|cid| ipld_dagpb::PbLink {
                    cid: *cid,
                    name: Some(String::new()),
                    size: Some(0),
                })
                .collect(),
            data: Some(unixfs.into()),
        };
        Block::hash(Version::V1, DAG_PB, node.into_bytes()).unwrap()
    }

    /// A node that declares more bytes under a child than the child holds
    /// is refused when the child is read, by whole and ranged reads alike.
    #[test]
    fn a_child_must_hold_what_its_parent_declares() {
        let short = Block::hash(Version::V1, RAW, vec![7u8; 5]).unwrap();
        let full = Block::hash(Version::V1, RAW, vec![8u8; 10]).unwrap();
        let root = file_node(&[*short.cid(), *full.cid()], &[10, 10], 20);
        let blocks = [root.clone(), short.clone(), full];
        let store: HashMap<Cid, &Block> = blocks.iter().map(|b| (*b.cid(), b)).collect();
        for range in [None, Some(0..20), Some(2..3), Some(9..12)] {
            let mut reader = match range.clone() {
                Some(r) => FileReader::range(*root.cid(), r),
                None => FileReader::new(*root.cid()),
            };
            reader.feed(&root).unwrap();
            let next = reader.next_needed().unwrap();
            assert_eq!(next, *short.cid(), "{range:?}");
            assert!(
                matches!(reader.feed(store[&next]), Err(ReadError::Invalid { .. })),
                "{range:?}"
            );
            assert!(reader.needed().is_none());
        }
        // The bytes of the other child alone are read without the lie.
        let mut reader = FileReader::range(*root.cid(), 12..14);
        reader.feed(&root).unwrap();
        assert_eq!(reader.next_needed(), Some(*blocks[2].cid()));
        // A root whose blocksizes do not add up to its filesize.
        let root = file_node(&[*short.cid()], &[5], 6);
        let mut reader = FileReader::range(*root.cid(), 0..1);
        assert!(matches!(reader.feed(&root), Err(ReadError::Invalid { .. })));
    }

    #[test]
    fn profile_names_parse_and_print() {
        for p in Profile::ALL {
            assert_eq!(p.to_string().parse::<Profile>(), Ok(p));
        }
        assert_eq!("v0".parse(), Ok(Profile::V0_2015));
        assert_eq!("1".parse(), Ok(Profile::V1_2025));
        assert!("v2".parse::<Profile>().is_err());
        assert_eq!(Profile::default(), Profile::V1_2025);
        assert_eq!(Profile::V1_2025.chunk_size(), 1 << 20);
        assert_eq!(Profile::V0_2015.chunk_size(), 256 << 10);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_bytes_round_trip(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
            piece in 1usize..100,
            v0 in any::<bool>(),
        ) {
            let params = if v0 { TINY_V0 } else { TINY_V1 };
            let (imported, blocks) = import_all(params, &data, piece);
            prop_assert_eq!(imported.size, data.len() as u64);
            prop_assert_eq!(read_back(imported.root, &blocks), data.clone());
            // Chunking of the input must not change the root.
            let (again, _) = import_all(params, &data, data.len().max(1));
            prop_assert_eq!(again.root, imported.root);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any range of any file reads back as the same bytes of it.
        #[test]
        fn any_range_reads_back(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            a in 0u64..2100,
            b in 0u64..2100,
            v0 in any::<bool>(),
        ) {
            let params = if v0 { TINY_V0 } else { TINY_V1 };
            let (imported, blocks) = import_all(params, &data, 100);
            let size = data.len() as u64;
            let (from, to) = (a.min(b).min(size), a.max(b).min(size));
            let (bytes, fed) = read_range(imported.root, &blocks, a.min(b)..a.max(b));
            prop_assert_eq!(bytes, data[from as usize..to as usize].to_vec());
            prop_assert!(fed <= blocks.len());
        }

        /// Arbitrary bytes as a root block never panic the reader.
        #[test]
        fn any_root_block_is_refused_or_read(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            a in 0u64..300,
        ) {
            let block = Block::hash(Version::V1, DAG_PB, bytes).unwrap();
            let mut reader = FileReader::range(*block.cid(), a..a + 10);
            let _ = reader.feed(&block);
            let mut reader = FileReader::new(*block.cid());
            let _ = reader.feed(&block);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn megabytes_round_trip(len in 0usize..(3 << 20), seed in any::<u64>()) {
            let data = ipsr_testkit::pattern(seed, len);
            let params = Params { chunk_size: 4096, width: 16, version: Version::V1, raw_leaves: true };
            let (imported, blocks) = import_all(params, &data, 65536);
            prop_assert_eq!(read_back(imported.root, &blocks), data);
        }
    }
}
