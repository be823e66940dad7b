//! IPSR's records in the Kademlia DHT (`docs/node.md`, "DHT"): which values
//! a node accepts under which key, and what it keeps of them.
//!
//! A release's current record (release or yank) is stored under the
//! release's key, and the package's newest release under the package's key
//! (the keys are defined in `ipsr-proto`: `ReleaseKey::dht_key`,
//! `PackageKey::dht_key`). Inbound puts are validated by the application
//! (kad runs with `StoreInserts::FilterBoth`): a value must be a signed
//! record that verifies and that belongs under the key it was put under.
//! A valid one is applied to the store like any record, and the DHT keeps
//! *this node's* best value for that key, which may be newer than the one
//! put.
//!
//! The rules ([`check_value`], [`of_package`]) are pure; [`keep`] and
//! [`found`] apply them against the store and block (run them off the
//! event loop).

use ipsr_proto::{
    AuthorId, PackageKey, Record, Signed, SignedIdentity, SignedRecord, VerifyError,
    identity_dht_envelopes, identity_dht_key,
};

use crate::store::{Store, StoreError};

/// Why an inbound DHT value was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhtValueError {
    /// The value is not a signed record that verifies.
    #[error("invalid DHT value: {0}")]
    Invalid(#[from] VerifyError),
    /// The record belongs under another key than the one it was put under.
    #[error("DHT value stored under another key")]
    OtherKey,
    /// A yank was put under a package key, which holds the newest release.
    #[error("a yank under a package key")]
    YankUnderPackageKey,
    /// A value under an identity key that is not a batch of the author's
    /// identity documents.
    #[error("not the author's identity documents")]
    NotIdentity,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Which of its keys a record was put under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// The key of its release.
    Release,
    /// The key of its package (only a release record may be there).
    Package,
}

/// The rule for an inbound value: `value` must be a signed record that
/// verifies, put under its own release key, or, for a release (not a
/// yank), under its package key.
pub(crate) fn check_value(
    under: &[u8],
    value: &[u8],
) -> Result<(SignedRecord, Placement), DhtValueError> {
    let signed = SignedRecord::from_bytes(value)?.verify()?;
    let key = signed.release_key();
    let placement = if under == key.dht_key().as_slice() {
        Placement::Release
    } else if under == key.package_key().dht_key().as_slice() {
        Placement::Package
    } else {
        return Err(DhtValueError::OtherKey);
    };
    if placement == Placement::Package && !matches!(signed.record(), Record::Release(_)) {
        return Err(DhtValueError::YankUnderPackageKey);
    }
    Ok((signed, placement))
}

/// The identity documents of `author` in a value stored under its identity
/// key ([`identity_dht_key`]), verified, in `seq` order (so each follows
/// the one before it).
pub(crate) fn identity_docs(
    author: &AuthorId,
    value: &[u8],
) -> Result<Vec<SignedIdentity>, DhtValueError> {
    let envelopes = identity_dht_envelopes(value).ok_or(DhtValueError::NotIdentity)?;
    let mut docs = Vec::with_capacity(envelopes.len());
    for bytes in envelopes {
        match SignedRecord::from_bytes(&bytes)?.verify_any()? {
            Signed::Identity(d) if d.identity().author == *author => docs.push(d),
            _ => return Err(DhtValueError::NotIdentity),
        }
    }
    docs.sort_by_key(|d| d.identity().seq);
    Ok(docs)
}

/// The author whose identity key `under` is, if it is one.
fn identity_key_author(under: &[u8]) -> Option<AuthorId> {
    let rest = under.strip_prefix(b"/ipsr/identity/1/".as_slice())?;
    let author = AuthorId::from_bytes(rest).ok()?;
    (identity_dht_key(&author) == under).then_some(author)
}

/// Stores the identity documents found under `author`'s identity key
/// (values that do not verify are dropped); returns the highest log
/// position written. Blocks.
pub(crate) fn found_identity(
    store: &Store,
    author: &AuthorId,
    values: Vec<Vec<u8>>,
) -> Result<Option<u64>, StoreError> {
    let mut docs: Vec<SignedIdentity> = values
        .iter()
        .filter_map(|v| identity_docs(author, v).ok())
        .flatten()
        .collect();
    docs.sort_by_key(|d| d.identity().seq);
    Ok(store
        .apply_signed(docs.into_iter().map(Signed::Identity).collect())?
        .iter()
        .filter_map(|s| s.position)
        .max())
}

