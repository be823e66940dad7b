//! Author identities: ed25519 keys and their canonical text form.
//!
//! * this module: [`AuthorId`], [`AuthorKey`], the per-thread cache of
//!   checked keys and [`KeyCache`];
//! * `base36`: the canonical text read and written without the general
//!   multibase code (every other form goes through it).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use cid::Cid;
use ed25519_dalek::{SigningKey, VerifyingKey};
use multihash::Multihash;

mod base36;

/// Multicodec `libp2p-key`.
const LIBP2P_KEY_CODEC: u64 = 0x72;
/// Multihash `identity`.
const IDENTITY_HASH: u64 = 0x00;
/// The libp2p protobuf encoding of an ed25519 public key is these four bytes
/// (`Type = Ed25519`, `Data` of length 32) followed by the raw key.
const ED25519_PROTOBUF_PREFIX: [u8; 4] = [0x08, 0x01, 0x12, 0x20];
/// The bytes of an author id's CID before the raw key: CIDv1, `libp2p-key`,
/// an identity multihash of 36 bytes, [`ED25519_PROTOBUF_PREFIX`].
const CID_PREFIX: [u8; 8] = [0x01, 0x72, 0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

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
        Self::with_key(bytes).map(|(id, _)| id)
    }

    /// [`from_bytes`](Self::from_bytes), also returning the decompressed key
    /// it checked (decompressing is the costly part).
    ///
    /// Keys that passed are remembered per thread ([`checked`]): reading a
    /// package decodes the same few authors' ids over and over, and each
    /// decompression costs microseconds.
    pub(crate) fn with_key(bytes: &[u8]) -> Result<(Self, VerifyingKey), ParseAuthorIdError> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| ParseAuthorIdError::BadKey)?;
        if let Some(key) = checked::get(&raw) {
            return Ok((Self(raw), key));
        }
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| ParseAuthorIdError::BadKey)?;
        if key.is_weak() {
            return Err(ParseAuthorIdError::BadKey);
        }
        checked::put(raw, key);
        Ok((Self(raw), key))
    }

    /// The id of a key already checked by [`from_bytes`](Self::from_bytes).
    pub(crate) fn from_checked(raw: [u8; 32]) -> Self {
        Self(raw)
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

/// The keys a thread has lately checked: 32 bytes that decompressed to a
/// point that is not weak, with that point. A small direct-mapped table per
/// thread, so no lock is taken; a key is found only under the very bytes
/// that passed the check, so nothing is accepted that the full check would
/// refuse (bytes that collide in a slot only push each other out).
mod checked {
    use std::cell::RefCell;

    use ed25519_dalek::VerifyingKey;

    /// Slots per thread (about 14 KiB).
    const SLOTS: usize = 64;

    type Slot = Option<([u8; 32], VerifyingKey)>;

    thread_local! {
        static CHECKED: RefCell<[Slot; SLOTS]> = const { RefCell::new([None; SLOTS]) };
    }

    fn slot(raw: &[u8; 32]) -> usize {
        (usize::from(raw[0]) | usize::from(raw[1]) << 8) % SLOTS
    }

    /// The point of `raw`, if this thread checked these bytes lately.
    pub(super) fn get(raw: &[u8; 32]) -> Option<VerifyingKey> {
        CHECKED.with_borrow(|slots| match &slots[slot(raw)] {
            Some((held, key)) if held == raw => Some(*key),
            _ => None,
        })
    }

    /// Remembers that `raw` passed the check, as `key`.
    pub(super) fn put(raw: [u8; 32], key: VerifyingKey) {
        CHECKED.with_borrow_mut(|slots| slots[slot(&raw)] = Some((raw, key)));
    }
}

impl fmt::Display for AuthorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cid = [0u8; base36::CID_LEN];
        cid[..CID_PREFIX.len()].copy_from_slice(&CID_PREFIX);
        cid[CID_PREFIX.len()..].copy_from_slice(&self.0);
        let mut buf = base36::buffer();
        // `k`: the multibase prefix of lower-case base36.
        f.write_str("k")?;
        f.write_str(base36::encode(&cid, &mut buf))
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
        // The canonical form, read directly: `k`, then the base36 digits
        // (no leading zero) of the CID's 40 bytes. A number has one such
        // spelling, so what is read here is canonical.
        if let Some(cid) = s
            .strip_prefix('k')
            .and_then(|digits| base36::decode(digits.as_bytes()))
            .filter(|cid| cid.starts_with(&CID_PREFIX))
        {
            return Self::from_bytes(&cid[CID_PREFIX.len()..]);
        }
        parse_any_form(s)
    }
}

/// [`AuthorId::from_str`] by the general CID code: any multibase, any CID,
/// and the canonical text compared at the end.
fn parse_any_form(s: &str) -> Result<AuthorId, ParseAuthorIdError> {
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
    let id = AuthorId::from_bytes(raw)?;
    let canonical = id.to_string();
    if canonical != s {
        return Err(ParseAuthorIdError::NotCanonical { canonical });
    }
    Ok(id)
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

/// Authors' public keys, checked and decompressed once, for verifying many
/// records of the same authors with
/// [`SignedRecord::verify_cached`](crate::SignedRecord::verify_cached).
///
/// Checking an author's key means decompressing an ed25519 point (a square
/// root in the field), a large share of the cost of verifying one record.
/// A program verifying a stream of records (an indexer, a node catching up)
/// meets the same authors again and again; with a cache it does that work
/// once per author. The cache holds only keys that are valid author ids, so
/// verifying with it gives exactly the result of verifying without it.
///
/// It holds at most its capacity of keys (about 200 bytes each) and is
/// emptied when one more would not fit. It is plain data with no locking:
/// give each verifying thread its own.
///
/// ```
/// use ipsr_proto::{AuthorKey, ContentId, KeyCache, Release, SignedRecord};
///
/// let key = AuthorKey::from_seed(&[7; 32]);
/// let cid: ContentId = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku".parse()?;
/// let mut keys = KeyCache::default();
/// for v in ["1.0.0", "1.1.0"] {
///     let bytes = Release::new(key.author_id(), "com.example.app".parse()?, v.parse()?, 1, cid)
///         .sign(&key)?
///         .to_bytes();
///     SignedRecord::from_bytes(&bytes)?.verify_cached(&mut keys)?;
/// }
/// assert_eq!(keys.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct KeyCache {
    keys: HashMap<AuthorId, VerifyingKey>,
    capacity: usize,
}

