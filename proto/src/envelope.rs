//! The envelope of a signed record: the payload bytes and the signatures
//! that approve them, in one of two forms (`docs/records.md`, section 1.2).
//!
//! The *single* form (`payload`, `public_key`, `signature`) is version 1's
//! envelope: one signature, by the payload's author key. Every other set of
//! signatures (a key other than the author's, or several keys) travels in
//! the *multi* form (`payload`, `signatures`). Which form a set takes is
//! fixed, so one payload with one set of signatures has one encoding.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use prost::Message;

use crate::limits::{MAX_RECORD_BYTES, MAX_SIGNATURES};
use crate::{AuthorId, AuthorKey, ParseAuthorIdError, VerifyError, pb};

/// The domain-separation prefix: the signature covers these bytes followed
/// by the payload, so an IPSR signature cannot be replayed in another protocol.
pub const SIGNING_PREFIX: &[u8] = b"ipsr-record:v1:";

/// One key's signature over a payload: its approval of the record.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Approval {
    key: [u8; 32],
    signature: [u8; 64],
}

impl Approval {
    /// Signs `payload` with `key`.
    pub(crate) fn sign(key: &AuthorKey, payload: &[u8]) -> Self {
        Self {
            key: *key.author_id().as_bytes(),
            signature: key.signing_key().sign(&signing_input(payload)).to_bytes(),
        }
    }

    /// The signing key, raw.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The signing key as an author id (its `k51...` form). The key was
    /// checked when the envelope was verified.
    pub fn key_id(&self) -> AuthorId {
        AuthorId::from_checked(self.key)
    }

    /// The 64-byte signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}

impl fmt::Debug for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Approval({})", hex::encode(&self.key[..6]))
    }
}

/// `SIGNING_PREFIX || payload`: what every signature covers.
pub(crate) fn signing_input(payload: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(SIGNING_PREFIX.len() + payload.len());
    input.extend_from_slice(SIGNING_PREFIX);
    input.extend_from_slice(payload);
    input
}

/// How verification checks a key (as [`AuthorId::from_bytes`]) and gets it
/// decompressed: directly, or from a [`KeyCache`](crate::KeyCache).
pub(crate) type KeyCheck<'a> =
    dyn FnMut(&[u8]) -> Result<(AuthorId, VerifyingKey), ParseAuthorIdError> + 'a;

/// A payload and its approvals, by strictly increasing key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) payload: Bytes,
    pub(crate) approvals: Vec<Approval>,
    /// Whether it is (or, parsed, was written) in the single form.
    single: bool,
}