/// Of the values a DHT get for `key` found, the records that verify and
/// belong to that package; the rest are dropped.
pub(crate) fn of_package(key: &PackageKey, found: Vec<Vec<u8>>) -> Vec<SignedRecord> {
    let mut valid = Vec::new();
    for bytes in found {
        match SignedRecord::from_bytes(&bytes).and_then(|r| r.verify()) {
            Ok(r) if r.record().package_key() == *key => valid.push(r),
            Ok(_) => tracing::debug!("DHT value for another package"),
            Err(e) => tracing::debug!(error = %e, "invalid DHT value"),
        }
    }
    valid
}

/// What storing a DHT put left: the value to keep in the DHT store
/// (`None`: none), how many of its records were new to the store, and the
/// highest log position they were written at.
#[derive(Debug)]
pub(crate) struct Kept {
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) news: usize,
    pub(crate) head: Option<u64>,
}

/// Checks an inbound value put under `under` ([`check_value`]), stores the
/// record (or identity documents), and returns what this node serves under
/// that key (its best value, `None` when it holds nothing for it) and what
/// the store took. Blocks.
pub(crate) fn keep(store: &Store, under: &[u8], value: &[u8]) -> Result<Kept, DhtValueError> {
    let kept = |stored: &[crate::store::Stored], value| Kept {
        value,
        news: stored.iter().filter(|s| s.is_news()).count(),
        head: stored.iter().filter_map(|s| s.position).max(),
    };
    if let Some(author) = identity_key_author(under) {
        let docs = identity_docs(&author, value)?;
        let stored = store.apply_signed(docs.into_iter().map(Signed::Identity).collect())?;
        return Ok(kept(&stored, store.identity(&author)?.dht_value()));
    }
    let (signed, _) = check_value(under, value)?;
    let key = signed.release_key();
    let stored = store.apply(vec![signed])?;
    let value = store
        .dht_values(&key)?
        .into_iter()
        .find(|(k, _)| k.as_slice() == under)
        .map(|(_, v)| v);
    Ok(kept(&stored, value))
}

/// What a DHT get found, once stored: the package's newest release, and the
/// highest log position the found records were written at.
pub(crate) type Found = (Option<SignedRecord>, Option<u64>);

/// Stores the valid records a DHT get for `key` found ([`of_package`]) and
/// returns the package's newest release (also when it was known before) and
/// the highest log position written. Blocks.
pub(crate) fn found(
    store: &Store,
    key: &PackageKey,
    values: Vec<Vec<u8>>,
) -> Result<Found, StoreError> {
    let head = store
        .apply(of_package(key, values))?
        .iter()
        .filter_map(|s| s.position)
        .max();
    let newest = store.package(key)?.and_then(|p| p.newest().cloned());
    Ok((newest, head))
}

#[cfg(test)]
mod tests {
    use ipsr_proto::AuthorKey;
    use ipsr_testkit::{release, yank};

    use super::*;

    #[test]
    fn a_release_is_accepted_under_its_release_and_its_package_key() {
        let key = AuthorKey::from_seed(&[1; 32]);
        let r = release(&key, "1.0.0").sign();
        let rk = r.release_key();
        let (got, at) = check_value(&rk.dht_key(), &r.to_bytes()).unwrap();
        assert_eq!((got.id(), at), (r.id(), Placement::Release));
        let (_, at) = check_value(&rk.package_key().dht_key(), &r.to_bytes()).unwrap();
        assert_eq!(at, Placement::Package);
    }

    #[test]
    fn a_yank_is_accepted_only_under_its_release_key() {
        let key = AuthorKey::from_seed(&[1; 32]);
        let y = yank(&key, "1.0.0").sign();
        let rk = y.release_key();
        assert_eq!(
            check_value(&rk.dht_key(), &y.to_bytes()).unwrap().1,
            Placement::Release
        );
        assert!(matches!(
            check_value(&rk.package_key().dht_key(), &y.to_bytes()),
            Err(DhtValueError::YankUnderPackageKey)
        ));
    }

    #[test]
    fn a_value_under_another_key_is_refused() {
        let key = AuthorKey::from_seed(&[1; 32]);
        let r = release(&key, "1.0.0").sign();
        let other = release(&key, "1.0.0").package("com.example.other").sign();
        // Another release's key, another package's key, another version's.
        for under in [
            other.release_key().dht_key(),
            other.release_key().package_key().dht_key(),
            release(&key, "2.0.0").sign().release_key().dht_key(),
            b"/ipsr/release/1/".to_vec(),
        ] {
            assert!(
                matches!(
                    check_value(&under, &r.to_bytes()),
                    Err(DhtValueError::OtherKey)
                ),
                "accepted under {under:?}"
            );
        }
    }

