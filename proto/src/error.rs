//! Errors of decoding, validating and verifying records.

use crate::{InvalidContentId, InvalidPackageName, InvalidVersion, ParseAuthorIdError};

/// A record field breaks a rule of the format. Each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRecord {
    /// The author key.
    #[error("author: {0}")]
    Author(#[source] ParseAuthorIdError),
    /// The package name.
    #[error("package: {0}")]
    Package(#[source] InvalidPackageName),
    /// The version.
    #[error("version: {0}")]
    Version(#[source] InvalidVersion),
    /// A CID field (`cid`, `metadata.icon`, `metadata.screenshots`).
    #[error("{field}: {source}")]
    Cid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        #[source]
        source: InvalidContentId,
    },
    /// A URL field that is not an absolute `http` or `https` URL.
    #[error("{field}: not an absolute http(s) URL")]
    Url {
        /// The field.
        field: &'static str,
    },
    /// A text or byte field over its limit.
    #[error("{field} is {len} bytes, over the {max}-byte limit")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list over its limit.
    #[error("{field} has {count} entries, over the limit of {max}")]
    TooMany {
        /// The field.
        field: &'static str,
        /// Its number of entries.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A text field with a control character (single-line fields allow none,
    /// `description` and `reason` allow newline and tab).
    #[error("{field} contains a control character")]
    ControlChar {
        /// The field.
        field: &'static str,
    },
    /// A text field with a code point the display rule refuses
    /// (`docs/records.md`, section 5.1): a bidirectional control, an
    /// invisible character, a line separator, or a joiner or selector where
    /// it may not stand.
    #[error(
        "{field} contains U+{:04X}, an invisible or bidirectional formatting character",
        u32::from(*.ch)
    )]
    FormatChar {
        /// The field.
        field: &'static str,
        /// The refused code point.
        ch: char,
    },
    /// Any other rule.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
}

impl InvalidRecord {
    /// The name of the offending field, as in `docs/records.md`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Author(_) => "author",
            Self::Package(_) => "package",
            Self::Version(_) => "version",
            Self::Cid { field, .. }
            | Self::Url { field }
            | Self::TooLong { field, .. }
            | Self::TooMany { field, .. }
            | Self::ControlChar { field }
            | Self::FormatChar { field, .. }
            | Self::Invalid { field, .. } => field,
        }
    }
}

/// Why bytes are not a valid signed record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Over [`MAX_RECORD_BYTES`](crate::limits::MAX_RECORD_BYTES); checked before parsing.
    #[error("record is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// The size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not decodable as the protobuf schema.
    #[error("malformed record: {0}")]
    Malformed(String),
    /// The bytes decode, but are not the one canonical encoding of what
    /// they hold (`docs/records.md`, section 1): fields out of order,
    /// repeated or unknown, a default value written out, a varint longer
    /// than needed. Names the message: `SignedRecord` (the envelope) or
    /// `Record` (the payload, with everything nested in it).
    #[error("{0} is not in its canonical encoding")]
    NonCanonical(&'static str),
    /// The payload holds none of the known record kinds.
    #[error("unknown record kind")]
    UnknownKind,
    /// The envelope's public key is not a valid ed25519 key.
    #[error("public key is not a valid ed25519 key")]
    BadKey,
    /// The signature does not verify under the envelope's key.
    #[error("signature does not verify")]
    BadSignature,
    /// The envelope's key is not the author named in the payload.
    #[error("signing key does not match the record's author")]
    KeyMismatch,
    /// `created_at` is more than an hour past the verifier's clock.
    #[error("created_at {created_at} is more than an hour ahead of now ({now})")]
    FromFuture {
        /// The record's `created_at`, in ms.
        created_at: u64,
        /// The verifier's clock, in ms.
        now: u64,
    },
    /// A field breaks the format's rules.
    #[error("invalid record: {0}")]
    Invalid(#[from] InvalidRecord),
    /// A valid identity document where only a package record is accepted.
    #[error("an identity document, not a package record")]
    IdentityDocument,
}

impl VerifyError {
    /// A short stable label, for metrics and logs (`too_large`, `malformed`,
    /// `non_canonical`, `unknown_kind`, `bad_key`, `bad_signature`,
    /// `key_mismatch`, `from_future`, `invalid`, `identity_document`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Malformed(_) => "malformed",
            Self::NonCanonical(_) => "non_canonical",
            Self::UnknownKind => "unknown_kind",
            Self::BadKey => "bad_key",
            Self::BadSignature => "bad_signature",
            Self::KeyMismatch => "key_mismatch",
            Self::FromFuture { .. } => "from_future",
            Self::Invalid(_) => "invalid",
            Self::IdentityDocument => "identity_document",
        }
    }
}
