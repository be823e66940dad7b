//! Content identifiers of package artifacts.

use std::fmt;
use std::str::FromStr;

use cid::Cid;

/// Multicodec `raw`.
pub(crate) const RAW: u64 = 0x55;
/// Multicodec `dag-pb`.
pub(crate) const DAG_PB: u64 = 0x70;
/// Multihash `sha2-256`.
pub(crate) const SHA2_256: u64 = 0x12;

/// The CID of an artifact, icon or screenshot: CIDv0 or CIDv1, codec `raw`
/// or `dag-pb`, sha2-256 multihash. These are what IPFS `add` produces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(Cid);

/// Why a CID is not a valid [`ContentId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidContentId {
    /// Not a CID.
    #[error("not a CID")]
    NotCid,
    /// A codec other than raw (0x55) or dag-pb (0x70).
    #[error("unsupported CID codec 0x{0:x} (expected raw or dag-pb)")]
    Codec(u64),
    /// A hash other than a 32-byte sha2-256.
    #[error("unsupported multihash 0x{0:x} (expected sha2-256)")]
    Hash(u64),
    /// Binary form with trailing bytes or a non-canonical encoding.
    #[error("CID bytes are not in canonical form")]
    NotCanonical,
}

impl ContentId {
    /// Checks a CID against the rules above.
    pub fn new(cid: Cid) -> Result<Self, InvalidContentId> {
        if cid.codec() != RAW && cid.codec() != DAG_PB {
            return Err(InvalidContentId::Codec(cid.codec()));
        }
        let mh = cid.hash();
        if mh.code() != SHA2_256 || mh.size() != 32 {
            return Err(InvalidContentId::Hash(mh.code()));
        }
        Ok(Self(cid))
    }

    /// Parses the binary form; the bytes must be exactly one canonical CID.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidContentId> {
        let cid = Cid::try_from(bytes).map_err(|_| InvalidContentId::NotCid)?;
        if cid.to_bytes() != bytes {
            return Err(InvalidContentId::NotCanonical);
        }
        Self::new(cid)
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// The CID.
    pub fn cid(&self) -> &Cid {
        &self.0
    }
}

impl FromStr for ContentId {
    type Err = InvalidContentId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(Cid::try_from(s).map_err(|_| InvalidContentId::NotCid)?)
    }
}

impl TryFrom<Cid> for ContentId {
    type Error = InvalidContentId;

    fn try_from(cid: Cid) -> Result<Self, Self::Error> {
        Self::new(cid)
    }
}

impl From<ContentId> for Cid {
    fn from(c: ContentId) -> Self {
        c.0
    }
}

/// CIDv0 as `Qm...` (base58btc), CIDv1 as `b...` (base32), as IPFS writes them.
impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({})", self.0)
    }
}

impl serde::Serialize for ContentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ContentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ipfs_add_cids() {
        // CIDv0 (dag-pb) and CIDv1 raw, both sha2-256.
        for ok in [
            "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        ] {
            let c: ContentId = ok.parse().unwrap();
            assert_eq!(c.to_string(), ok);
            assert_eq!(ContentId::from_bytes(&c.to_bytes()), Ok(c));
        }
    }

    #[test]
    fn rejects_other_codecs_hashes_and_junk() {
        // dag-cbor codec.
        assert!(matches!(
            "bafyreib4pff766vhpbxbhjbqqnsh5emeznvujayjj4z2iu533cprgbz23m".parse::<ContentId>(),
            Err(InvalidContentId::Codec(0x71))
        ));
        // Identity multihash ("bafkqaaa" is the empty identity CID).
        assert!(matches!(
            "bafkqaaa".parse::<ContentId>(),
            Err(InvalidContentId::Hash(0))
        ));
        assert_eq!("nope".parse::<ContentId>(), Err(InvalidContentId::NotCid));
        let mut bytes = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
            .parse::<ContentId>()
            .unwrap()
            .to_bytes();
        bytes.push(0);
        assert!(ContentId::from_bytes(&bytes).is_err());
    }
}
