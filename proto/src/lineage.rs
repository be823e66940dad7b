//! The chain of an author's identity documents (`docs/records.md`, section
//! 8), as a pure state machine: which documents are authorized, which one is
//! in force (the head), and where the chain forks.

use std::collections::BTreeMap;

use crate::identity::{Authority, Identity, IdentityId, SignedIdentity};
use crate::limits::MAX_IDENTITY_DOCS;
use crate::{AuthorId, ForeignRecord, RecordId};

/// What applying an identity document did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityChange {
    /// A new authorized document: now held.
    New,
    /// More signatures for a held document: the held envelope is replaced.
    Merged {
        /// The envelope it replaced.
        previous: RecordId,
    },
    /// Already held, with these signatures.
    Duplicate,
    /// The document it follows is not held (yet): not kept. It is
    /// authorized once that one arrives and it is applied again.
    Orphan,
    /// Not signed by enough admins of the document it follows, or its `seq`
    /// is not above that one's: never valid.
    Unauthorized,
    /// The author already has [`MAX_IDENTITY_DOCS`] documents: not kept.
    Full,
}

impl IdentityChange {
    /// Whether the document (or more of its signatures) is now held: news
    /// to store and pass on.
    pub fn is_kept(&self) -> bool {
        matches!(self, Self::New | Self::Merged { .. })
    }
}

/// What [`IdentityState::apply`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityApplied {
    /// What happened to the document.
    pub change: IdentityChange,
    /// Whether the document in force changed: the author's releases and
    /// yanks must be looked at again under the new [`Authority`].
    pub head_moved: bool,
}

/// Every authorized identity document of one author, and the one in force.
///
/// A document is *authorized* when the one it follows is (the implicit
/// document for the first) and it carries signatures of at least that one's
/// `admin_threshold` of its admins, with a higher `seq`. Other signatures
/// are dropped. The head is found by walking from the implicit document:
/// among the authorized documents following the current one, take the one
/// signed by the most of the current one's admins, then the highest `seq`,
/// then the greatest [`IdentityId`]. The state after applying a set of
/// documents is the same whatever their order, as long as each document is
/// applied again after the one it follows arrived (documents in `seq`
/// order always are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityState {
    author: AuthorId,
    docs: BTreeMap<IdentityId, SignedIdentity>,
    /// From the first document to the head.
    chain: Vec<IdentityId>,
}

impl IdentityState {
    /// The state of an author without documents: the implicit one is in force.
    pub fn new(author: AuthorId) -> Self {
        Self {
            author,
            docs: BTreeMap::new(),
            chain: Vec::new(),
        }
    }

    /// The state holding `docs` (saved authorized documents), in any order.
    pub fn from_docs(
        author: AuthorId,
        docs: impl IntoIterator<Item = SignedIdentity>,
    ) -> Result<Self, ForeignRecord> {
        let mut docs: Vec<_> = docs.into_iter().collect();
        docs.sort_by_key(|d| d.identity().seq);
        let mut state = Self::new(author);
        for doc in docs {
            state.apply(doc)?;
        }
        Ok(state)
    }

    /// The author.
    pub fn author(&self) -> &AuthorId {
        &self.author
    }

    /// The document in force, `None` while the implicit one is.
    pub fn head(&self) -> Option<&SignedIdentity> {
        self.chain.last().and_then(|id| self.docs.get(id))
    }

    /// The identity in force: the head's, or the implicit one.
    pub fn identity(&self) -> Identity {
        self.head()
            .map(|d| d.identity().clone())
            .unwrap_or_else(|| Identity::implicit(self.author))
    }

    /// Who signs releases and yanks now.
    pub fn authority(&self) -> Authority {
        self.identity().authority()
    }

    /// The documents from the first to the head.
    pub fn chain(&self) -> impl Iterator<Item = &SignedIdentity> {
        self.chain.iter().filter_map(|id| self.docs.get(id))
    }

    /// Every authorized document held, by id.
    pub fn docs(&self) -> impl Iterator<Item = &SignedIdentity> {
        self.docs.values()
    }

    /// Documents on the chain (or the implicit one, `None`) followed by
    /// more than one authorized document: someone holding enough admin keys
    /// signed two different successors. Pages show the identity as disputed.
    pub fn forks(&self) -> Vec<Option<IdentityId>> {
        let mut parents: Vec<Option<IdentityId>> = vec![None];
        parents.extend(self.chain.iter().map(|id| Some(*id)));
        parents
            .into_iter()
            .filter(|p| self.children(*p).count() > 1)
            .collect()
    }

