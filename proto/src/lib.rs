//! The IPSR record model: signed package records, their validation and the
//! rules that order them. No IO: every other IPSR crate builds on this one.
//!
//! # The model
//!
//! An app author holds an ed25519 key. Its public half is the author's
//! identity, an [`AuthorId`], written as an IPNS-style name (`k51...`).
//! The author publishes [`Release`]s of packages, each named by a reverse-DNS
//! [`PackageName`] (`com.example.app`) and a semantic [`Version`], and may
//! retract one with a [`Yank`]. Both are [`Record`]s, carried as a
//! [`SignedRecord`]: the exact payload bytes, the author's public key and a
//! signature over [`SIGNING_PREFIX`] followed by those bytes.
//!
//! Bytes from the network are a [`SignedRecord<Unverified>`]. Only
//! [`SignedRecord::verify`] turns them into a [`SignedRecord<Verified>`],
//! and storage, forwarding, indexing and serving accept only that type.
//! To verify many records of the same authors, keep their checked keys in a
//! [`KeyCache`] and use [`SignedRecord::verify_cached`]: same result, less work.
//!
//! ```
//! use ipsr_proto::{AuthorKey, ContentId, Release, SignedRecord};
//!
//! let key = AuthorKey::from_seed(&[7; 32]);
//! let cid: ContentId = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku".parse()?;
//! let release = Release::new(key.author_id(), "com.example.app".parse()?, "1.0.0".parse()?, 1, cid);
//! let signed = release.sign(&key)?;
//!
//! // What travels on the wire:
//! let bytes = signed.to_bytes();
//! let received = SignedRecord::from_bytes(&bytes)?.verify()?;
//! assert_eq!(received.record().package().as_str(), "com.example.app");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Ordering rules
//!
//! Every node applies the same deterministic rules, so all nodes converge on
//! the same state whatever order records arrive in (see [`ReleaseState`] and
//! [`PackageState`]):
//!
//! 1. Releases of one package coexist: `1.0.0` and `1.1.0` are both kept.
//!    Records are compared only within one release, identified by a
//!    [`ReleaseKey`] (author + package + version).
//! 2. Within one release, records are totally ordered by `seq`, then by the
//!    payload bytes, then by the signature bytes ([`SignedRecord::supersedes`]).
//!    A record with a higher `seq` supersedes a lower one (a metadata fix). A
//!    record with a lower or equal `seq` never replaces what a node holds, so
//!    replaying old records cannot roll anything back.
//! 3. A [`Yank`] retracts the release when it is ordered above the newest
//!    [`Release`] record for that version; a later `Release` with a higher `seq`
//!    restores it.
//! 4. A release record that points an existing version at a different CID is a
//!    *conflict*: it is kept out of the way of the held record unless its `seq`
//!    is higher, and either way it is reported ([`Report::CidConflict`]). For
//!    each CID seen for the version, the greatest record naming it is kept as
//!    evidence, so the conflict stays visible whichever record wins.
//! 5. Two different records with the same key and `seq` are an *equivocation*:
//!    the tie is broken by the byte order of rule 2, and it is reported
//!    ([`Report::Equivocation`]).
//! 6. The newest release of a package is the non-yanked one with the highest
//!    `version_code` (ties: the higher semantic version, then rule 2).
//!
//! An author may publish an identity document ([`Identity`]): the keys
//! that sign releases and yanks with a threshold, and the admin keys that
//! may change the document. Records then count only through the signatures
//! of the signers in force, so a stolen key is revoked by a new document
//! ([`IdentityState`], [`AuthorizedRelease`]).
//!
//! The wire format and these rules are specified for other implementations
//! in `docs/records.md`.
//!
//! # Modules
//!
//! * `record`: [`SignedRecord`], the envelope, the signing bytes,
//!   verification, record ids and the [`ReleaseKey`] / [`PackageKey`] a
//!   record is about (with their DHT keys).
//! * `release`: [`Release`], [`Yank`] and their [`Metadata`]; validation
//!   and the conversion from and to the protobuf types.
//! * `order`: the ordering and conflict rules above, as the pure state
//!   machines [`ReleaseState`] and [`PackageState`].
//! * `envelope`: the two forms of the envelope (one signature by the author
//!   key, or several by any keys) and their [`Approval`]s.
//! * `identity`: [`Identity`] documents (signers, admins, thresholds, a
//!   profile) and their [`SignedIdentity`] envelope; [`Authority`].
//! * `lineage`: [`IdentityState`], the chain of an author's documents and the
//!   one in force.
//! * `authorized`: [`AuthorizedRelease`], the ordering rules per signer key
//!   under an identity (what a revoked key signed stops counting).
//! * `author`: [`AuthorKey`], [`AuthorId`] and its `k51...` text form,
//!   [`KeyCache`].
//! * `text`: which characters text fields may hold (no bidirectional
//!   controls or invisible characters; joiners only in prose).
//! * `name`, `version`, `content`: [`PackageName`], [`Version`] and
//!   [`ContentId`], each in its canonical text form.
//! * [`limits`]: the size limits of the format.
//! * [`sync`]: the messages of the `/ipsr/sync/1.0.0` catch-up protocol.
//! * `error`: [`VerifyError`] and [`InvalidRecord`].
//! * `pb`: the types prost generates from `ipsr.proto` (private).
//! * `strategy`: proptest strategies for every type (feature `test`).
//! * `noncanonical`: validly signed records in encodings the decoder must
//!   refuse, for tests (feature `test`).

mod author;
mod authorized;
mod content;
mod continuity;
mod envelope;
mod error;
mod identity;
pub mod limits;
mod lineage;
mod name;
#[cfg(any(test, feature = "test"))]
pub mod noncanonical;
mod order;
mod pb;
mod record;
mod release;
#[cfg(any(test, feature = "test"))]
pub mod strategy;
pub mod sync;
mod text;
mod version;

pub use author::{AuthorId, AuthorKey, KeyCache, ParseAuthorIdError};
pub use authorized::{AuthorizedPackage, AuthorizedRelease, Delta, newest_authorized};
pub use content::{ContentId, InvalidContentId};
pub use continuity::{CertCheck, cert_checks};
pub use envelope::{Approval, SIGNING_PREFIX};
pub use error::{InvalidRecord, VerifyError};
pub use identity::{Authority, Identity, IdentityId, SignedIdentity};
pub use lineage::{
    IdentityApplied, IdentityChange, IdentityState, identity_dht_envelopes, identity_dht_key,
};
pub use name::{InvalidPackageName, PackageName};
pub use order::{Applied, Change, ForeignRecord, PackageState, ReleaseParts, ReleaseState, Report};
pub use record::{
    PackageKey, ParseRecordIdError, Record, RecordId, ReleaseKey, Signed, SignedRecord, Unverified,
    Verified,
};
pub use release::{Metadata, Platform, Release, Yank};
pub use text::is_hidden as is_hidden_char;
pub use version::{InvalidVersion, Version};

/// Milliseconds since the Unix epoch, as used in `created_at`.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
