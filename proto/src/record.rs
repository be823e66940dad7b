//! Signed records: the envelope, signing bytes, verification and identities.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::envelope::{Approval, Envelope, KeyCheck};
use crate::identity::{Identity, SignedIdentity};
use crate::limits::{MAX_CLOCK_SKEW_MS, MAX_RECORD_BYTES, MAX_SIGNATURES};
use crate::release::AuthorCheck;
use crate::{
    AuthorId, AuthorKey, InvalidRecord, KeyCache, PackageName, Release, VerifyError, Version, Yank,
    pb,
};

/// A record: what an author signs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// Records are built once and then held behind `SignedRecord`; boxing the
// release would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    /// A release of a package version.
    Release(Release),
    /// A retraction of a package version.
    Yank(Yank),
}

/// One release: author + package + version. Records are ordered against
/// each other only within one release key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReleaseKey {
    /// The author.
    pub author: AuthorId,
    /// The package.
    pub package: PackageName,
    /// The version.
    pub version: Version,
}

/// One package: author + package.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageKey {
    /// The author.
    pub author: AuthorId,
    /// The package.
    pub package: PackageName,
}

impl fmt::Display for ReleaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.author, self.package, self.version)
    }
}

impl PackageKey {
    /// The Kademlia key under which the package's newest release record is
    /// stored: `"/ipsr/package/1/" ‖ author (32 bytes) ‖ package`.
    pub fn dht_key(&self) -> Vec<u8> {
        let mut key = b"/ipsr/package/1/".to_vec();
        key.extend_from_slice(self.author.as_bytes());
        key.extend_from_slice(self.package.as_str().as_bytes());
        key
    }
}

impl fmt::Display for PackageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.author, self.package)
    }
}

impl ReleaseKey {
    /// The Kademlia key under which the release's current record is stored:
    /// `"/ipsr/release/1/" ‖ author (32 bytes) ‖ package ‖ 0x00 ‖ version`.
    pub fn dht_key(&self) -> Vec<u8> {
        let mut key = b"/ipsr/release/1/".to_vec();
        key.extend_from_slice(self.author.as_bytes());
        key.extend_from_slice(self.package.as_str().as_bytes());
        key.push(0);
        key.extend_from_slice(self.version.to_string().as_bytes());
        key
    }

    /// The package this release belongs to.
    pub fn package_key(&self) -> PackageKey {
        PackageKey {
            author: self.author,
            package: self.package.clone(),
        }
    }
}

impl Record {
    /// The author.
    pub fn author(&self) -> &AuthorId {
        match self {
            Self::Release(r) => &r.author,
            Self::Yank(y) => &y.author,
        }
    }

    /// The package.
    pub fn package(&self) -> &PackageName {
        match self {
            Self::Release(r) => &r.package,
            Self::Yank(y) => &y.package,
        }
    }

    /// The version.
    pub fn version(&self) -> &Version {
        match self {
            Self::Release(r) => &r.version,
            Self::Yank(y) => &y.version,
        }
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Release(r) => r.seq,
            Self::Yank(y) => y.seq,
        }
    }

    /// When it was signed (unix ms).
    pub fn created_at(&self) -> u64 {
        match self {
            Self::Release(r) => r.created_at,
            Self::Yank(y) => y.created_at,
        }
    }

    /// The release it is about.
    pub fn release_key(&self) -> ReleaseKey {
        ReleaseKey {
            author: *self.author(),
            package: self.package().clone(),
            version: self.version().clone(),
        }
    }

    /// The package it is about.
    pub fn package_key(&self) -> PackageKey {
        PackageKey {
            author: *self.author(),
            package: self.package().clone(),
        }
    }

    /// The release, if this is one.
    pub fn as_release(&self) -> Option<&Release> {
        match self {
            Self::Release(r) => Some(r),
            Self::Yank(_) => None,
        }
    }

    /// Checks every field against the limits of `docs/records.md`.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        match self {
            Self::Release(r) => r.validate(),
            Self::Yank(y) => y.validate(),
        }
    }

    /// The payload encoding of the record.
    pub fn encode(&self) -> Vec<u8> {
        let kind = match self {
            Self::Release(r) => pb::record::Kind::Release(r.into()),
            Self::Yank(y) => pb::record::Kind::Yank(y.into()),
        };
        pb::Record { kind: Some(kind) }.encode_to_vec()
    }

    /// Decodes and validates a payload.
    pub fn decode(payload: &[u8]) -> Result<Self, VerifyError> {
        Self::decode_with(payload, &mut AuthorId::from_bytes)
    }

    /// [`decode`](Self::decode), checking the author's key with `author`.
    /// The payload must be the canonical encoding of the record it holds:
    /// exactly what [`encode`](Self::encode) writes for it, so one record
    /// has one payload (`docs/records.md`, section 1).
    fn decode_with(payload: &[u8], author: &mut AuthorCheck<'_>) -> Result<Self, VerifyError> {
        match Payload::decode_with(payload, author)? {
            Payload::Record(record) => Ok(record),
            Payload::Identity(_) => Err(VerifyError::IdentityDocument),
        }
    }

    /// Validates the record and signs it with `key`: the author's key (the
    /// single form of the envelope) or a key the author's identity document
    /// names (`docs/records.md`, section 8). Fails if a field is invalid.
    pub fn sign(self, key: &AuthorKey) -> Result<SignedRecord<Verified>, InvalidRecord> {
        self.sign_with(&[key])
    }

    /// [`sign`](Self::sign) with several keys at once (a record an
    /// identity's threshold asks more than one signature for).
    pub fn sign_with(self, keys: &[&AuthorKey]) -> Result<SignedRecord<Verified>, InvalidRecord> {
        self.validate()?;
        let payload = Bytes::from(self.encode());
        let approvals: Vec<_> = keys.iter().map(|k| Approval::sign(k, &payload)).collect();
        let envelope = Envelope::new(payload, self.author().as_bytes(), approvals);
        check_size(&envelope)?;
        Ok(SignedRecord::verified(envelope, self))
    }
}

