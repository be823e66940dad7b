//! Records decoded from storage, by id, for the whole process: the node's
//! store and the indexer's Redis reads share them.
//!
//! A record's id is the hash of its bytes, so what is decoded under an id
//! never changes: a package read again (every uncached page or API view,
//! every new release checked against the earlier ones) reuses its decoded
//! records instead of decoding each again. Whether the record is still
//! stored is looked up each time all the same; only the decoding is saved.
//! A record is kept only under the id its bytes hash to, so storage that
//! holds other bytes under an id (a damaged store, a Redis someone wrote
//! into) never puts a wrong record in the cache: those bytes are decoded
//! every time.

use std::sync::LazyLock;

use ipsr_proto::{RecordId, SignedRecord};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// The most memory (by [`Size`]'s estimate) decoded records may take.
const CAPACITY_BYTES: u64 = 16 * 1024 * 1024;

/// An estimate of a decoded record's memory: its bytes, held twice (the
/// signed payload, and the fields decoded from it), and the allocations of
/// its fields.
#[derive(Debug, Clone, Copy)]
struct Size;

impl Weighter<RecordId, SignedRecord> for Size {
    fn weight(&self, _: &RecordId, record: &SignedRecord) -> u64 {
        2 * record.payload().len() as u64 + 512
    }
}

static DECODED: LazyLock<Cache<RecordId, SignedRecord, Size>> =
    LazyLock::new(|| Cache::with_weighter(8192, CAPACITY_BYTES, Size));

/// The record stored under `id` as `bytes`: the one decoded before under
/// that id, or what `decode` makes of `bytes` (then kept, if its id is
/// `id`).
pub fn get_or_decode<E>(
    id: RecordId,
    bytes: &[u8],
    decode: impl FnOnce(&[u8]) -> Result<SignedRecord, E>,
) -> Result<SignedRecord, E> {
    if let Some(record) = DECODED.get(&id) {
        return Ok(record);
    }
    let record = decode(bytes)?;
    if record.id() == id {
        DECODED.insert(id, record.clone());
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ipsr_proto::VerifyError;
    use ipsr_testkit::{key, release};

    use super::*;

    fn decode(bytes: &[u8]) -> Result<SignedRecord, VerifyError> {
        SignedRecord::from_trusted_storage(bytes)
    }

    #[test]
    fn a_record_is_decoded_once_and_kept_only_under_its_own_id() {
        let record = release(&key(41), "4.1.0").sign();
        let (id, bytes) = (record.id(), record.to_bytes());
        assert_eq!(get_or_decode(id, &bytes, decode).unwrap().id(), record.id());
        // Kept: the same id no longer needs its bytes decoded.
        let again = get_or_decode(id, b"not a record", decode).unwrap();
        assert_eq!(again.to_bytes(), bytes);
        // Bytes under another id (damaged storage) are decoded, never kept
        // under that id.
        let other = RecordId::from_bytes([0xee; 32]);
        assert_eq!(
            get_or_decode(other, &bytes, decode).unwrap().id(),
            record.id()
        );
        assert!(get_or_decode(other, b"not a record", decode).is_err());
    }
}
