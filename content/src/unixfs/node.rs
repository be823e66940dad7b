//! One block of a UnixFS file, decoded: a leaf's bytes, or an inner
//! node's children together with the file bytes each child's subtree
//! holds (its `blocksizes`), which is what lets a reader skip subtrees.
//!
//! A block is a raw leaf (codec 0x55: the bytes are the file's) or a
//! DAG-PB node whose `Data` is a UnixFS `Data` message:
//!
//! ```text
//! message Data {
//!   required DataType Type = 1;      // Raw = 0, Directory, File = 2, ...
//!   optional bytes Data = 2;         // a leaf's file bytes
//!   optional uint64 filesize = 3;    // bytes of the whole subtree
//!   repeated uint64 blocksizes = 4;  // bytes under each link, in order
//!   ...                              // hashType, fanout, mode, mtime
//! }
//! ```

use bytes::Bytes;
use cid::Cid;
use quick_protobuf::BytesReader;

use crate::block::{DAG_PB, RAW};

/// `DataType` values that are file content.
const TYPE_RAW: i32 = 0;
const TYPE_FILE: i32 = 2;

/// A decoded block of a UnixFS file.
#[derive(Debug)]
pub(super) enum Node<'a> {
    /// File bytes.
    Leaf(&'a [u8]),
    /// Children in file order, each with the bytes its subtree holds.
    Inner(Vec<(Cid, u64)>),
}

impl Node<'_> {
    /// The file bytes under this node, as it declares them.
    pub(super) fn size(&self) -> u64 {
        match self {
            Node::Leaf(bytes) => bytes.len() as u64,
            Node::Inner(children) => children
                .iter()
                .fold(0u64, |sum, (_, size)| sum.saturating_add(*size)),
        }
    }
}

/// Why a block is not part of a UnixFS file.
#[derive(Debug)]
pub(super) enum DecodeError {
    /// A valid node of another kind (a directory, a symlink, ...).
    NotAFile,
    /// Not a valid DAG-PB/UnixFS node.
    Invalid(String),
}

/// Decodes `data`, the bytes of the block named `cid`. The bytes a leaf
/// returns are a slice of `data`.
pub(super) fn decode<'a>(cid: &Cid, data: &'a Bytes) -> Result<Node<'a>, DecodeError> {
    match cid.codec() {
        RAW => return Ok(Node::Leaf(data)),
        DAG_PB => {}
        other => {
            return Err(DecodeError::Invalid(format!(
                "codec 0x{other:x} is neither raw nor dag-pb"
            )));
        }
    }
    let node = ipld_dagpb::PbNode::from_bytes(data.clone())
        .map_err(|e| DecodeError::Invalid(e.to_string()))?;
    let Some(pb_data) = node.data.as_ref() else {
        return Err(DecodeError::Invalid("no unixfs data".to_owned()));
    };
    // `pb_data` shares `data`'s memory; bytes found in it are returned
    // as a slice of `data`, so they live as long as the block.
    let fields = Fields::decode(pb_data).map_err(DecodeError::Invalid)?;
    if fields.kind != TYPE_FILE && fields.kind != TYPE_RAW {
        return Err(DecodeError::NotAFile);
    }
    if node.links.len() != fields.blocksizes.len() {
        return Err(DecodeError::Invalid(format!(
            "{} links but {} blocksizes",
            node.links.len(),
            fields.blocksizes.len()
        )));
    }
    if node.links.is_empty() {
        let bytes = fields.data.unwrap_or_default();
        let Some(range) = super::subslice_range(data, bytes) else {
            return Err(DecodeError::Invalid("data outside the block".to_owned()));
        };
        if let Some(declared) = fields.filesize
            && declared != bytes.len() as u64
        {
            return Err(DecodeError::Invalid(format!(
                "a leaf of {} bytes declares {declared}",
                bytes.len()
            )));
        }
        return Ok(Node::Leaf(&data[range]));
    }
    if fields.data.is_some_and(|d| !d.is_empty()) {
        return Err(DecodeError::Invalid("file bytes beside links".to_owned()));
    }
    let children: Vec<(Cid, u64)> = node
        .links
        .iter()
        .map(|link| link.cid)
        .zip(fields.blocksizes)
        .collect();
    let inner = Node::Inner(children);
    match fields.filesize {
        Some(declared) if declared == inner.size() => Ok(inner),
        Some(declared) => Err(DecodeError::Invalid(format!(
            "declares {declared} bytes but its blocksizes add up to {}",
            inner.size()
        ))),
        None => Err(DecodeError::Invalid(
            "a node with links declares no filesize".to_owned(),
        )),
    }
}