impl KeyCache {
    /// The capacity of [`KeyCache::default`]: 4096 keys (under 1 MiB).
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// An empty cache holding at most `capacity` keys (0: none, every
    /// verification decompresses the key).
    pub fn new(capacity: usize) -> Self {
        Self {
            keys: HashMap::new(),
            capacity,
        }
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The most keys it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.keys.clear();
    }

    /// [`AuthorId::from_bytes`] with the decompressed key: from the cache
    /// when held, else checked and added.
    pub(crate) fn author(
        &mut self,
        bytes: &[u8],
    ) -> Result<(AuthorId, VerifyingKey), ParseAuthorIdError> {
        if let Ok(raw) = <[u8; 32]>::try_from(bytes)
            && let Some(key) = self.keys.get(&AuthorId(raw))
        {
            return Ok((AuthorId(raw), *key));
        }
        let (id, key) = AuthorId::with_key(bytes)?;
        if self.capacity > 0 {
            if self.keys.len() >= self.capacity {
                self.keys.clear();
            }
            self.keys.insert(id, key);
        }
        Ok((id, key))
    }
}

impl Default for KeyCache {
    /// An empty cache of [`KeyCache::DEFAULT_CAPACITY`].
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("len", &self.keys.len())
            .field("capacity", &self.capacity)
            .finish()
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

    /// The text written and read directly is the multibase code's, and
    /// reading it directly gives what the general code gives, for ids and
    /// for every small change to them (a leading zero, a digit changed,
    /// dropped or added, upper case, too large a value).
    #[test]
    fn base36_directly_agrees_with_the_general_code() {
        for i in 0..1000u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            let id = AuthorKey::from_seed(&seed).author_id();
            let text = id.to_string();
            let general = id
                .to_cid()
                .to_string_of_base(cid::multibase::Base::Base36Lower)
                .unwrap();
            assert_eq!(text, general);
            assert_eq!(text.parse::<AuthorId>(), Ok(id));
            let n = text.len();
            let digit = |c: u8| if c == b'z' { 'a' } else { char::from(c + 1) };
            let mut changed = vec![
                format!("k0{}", &text[1..]),
                format!("{}{}", &text[..n - 1], digit(text.as_bytes()[n - 1])),
                format!("{}{}{}", &text[..9], digit(text.as_bytes()[9]), &text[10..]),
                text[..n - 1].to_owned(),
                format!("{text}0"),
                format!("{text}z"),
                format!("{}{}", &text[..n - 1], text[n - 1..].to_uppercase()),
                format!("k{}", "z".repeat(n - 1)),
                format!("k{}", "z".repeat(70)),
            ];
            changed.retain(|c| c != &text);
            for c in changed {
                assert_eq!(c.parse::<AuthorId>(), parse_any_form(&c), "{c}");
            }
        }
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
    fn key_cache_checks_like_from_bytes_and_stays_bounded() {
        let mut cache = KeyCache::new(2);
        let ids: Vec<AuthorId> = (1..=3u8)
            .map(|s| AuthorKey::from_seed(&[s; 32]).author_id())
            .collect();
        for id in &ids[..2] {
            assert_eq!(cache.author(id.as_bytes()).unwrap().0, *id);
            // Held now: the same answer again.
            assert_eq!(cache.author(id.as_bytes()).unwrap().0, *id);
        }
        assert_eq!(cache.len(), 2);
        // A third key does not fit: the cache is emptied first.
        assert_eq!(cache.author(ids[2].as_bytes()).unwrap().0, ids[2]);
        assert_eq!(cache.len(), 1);
        // Bad keys are refused as by from_bytes, and never held.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for bad in [&[0u8; 31][..], &identity[..]] {
            assert_eq!(
                cache.author(bad).map(|(id, _)| id),
                AuthorId::from_bytes(bad)
            );
        }
        assert_eq!(cache.len(), 1);
        let mut none = KeyCache::new(0);
        assert_eq!(none.author(ids[0].as_bytes()).unwrap().0, ids[0]);
        assert!(none.is_empty());
    }

    #[test]
    fn checked_keys_are_remembered_only_under_their_own_bytes() {
        let good = *AuthorKey::from_seed(&[9; 32]).author_id().as_bytes();
        assert!(AuthorId::from_bytes(&good).is_ok());
        assert!(checked::get(&good).is_some(), "remembered");
        // Bytes in the same slot (same first two bytes) that are no point.
        let mut bad = good;
        bad[5] = (0..=255u8)
            .find(|&b| {
                bad[5] = b;
                VerifyingKey::from_bytes(&bad).is_err()
            })
            .unwrap();
        for _ in 0..2 {
            assert_eq!(AuthorId::from_bytes(&bad), Err(ParseAuthorIdError::BadKey));
        }
        assert!(checked::get(&bad).is_none(), "a refused key is not kept");
        assert_eq!(AuthorId::from_bytes(&good).unwrap().as_bytes(), &good);
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
