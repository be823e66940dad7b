//! Messages of the `/ipsr/sync/1.0.0` catch-up protocol (see `docs/node.md`):
//! a node reconciles its set of held record ids with a peer's (negentropy),
//! then fetches the records it lacks.

use bytes::Bytes;
use prost::Message;

use crate::{RecordId, VerifyError, pb};

/// Most ids in one fetch request.
pub const MAX_FETCH_IDS: usize = 256;
/// Largest encoded sync request, in bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest encoded sync response, in bytes (a full batch of records of the
/// largest size fits).
pub const MAX_RESPONSE_BYTES: usize = MAX_FETCH_IDS * (crate::limits::MAX_RECORD_BYTES + 8) + 1024;

/// A sync request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRequest {
    /// A negentropy message from the initiator.
    Reconcile(Vec<u8>),
    /// Records wanted, at most [`MAX_FETCH_IDS`].
    Fetch(Vec<RecordId>),
}

/// A sync response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResponse {
    /// The responder's negentropy message.
    Reconcile(Vec<u8>),
    /// Signed records, unverified: the receiver verifies each.
    Records(Vec<Vec<u8>>),
    /// The request was refused.
    Error(String),
}

/// Why sync bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncDecodeError {
    /// Over the size limit.
    #[error("sync message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Not the schema, no kind, a bad id or too many ids.
    #[error("malformed sync message: {0}")]
    Malformed(String),
}

impl SyncRequest {
    /// The protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        let kind = match self {
            Self::Reconcile(msg) => pb::sync_request::Kind::Reconcile(Bytes::copy_from_slice(msg)),
            Self::Fetch(ids) => pb::sync_request::Kind::Fetch(pb::FetchRequest {
                ids: ids
                    .iter()
                    .map(|id| Bytes::copy_from_slice(id.as_bytes()))
                    .collect(),
            }),
        };
        pb::SyncRequest { kind: Some(kind) }.encode_to_vec()
    }

    /// Decodes and checks a request.
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncDecodeError> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(SyncDecodeError::TooLarge(bytes.len()));
        }
        let msg = pb::SyncRequest::decode(bytes).map_err(malformed)?;
        match msg
            .kind
            .ok_or_else(|| SyncDecodeError::Malformed("no kind".into()))?
        {
            pb::sync_request::Kind::Reconcile(m) => Ok(Self::Reconcile(m.to_vec())),
            pb::sync_request::Kind::Fetch(f) => {
                if f.ids.len() > MAX_FETCH_IDS {
                    return Err(SyncDecodeError::Malformed(format!("{} ids", f.ids.len())));
                }
                let ids = f
                    .ids
                    .iter()
                    .map(|id| {
                        <[u8; 32]>::try_from(&id[..])
                            .map(RecordId::from_bytes)
                            .map_err(|_| SyncDecodeError::Malformed("record id".into()))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Self::Fetch(ids))
            }
        }
    }
}

impl SyncResponse {
    /// The protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        let kind = match self {
            Self::Reconcile(msg) => pb::sync_response::Kind::Reconcile(Bytes::copy_from_slice(msg)),
            Self::Records(records) => pb::sync_response::Kind::Records(pb::RecordBatch {
                records: records.iter().map(|r| Bytes::copy_from_slice(r)).collect(),
            }),
            Self::Error(e) => pb::sync_response::Kind::Error(e.clone()),
        };
        pb::SyncResponse { kind: Some(kind) }.encode_to_vec()
    }

    /// Decodes and checks a response.
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncDecodeError> {
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(SyncDecodeError::TooLarge(bytes.len()));
        }
        let msg = pb::SyncResponse::decode(bytes).map_err(malformed)?;
        match msg
            .kind
            .ok_or_else(|| SyncDecodeError::Malformed("no kind".into()))?
        {
            pb::sync_response::Kind::Reconcile(m) => Ok(Self::Reconcile(m.to_vec())),
            pb::sync_response::Kind::Records(b) => {
                if b.records.len() > MAX_FETCH_IDS {
                    return Err(SyncDecodeError::Malformed(format!(
                        "{} records",
                        b.records.len()
                    )));
                }
                Ok(Self::Records(
                    b.records.into_iter().map(|r| r.to_vec()).collect(),
                ))
            }
            pb::sync_response::Kind::Error(e) => Ok(Self::Error(e)),
        }
    }
}

fn malformed(e: prost::DecodeError) -> SyncDecodeError {
    SyncDecodeError::Malformed(e.to_string())
}

impl From<SyncDecodeError> for VerifyError {
    fn from(e: SyncDecodeError) -> Self {
        VerifyError::Malformed(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn round_trips(msg in proptest::collection::vec(any::<u8>(), 0..100),
                       ids in proptest::collection::vec(any::<[u8; 32]>(), 0..MAX_FETCH_IDS),
                       records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..10)) {
            let ids: Vec<_> = ids.into_iter().map(RecordId::from_bytes).collect();
            for req in [SyncRequest::Reconcile(msg.clone()), SyncRequest::Fetch(ids)] {
                prop_assert_eq!(SyncRequest::decode(&req.encode()).unwrap(), req);
            }
            for resp in [SyncResponse::Reconcile(msg), SyncResponse::Records(records), SyncResponse::Error("x".into())] {
                prop_assert_eq!(SyncResponse::decode(&resp.encode()).unwrap(), resp);
            }
        }

        #[test]
        fn junk_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = SyncRequest::decode(&bytes);
            let _ = SyncResponse::decode(&bytes);
        }
    }

    #[test]
    fn limits() {
        let ids = vec![RecordId::from_bytes([0; 32]); MAX_FETCH_IDS + 1];
        assert!(SyncRequest::decode(&SyncRequest::Fetch(ids).encode()).is_err());
        assert!(SyncRequest::decode(&vec![0; MAX_REQUEST_BYTES + 1]).is_err());
        let bad_id = pb::SyncRequest {
            kind: Some(pb::sync_request::Kind::Fetch(pb::FetchRequest {
                ids: vec![Bytes::from_static(&[1, 2])],
            })),
        };
        assert!(SyncRequest::decode(&bad_id.encode_to_vec()).is_err());
        assert!(SyncRequest::decode(&[]).is_err(), "no kind");
    }
}
