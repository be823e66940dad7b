//! `/ipsr/sync/1.0.0`: catch-up by range-based set reconciliation.
//!
//! Gossip only carries new messages, so a node that was offline or joins
//! late pulls what it missed from each peer it connects to (and from a
//! rotating peer now and then): it reconciles its set of held record ids
//! with the peer's using negentropy, whose cost grows with the difference,
//! not the whole set, then fetches the records it lacks in bounded batches,
//! verifies each and stores them. Wire format: `docs/node.md`.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ipsr_proto::sync::{
    MAX_FETCH_IDS, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, SyncRequest, SyncResponse,
};
use ipsr_proto::{RecordId, Signed, SignedRecord, VerifyError};
use libp2p::{PeerId, StreamProtocol, request_response};
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, StoreError};

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/ipsr/sync/1.0.0");
/// The negentropy frame size limit: each reconcile message stays under it.
pub(crate) const FRAME_LIMIT: u64 = 60_000;
/// Most reconciliation rounds in one session.
pub(crate) const MAX_ROUNDS: usize = 64;
/// Most bytes of records in one fetch response.
const MAX_BATCH_BYTES: usize = MAX_RESPONSE_BYTES - 4096;

/// The request-response codec: each message is a 4-byte big-endian length
/// followed by the protobuf encoding, size-checked before it is read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Codec;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "sync message over the limit",
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "sync message too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        SyncRequest::decode(&read_frame(io, MAX_REQUEST_BYTES).await?).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        SyncResponse::decode(&read_frame(io, MAX_RESPONSE_BYTES).await?).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req.encode()).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        resp: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &resp.encode()).await
    }
}

/// The node's set of held records as negentropy items, rebuilt only when the
/// log head moved (every change of the set appends to the log).
#[derive(Debug, Default)]
pub(crate) struct Items {
    cached: Mutex<Option<(u64, Arc<NegentropyStorageVector>)>>,
}

impl Items {
    /// The current items: (created_at, record id), sealed.
    pub(crate) fn get(&self, store: &Store) -> Result<Arc<NegentropyStorageVector>, SyncError> {
        let head = store.stats()?.log_head;
        let mut cached = self.cached.lock().map_err(|_| SyncError::Poisoned)?;
        if let Some((at, items)) = cached.as_ref()
            && *at == head
        {
            return Ok(items.clone());
        }
        let items = Arc::new(storage(store.record_ids()?)?);
        *cached = Some((head, items.clone()));
        Ok(items)
    }
}

fn storage(ids: Vec<(u64, RecordId)>) -> Result<NegentropyStorageVector, SyncError> {
    let mut storage = NegentropyStorageVector::with_capacity(ids.len());
    for (created_at, id) in ids {
        storage.insert(created_at, Id::from_byte_array(*id.as_bytes()))?;
    }
    storage.seal()?;
    Ok(storage)
}

