//! A block: bytes together with the CID that names them, checked on
//! construction so that a [`Block`] value always holds matching bytes.

use bytes::Bytes;
use cid::Cid;
use multihash_codetable::{Code, MultihashDigest};

/// The largest block IPSR stores or exchanges (the Bitswap spec's limit).
pub const MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;

/// Multicodec of raw leaves.
pub const RAW: u64 = 0x55;
/// Multicodec of DAG-PB (UnixFS) nodes.
pub const DAG_PB: u64 = 0x70;
/// Multihash code of sha2-256, the only hash IPSR accepts.
pub const SHA2_256: u64 = 0x12;

/// Why bytes were refused as a block.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockError {
    /// The bytes do not hash to the CID's digest.
    #[error("block bytes do not match {0}")]
    Mismatch(Cid),
    /// The CID uses a hash other than sha2-256.
    #[error("unsupported hash 0x{code:x} in {cid}")]
    UnsupportedHash {
        /// The CID.
        cid: Cid,
        /// Its multihash code.
        code: u64,
    },
    /// The CID uses a codec other than raw or dag-pb.
    #[error("unsupported codec 0x{code:x} in {cid}")]
    UnsupportedCodec {
        /// The CID.
        cid: Cid,
        /// Its multicodec.
        code: u64,
    },
    /// The block is larger than [`MAX_BLOCK_SIZE`].
    #[error("block of {size} bytes is over the {MAX_BLOCK_SIZE}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
    },
}

/// Bytes and their CID, verified to match.
#[derive(Clone, PartialEq, Eq)]
pub struct Block {
    cid: Cid,
    data: Bytes,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("cid", &self.cid.to_string())
            .field("len", &self.data.len())
            .finish()
    }
}

impl Block {
    /// Checks that `data` hashes to `cid` and wraps them.
    pub fn new(cid: Cid, data: impl Into<Bytes>) -> Result<Self, BlockError> {
        let data = data.into();
        check_cid(&cid)?;
        if data.len() > MAX_BLOCK_SIZE {
            return Err(BlockError::TooLarge { size: data.len() });
        }
        if Code::Sha2_256.digest(&data).digest() != cid.hash().digest() {
            return Err(BlockError::Mismatch(cid));
        }
        Ok(Self { cid, data })
    }

    /// Hashes `data` and names it with a CID of `version` and `codec`
    /// (version 0 implies dag-pb).
    pub fn hash(
        version: cid::Version,
        codec: u64,
        data: impl Into<Bytes>,
    ) -> Result<Self, BlockError> {
        let data = data.into();
        if data.len() > MAX_BLOCK_SIZE {
            return Err(BlockError::TooLarge { size: data.len() });
        }
        let digest = Code::Sha2_256.digest(&data);
        let cid = match version {
            cid::Version::V0 => Cid::new_v0(digest).map_err(|_| BlockError::UnsupportedCodec {
                cid: Cid::new_v1(codec, digest),
                code: codec,
            })?,
            cid::Version::V1 => Cid::new_v1(codec, digest),
        };
        check_cid(&cid)?;
        Ok(Self { cid, data })
    }

    /// Wraps bytes that were verified earlier (read back from the local
    /// blockstore, which only ever holds verified blocks).
    pub(crate) fn trusted(cid: Cid, data: Bytes) -> Self {
        Self { cid, data }
    }

    /// Wraps a block the UnixFS importer has just produced. The importer
    /// (rust-unixfs's `FileAdder`) computed `cid` as the sha2-256 of exactly
    /// these bytes, so hashing them a second time would only halve import
    /// speed; the DAG parameters keep every block far below
    /// [`MAX_BLOCK_SIZE`] (1 MiB leaves, link nodes of at most 1024 links).
    /// Debug builds re-check both claims.
    pub(crate) fn from_importer(cid: Cid, data: Vec<u8>) -> Self {
        debug_assert!(data.len() <= MAX_BLOCK_SIZE);
        debug_assert!(check_cid(&cid).is_ok());
        debug_assert_eq!(Code::Sha2_256.digest(&data).digest(), cid.hash().digest());
        Self {
            cid,
            data: Bytes::from(data),
        }
    }

    /// The block's CID.
    pub fn cid(&self) -> &Cid {
        &self.cid
    }

    /// The block's bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The CID and bytes.
    pub fn into_parts(self) -> (Cid, Bytes) {
        (self.cid, self.data)
    }
}

/// Checks that IPSR handles blocks named by `cid`: sha2-256, raw or dag-pb.
pub fn check_cid(cid: &Cid) -> Result<(), BlockError> {
    if cid.hash().code() != SHA2_256 || cid.hash().size() != 32 {
        return Err(BlockError::UnsupportedHash {
            cid: *cid,
            code: cid.hash().code(),
        });
    }
    if cid.codec() != RAW && cid.codec() != DAG_PB {
        return Err(BlockError::UnsupportedCodec {
            cid: *cid,
            code: cid.codec(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_and_checking_agree() {
        let block = Block::hash(cid::Version::V1, RAW, &b"hello world\n"[..]).unwrap();
        assert_eq!(
            block.cid().to_string(),
            "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
        );
        assert_eq!(
            Block::new(*block.cid(), &b"hello world\n"[..]),
            Ok(block.clone())
        );
        assert_eq!(
            Block::new(*block.cid(), &b"hello world!"[..]),
            Err(BlockError::Mismatch(*block.cid()))
        );
    }

    #[test]
    fn refuses_oversized_and_foreign_cids() {
        let big = vec![0u8; MAX_BLOCK_SIZE + 1];
        assert!(matches!(
            Block::hash(cid::Version::V1, RAW, big),
            Err(BlockError::TooLarge { .. })
        ));
        let dag_cbor = Cid::new_v1(0x71, Code::Sha2_256.digest(b"x"));
        assert!(matches!(
            Block::new(dag_cbor, &b"x"[..]),
            Err(BlockError::UnsupportedCodec { .. })
        ));
        let sha512 = Cid::new_v1(
            RAW,
            multihash::Multihash::<64>::wrap(0x13, &[0u8; 64]).unwrap(),
        );
        assert!(matches!(
            Block::new(sha512, &b"x"[..]),
            Err(BlockError::UnsupportedHash { .. })
        ));
    }
}
