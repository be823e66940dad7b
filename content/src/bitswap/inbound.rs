//! The inbound side: which streams a peer may have open at once, the task
//! that takes them, and the task that reads one.
//!
//! * [`StreamSlots`]: at most `per_peer` inbound streams per peer and
//!   `total` over all peers. A stream beyond either cap is dropped at once
//!   (which resets it), with a debug log and a count in the stats.
//! * [`accept_streams`]: a task that does nothing but take each new stream
//!   from libp2p-stream, give it a slot and spawn its reader.
//!   libp2p-stream hands streams over a channel that holds one: a stream
//!   that arrives while the previous one still waits there is dropped. A
//!   task of its own keeps that wait short.
//! * [`read_stream`]: reads frames as their bytes arrive (the buffer of a
//!   frame grows with them, see [`FrameDecoder`]), closes the stream when no
//!   byte arrived for the idle timeout, and hands each decoded message to
//!   the actor.
//!
//! A peer opens a stream per message (Helia) or keeps one open (kubo,
//! IPSR), so a few streams per peer are enough. IPSR closes its own
//! outbound stream after a shorter idle time (`outbound_idle`) than the one
//! it enforces here, so that a peer's reset never meets a write of ours.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{AsyncReadExt as _, StreamExt as _};
use libp2p::{PeerId, Stream};
use tracing::{debug, trace};

use super::message::{FrameDecoder, Message};
use super::{Event, Inner, bump, lock};

/// Why a stream got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The peer has `per_peer` streams open.
    PeerFull,
    /// All peers together have `total` streams open.
    AllFull,
}

#[derive(Debug, Default)]
struct Counts {
    per_peer: HashMap<PeerId, usize>,
    total: usize,
}

/// Open inbound streams, per peer and in all, under two caps.
#[derive(Debug, Clone)]
pub(crate) struct StreamSlots {
    counts: Arc<Mutex<Counts>>,
    per_peer: usize,
    total: usize,
}

/// One open inbound stream; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    counts: Arc<Mutex<Counts>>,
    peer: PeerId,
}

impl StreamSlots {
    /// At most `per_peer` streams per peer and `total` in all.
    pub(crate) fn new(per_peer: usize, total: usize) -> Self {
        Self {
            counts: Arc::default(),
            per_peer,
            total,
        }
    }

    /// A slot for a new stream from `peer`, if both caps allow it.
    pub(crate) fn try_acquire(&self, peer: PeerId) -> Result<Slot, Refused> {
        let mut counts = lock(&self.counts);
        if counts.total >= self.total {
            return Err(Refused::AllFull);
        }
        let open = counts.per_peer.entry(peer).or_default();
        if *open >= self.per_peer {
            if *open == 0 {
                counts.per_peer.remove(&peer);
            }
            return Err(Refused::PeerFull);
        }
        *open += 1;
        counts.total += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            peer,
        })
    }

    /// Streams open from `peer`.
    #[cfg(test)]
    pub(crate) fn open(&self, peer: &PeerId) -> usize {
        lock(&self.counts).per_peer.get(peer).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(open) = counts.per_peer.get_mut(&self.peer) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                counts.per_peer.remove(&self.peer);
            }
        }
    }
}

/// Takes the inbound streams until the swarm is gone: each gets a slot and
/// a reader task, or is dropped (reset) when `slots` has none for it.
pub(crate) async fn accept_streams(
    mut incoming: BoxStream<'static, (PeerId, Stream)>,
    slots: StreamSlots,
    inner: Arc<Inner>,
) {
    while let Some((peer, stream)) = incoming.next().await {
        let slot = match slots.try_acquire(peer) {
            Ok(slot) => slot,
            Err(refused) => {
                bump(&inner.stats.streams_refused, 1);
                match refused {
                    Refused::PeerFull => {
                        debug!(%peer, "peer has too many inbound bitswap streams; resetting one");
                    }
                    Refused::AllFull => {
                        debug!(%peer, "too many inbound bitswap streams in all; resetting one");
                    }
                }
                continue; // dropping the stream resets it
            }
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            let idle = inner.config.inbound_idle_timeout;
            read_stream(peer, stream, &inner, idle).await;
            drop(slot);
        });
    }
    debug!("bitswap stopped accepting streams");
}

/// Reads frames from one inbound stream until it ends, misbehaves, or stays
/// silent for `idle` (no byte at all, inside a frame or between frames).
/// Dropping the stream at the end resets it if the peer has not closed it.
pub(crate) async fn read_stream(peer: PeerId, mut stream: Stream, inner: &Inner, idle: Duration) {
    let mut decoder = FrameDecoder::default();
    loop {
        let n = match tokio::time::timeout(idle, stream.read(decoder.buf())).await {
            Err(_) => {
                bump(&inner.stats.streams_idle_closed, 1);
                debug!(%peer, ?idle, mid_frame = !decoder.between_frames(), "idle bitswap stream closed");
                break;
            }
            Ok(Ok(0)) if decoder.between_frames() => {
                trace!(%peer, "bitswap stream ended");
                break;
            }
            Ok(Ok(0)) => {
                bump(&inner.stats.protocol_errors, 1);
                debug!(%peer, "bitswap stream ended inside a message");
                break;
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                trace!(%peer, error = %e, "bitswap stream closed");
                break;
            }
        };
        let body = match decoder.consume(n) {
            Ok(None) => continue,
            Ok(Some(body)) => body,
            Err(e) => {
                bump(&inner.stats.protocol_errors, 1);
                debug!(%peer, error = %e, "refused bitswap frame");
                break;
            }
        };
        let event = match Message::decode(body) {
            Ok(message) => Event::Inbound { peer, message },
            Err(e) => {
                bump(&inner.stats.protocol_errors, 1);
                debug!(%peer, error = %e, "refused bitswap message");
                if e.is_bad_block() {
                    // Best effort: the stream is dropped either way.
                    let _ = inner.events.send(Event::BadBlock { peer }).await;
                }
                break;
            }
        };
        if inner.events.send(event).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_per_peer_and_in_all() {
        let slots = StreamSlots::new(2, 3);
        let (a, b) = (PeerId::random(), PeerId::random());
        let a1 = slots.try_acquire(a).unwrap();
        let _a2 = slots.try_acquire(a).unwrap();
        assert_eq!(slots.try_acquire(a).unwrap_err(), Refused::PeerFull);
        let _b1 = slots.try_acquire(b).unwrap();
        assert_eq!(slots.try_acquire(b).unwrap_err(), Refused::AllFull);
        assert_eq!(slots.open(&a), 2);
        drop(a1);
        assert_eq!(slots.open(&a), 1);
        // The freed slot is anyone's.
        let _b2 = slots.try_acquire(b).unwrap();
        assert_eq!(slots.try_acquire(a).unwrap_err(), Refused::AllFull);
    }

    #[test]
    fn a_peer_with_no_streams_leaves_no_entry() {
        let slots = StreamSlots::new(1, 10);
        let a = PeerId::random();
        drop(slots.try_acquire(a).unwrap());
        assert_eq!(slots.open(&a), 0);
        assert!(lock(&slots.counts).per_peer.is_empty());
        let zero = StreamSlots::new(0, 10);
        assert_eq!(zero.try_acquire(a).unwrap_err(), Refused::PeerFull);
        assert!(lock(&zero.counts).per_peer.is_empty());
    }
}