/// What a payload holds: a package record or an identity document.
#[allow(clippy::large_enum_variant)] // decoded and taken apart at once
pub(crate) enum Payload {
    Record(Record),
    Identity(Identity),
}

impl Payload {
    /// Decodes and validates a payload, checking its author's key with
    /// `author`. The payload must be the canonical encoding of what it
    /// holds: exactly what the type's `encode` writes for it, so one
    /// record has one payload (`docs/records.md`, section 1).
    pub(crate) fn decode_with(
        payload: &[u8],
        author: &mut AuthorCheck<'_>,
    ) -> Result<Self, VerifyError> {
        let pb = pb::Record::decode(payload).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        let (decoded, encoded) = match pb.kind.ok_or(VerifyError::UnknownKind)? {
            pb::record::Kind::Release(r) => {
                let r = Record::Release(Release::from_pb(r, author)?);
                let bytes = r.encode();
                (Self::Record(r), bytes)
            }
            pb::record::Kind::Yank(y) => {
                let y = Record::Yank(Yank::from_pb(y, author)?);
                let bytes = y.encode();
                (Self::Record(y), bytes)
            }
            pb::record::Kind::Identity(i) => {
                let i = Identity::from_pb(i, author)?;
                let bytes = i.encode();
                (Self::Identity(i), bytes)
            }
        };
        // Every nested message (the kind, the release or yank, its
        // metadata) is re-encoded here, so this one comparison covers all
        // of them: field order, repeats, unknown fields, written-out
        // defaults and long varints all change the bytes.
        if encoded != payload {
            return Err(VerifyError::NonCanonical("Record"));
        }
        Ok(decoded)
    }

    fn author(&self) -> &AuthorId {
        match self {
            Self::Record(r) => r.author(),
            Self::Identity(i) => &i.author,
        }
    }

    fn created_at(&self) -> u64 {
        match self {
            Self::Record(r) => r.created_at(),
            Self::Identity(i) => i.created_at,
        }
    }
}

/// Refuses an envelope over [`MAX_RECORD_BYTES`] or with more than
/// [`MAX_SIGNATURES`] signatures.
pub(crate) fn check_size(envelope: &Envelope) -> Result<(), InvalidRecord> {
    if envelope.approvals.len() > MAX_SIGNATURES {
        return Err(InvalidRecord::TooMany {
            field: "signatures",
            count: envelope.approvals.len(),
            max: MAX_SIGNATURES,
        });
    }
    let len = envelope.encode().len();
    if len > MAX_RECORD_BYTES {
        return Err(InvalidRecord::TooLong {
            field: "record",
            len,
            max: MAX_RECORD_BYTES,
        });
    }
    Ok(())
}

impl Release {
    /// Validates and signs the release (see [`Record::sign`]).
    pub fn sign(self, key: &AuthorKey) -> Result<SignedRecord<Verified>, InvalidRecord> {
        Record::Release(self).sign(key)
    }

    /// Validates and signs the release with several keys.
    pub fn sign_with(self, keys: &[&AuthorKey]) -> Result<SignedRecord<Verified>, InvalidRecord> {
        Record::Release(self).sign_with(keys)
    }
}

impl Yank {
    /// Validates and signs the yank (see [`Record::sign`]).
    pub fn sign(self, key: &AuthorKey) -> Result<SignedRecord<Verified>, InvalidRecord> {
        Record::Yank(self).sign(key)
    }

    /// Validates and signs the yank with several keys.
    pub fn sign_with(self, keys: &[&AuthorKey]) -> Result<SignedRecord<Verified>, InvalidRecord> {
        Record::Yank(self).sign_with(keys)
    }
}