impl Envelope {
    /// Parses envelope bytes: the size before anything else, the lengths of
    /// keys and signatures, their order, and that `bytes` are the canonical
    /// encoding of what they hold. Whether the single form is used exactly
    /// when it must be is checked by [`check_form`](Self::check_form), once
    /// the payload's author is known.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(VerifyError::TooLarge {
                size: bytes.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let env =
            pb::SignedRecord::decode(bytes).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        let single = env.signatures.is_empty();
        let approvals = if single {
            vec![approval(&env.public_key, &env.signature)?]
        } else {
            if !env.public_key.is_empty() || !env.signature.is_empty() {
                return Err(VerifyError::NonCanonical("SignedRecord"));
            }
            if env.signatures.len() > MAX_SIGNATURES {
                return Err(VerifyError::Malformed(format!(
                    "{} signatures, over the limit of {MAX_SIGNATURES}",
                    env.signatures.len()
                )));
            }
            env.signatures
                .iter()
                .map(|s| approval(&s.public_key, &s.signature))
                .collect::<Result<Vec<_>, _>>()?
        };
        if !approvals.windows(2).all(|w| w[0].key < w[1].key) {
            return Err(VerifyError::NonCanonical("SignedRecord"));
        }
        // The form is taken from the bytes here; `check_form` decides
        // whether it was the right one.
        let envelope = Self {
            payload: env.payload,
            approvals,
            single,
        };
        if envelope.encode() != bytes {
            return Err(VerifyError::NonCanonical("SignedRecord"));
        }
        Ok(envelope)
    }

    /// The envelope of `payload`, a record by `author`, signed by
    /// `approvals` (any order, one per key: the smaller signature is kept
    /// when a key signed twice), in the form that set must take.
    pub(crate) fn new(
        payload: Bytes,
        author: &[u8; 32],
        approvals: impl IntoIterator<Item = Approval>,
    ) -> Self {
        let mut by_key = BTreeMap::new();
        for a in approvals {
            by_key
                .entry(a.key)
                .and_modify(|s: &mut [u8; 64]| *s = (*s).min(a.signature))
                .or_insert(a.signature);
        }
        let approvals: Vec<_> = by_key
            .into_iter()
            .map(|(key, signature)| Approval { key, signature })
            .collect();
        let single = matches!(&approvals[..], [only] if &only.key == author);
        Self {
            payload,
            approvals,
            single,
        }
    }

    /// The same payload signed by the approvals of both envelopes (one per
    /// key), or `None` when the payloads differ.
    pub(crate) fn merged(&self, other: &Self, author: &[u8; 32]) -> Option<Self> {
        (self.payload == other.payload).then(|| {
            let approvals = self.approvals.iter().chain(&other.approvals).copied();
            Self::new(self.payload.clone(), author, approvals)
        })
    }

    /// The same payload with only the approvals of keys `keep` accepts, or
    /// `None` when none is left.
    pub(crate) fn retained(
        &self,
        author: &[u8; 32],
        mut keep: impl FnMut(&[u8; 32]) -> bool,
    ) -> Option<Self> {
        let kept: Vec<_> = self
            .approvals
            .iter()
            .filter(|a| keep(&a.key))
            .copied()
            .collect();
        (!kept.is_empty()).then(|| Self::new(self.payload.clone(), author, kept))
    }

    /// The same payload with `key`'s approval added.
    pub(crate) fn cosigned(&self, author: &[u8; 32], key: &AuthorKey) -> Self {
        let added = Approval::sign(key, &self.payload);
        Self::new(
            self.payload.clone(),
            author,
            self.approvals.iter().copied().chain([added]),
        )
    }

    /// Whether this envelope takes the single form for a payload by `author`.
    fn is_single(&self, author: &[u8; 32]) -> bool {
        matches!(&self.approvals[..], [only] if &only.key == author)
    }

    /// The encoding: canonical once [`check_form`](Self::check_form) passed.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut env = pb::SignedRecord {
            payload: self.payload.clone(),
            ..Default::default()
        };
        match (self.single, &self.approvals[..]) {
            (true, [only]) => {
                env.public_key = Bytes::copy_from_slice(&only.key);
                env.signature = Bytes::copy_from_slice(&only.signature);
            }
            _ => {
                env.signatures = self
                    .approvals
                    .iter()
                    .map(|a| pb::Signature {
                        public_key: Bytes::copy_from_slice(&a.key),
                        signature: Bytes::copy_from_slice(&a.signature),
                    })
                    .collect();
            }
        }
        env.encode_to_vec()
    }

    /// Checks that a parsed envelope is in the form it must take for a
    /// payload by `author`: the single form exactly when the only signature
    /// is the author's.
    pub(crate) fn check_form(&self, author: &[u8; 32]) -> Result<(), VerifyError> {
        match (self.single, self.is_single(author)) {
            (true, true) | (false, false) => Ok(()),
            (true, false) => Err(VerifyError::KeyMismatch),
            (false, true) => Err(VerifyError::NonCanonical("SignedRecord")),
        }
    }

    /// Checks every key (a valid ed25519 point, not of small order) and
    /// every signature (strict RFC 8032 verification).
    pub(crate) fn verify_signatures(&self, keys: &mut KeyCheck<'_>) -> Result<(), VerifyError> {
        let input = signing_input(&self.payload);
        for a in &self.approvals {
            let (_, key) = keys(&a.key).map_err(|_| VerifyError::BadKey)?;
            key.verify_strict(&input, &Signature::from_bytes(&a.signature))
                .map_err(|_| VerifyError::BadSignature)?;
        }
        Ok(())
    }
}

fn approval(key: &[u8], signature: &[u8]) -> Result<Approval, VerifyError> {
    Ok(Approval {
        key: key.try_into().map_err(|_| VerifyError::BadKey)?,
        signature: signature
            .try_into()
            .map_err(|_| VerifyError::BadSignature)?,
    })
}
