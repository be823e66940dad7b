//! Identity documents (`docs/records.md`, section 8): which keys sign an
//! author's releases and yanks, which keys may change the document, and the
//! author's profile.
//!
//! An author id is the author's first key, forever. An author without a
//! document has the implicit one ([`Identity::implicit`]): that key alone
//! signs and administers. Each document names the one it follows (`prev`,
//! the SHA-256 of its payload) and must be signed by the admins of that one;
//! [`IdentityState`](crate::IdentityState) follows the chain.

use std::collections::BTreeSet;
use std::fmt;

use bytes::Bytes;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::envelope::{Approval, Envelope};
use crate::limits::{MAX_APK_CERTS, MAX_IDENTITY_KEYS, MAX_IDENTITY_NAME, MAX_IDENTITY_URLS};
use crate::record::check_size;
use crate::release::{AuthorCheck, check_len, check_seq, check_url, cid_from};
use crate::text::{self, Text};
use crate::{AuthorId, AuthorKey, ContentId, InvalidRecord, RecordId, pb};

/// The id of an identity document: SHA-256 of its payload. Documents name
/// the one they follow by it, whatever signatures its envelope carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityId([u8; 32]);

impl IdentityId {
    /// The id of a document given as its payload bytes.
    pub fn of(payload: &[u8]) -> Self {
        Self(Sha256::digest(payload).into())
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

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityId({})", hex::encode(&self.0[..8]))
    }
}

/// Who signs an author's releases and yanks: `threshold` of `signers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// The keys whose signatures count.
    pub signers: BTreeSet<AuthorId>,
    /// How many of them a record needs.
    pub threshold: u32,
    /// The APK signing certificates (SHA-256) a package may move to without
    /// a proof of rotation (rule 9); empty for admins.
    pub apk_certs: BTreeSet<[u8; 32]>,
}

impl Authority {
    /// Whether `key` is one of the signers.
    pub fn is_signer(&self, key: &[u8; 32]) -> bool {
        self.signers.contains(&AuthorId::from_checked(*key))
    }

    /// How many of `approvals` are by signers.
    pub fn count(&self, approvals: &[Approval]) -> usize {
        approvals.iter().filter(|a| self.is_signer(a.key())).count()
    }

    /// Whether `approvals` reach the threshold.
    pub fn is_met(&self, approvals: &[Approval]) -> bool {
        self.count(approvals) >= self.threshold as usize
    }
}

/// An identity document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// The author: the id of the author's first key.
    pub author: AuthorId,
    /// The document this one follows; `None` for the author's first.
    #[serde(with = "opt_identity_id")]
    pub prev: Option<IdentityId>,
    /// Keys whose signatures count on releases and yanks, increasing.
    pub signers: Vec<AuthorId>,
    /// How many signers a release or yank needs.
    pub threshold: u32,
    /// Keys whose signatures count on the next document, increasing.
    pub admins: Vec<AuthorId>,
    /// How many admins the next document needs.
    pub admin_threshold: u32,
    /// Display name.
    pub name: String,
    /// Links for pages: home page, source, ...
    pub urls: Vec<String>,
    /// An avatar image.
    pub avatar: Option<ContentId>,
    /// SHA-256 of APK signing certificates the author vouches for, increasing.
    #[serde(with = "hex32_list")]
    pub apk_certs: Vec<[u8; 32]>,
    /// When it was signed (unix ms).
    pub created_at: u64,
    /// Grows along the chain; at most `created_at`.
    pub seq: u64,
}

impl Identity {
    /// The document of an author who never published one: their key alone
    /// signs and administers. It has `seq` 0 and is never signed or sent.
    pub fn implicit(author: AuthorId) -> Self {
        Self {
            author,
            prev: None,
            signers: vec![author],
            threshold: 1,
            admins: vec![author],
            admin_threshold: 1,
            name: String::new(),
            urls: Vec::new(),
            avatar: None,
            apk_certs: Vec::new(),
            created_at: 0,
            seq: 0,
        }
    }

    /// The document that follows `self` (whose payload has id `id`), with
    /// the same contents: change its fields, then sign it with enough of
    /// `self`'s admins. `created_at` is now and `seq` is now or, if `self`'s
    /// is not below that, one more than `self`'s.
    pub fn next(&self, id: Option<IdentityId>) -> Self {
        let now = crate::now_ms();
        let seq = now.max(self.seq + 1);
        Self {
            prev: id,
            created_at: seq,
            seq,
            ..self.clone()
        }
    }