/// The single-form envelope of `payload` with one signature: version 1's
/// envelope (for tests that build envelopes by hand).
#[cfg(any(test, feature = "test"))]
pub(crate) fn envelope_bytes(
    payload: &Bytes,
    public_key: &[u8; 32],
    signature: &[u8; 64],
) -> Vec<u8> {
    pb::SignedRecord {
        payload: payload.clone(),
        public_key: Bytes::copy_from_slice(public_key),
        signature: Bytes::copy_from_slice(signature),
        signatures: Vec::new(),
    }
    .encode_to_vec()
}

/// The identity of a signed record: SHA-256 of its canonical envelope
/// encoding ([`SignedRecord::to_bytes`]). Used as the gossipsub message id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId([u8; 32]);

impl RecordId {
    /// The id of a record given as its envelope bytes: their SHA-256
    /// (`docs/records.md`). The bytes are not checked.
    pub fn of(envelope: &[u8]) -> Self {
        Self(Sha256::digest(envelope).into())
    }

    /// The 32 hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From the 32 hash bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Into a buffer on the stack: ids are printed for every record an
        // indexer writes, and `hex::encode` goes char by char.
        let mut buf = [0u8; 64];
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

/// A string that is not a [`RecordId`]'s text: 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a record id (64 lower-case hex digits)")]
pub struct ParseRecordIdError;

impl std::str::FromStr for RecordId {
    type Err = ParseRecordIdError;

    /// Accepts only the text [`Display`](fmt::Display) writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ParseRecordIdError);
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(s, &mut raw).map_err(|_| ParseRecordIdError)?;
        Ok(Self(raw))
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({})", hex::encode(&self.0[..8]))
    }
}

/// State of a [`SignedRecord`] that has not been verified: bytes from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified;

/// State of a [`SignedRecord`] whose signature, author and fields were checked.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Shared: a verified record is read far more than it is made, and
    /// stores and views hand copies of it around.
    record: Arc<Record>,
    id: RecordId,
}

/// A record with the signatures that approve it. `S` is [`Unverified`] for
/// bytes from outside and [`Verified`] once [`verify`](SignedRecord::verify)
/// passed. Verification checks every signature; whether the keys that made
/// them count for the author is the identity's business
/// ([`IdentityState`](crate::IdentityState)).
#[derive(Clone)]
pub struct SignedRecord<S = Verified> {
    envelope: Envelope,
    state: S,
}

impl<S> SignedRecord<S> {
    /// The exact signed payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.envelope.payload
    }

    /// The signatures, by increasing key: one, by the author's key, for
    /// records in version 1's single form.
    pub fn approvals(&self) -> &[Approval] {
        &self.envelope.approvals
    }

    /// The canonical envelope encoding: what goes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.envelope.encode()
    }
}