/// An error of a sync session or of answering one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The reconciliation failed (a malformed or hostile message).
    #[error("negentropy: {0:?}")]
    Negentropy(negentropy::Error),
    /// The peer answered with an error (its words).
    #[error("peer: {0}")]
    Remote(String),
    /// The request got no answer (timeout, dial failure, closed stream).
    #[error("request failed: {0}")]
    Request(#[from] request_response::OutboundFailure),
    /// The peer answered with the wrong kind of message.
    #[error("peer: expected {0}")]
    Unexpected(&'static str),
    /// The peer sent a record that was not asked for.
    #[error("peer: sent a record that was not asked for")]
    NotAsked,
    /// The peer sent a record that does not verify.
    #[error("peer sent an invalid record: {0}")]
    InvalidRecord(#[from] ipsr_proto::VerifyError),
    /// Too many rounds.
    #[error("reconciliation did not finish in {MAX_ROUNDS} rounds")]
    TooManyRounds,
    /// The node stopped or a lock was poisoned.
    #[error("the node stopped")]
    Poisoned,
}

impl From<negentropy::Error> for SyncError {
    fn from(e: negentropy::Error) -> Self {
        Self::Negentropy(e)
    }
}

/// Answers one request (blocking: store reads).
pub(crate) fn answer(store: &Store, items: &Items, request: SyncRequest) -> SyncResponse {
    let result = match request {
        SyncRequest::Reconcile(msg) => items.get(store).and_then(|items| {
            let mut neg = Negentropy::borrowed(items.as_ref(), FRAME_LIMIT)?;
            Ok(SyncResponse::Reconcile(neg.reconcile(&msg)?))
        }),
        SyncRequest::Fetch(ids) => fetch(&ids, |ids| store.record_bytes(ids)),
    };
    result.unwrap_or_else(|e| SyncResponse::Error(e.to_string()))
}

/// Answers a fetch of `ids` with the records `read` finds: each distinct id
/// once (a request that names one id many times reads it once and gets it
/// once), in the order first asked, up to [`MAX_BATCH_BYTES`].
fn fetch(
    ids: &[RecordId],
    read: impl FnOnce(&[RecordId]) -> Result<Vec<Vec<u8>>, StoreError>,
) -> Result<SyncResponse, SyncError> {
    let mut seen = HashSet::with_capacity(ids.len());
    let distinct: Vec<RecordId> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    let mut records = read(&distinct)?;
    let mut total = 0;
    records.retain(|r| {
        total += r.len() + 8;
        total <= MAX_BATCH_BYTES
    });
    Ok(SyncResponse::Records(records))
}

/// A request to send to a peer, with where to put the answer.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) peer: PeerId,
    pub(crate) request: SyncRequest,
    pub(crate) reply: oneshot::Sender<Result<SyncResponse, request_response::OutboundFailure>>,
}

/// What one session brought.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    /// Reconciliation rounds.
    pub rounds: usize,
    /// Records the peer had that this node lacked.
    pub fetched: usize,
    /// Of those, records this node kept (new to it).
    pub kept: usize,
    /// Records this node has that the peer lacks (the peer pulls them).
    pub peer_lacks: usize,
    /// Records fetched that were from over an hour ahead of this node's
    /// clock: not kept, and no fault of the peer (this node's clock may be
    /// the one behind); a later session fetches them again.
    pub early: usize,
}

/// How a sync session ended: what it brought and stored, and its error if
/// it failed. A session stores what it fetches a batch at a time, so one
/// that fails part way has kept the batches before: they are in `report`
/// and `head` all the same.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) report: SyncReport,
    /// The highest log position a record of the session was written at.
    pub(crate) head: Option<u64>,
    pub(crate) result: Result<(), SyncError>,
}

/// Runs one sync session with `peer`: reconcile, then fetch and store what
/// is missing.
pub(crate) async fn session(peer: PeerId, store: Arc<Store>, calls: mpsc::Sender<Call>) -> Outcome {
    let mut report = SyncReport::default();
    let mut head = None;
    let result = run_session(peer, store, calls, &mut report, &mut head).await;
    Outcome {
        report,
        head,
        result,
    }
}