    /// Who signs releases and yanks under this document.
    pub fn authority(&self) -> Authority {
        Authority {
            signers: self.signers.iter().copied().collect(),
            threshold: self.threshold,
            apk_certs: self.apk_certs.iter().copied().collect(),
        }
    }

    /// Who signs the next document.
    pub fn admin_authority(&self) -> Authority {
        Authority {
            signers: self.admins.iter().copied().collect(),
            threshold: self.admin_threshold,
            apk_certs: BTreeSet::new(),
        }
    }

    /// Checks every field against the rules of `docs/records.md`.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        check_keys("signers", &self.signers, self.threshold, "threshold")?;
        check_keys(
            "admins",
            &self.admins,
            self.admin_threshold,
            "admin_threshold",
        )?;
        check_len("name", &self.name, MAX_IDENTITY_NAME)?;
        text::check("name", &self.name, Text::Line)?;
        if self.urls.len() > MAX_IDENTITY_URLS {
            return Err(InvalidRecord::TooMany {
                field: "urls",
                count: self.urls.len(),
                max: MAX_IDENTITY_URLS,
            });
        }
        for url in &self.urls {
            check_url("urls", url)?;
        }
        if self.apk_certs.len() > MAX_APK_CERTS {
            return Err(InvalidRecord::TooMany {
                field: "apk_certs",
                count: self.apk_certs.len(),
                max: MAX_APK_CERTS,
            });
        }
        if !self.apk_certs.windows(2).all(|w| w[0] < w[1]) {
            return Err(InvalidRecord::Invalid {
                field: "apk_certs",
                reason: "must be in increasing order, each once",
            });
        }
        if self.prev.is_some() && self.seq == 0 {
            return Err(InvalidRecord::Invalid {
                field: "seq",
                reason: "must be above 0",
            });
        }
        check_seq(self.seq, self.created_at)
    }

    /// The payload encoding.
    pub fn encode(&self) -> Vec<u8> {
        pb::Record {
            kind: Some(pb::record::Kind::Identity(self.into())),
        }
        .encode_to_vec()
    }

    /// Validates the document and signs it with `keys` (enough admins of the
    /// document it follows; the author's key for the first).
    pub fn sign(self, keys: &[&AuthorKey]) -> Result<SignedIdentity, InvalidRecord> {
        self.validate()?;
        let payload = Bytes::from(self.encode());
        let approvals: Vec<_> = keys.iter().map(|k| Approval::sign(k, &payload)).collect();
        let envelope = Envelope::new(payload, self.author.as_bytes(), approvals);
        check_size(&envelope)?;
        Ok(SignedIdentity::verified(envelope, self))
    }

    pub(crate) fn from_pb(
        i: pb::Identity,
        author: &mut AuthorCheck<'_>,
    ) -> Result<Self, InvalidRecord> {
        let keys = |field: &'static str, list: &[Bytes]| {
            list.iter()
                .map(|k| {
                    AuthorId::from_bytes(k)
                        .map_err(|_| invalid(field, "holds a key that is not a valid ed25519 key"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let prev = match i.prev.len() {
            0 => None,
            32 => Some(IdentityId(i.prev[..].try_into().expect("length checked"))),
            _ => return Err(invalid("prev", "must be empty or 32 bytes")),
        };
        let apk_certs = i
            .apk_certs
            .iter()
            .map(|c| {
                <[u8; 32]>::try_from(&c[..])
                    .map_err(|_| invalid("apk_certs", "must hold 32-byte hashes"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let identity = Self {
            author: author(&i.author).map_err(InvalidRecord::Author)?,
            prev,
            signers: keys("signers", &i.signers)?,
            threshold: i.threshold,
            admins: keys("admins", &i.admins)?,
            admin_threshold: i.admin_threshold,
            name: i.name,
            urls: i.urls,
            avatar: match i.avatar.is_empty() {
                true => None,
                false => Some(cid_from("avatar", &i.avatar)?),
            },
            apk_certs,
            created_at: i.created_at,
            seq: i.seq,
        };
        identity.validate()?;
        Ok(identity)
    }
}

fn invalid(field: &'static str, reason: &'static str) -> InvalidRecord {
    InvalidRecord::Invalid { field, reason }
}

/// 1 to [`MAX_IDENTITY_KEYS`] keys, increasing, and a threshold among them.
fn check_keys(
    field: &'static str,
    keys: &[AuthorId],
    threshold: u32,
    threshold_field: &'static str,
) -> Result<(), InvalidRecord> {
    if keys.is_empty() {
        return Err(invalid(field, "must name at least one key"));
    }
    if keys.len() > MAX_IDENTITY_KEYS {
        return Err(InvalidRecord::TooMany {
            field,
            count: keys.len(),
            max: MAX_IDENTITY_KEYS,
        });
    }
    if !keys.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()) {
        return Err(invalid(field, "must be in increasing order, each once"));
    }
    if threshold == 0 || threshold as usize > keys.len() {
        return Err(invalid(
            threshold_field,
            "must be between 1 and the number of keys",
        ));
    }
    Ok(())
}

impl From<&Identity> for pb::Identity {
    fn from(i: &Identity) -> Self {
        let keys = |list: &[AuthorId]| {
            list.iter()
                .map(|k| Bytes::copy_from_slice(k.as_bytes()))
                .collect()
        };
        Self {
            author: Bytes::copy_from_slice(i.author.as_bytes()),
            prev: i
                .prev
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .unwrap_or_default(),
            signers: keys(&i.signers),
            threshold: i.threshold,
            admins: keys(&i.admins),
            admin_threshold: i.admin_threshold,
            name: i.name.clone(),
            urls: i.urls.clone(),
            avatar: i.avatar.map(|c| c.to_bytes().into()).unwrap_or_default(),
            apk_certs: i
                .apk_certs
                .iter()
                .map(|c| Bytes::copy_from_slice(c))
                .collect(),
            created_at: i.created_at,
            seq: i.seq,
        }
    }
}

/// A verified identity document with its signatures. Verification checks
/// every signature; whether they are enough, and by the right keys, depends
/// on the document it follows ([`IdentityState`](crate::IdentityState)).
#[derive(Clone)]
pub struct SignedIdentity {
    envelope: Envelope,
    identity: Identity,
    id: RecordId,
}

impl SignedIdentity {
    pub(crate) fn verified(envelope: Envelope, identity: Identity) -> Self {
        let id = RecordId::of(&envelope.encode());
        Self {
            envelope,
            identity,
            id,
        }
    }

    /// The document.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The envelope's id (SHA-256 of its bytes), as for package records.
    pub fn id(&self) -> RecordId {
        self.id
    }

    /// The document's id: SHA-256 of its payload.
    pub fn identity_id(&self) -> IdentityId {
        IdentityId::of(&self.envelope.payload)
    }

    /// The exact signed payload.
    pub fn payload(&self) -> &[u8] {
        &self.envelope.payload
    }

    /// The signatures, by increasing key.
    pub fn approvals(&self) -> &[Approval] {
        &self.envelope.approvals
    }

    /// The canonical envelope encoding: what goes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.envelope.encode()
    }

    /// The same document with the signatures of both (one per key), or
    /// `None` when their payloads differ.
    pub fn merge(&self, other: &Self) -> Option<Self> {
        let author = self.identity.author.as_bytes();
        let envelope = self.envelope.merged(&other.envelope, author)?;
        Some(Self::verified(envelope, self.identity.clone()))
    }

    /// The same document with only the signatures `keep` accepts, or `None`
    /// when none is left.
    pub fn retain(&self, keep: impl FnMut(&[u8; 32]) -> bool) -> Option<Self> {
        let envelope = self
            .envelope
            .retained(self.identity.author.as_bytes(), keep)?;
        Some(Self::verified(envelope, self.identity.clone()))
    }

    /// The same document with `key`'s signature added.
    pub fn cosign(&self, key: &AuthorKey) -> Result<Self, InvalidRecord> {
        let envelope = self.envelope.cosigned(self.identity.author.as_bytes(), key);
        check_size(&envelope)?;
        Ok(Self::verified(envelope, self.identity.clone()))
    }
}

impl PartialEq for SignedIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for SignedIdentity {}

impl fmt::Debug for SignedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedIdentity")
            .field("id", &self.identity_id())
            .field("seq", &self.identity.seq)
            .field("approvals", &self.approvals())
            .finish()
    }
}

/// Serde helper: `Option<IdentityId>` as lower-case hex.
mod opt_identity_id {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::IdentityId;

    pub(super) fn serialize<S: Serializer>(
        v: &Option<IdentityId>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(id) => s.serialize_some(&id.to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<IdentityId>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&text, &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(Some(IdentityId(bytes)))
    }
}

/// Serde helper: a list of 32-byte hashes as lower-case hex strings.
pub(crate) mod hex32_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hex::encode))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(text, &mut bytes).map_err(serde::de::Error::custom)?;
                Ok(bytes)
            })
            .collect()
    }
}