impl SignedRecord<Unverified> {
    /// Parses an envelope. Checks the size before parsing, the lengths of
    /// key and signature, and that `bytes` are the canonical envelope
    /// encoding ([`to_bytes`](Self::to_bytes) of what they hold); nothing
    /// else is trusted until [`verify`](Self::verify).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VerifyError> {
        Ok(Self {
            envelope: Envelope::parse(bytes)?,
            state: Unverified,
        })
    }

    /// Accepts bytes that this program verified before and kept in its own
    /// storage, without checking the signature again: it still decodes and
    /// validates every field and checks that the key is the author's. Never
    /// use it for bytes from the network or from another program.
    pub fn from_trusted_storage(bytes: &[u8]) -> Result<SignedRecord<Verified>, VerifyError> {
        let unverified = Self::from_bytes(bytes)?;
        let record = unverified.decode_for_author(&mut AuthorId::from_bytes)?;
        Ok(unverified.into_verified(record))
    }

    /// [`from_trusted_storage`](Self::from_trusted_storage) for bytes that
    /// hold a package record or an identity document.
    pub fn from_trusted_storage_any(bytes: &[u8]) -> Result<Signed, VerifyError> {
        let unverified = Self::from_bytes(bytes)?;
        let payload =
            Payload::decode_with(&unverified.envelope.payload, &mut AuthorId::from_bytes)?;
        unverified
            .envelope
            .check_form(payload.author().as_bytes())?;
        Ok(match payload {
            Payload::Record(record) => Signed::Record(unverified.into_verified(record)),
            Payload::Identity(identity) => {
                Signed::Identity(SignedIdentity::verified(unverified.envelope, identity))
            }
        })
    }

    /// [`from_trusted_storage`](Self::from_trusted_storage), checking the
    /// author's key with `keys` (see [`KeyCache`]): for reading many stored
    /// records of the same authors. The result is always the same as
    /// [`from_trusted_storage`](Self::from_trusted_storage)'s.
    pub fn from_trusted_storage_cached(
        bytes: &[u8],
        keys: &mut KeyCache,
    ) -> Result<SignedRecord<Verified>, VerifyError> {
        let unverified = Self::from_bytes(bytes)?;
        let record = unverified.decode_for_author(&mut |b| keys.author(b).map(|(id, _)| id))?;
        Ok(unverified.into_verified(record))
    }

    /// Decodes the payload (checking the author's key with `author`) and
    /// checks the envelope's form against its author.
    fn decode_for_author(&self, author: &mut AuthorCheck<'_>) -> Result<Record, VerifyError> {
        let record = Record::decode_with(&self.envelope.payload, author)?;
        self.envelope.check_form(record.author().as_bytes())?;
        Ok(record)
    }

    /// The verified form, once every check has passed.
    fn into_verified(self, record: Record) -> SignedRecord<Verified> {
        SignedRecord::verified(self.envelope, record)
    }

    /// Verifies against the local clock ([`crate::now_ms`]).
    pub fn verify(self) -> Result<SignedRecord<Verified>, VerifyError> {
        self.verify_at(crate::now_ms())
    }

    /// Verifies the record as of `now` (unix ms): decodes the payload, checks
    /// that the key is the author named in it, the signature (strict RFC 8032
    /// verification, no weak keys or malleable signatures), every field, and
    /// that `created_at` is at most an hour ahead of `now`.
    pub fn verify_at(self, now: u64) -> Result<SignedRecord<Verified>, VerifyError> {
        self.verify_with(now, &mut AuthorId::with_key)
    }

    /// [`verify`](Self::verify), taking the author's checked, decompressed
    /// key from `keys` when it holds it (and adding it when not): for
    /// verifying many records of the same authors. The result is always the
    /// same as [`verify`](Self::verify)'s.
    pub fn verify_cached(self, keys: &mut KeyCache) -> Result<SignedRecord<Verified>, VerifyError> {
        self.verify_at_cached(crate::now_ms(), keys)
    }

    /// [`verify_at`](Self::verify_at) with a [`KeyCache`], as
    /// [`verify_cached`](Self::verify_cached). The result is always the same
    /// as [`verify_at`](Self::verify_at)'s.
    pub fn verify_at_cached(
        self,
        now: u64,
        keys: &mut KeyCache,
    ) -> Result<SignedRecord<Verified>, VerifyError> {
        self.verify_with(now, &mut |bytes| keys.author(bytes))
    }

    /// The checks of [`verify_at`](Self::verify_at), with `author` checking
    /// (as [`AuthorId::from_bytes`] does) and decompressing the author's key.
    fn verify_with(
        self,
        now: u64,
        keys: &mut KeyCheck<'_>,
    ) -> Result<SignedRecord<Verified>, VerifyError> {
        match verify_payload(&self.envelope, now, keys)? {
            Payload::Record(record) => Ok(self.into_verified(record)),
            Payload::Identity(_) => Err(VerifyError::IdentityDocument),
        }
    }

    /// Verifies bytes that hold a package record or an identity document
    /// (what gossip, sync and the HTTP API carry), as of `now`, with the
    /// same checks as [`verify_at_cached`](Self::verify_at_cached).
    pub fn verify_any_at_cached(
        self,
        now: u64,
        keys: &mut KeyCache,
    ) -> Result<Signed, VerifyError> {
        Ok(
            match verify_payload(&self.envelope, now, &mut |b| keys.author(b))? {
                Payload::Record(record) => Signed::Record(self.into_verified(record)),
                Payload::Identity(identity) => {
                    Signed::Identity(SignedIdentity::verified(self.envelope, identity))
                }
            },
        )
    }

    /// [`verify_any_at_cached`](Self::verify_any_at_cached) against the
    /// local clock, without a cache.
    pub fn verify_any(self) -> Result<Signed, VerifyError> {
        self.verify_any_at_cached(crate::now_ms(), &mut KeyCache::new(0))
    }
}

/// A verified package record or identity document.
#[derive(Debug, Clone, PartialEq, Eq)]
// Handled one at a time as it arrives; boxing would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
pub enum Signed {
    /// A release or a yank.
    Record(SignedRecord<Verified>),
    /// An identity document.
    Identity(SignedIdentity),
}

impl Signed {
    /// The record's identity (SHA-256 of its envelope).
    pub fn id(&self) -> RecordId {
        match self {
            Self::Record(r) => r.id(),
            Self::Identity(i) => i.id(),
        }
    }

    /// The author it is about.
    pub fn author(&self) -> &AuthorId {
        match self {
            Self::Record(r) => r.record().author(),
            Self::Identity(i) => &i.identity().author,
        }
    }

    /// The canonical envelope encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Record(r) => r.to_bytes(),
            Self::Identity(i) => i.to_bytes(),
        }
    }
}