    #[test]
    fn a_value_that_does_not_verify_is_refused() {
        let key = AuthorKey::from_seed(&[1; 32]);
        let r = release(&key, "1.0.0").sign();
        let under = r.release_key().dht_key();
        let mut bytes = r.to_bytes();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(
            check_value(&under, &bytes),
            Err(DhtValueError::Invalid(_))
        ));
        assert!(matches!(
            check_value(&under, b"not a record"),
            Err(DhtValueError::Invalid(_))
        ));
    }

    #[test]
    fn a_get_keeps_only_valid_records_of_its_package() {
        let key = AuthorKey::from_seed(&[1; 32]);
        let mine = release(&key, "1.0.0").sign();
        let newer = release(&key, "1.1.0").sign();
        let other = release(&key, "1.0.0").package("com.example.other").sign();
        let package = mine.release_key().package_key();
        let kept = of_package(
            &package,
            vec![
                mine.to_bytes(),
                other.to_bytes(),
                b"garbage".to_vec(),
                newer.to_bytes(),
            ],
        );
        let ids: Vec<_> = kept.iter().map(SignedRecord::id).collect();
        assert_eq!(ids, vec![mine.id(), newer.id()]);
    }

    #[test]
    fn keep_stores_the_record_and_serves_the_newest_under_the_package_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let key = AuthorKey::from_seed(&[1; 32]);
        let newer = release(&key, "2.0.0").sign();
        let older = release(&key, "1.0.0").sign();
        let package = newer.release_key().package_key().dht_key();
        let kept = keep(&store, &package, &newer.to_bytes()).unwrap();
        assert_eq!(kept.value, Some(newer.to_bytes()));
        assert_eq!(kept.news, 1);
        assert!(kept.head.is_some());
        // An older release put under the package key is stored, but the
        // DHT keeps serving this node's best value there.
        let kept = keep(&store, &package, &older.to_bytes()).unwrap();
        assert_eq!(kept.value, Some(newer.to_bytes()));
        assert_eq!(kept.news, 1);
        // The same put again: nothing new.
        let again = keep(&store, &package, &older.to_bytes()).unwrap();
        assert_eq!((again.news, again.head), (0, None));
        assert!(store.record(&older.id()).unwrap().is_some());
        assert!(matches!(
            keep(&store, b"elsewhere", &older.to_bytes()),
            Err(DhtValueError::OtherKey)
        ));
    }

    #[test]
    fn identity_values_hold_only_the_keys_authors_documents() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let main = AuthorKey::from_seed(&[1; 32]);
        let other = AuthorKey::from_seed(&[2; 32]);
        let doc = |key: &AuthorKey| {
            ipsr_proto::Identity {
                created_at: 5,
                seq: 5,
                ..ipsr_proto::Identity::implicit(key.author_id())
            }
            .sign(&[key])
            .unwrap()
        };
        let batch = |items: Vec<Vec<u8>>| {
            // A RecordBatch by hand: field 1, length-delimited, per item.
            let mut out = Vec::new();
            for item in items {
                out.push(0x0a);
                let mut len = item.len();
                while len >= 0x80 {
                    out.push((len as u8 & 0x7f) | 0x80);
                    len >>= 7;
                }
                out.push(len as u8);
                out.extend_from_slice(&item);
            }
            out
        };
        let under = identity_dht_key(&main.author_id());
        let good = doc(&main);
        let served = keep(&store, &under, &batch(vec![good.to_bytes()])).unwrap();
        assert_eq!(
            served.value,
            store.identity(&main.author_id()).unwrap().dht_value()
        );
        assert_eq!(
            store.identity(&main.author_id()).unwrap().head(),
            Some(&good)
        );
        // Another author's document, a package record, garbage, too many
        // bytes: refused, nothing stored.
        let refused = [
            batch(vec![doc(&other).to_bytes()]),
            batch(vec![release(&main, "1.0.0").sign().to_bytes()]),
            vec![0xff, 0xff],
            batch(vec![good.to_bytes(); 60]),
        ];
        for value in refused {
            assert!(matches!(
                keep(&store, &under, &value),
                Err(DhtValueError::NotIdentity | DhtValueError::Invalid(_))
            ));
        }
        assert_eq!(store.identity(&other.author_id()).unwrap().head(), None);
        assert!(matches!(
            keep(
                &store,
                b"/ipsr/identity/1/short",
                &batch(vec![good.to_bytes()])
            ),
            Err(DhtValueError::Invalid(_) | DhtValueError::OtherKey)
        ));
    }
}
