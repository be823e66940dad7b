//! Author identities: ed25519 keys and their canonical text form.

use std::fmt;
use std::str::FromStr;

use cid::Cid;
use ed25519_dalek::{SigningKey, VerifyingKey};
use multihash::Multihash;

/// Multicodec `libp2p-key`.
const LIBP2P_KEY_CODEC: u64 = 0x72;
/// Multihash `identity`.
const IDENTITY_HASH: u64 = 0x00;
/// The libp2p protobuf encoding of an ed25519 public key is these four bytes
/// (`Type = Ed25519`, `Data` of length 32) followed by the raw key.
const ED25519_PROTOBUF_PREFIX: [u8; 4] = [0x08, 0x01, 0x12, 0x20];

/// An author: an ed25519 public key.
///
/// Its text form is the IPNS/libp2p convention: a CIDv1 with codec
/// `libp2p-key`, an identity multihash of the protobuf-encoded public key,
/// in lower-case base36 (`k51qzi5uqu5d...`). It is the same string as the
/// author's libp2p peer id in CIDv1 form, or an IPNS name of the key.
/// Parsing accepts only that canonical form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthorId([u8; 32]);

/// Why a string or byte string is not an [`AuthorId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseAuthorIdError {
    /// Not a CID at all.
    #[error("not a valid author id (expected a base36 name starting with k51)")]
    NotCid,
    /// A CID, but not a CIDv1 `libp2p-key` with an identity multihash of an ed25519 key.
    #[error("not an ed25519 libp2p-key CID")]
    WrongKind,
    /// A valid id in another encoding (upper case, another base, CIDv0...).
    #[error("not the canonical form of the author id; write it as {canonical}")]
    NotCanonical {
        /// The canonical text of the same key.
        canonical: String,
    },
    /// The 32 bytes are not a usable ed25519 public key.
    #[error("not a valid ed25519 public key")]
    BadKey,
}

impl AuthorId {
    /// The author id of a raw 32-byte ed25519 public key. Rejects bytes that
    /// are not a point on the curve, and weak (small-order) keys.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ParseAuthorIdError> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| ParseAuthorIdError::BadKey)?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| ParseAuthorIdError::BadKey)?;
        if key.is_weak() {
            return Err(ParseAuthorIdError::BadKey);
        }
        Ok(Self(raw))
    }

    /// The raw 32-byte public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The libp2p protobuf encoding of the public key (36 bytes).
    pub fn to_protobuf(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        out[..4].copy_from_slice(&ED25519_PROTOBUF_PREFIX);
        out[4..].copy_from_slice(&self.0);
        out
    }

    /// The author id as a CID (`libp2p-key`, identity multihash).
    pub fn to_cid(&self) -> Cid {
        let mh = Multihash::<64>::wrap(IDENTITY_HASH, &self.to_protobuf())
            .expect("36 bytes fit in a 64-byte multihash");
        Cid::new_v1(LIBP2P_KEY_CODEC, mh)
    }
}

impl fmt::Display for AuthorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self
            .to_cid()
            .to_string_of_base(cid::multibase::Base::Base36Lower)
            .map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl fmt::Debug for AuthorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorId({self})")
    }
}

impl FromStr for AuthorId {
    type Err = ParseAuthorIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cid = Cid::try_from(s).map_err(|_| ParseAuthorIdError::NotCid)?;
        let mh = cid.hash();
        if cid.version() != cid::Version::V1
            || cid.codec() != LIBP2P_KEY_CODEC
            || mh.code() != IDENTITY_HASH
        {
            return Err(ParseAuthorIdError::WrongKind);
        }
        let digest = mh.digest();
        let raw = digest
            .strip_prefix(&ED25519_PROTOBUF_PREFIX)
            .filter(|raw| raw.len() == 32)
            .ok_or(ParseAuthorIdError::WrongKind)?;
        let id = Self::from_bytes(raw)?;
        let canonical = id.to_string();
        if canonical != s {
            return Err(ParseAuthorIdError::NotCanonical { canonical });
        }
        Ok(id)
    }
}

impl serde::Serialize for AuthorId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AuthorId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An author's secret signing key.
pub struct AuthorKey(SigningKey);

impl AuthorKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        Ok(Self::from_seed(&seed))
    }

    /// The key for a 32-byte ed25519 seed (the RFC 8032 secret key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, to store the key.
    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The author id of this key.
    pub fn author_id(&self) -> AuthorId {
        AuthorId(self.0.verifying_key().to_bytes())
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.0
    }
}

impl From<SigningKey> for AuthorKey {
    fn from(key: SigningKey) -> Self {
        Self(key)
    }
}

impl fmt::Debug for AuthorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AuthorKey").field(&self.author_id()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_is_ipns_style() {
        let key = AuthorKey::from_seed(&[1; 32]);
        let id = key.author_id();
        let text = id.to_string();
        assert!(text.starts_with("k51"), "{text}");
        assert_eq!(text.parse::<AuthorId>(), Ok(id));
    }

    #[test]
    fn rejects_non_canonical_forms() {
        let id = AuthorKey::from_seed(&[2; 32]).author_id();
        let text = id.to_string();
        let upper = format!("K{}", text[1..].to_uppercase());
        assert!(matches!(
            upper.parse::<AuthorId>(),
            Err(ParseAuthorIdError::NotCanonical { .. })
        ));
        let base32 = id
            .to_cid()
            .to_string_of_base(cid::multibase::Base::Base32Lower)
            .unwrap();
        assert!(matches!(
            base32.parse::<AuthorId>(),
            Err(ParseAuthorIdError::NotCanonical { .. })
        ));
        for bad in ["", "k51", "hello", " k51qzi5uqu5d", "bafkqaaa"] {
            assert!(bad.parse::<AuthorId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_bad_keys() {
        assert_eq!(
            AuthorId::from_bytes(&[0; 31]),
            Err(ParseAuthorIdError::BadKey)
        );
        // The identity point is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            AuthorId::from_bytes(&identity),
            Err(ParseAuthorIdError::BadKey)
        );
    }
}