    /// Folds one verified document into the state.
    pub fn apply(&mut self, doc: SignedIdentity) -> Result<IdentityApplied, ForeignRecord> {
        if doc.identity().author != self.author {
            return Err(ForeignRecord);
        }
        let change = self.insert(doc);
        let before = std::mem::take(&mut self.chain);
        self.chain = self.walk();
        Ok(IdentityApplied {
            change,
            head_moved: before.last() != self.chain.last(),
        })
    }

    fn insert(&mut self, doc: SignedIdentity) -> IdentityChange {
        let parent = match doc.identity().prev {
            None => Identity::implicit(self.author),
            Some(prev) => match self.docs.get(&prev) {
                Some(p) => p.identity().clone(),
                None => return IdentityChange::Orphan,
            },
        };
        let admins = parent.admin_authority();
        let Some(doc) = doc.retain(|k| admins.is_signer(k)) else {
            return IdentityChange::Unauthorized;
        };
        if doc.identity().seq <= parent.seq || !admins.is_met(doc.approvals()) {
            return IdentityChange::Unauthorized;
        }
        let id = doc.identity_id();
        match self.docs.get(&id) {
            Some(held) => {
                let merged = held.merge(&doc).unwrap_or_else(|| held.clone());
                if merged == *held {
                    return IdentityChange::Duplicate;
                }
                let previous = held.id();
                self.docs.insert(id, merged);
                IdentityChange::Merged { previous }
            }
            None if self.docs.len() >= MAX_IDENTITY_DOCS => IdentityChange::Full,
            None => {
                self.docs.insert(id, doc);
                IdentityChange::New
            }
        }
    }

    /// The authorized documents that follow `parent` (`None`: the implicit one).
    fn children(&self, parent: Option<IdentityId>) -> impl Iterator<Item = &SignedIdentity> {
        self.docs
            .values()
            .filter(move |d| d.identity().prev == parent)
    }

    /// The chain from the implicit document, taking the best successor at
    /// each step. Every held document was authorized by its parent, and
    /// `seq` grows along the chain, so the walk ends.
    fn walk(&self) -> Vec<IdentityId> {
        let mut chain = Vec::new();
        let mut at = None;
        while let Some(next) = self.children(at).max_by(|a, b| {
            // Held envelopes carry only the parent's admins' signatures.
            (a.approvals().len(), a.identity().seq, a.identity_id()).cmp(&(
                b.approvals().len(),
                b.identity().seq,
                b.identity_id(),
            ))
        }) {
            let id = next.identity_id();
            chain.push(id);
            at = Some(id);
        }
        chain
    }
}

/// The Kademlia key of an author's identity (`docs/records.md`, section 8.3):
/// `"/ipsr/identity/1/" ‖ author (32 bytes)`.
pub fn identity_dht_key(author: &AuthorId) -> Vec<u8> {
    let mut key = b"/ipsr/identity/1/".to_vec();
    key.extend_from_slice(author.as_bytes());
    key
}

impl IdentityState {
    /// The value a node stores in the DHT under [`identity_dht_key`]: the
    /// chain's documents, first to head, as a `RecordBatch` of their signed
    /// envelopes, dropping the first ones when the whole chain would exceed
    /// [`MAX_RECORD_BYTES`](crate::limits::MAX_RECORD_BYTES). `None` for an
    /// author without documents.
    pub fn dht_value(&self) -> Option<Vec<u8>> {
        use prost::Message;
        let chain: Vec<bytes::Bytes> = self.chain().map(|d| d.to_bytes().into()).collect();
        for start in 0..chain.len() {
            let value = crate::pb::RecordBatch {
                records: chain[start..].to_vec(),
            }
            .encode_to_vec();
            if value.len() <= crate::limits::MAX_RECORD_BYTES {
                return Some(value);
            }
        }
        None
    }
}

/// The signed envelopes in a value stored under [`identity_dht_key`]
/// (each still to be verified); `None` when the bytes are not a
/// `RecordBatch` in its canonical encoding or are too large.
pub fn identity_dht_envelopes(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    use prost::Message;
    if value.len() > crate::limits::MAX_RECORD_BYTES {
        return None;
    }
    let batch = crate::pb::RecordBatch::decode(value).ok()?;
    (batch.encode_to_vec() == value).then(|| batch.records.iter().map(|r| r.to_vec()).collect())
}