/// The checks of section 4 of `docs/records.md` on a parsed envelope:
/// decodes the payload (checking its author's key with `keys`), checks the
/// envelope's form, every signature, and `created_at` against `now`.
fn verify_payload(
    envelope: &Envelope,
    now: u64,
    keys: &mut KeyCheck<'_>,
) -> Result<Payload, VerifyError> {
    // The author's key, decompressed while the author field was checked:
    // in the single form it is also the signing key.
    let mut author_key = None;
    let payload = Payload::decode_with(&envelope.payload, &mut |bytes| {
        let (id, key) = keys(bytes)?;
        author_key = Some((id, key));
        Ok(id)
    })?;
    let author = *payload.author().as_bytes();
    envelope.check_form(&author)?;
    envelope.verify_signatures(&mut |bytes| match author_key {
        Some(known) if bytes == author => Ok(known),
        _ => keys(bytes),
    })?;
    let created_at = payload.created_at();
    if created_at > now.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(VerifyError::FromFuture { created_at, now });
    }
    Ok(payload)
}

impl SignedRecord<Verified> {
    /// The verified form of an envelope whose checks have passed.
    fn verified(envelope: Envelope, record: impl Into<Arc<Record>>) -> Self {
        let id = RecordId::of(&envelope.encode());
        Self {
            envelope,
            state: Verified {
                record: record.into(),
                id,
            },
        }
    }

    /// The verified record.
    pub fn record(&self) -> &Record {
        &self.state.record
    }

    /// The record's identity.
    pub fn id(&self) -> RecordId {
        self.state.id
    }

    /// The release this record is about.
    pub fn release_key(&self) -> ReleaseKey {
        self.record().release_key()
    }

    /// The total order of rule 2 in the crate docs: by `seq`, then payload
    /// bytes, then signature bytes. Equal only for identical records.
    pub fn order(&self, other: &Self) -> Ordering {
        self.record()
            .seq()
            .cmp(&other.record().seq())
            .then_with(|| self.envelope.payload.cmp(&other.envelope.payload))
            .then_with(|| self.envelope.approvals.cmp(&other.envelope.approvals))
    }

    /// The same record with the signatures of both `self` and `other` (one
    /// per key), or `None` when their payloads differ.
    pub fn merge(&self, other: &Self) -> Option<Self> {
        let author = self.record().author().as_bytes();
        let envelope = self.envelope.merged(&other.envelope, author)?;
        Some(Self::verified(envelope, self.state.record.clone()))
    }

    /// The same record with only the signatures of keys `keep` accepts, or
    /// `None` when none is left.
    pub fn retain(&self, keep: impl FnMut(&[u8; 32]) -> bool) -> Option<Self> {
        let envelope = self
            .envelope
            .retained(self.record().author().as_bytes(), keep)?;
        Some(Self::verified(envelope, self.state.record.clone()))
    }

    /// The same record with `key`'s signature added (a co-signature).
    pub fn cosign(&self, key: &AuthorKey) -> Result<Self, InvalidRecord> {
        let envelope = self
            .envelope
            .cosigned(self.record().author().as_bytes(), key);
        check_size(&envelope)?;
        Ok(Self::verified(envelope, self.state.record.clone()))
    }

    /// Whether `self` replaces `other`: both are about the same release and
    /// `self` is ordered above it.
    pub fn supersedes(&self, other: &Self) -> bool {
        self.release_key() == other.release_key() && self.order(other) == Ordering::Greater
    }

    /// Forgets the verification, e.g. to hand the bytes on.
    pub fn into_unverified(self) -> SignedRecord<Unverified> {
        SignedRecord {
            envelope: self.envelope,
            state: Unverified,
        }
    }
}

impl PartialEq for SignedRecord<Verified> {
    fn eq(&self, other: &Self) -> bool {
        self.state.id == other.state.id
    }
}

impl Eq for SignedRecord<Verified> {}

impl PartialEq for SignedRecord<Unverified> {
    fn eq(&self, other: &Self) -> bool {
        self.envelope == other.envelope
    }
}

impl Eq for SignedRecord<Unverified> {}

impl fmt::Debug for SignedRecord<Verified> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRecord")
            .field("id", &self.state.id)
            .field("record", &self.state.record)
            .finish()
    }
}