/// [`session`]'s steps, recording what it stored in `report` and `head`
/// as it goes.
async fn run_session(
    peer: PeerId,
    store: Arc<Store>,
    calls: mpsc::Sender<Call>,
    report: &mut SyncReport,
    head: &mut Option<u64>,
) -> Result<(), SyncError> {
    let call = |request| {
        let calls = calls.clone();
        async move {
            let (reply, rx) = oneshot::channel();
            calls
                .send(Call {
                    peer,
                    request,
                    reply,
                })
                .await
                .map_err(|_| SyncError::Poisoned)?;
            match rx.await.map_err(|_| SyncError::Poisoned)?? {
                SyncResponse::Error(e) => Err(SyncError::Remote(e)),
                response => Ok(response),
            }
        }
    };
    let mine = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.record_ids())
            .await
            .map_err(|_| SyncError::Poisoned)??
    };
    let mut neg = Negentropy::owned(storage(mine)?, FRAME_LIMIT)?;
    let mut msg = neg.initiate()?;
    let (mut have, mut need) = (Vec::new(), Vec::new());
    loop {
        report.rounds += 1;
        if report.rounds > MAX_ROUNDS {
            return Err(SyncError::TooManyRounds);
        }
        let SyncResponse::Reconcile(answer) = call(SyncRequest::Reconcile(msg)).await? else {
            return Err(SyncError::Unexpected("a reconcile message"));
        };
        match neg.reconcile_with_ids(&answer, &mut have, &mut need)? {
            Some(next) => msg = next,
            None => break,
        }
    }
    report.peer_lacks = have.len();
    for chunk in need.chunks(MAX_FETCH_IDS) {
        let ids: Vec<RecordId> = chunk
            .iter()
            .map(|id| RecordId::from_bytes(id.to_bytes()))
            .collect();
        let SyncResponse::Records(records) = call(SyncRequest::Fetch(ids.clone())).await? else {
            return Err(SyncError::Unexpected("records"));
        };
        report.fetched += records.len();
        let store = store.clone();
        let (kept, early, last) = tokio::task::spawn_blocking(move || -> Result<_, SyncError> {
            let mut verified = Vec::with_capacity(records.len());
            let mut early = 0;
            for bytes in records {
                let record = match SignedRecord::from_bytes(&bytes)?.verify_any() {
                    Ok(record) => record,
                    // Parsed, so canonical: its bytes name it.
                    Err(VerifyError::FromFuture { .. }) => {
                        if !ids.contains(&RecordId::of(&bytes)) {
                            return Err(SyncError::NotAsked);
                        }
                        early += 1;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if !ids.contains(&record.id()) {
                    return Err(SyncError::NotAsked);
                }
                verified.push(record);
            }
            // Identity documents first, along their chains: the records
            // they authorize then count in the same batch.
            verified.sort_by_key(|s| match s {
                Signed::Identity(d) => (0, d.identity().seq),
                Signed::Record(_) => (1, 0),
            });
            let stored = store.apply_signed(verified)?;
            let kept = stored.iter().filter(|s| s.is_news()).count();
            Ok((kept, early, stored.iter().filter_map(|s| s.position).max()))
        })
        .await
        .map_err(|_| SyncError::Poisoned)??;
        report.kept += kept;
        report.early += early;
        *head = (*head).max(last);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipsr_proto::limits::MAX_CLOCK_SKEW_MS;
    use ipsr_testkit::{key, release};

    #[test]
    fn a_fetch_naming_one_id_many_times_reads_it_once_and_answers_it_once() {
        let (id, other) = (RecordId::from_bytes([7; 32]), RecordId::from_bytes([8; 32]));
        let mut reads = Vec::new();
        let response = fetch(&[id; MAX_FETCH_IDS], |ids| {
            reads.push(ids.to_vec());
            Ok(vec![b"record".to_vec(); ids.len()])
        })
        .unwrap();
        assert_eq!(reads, vec![vec![id]], "one read of one id");
        assert_eq!(response, SyncResponse::Records(vec![b"record".to_vec()]));
        // Distinct ids are read in the order first asked.
        reads.clear();
        fetch(&[other, id, other, id], |ids| {
            reads.push(ids.to_vec());
            Ok(Vec::new())
        })
        .unwrap();
        assert_eq!(reads, vec![vec![other, id]]);
    }

    #[test]
    fn a_store_answers_a_repeated_id_with_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let record = release(&key(1), "1.0.0").sign();
        store.apply(vec![record.clone()]).unwrap();
        let request = SyncRequest::Fetch(vec![record.id(); MAX_FETCH_IDS]);
        assert_eq!(
            answer(&store, &Items::default(), request),
            SyncResponse::Records(vec![record.to_bytes()])
        );
    }

    /// A peer that holds a record two hours ahead of this node's clock
    /// (its own clock is ahead, or this node's behind) sends it when asked:
    /// the session skips it, keeps the rest and ends well.
    #[tokio::test]
    async fn a_record_from_the_future_in_a_fetch_answer_is_skipped_not_blamed() {
        let dir = tempfile::tempdir().unwrap();
        let server = Store::open(&dir.path().join("server.redb")).unwrap();
        let client = Arc::new(Store::open(&dir.path().join("client.redb")).unwrap());
        let ahead = ipsr_proto::now_ms() + MAX_CLOCK_SKEW_MS + 60 * 60 * 1000;
        let future = release(&key(1), "2.0.0").created_at(ahead).sign();
        let present = release(&key(1), "1.0.0").sign();
        server.apply(vec![future.clone(), present.clone()]).unwrap();
        let (calls, responder) = serve(server, None);
        let Outcome {
            report,
            head,
            result,
        } = session(PeerId::random(), client.clone(), calls).await;
        result.unwrap();
        assert_eq!((report.fetched, report.kept, report.early), (2, 1, 1));
        assert!(head.is_some());
        assert!(client.record(&present.id()).unwrap().is_some());
        assert!(client.record(&future.id()).unwrap().is_none());
        // The session dropped its sender: the responder ends.
        responder.await.unwrap();
    }

    /// A peer answering a session's calls from `server`, until the session
    /// drops its sender; its `failing`th fetch (counting from 1) times out.
    fn serve(
        server: Store,
        failing: Option<usize>,
    ) -> (mpsc::Sender<Call>, tokio::task::JoinHandle<()>) {
        let (calls, mut requests) = mpsc::channel::<Call>(8);
        let responder = tokio::spawn(async move {
            let items = Items::default();
            let mut fetches = 0;
            while let Some(call) = requests.recv().await {
                if matches!(call.request, SyncRequest::Fetch(_)) {
                    fetches += 1;
                    if Some(fetches) == failing {
                        let timed_out = Err(request_response::OutboundFailure::Timeout);
                        let _ = call.reply.send(timed_out);
                        continue;
                    }
                }
                let _ = call.reply.send(Ok(answer(&server, &items, call.request)));
            }
        });
        (calls, responder)
    }

    /// A session whose second fetch fails has stored the first: the
    /// outcome carries the error, and what the first batch kept and where
    /// it was written.
    #[tokio::test]
    async fn a_session_failing_part_way_reports_what_it_stored() {
        let dir = tempfile::tempdir().unwrap();
        let server = Store::open(&dir.path().join("server.redb")).unwrap();
        let client = Arc::new(Store::open(&dir.path().join("client.redb")).unwrap());
        let records: Vec<_> = (0..MAX_FETCH_IDS + 10)
            .map(|i| {
                release(&key(1), "1.0.0")
                    .package(&format!("com.example.p{i}"))
                    .sign()
            })
            .collect();
        server.apply(records).unwrap();
        let (calls, responder) = serve(server, Some(2));
        let Outcome {
            report,
            head,
            result,
        } = session(PeerId::random(), client.clone(), calls).await;
        assert!(result.is_err(), "{result:?}");
        assert_eq!(
            (report.fetched, report.kept),
            (MAX_FETCH_IDS, MAX_FETCH_IDS)
        );
        assert_eq!(client.stats().unwrap().records, MAX_FETCH_IDS as u64);
        assert!(head.is_some());
        responder.await.unwrap();
    }

    /// Two stores that share most records reconcile to the difference, in
    /// both directions, in few rounds.
    #[test]
    fn reconciliation_finds_exactly_the_difference() {
        let ids = |range: std::ops::Range<u32>| -> Vec<(u64, RecordId)> {
            range
                .map(|i| {
                    use sha2::Digest;
                    let id: [u8; 32] = sha2::Sha256::digest(i.to_be_bytes()).into();
                    (u64::from(i) * 7, RecordId::from_bytes(id))
                })
                .collect()
        };
        let client = storage(ids(0..10_000)).unwrap();
        let mut server_ids = ids(0..9_990);
        server_ids.extend(ids(20_000..20_005));
        let server = storage(server_ids).unwrap();
        let mut neg = Negentropy::owned(client, FRAME_LIMIT).unwrap();
        let mut msg = neg.initiate().unwrap();
        let (mut have, mut need) = (Vec::new(), Vec::new());
        let mut rounds = 0;
        loop {
            rounds += 1;
            let answer = Negentropy::borrowed(&server, FRAME_LIMIT)
                .unwrap()
                .reconcile(&msg)
                .unwrap();
            match neg
                .reconcile_with_ids(&answer, &mut have, &mut need)
                .unwrap()
            {
                Some(next) => msg = next,
                None => break,
            }
        }
        assert_eq!(have.len(), 10, "the client's extra records");
        assert_eq!(need.len(), 5, "the server's extra records");
        assert!(rounds <= 4, "{rounds} rounds");
    }
}