/// The fields of a UnixFS `Data` message a file reader needs.
#[derive(Debug, Default)]
struct Fields<'a> {
    kind: i32,
    data: Option<&'a [u8]>,
    filesize: Option<u64>,
    blocksizes: Vec<u64>,
}

impl<'a> Fields<'a> {
    fn decode(bytes: &'a [u8]) -> Result<Self, String> {
        let mut fields = Fields::default();
        let mut reader = BytesReader::from_bytes(bytes);
        let invalid = |e: quick_protobuf::Error| format!("unixfs data: {e}");
        while !reader.is_eof() {
            match reader.next_tag(bytes).map_err(invalid)? {
                8 => fields.kind = reader.read_int32(bytes).map_err(invalid)?,
                18 => fields.data = Some(reader.read_bytes(bytes).map_err(invalid)?),
                24 => fields.filesize = Some(reader.read_uint64(bytes).map_err(invalid)?),
                32 => fields
                    .blocksizes
                    .push(reader.read_uint64(bytes).map_err(invalid)?),
                34 => fields.blocksizes.extend(
                    reader
                        .read_packed(bytes, |r, b| r.read_uint64(b))
                        .map_err(invalid)?,
                ),
                tag => reader.read_unknown(bytes, tag).map_err(invalid)?,
            }
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Block;

    /// A DAG-PB node with `unixfs` as its Data and no links.
    fn pb(unixfs: &[u8]) -> Block {
        let mut node = vec![0x0a, unixfs.len() as u8];
        node.extend_from_slice(unixfs);
        Block::hash(cid::Version::V1, DAG_PB, node).unwrap()
    }

    fn decoded(block: &Block) -> Result<Node<'_>, DecodeError> {
        decode(block.cid(), block.data())
    }

    #[test]
    fn a_leaf_with_its_bytes() {
        // Type File, Data "abc", filesize 3.
        let block = pb(&[0x08, 0x02, 0x12, 0x03, b'a', b'b', b'c', 0x18, 0x03]);
        assert!(matches!(decoded(&block), Ok(Node::Leaf(b"abc"))));
        // A filesize that is not the bytes'.
        let block = pb(&[0x08, 0x02, 0x12, 0x03, b'a', b'b', b'c', 0x18, 0x04]);
        assert!(matches!(decoded(&block), Err(DecodeError::Invalid(_))));
    }

    #[test]
    fn other_kinds_are_not_files() {
        for kind in [1u8, 3, 4, 5] {
            let block = pb(&[0x08, kind]);
            assert!(matches!(decoded(&block), Err(DecodeError::NotAFile)));
        }
    }

    #[test]
    fn blocksizes_must_match_links_and_filesize() {
        // Type File, filesize 5, blocksizes [5], but no link.
        let block = pb(&[0x08, 0x02, 0x18, 0x05, 0x20, 0x05]);
        assert!(matches!(decoded(&block), Err(DecodeError::Invalid(_))));
    }

    #[test]
    fn garbage_is_invalid() {
        let block = pb(&[0x08]);
        assert!(matches!(decoded(&block), Err(DecodeError::Invalid(_))));
        let block = Block::hash(cid::Version::V1, DAG_PB, vec![0xff, 0xff]).unwrap();
        assert!(matches!(decoded(&block), Err(DecodeError::Invalid(_))));
    }
}