impl fmt::Debug for SignedRecord<Unverified> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRecord")
            .field("payload_len", &self.envelope.payload.len())
            .field("approvals", &self.envelope.approvals)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer;

    use super::*;
    use crate::SIGNING_PREFIX;
    use crate::envelope::signing_input;
    use crate::limits::MAX_DESCRIPTION;
    use crate::{ContentId, Metadata};

    #[test]
    fn record_ids_read_back_only_from_their_own_text() {
        let id = RecordId::of(b"some envelope");
        let text = id.to_string();
        assert_eq!(text.parse::<RecordId>(), Ok(id));
        for bad in [
            text.to_uppercase(),
            text[..63].to_owned(),
            format!("{text}0"),
            format!("{}g", &text[..63]),
            String::new(),
        ] {
            assert_eq!(bad.parse::<RecordId>(), Err(ParseRecordIdError), "{bad}");
        }
    }

    fn release(key: &AuthorKey) -> Release {
        let cid: ContentId = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
            .parse()
            .unwrap();
        let mut r = Release::new(
            key.author_id(),
            "com.example.app".parse().unwrap(),
            "1.0.0".parse().unwrap(),
            1,
            cid,
        );
        r.created_at = 1_700_000_000_000;
        r.seq = 1;
        r
    }

    fn resign(payload: Vec<u8>, key: &AuthorKey) -> Vec<u8> {
        let signature = key.signing_key().sign(&signing_input(&payload)).to_bytes();
        envelope_bytes(&payload.into(), key.author_id().as_bytes(), &signature)
    }

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn sign_then_verify() {
        let key = AuthorKey::from_seed(&[3; 32]);
        let signed = release(&key).sign(&key).unwrap();
        let back = SignedRecord::from_bytes(&signed.to_bytes())
            .unwrap()
            .verify_at(NOW)
            .unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.record(), signed.record());
    }

    #[test]
    fn trusted_storage_reads_decode_and_check_the_author() {
        let key = AuthorKey::from_seed(&[3; 32]);
        let signed = release(&key).sign(&key).unwrap();
        assert_eq!(
            SignedRecord::from_trusted_storage(&signed.to_bytes()).unwrap(),
            signed
        );
        let forged = resign(signed.payload().to_vec(), &AuthorKey::from_seed(&[4; 32]));
        assert_eq!(
            SignedRecord::from_trusted_storage(&forged),
            Err(VerifyError::KeyMismatch)
        );
        assert!(SignedRecord::from_trusted_storage(&[0xff, 0xff]).is_err());
    }

    #[test]
    fn cached_trusted_storage_reads_give_the_same_answers() {
        let key = AuthorKey::from_seed(&[3; 32]);
        let signed = release(&key).sign(&key).unwrap();
        let forged = resign(signed.payload().to_vec(), &AuthorKey::from_seed(&[4; 32]));
        let mut keys = KeyCache::default();
        for _ in 0..2 {
            for bytes in [signed.to_bytes(), forged.clone(), vec![0xff, 0xff]] {
                assert_eq!(
                    SignedRecord::from_trusted_storage_cached(&bytes, &mut keys),
                    SignedRecord::from_trusted_storage(&bytes)
                );
            }
        }
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn every_non_canonical_encoding_is_refused_at_every_level() {
        use crate::noncanonical::{Edit, Level, expected_error, rewrite, signature_verifies};
        let key = AuthorKey::from_seed(&[3; 32]);
        let mut full = release(&key);
        full.metadata = Metadata {
            title: "Title".into(),
            homepage_url: Some("https://example.com".into()),
            categories: vec!["tools".into(), "games".into()],
            min_sdk: 24,
            permissions: vec!["android.permission.INTERNET".into()],
            icon: Some(full.cid),
            ..Metadata::default()
        };
        let yank = Yank {
            author: key.author_id(),
            package: "com.example.app".parse().unwrap(),
            version: "1.0.0".parse().unwrap(),
            reason: String::new(),
            created_at: NOW,
            seq: 2,
        };
        let records = [
            Record::Release(full).sign(&key).unwrap(),
            Record::Release(release(&key)).sign(&key).unwrap(),
            Record::Yank(yank).sign(&key).unwrap(),
        ];
        let mut made = std::collections::HashSet::new();
        for signed in &records {
            for level in Level::ALL {
                for edit in Edit::ALL {
                    for pick in 0..40 {
                        let Some(bytes) = rewrite(signed, &key, level, edit, pick) else {
                            continue;
                        };
                        made.insert((level, edit));
                        assert_ne!(bytes, signed.to_bytes());
                        assert!(signature_verifies(&bytes));
                        let what = format!("{level:?} {edit:?} {pick}");
                        let verified =
                            SignedRecord::from_bytes(&bytes).and_then(|r| r.verify_at(NOW));
                        assert_eq!(verified.unwrap_err(), expected_error(level), "{what}");
                        let stored = SignedRecord::from_trusted_storage(&bytes);
                        assert_eq!(stored.unwrap_err(), expected_error(level), "{what}");
                    }
                }
            }
        }
        // Every edit was made at every level where the schema allows it.
        for level in Level::ALL {
            for edit in Edit::ALL {
                let possible = match (level, edit) {
                    (Level::Envelope, Edit::ExplicitDefault | Edit::DropEmptyMetadata) => false,
                    (Level::Record, e) => matches!(e, Edit::Unknown | Edit::LongVarint),
                    (Level::Metadata, Edit::DropEmptyMetadata) => false,
                    _ => true,
                };
                assert_eq!(
                    made.contains(&(level, edit)),
                    possible,
                    "{level:?} {edit:?}"
                );
            }
        }
    }

    #[test]
    fn the_payload_is_checked_after_its_fields_and_the_envelope_after_its_lengths() {
        let key = AuthorKey::from_seed(&[3; 32]);
        let verify = |bytes: &[u8]| SignedRecord::from_bytes(bytes).and_then(|r| r.verify_at(NOW));
        // A payload with no known kind and an unknown field: unknown_kind.
        assert_eq!(
            verify(&resign(vec![0x4a, 0x01, 0x00], &key)),
            Err(VerifyError::UnknownKind)
        );
        // An invalid field written out of order: invalid.
        let mut pb_release = pb::Release::from(&release(&key));
        pb_release.package = "com..app".into();
        let mut payload = pb::Record {
            kind: Some(pb::record::Kind::Release(pb_release)),
        }
        .encode_to_vec();
        payload.extend_from_slice(&[0xa0, 0x01, 0x01]); // field 20, varint 1
        assert!(matches!(
            verify(&resign(payload, &key)),
            Err(VerifyError::Invalid(InvalidRecord::Package(_)))
        ));
        // A second, short key after the signature (the last one counts): bad_key.
        let mut bytes = release(&key).sign(&key).unwrap().to_bytes();
        bytes.extend_from_slice(&[0x12, 0x01, 0x00]);
        assert_eq!(verify(&bytes), Err(VerifyError::BadKey));
        // An envelope without a payload field is canonical for an empty
        // payload, which holds no kind; with an empty one written out, it is not.
        let signature = key.signing_key().sign(SIGNING_PREFIX).to_bytes();
        let empty = envelope_bytes(&Bytes::new(), key.author_id().as_bytes(), &signature);
        assert_eq!(empty[0], 0x12);
        assert_eq!(verify(&empty), Err(VerifyError::UnknownKind));
        let mut written = vec![0x0a, 0x00];
        written.extend_from_slice(&empty);
        assert_eq!(
            verify(&written),
            Err(VerifyError::NonCanonical("SignedRecord"))
        );
    }

    #[test]
    fn sign_refuses_invalid_fields_and_a_seq_above_created_at() {
        let key = AuthorKey::from_seed(&[3; 32]);
        let mut r = release(&key);
        r.file_name = "../etc/passwd".into();
        assert_eq!(r.sign(&key).unwrap_err().field(), "file_name");
        let mut r = release(&key);
        r.seq = r.created_at + 1;
        assert_eq!(r.sign(&key).unwrap_err().field(), "seq");
    }

    #[test]
    fn other_keys_and_several_keys_sign_in_the_multi_form() {
        let author = AuthorKey::from_seed(&[3; 32]);
        let a = AuthorKey::from_seed(&[4; 32]);
        let b = AuthorKey::from_seed(&[5; 32]);
        let verify = |bytes: &[u8]| SignedRecord::from_bytes(bytes).and_then(|r| r.verify_at(NOW));

        let single = release(&author).sign(&author).unwrap();
        let by_a = release(&author).sign(&a).unwrap();
        let by_ab = release(&author).sign_with(&[&b, &a]).unwrap();
        assert_eq!(single.to_bytes()[0..1], [0x0a]);
        for signed in [&single, &by_a, &by_ab] {
            assert_eq!(&verify(&signed.to_bytes()).unwrap(), signed);
        }
        // Multi form: no field 2 or 3, one field 4 per signature, by key.
        let env = pb::SignedRecord::decode(&by_a.to_bytes()[..]).unwrap();
        assert!(env.public_key.is_empty() && env.signature.is_empty());
        assert_eq!(env.signatures.len(), 1);
        let keys: Vec<_> = by_ab.approvals().iter().map(|x| *x.key()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 2);

        // Merging the same payload unites the signatures, once per key, and
        // the author's own signature alone goes back to the single form.
        let merged = by_a.merge(&single).unwrap();
        assert_eq!(merged.approvals().len(), 2);
        assert_eq!(merged.merge(&by_ab).unwrap().approvals().len(), 3);
        assert_eq!(merged.merge(&merged).unwrap(), merged);
        assert_eq!(
            merged
                .retain(|k| k == author.author_id().as_bytes())
                .unwrap(),
            single
        );
        assert!(merged.retain(|_| false).is_none());
        let mut other_payload = release(&author);
        other_payload.seq = 2;
        assert!(
            single
                .merge(&other_payload.sign(&author).unwrap())
                .is_none()
        );
        assert_eq!(single.cosign(&a).unwrap(), merged);

        // The author's signature alone in the multi form is not canonical,
        // nor are signatures out of key order, nor a key with both forms.
        let only_author = pb::SignedRecord {
            payload: single.payload().to_vec().into(),
            signatures: vec![pb::Signature {
                public_key: author.author_id().as_bytes().to_vec().into(),
                signature: single.approvals()[0].signature().to_vec().into(),
            }],
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            verify(&only_author),
            Err(VerifyError::NonCanonical("SignedRecord"))
        );
        let mut env = pb::SignedRecord::decode(&by_ab.to_bytes()[..]).unwrap();
        env.signatures.reverse();
        assert_eq!(
            verify(&env.encode_to_vec()),
            Err(VerifyError::NonCanonical("SignedRecord"))
        );
        let mut both = pb::SignedRecord::decode(&by_a.to_bytes()[..]).unwrap();
        both.public_key = author.author_id().as_bytes().to_vec().into();
        both.signature = single.approvals()[0].signature().to_vec().into();
        assert_eq!(
            verify(&both.encode_to_vec()),
            Err(VerifyError::NonCanonical("SignedRecord"))
        );
        // One bad signature among good ones fails the record.
        let mut env = pb::SignedRecord::decode(&by_ab.to_bytes()[..]).unwrap();
        let mut sig = env.signatures[1].signature.to_vec();
        sig[0] ^= 1;
        env.signatures[1].signature = sig.into();
        assert_eq!(verify(&env.encode_to_vec()), Err(VerifyError::BadSignature));
        // At most 16 signatures.
        let keys: Vec<_> = (10..27).map(|n| AuthorKey::from_seed(&[n; 32])).collect();
        let refs: Vec<_> = keys.iter().collect();
        assert_eq!(
            release(&author).sign_with(&refs).unwrap_err().field(),
            "signatures"
        );
        let sixteen = release(&author).sign_with(&refs[..16]).unwrap();
        assert!(verify(&sixteen.to_bytes()).is_ok());
        assert!(sixteen.cosign(&author).is_err());
        let mut env = pb::SignedRecord::decode(&sixteen.to_bytes()[..]).unwrap();
        let extra = single.approvals()[0];
        env.signatures.insert(
            0,
            pb::Signature {
                public_key: extra.key().to_vec().into(),
                signature: extra.signature().to_vec().into(),
            },
        );
        env.signatures
            .sort_by(|x, y| x.public_key.cmp(&y.public_key));
        assert!(matches!(
            verify(&env.encode_to_vec()),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn each_rejection_has_its_error() {
        let key = AuthorKey::from_seed(&[3; 32]);
        let other = AuthorKey::from_seed(&[4; 32]);
        let verify = |bytes: &[u8]| SignedRecord::from_bytes(bytes).and_then(|r| r.verify_at(NOW));

        let big = vec![0u8; MAX_RECORD_BYTES + 1];
        assert!(matches!(verify(&big), Err(VerifyError::TooLarge { .. })));
        assert!(matches!(
            verify(&[0xff, 0xff, 0xff]),
            Err(VerifyError::Malformed(_))
        ));

        // A payload with no known kind (an unknown field 9).
        let unknown = resign(vec![0x4a, 0x01, 0x00], &key);
        assert_eq!(verify(&unknown), Err(VerifyError::UnknownKind));

        // Signed by another key, carrying that key: it does not match the author.
        let payload = release(&key).sign(&key).unwrap().payload().to_vec();
        assert_eq!(
            verify(&resign(payload.clone(), &other)),
            Err(VerifyError::KeyMismatch)
        );

        // Right key, wrong signature.
        let signed = release(&key).sign(&key).unwrap();
        let mut signature = *signed.approvals()[0].signature();
        signature[0] ^= 1;
        let tampered = envelope_bytes(
            &signed.payload().to_vec().into(),
            key.author_id().as_bytes(),
            &signature,
        );
        assert_eq!(verify(&tampered), Err(VerifyError::BadSignature));

        // A signature without the domain prefix does not verify.
        let bare = key.signing_key().sign(&payload).to_bytes();
        let bytes = envelope_bytes(&payload.into(), key.author_id().as_bytes(), &bare);
        assert_eq!(verify(&bytes), Err(VerifyError::BadSignature));

        // Too far in the future.
        let mut r = release(&key);
        r.created_at = NOW + MAX_CLOCK_SKEW_MS + 1;
        let future = r.sign(&key).unwrap().to_bytes();
        assert!(matches!(
            verify(&future),
            Err(VerifyError::FromFuture { .. })
        ));
        let mut r = release(&key);
        r.created_at = NOW + MAX_CLOCK_SKEW_MS;
        assert!(verify(&r.sign(&key).unwrap().to_bytes()).is_ok());

        // Invalid fields are rejected on receipt even when properly signed.
        let mut r = release(&key);
        r.metadata = Metadata {
            description: "x".repeat(MAX_DESCRIPTION + 1),
            ..Metadata::default()
        };
        let payload = Record::Release(r).encode();
        assert!(matches!(
            verify(&resign(payload, &key)),
            Err(VerifyError::Invalid(InvalidRecord::TooLong {
                field: "metadata.description",
                ..
            }))
        ));
        let mut pb_release = pb::Release::from(&release(&key));
        pb_release.package = "com..app".into();
        let payload = pb::Record {
            kind: Some(pb::record::Kind::Release(pb_release)),
        }
        .encode_to_vec();
        assert!(matches!(
            verify(&resign(payload, &key)),
            Err(VerifyError::Invalid(InvalidRecord::Package(_)))
        ));
    }
}
