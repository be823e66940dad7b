//! The server side's decisions, without IO: what each peer wants from us,
//! which of those wants still need a look in the blockstore, what to answer
//! once we know whether we hold a block, and how answers are packed into
//! messages.
//!
//! The rules (spec "Bitswap 1.2.0", server behaviour):
//!
//! * A wantlist message either replaces the peer's wantlist (`full`) or
//!   changes it entry by entry (add / update / `cancel`).
//! * Every new or changed want is queued for a lookup, higher `priority`
//!   first, then in arrival order.
//! * For a want of type Block: if we hold the block, send it and forget
//!   the want. For a want of type Have: send Have (or the block itself if it
//!   is at most [`Ledger::have_block_limit`] bytes) and forget the want.
//! * If we do not hold it: answer DontHave only if the peer asked for that
//!   (`sendDontHave`), and *keep* the want. When the block arrives later
//!   ([`Ledger::on_new_block`]) the want is queued again and served.
//! * A peer's wantlist holds at most `max_entries` wants; entries beyond
//!   that are dropped (counted in the result).
//! * [`Ledger::remove_peer`] forgets everything about a peer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use cid::Cid;
use libp2p::PeerId;

use super::message::{MAX_MESSAGE_SIZE, Message, Presence, WantType, Wantlist};
use crate::block::Block;

/// One want of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Want {
    priority: i32,
    want_type: WantType,
    send_dont_have: bool,
    /// Waiting in the lookup queue; `seq` identifies the queue entry.
    queued: Option<u64>,
}

/// A want that needs a look in the blockstore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lookup {
    /// The wanted block.
    pub(crate) cid: Cid,
    /// What was asked for.
    pub(crate) want_type: WantType,
}

/// What the blockstore said about a wanted block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// We do not hold it.
    Missing,
    /// We hold it; its size in bytes.
    Present(u64),
}

/// The answer to send for one want.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Send the block.
    Block,
    /// Send a Have presence.
    Have,
    /// Send a DontHave presence.
    DontHave,
}

/// What applying a wantlist message did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Wants queued for a lookup.
    pub(crate) queued: usize,
    /// Wants cancelled (or removed by a full replace).
    pub(crate) cancelled: usize,
    /// Wants dropped because the wantlist was at its cap.
    pub(crate) refused: usize,
}

#[derive(Debug, Default)]
struct PeerWants {
    wants: HashMap<Cid, Want>,
    /// Max-heap on (priority, earliest seq); stale entries are skipped.
    queue: BinaryHeap<(i32, Reverse<u64>, Cid)>,
}

impl PeerWants {
    fn enqueue(&mut self, cid: Cid, seq: &mut u64) {
        if let Some(want) = self.wants.get_mut(&cid)
            && want.queued.is_none()
        {
            *seq += 1;
            want.queued = Some(*seq);
            self.queue.push((want.priority, Reverse(*seq), cid));
        }
    }

    /// Drops stale heap entries once they outnumber the live ones, so the
    /// heap stays bounded by the wantlist cap.
    fn compact(&mut self) {
        if self.queue.len() > 2 * self.wants.len() + 64 {
            let wants = &self.wants;
            self.queue.retain(|(_, Reverse(seq), cid)| {
                wants.get(cid).and_then(|w| w.queued) == Some(*seq)
            });
        }
    }
}

/// Every peer's wants and the lookups they need.
#[derive(Debug)]
pub(crate) struct Ledger {
    peers: HashMap<PeerId, PeerWants>,
    max_entries: usize,
    have_block_limit: u64,
    seq: u64,
}

impl Ledger {
    /// A ledger that keeps at most `max_entries` wants per peer and answers a
    /// Have want with the block itself when it is at most `have_block_limit`
    /// bytes.
    pub(crate) fn new(max_entries: usize, have_block_limit: u64) -> Self {
        Self {
            peers: HashMap::new(),
            max_entries,
            have_block_limit,
            seq: 0,
        }
    }

    /// The size up to which a Have want is answered with the block.
    #[cfg(test)]
    pub(crate) fn have_block_limit(&self) -> u64 {
        self.have_block_limit
    }

    /// Applies a wantlist received from `peer`.
    pub(crate) fn apply(&mut self, peer: PeerId, wantlist: &Wantlist) -> Applied {
        let mut applied = Applied::default();
        let peer_wants = self.peers.entry(peer).or_default();
        if wantlist.full {
            applied.cancelled += peer_wants.wants.len();
            peer_wants.wants.clear();
            peer_wants.queue.clear();
        }
        for entry in &wantlist.entries {
            if entry.cancel {
                if peer_wants.wants.remove(&entry.cid).is_some() {
                    applied.cancelled += 1;
                }
                continue;
            }
            let new = Want {
                priority: entry.priority,
                want_type: entry.want_type,
                send_dont_have: entry.send_dont_have,
                queued: None,
            };
            let at_cap = peer_wants.wants.len() >= self.max_entries;
            match peer_wants.wants.get_mut(&entry.cid) {
                Some(old) => {
                    // An update: a Block want is never downgraded to Have.
                    let want_type = match (old.want_type, new.want_type) {
                        (WantType::Block, _) | (_, WantType::Block) => WantType::Block,
                        _ => WantType::Have,
                    };
                    old.priority = new.priority;
                    old.want_type = want_type;
                    old.send_dont_have = new.send_dont_have;
                }
                None if at_cap => {
                    applied.refused += 1;
                    continue;
                }
                None => {
                    peer_wants.wants.insert(entry.cid, new);
                }
            }
            let was_queued = peer_wants
                .wants
                .get(&entry.cid)
                .is_some_and(|w| w.queued.is_some());
            peer_wants.enqueue(entry.cid, &mut self.seq);
            if !was_queued {
                applied.queued += 1;
            }
        }
        peer_wants.compact();
        if peer_wants.wants.is_empty() {
            self.peers.remove(&peer);
        }
        applied
    }

    /// Takes up to `max` queued lookups of `peer`, highest priority first.
    pub(crate) fn next_lookups(&mut self, peer: &PeerId, max: usize) -> Vec<Lookup> {
        let mut out = Vec::new();
        let Some(peer_wants) = self.peers.get_mut(peer) else {
            return out;
        };
        while out.len() < max {
            let Some((_, Reverse(seq), cid)) = peer_wants.queue.pop() else {
                break;
            };
            if let Some(want) = peer_wants.wants.get_mut(&cid)
                && want.queued == Some(seq)
            {
                want.queued = None;
                out.push(Lookup {
                    cid,
                    want_type: want.want_type,
                });
            }
        }
        out
    }

    /// True if `peer` has queued lookups.
    #[cfg(test)]
    pub(crate) fn has_lookups(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|p| {
            p.queue
                .iter()
                .any(|(_, Reverse(seq), cid)| p.wants.get(cid).and_then(|w| w.queued) == Some(*seq))
        })
    }

    /// Decides the answer to `peer`'s want of `cid` now that the blockstore
    /// said `found`. `None`: no answer (the want was cancelled meanwhile, or
    /// the block is missing and the peer did not ask for DontHave). A want
    /// that is answered with the block or Have is forgotten; a missing one is
    /// kept for [`Ledger::on_new_block`].
    pub(crate) fn decide(&mut self, peer: &PeerId, cid: &Cid, found: Found) -> Option<Answer> {
        let peer_wants = self.peers.get_mut(peer)?;
        let want = *peer_wants.wants.get(cid)?;
        if want.queued.is_some() {
            // Changed again since this lookup started; the queued lookup
            // will answer.
            return None;
        }
        let answer = match (found, want.want_type) {
            (Found::Missing, _) => {
                return want.send_dont_have.then_some(Answer::DontHave);
            }
            (Found::Present(_), WantType::Block) => Answer::Block,
            (Found::Present(size), WantType::Have) if size <= self.have_block_limit => {
                Answer::Block
            }
            (Found::Present(_), WantType::Have) => Answer::Have,
        };
        peer_wants.wants.remove(cid);
        if peer_wants.wants.is_empty() {
            self.peers.remove(peer);
        }
        Some(answer)
    }

    /// A block became available locally: queues a lookup for every peer
    /// that wants it and returns those peers.
    pub(crate) fn on_new_block(&mut self, cid: &Cid) -> Vec<PeerId> {
        let mut woken = Vec::new();
        for (peer, peer_wants) in &mut self.peers {
            if peer_wants.wants.contains_key(cid) {
                peer_wants.enqueue(*cid, &mut self.seq);
                woken.push(*peer);
            }
        }
        woken
    }

    /// Forgets `peer`.
    pub(crate) fn remove_peer(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Wants `peer` has with us.
    #[cfg(test)]
    pub(crate) fn wants_of(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |p| p.wants.len())
    }

    /// Wants of all peers.
    pub(crate) fn total_wants(&self) -> usize {
        self.peers.values().map(|p| p.wants.len()).sum()
    }
}

/// Packs answers into messages of at most [`MAX_MESSAGE_SIZE`] bytes.
/// A block of up to [`crate::MAX_BLOCK_SIZE`] always fits in a
/// message of its own.
#[derive(Debug, Default)]
pub(crate) struct Batcher {
    current: Message,
    size: usize,
}

impl Batcher {
    /// Headroom for the length prefix and `pendingBytes`.
    const SLACK: usize = 16;

    /// Adds a block; returns the previous message if the block did not fit.
    pub(crate) fn push_block(&mut self, block: Block) -> Option<Message> {
        let len = Message::block_encoded_len(&block);
        let full = self.make_room(len);
        self.current.blocks.push(block);
        self.size += len;
        full
    }

    /// Adds a presence; returns the previous message if it did not fit.
    pub(crate) fn push_presence(&mut self, cid: Cid, presence: Presence) -> Option<Message> {
        let len = Message::presence_encoded_len(&cid);
        let full = self.make_room(len);
        self.current.presences.push((cid, presence));
        self.size += len;
        full
    }

    fn make_room(&mut self, len: usize) -> Option<Message> {
        if self.size > 0 && self.size + len + Self::SLACK > MAX_MESSAGE_SIZE {
            return self.take();
        }
        None
    }

    /// The message built so far, if not empty.
    pub(crate) fn take(&mut self) -> Option<Message> {
        if self.size == 0 {
            return None;
        }
        self.size = 0;
        Some(std::mem::take(&mut self.current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_BLOCK_SIZE;
    use crate::bitswap::message::WantEntry;
    use crate::block::RAW;

    fn cid(n: u32) -> Cid {
        *Block::hash(cid::Version::V1, RAW, n.to_be_bytes().to_vec())
            .unwrap()
            .cid()
    }

    fn delta(entries: Vec<WantEntry>) -> Wantlist {
        Wantlist {
            entries,
            full: false,
        }
    }

    fn want(n: u32, want_type: WantType, send_dont_have: bool) -> WantEntry {
        WantEntry::want(cid(n), want_type, send_dont_have)
    }

    fn ledger() -> Ledger {
        Ledger::new(8192, 1024)
    }

    #[test]
    fn block_want_present_sends_block_and_forgets() {
        let mut l = ledger();
        let p = PeerId::random();
        let applied = l.apply(p, &delta(vec![want(1, WantType::Block, true)]));
        assert_eq!(applied.queued, 1);
        let lookups = l.next_lookups(&p, 10);
        assert_eq!(
            lookups,
            vec![Lookup {
                cid: cid(1),
                want_type: WantType::Block
            }]
        );
        assert_eq!(
            l.decide(&p, &cid(1), Found::Present(5000)),
            Some(Answer::Block)
        );
        assert_eq!(l.wants_of(&p), 0);
        assert!(l.on_new_block(&cid(1)).is_empty());
    }

    #[test]
    fn have_want_present_sends_have_or_small_block() {
        let mut l = ledger();
        let p = PeerId::random();
        l.apply(
            p,
            &delta(vec![
                want(1, WantType::Have, false),
                want(2, WantType::Have, false),
            ]),
        );
        assert_eq!(l.next_lookups(&p, 10).len(), 2);
        assert_eq!(
            l.decide(&p, &cid(1), Found::Present(1_000_000)),
            Some(Answer::Have)
        );
        let small = l.have_block_limit();
        assert_eq!(
            l.decide(&p, &cid(2), Found::Present(small)),
            Some(Answer::Block)
        );
        assert_eq!(l.wants_of(&p), 0);
    }

    #[test]
    fn missing_answers_dont_have_only_if_asked_and_remembers() {
        let mut l = ledger();
        let p = PeerId::random();
        l.apply(
            p,
            &delta(vec![
                want(1, WantType::Block, true),
                want(2, WantType::Block, false),
            ]),
        );
        l.next_lookups(&p, 10);
        assert_eq!(
            l.decide(&p, &cid(1), Found::Missing),
            Some(Answer::DontHave)
        );
        assert_eq!(l.decide(&p, &cid(2), Found::Missing), None);
        assert_eq!(l.wants_of(&p), 2, "missing wants are remembered");
        assert!(!l.has_lookups(&p));
        // The block arrives: the want is queued again and served.
        assert_eq!(l.on_new_block(&cid(2)), vec![p]);
        assert!(l.has_lookups(&p));
        assert_eq!(
            l.next_lookups(&p, 10),
            vec![Lookup {
                cid: cid(2),
                want_type: WantType::Block
            }]
        );
        assert_eq!(
            l.decide(&p, &cid(2), Found::Present(10)),
            Some(Answer::Block)
        );
        assert_eq!(l.wants_of(&p), 1);
    }

    #[test]
    fn cancel_removes_and_stale_lookups_get_no_answer() {
        let mut l = ledger();
        let p = PeerId::random();
        l.apply(p, &delta(vec![want(1, WantType::Block, true)]));
        let lookups = l.next_lookups(&p, 10);
        assert_eq!(lookups.len(), 1);
        let applied = l.apply(p, &delta(vec![WantEntry::cancel(cid(1))]));
        assert_eq!(applied.cancelled, 1);
        assert_eq!(l.decide(&p, &cid(1), Found::Present(1)), None);
        // Cancelled while queued: never looked up.
        l.apply(p, &delta(vec![want(2, WantType::Block, true)]));
        l.apply(p, &delta(vec![WantEntry::cancel(cid(2))]));
        assert!(l.next_lookups(&p, 10).is_empty());
        assert_eq!(l.total_wants(), 0);
    }

    #[test]
    fn full_wantlist_replaces() {
        let mut l = ledger();
        let p = PeerId::random();
        l.apply(
            p,
            &delta(vec![
                want(1, WantType::Block, true),
                want(2, WantType::Block, true),
            ]),
        );
        let applied = l.apply(
            p,
            &Wantlist {
                entries: vec![want(3, WantType::Have, true)],
                full: true,
            },
        );
        assert_eq!(applied.cancelled, 2);
        assert_eq!(
            l.next_lookups(&p, 10),
            vec![Lookup {
                cid: cid(3),
                want_type: WantType::Have
            }]
        );
        assert_eq!(l.wants_of(&p), 1);
    }

    #[test]
    fn priority_then_arrival_order() {
        let mut l = ledger();
        let p = PeerId::random();
        let mut entries = Vec::new();
        for (n, priority) in [(1, 1), (2, 5), (3, 1), (4, 5)] {
            let mut e = want(n, WantType::Block, false);
            e.priority = priority;
            entries.push(e);
        }
        l.apply(p, &delta(entries));
        let order: Vec<Cid> = l.next_lookups(&p, 10).into_iter().map(|l| l.cid).collect();
        assert_eq!(order, vec![cid(2), cid(4), cid(1), cid(3)]);
    }

    #[test]
    fn have_upgraded_to_block() {
        let mut l = ledger();
        let p = PeerId::random();
        l.apply(p, &delta(vec![want(1, WantType::Have, true)]));
        l.apply(p, &delta(vec![want(1, WantType::Block, true)]));
        assert_eq!(
            l.next_lookups(&p, 10),
            vec![Lookup {
                cid: cid(1),
                want_type: WantType::Block
            }]
        );
        assert_eq!(
            l.decide(&p, &cid(1), Found::Present(1 << 20)),
            Some(Answer::Block)
        );
    }

    #[test]
    fn wantlist_is_capped_and_queue_stays_bounded() {
        let mut l = Ledger::new(10, 0);
        let p = PeerId::random();
        let applied = l.apply(
            p,
            &delta((0..25).map(|n| want(n, WantType::Block, true)).collect()),
        );
        assert_eq!(applied.refused, 15);
        assert_eq!(l.wants_of(&p), 10);
        // Churn: cancel and re-add the same want many times.
        for _ in 0..1000 {
            l.apply(p, &delta(vec![WantEntry::cancel(cid(0))]));
            l.apply(p, &delta(vec![want(0, WantType::Block, true)]));
        }
        let queue_len = l.peers.get(&p).map(|w| w.queue.len()).unwrap();
        assert!(queue_len <= 2 * 10 + 64 + 1, "{queue_len}");
        assert_eq!(l.next_lookups(&p, 100).len(), 10);
    }

    #[test]
    fn disconnect_forgets_peer() {
        let mut l = ledger();
        let (p, q) = (PeerId::random(), PeerId::random());
        l.apply(p, &delta(vec![want(1, WantType::Block, false)]));
        l.apply(q, &delta(vec![want(1, WantType::Block, false)]));
        l.remove_peer(&p);
        assert_eq!(l.on_new_block(&cid(1)), vec![q]);
        assert!(l.next_lookups(&p, 10).is_empty());
    }

    #[test]
    fn batches_stay_under_the_message_limit() {
        let mut b = Batcher::default();
        let big = |n: u8| Block::hash(cid::Version::V1, RAW, vec![n; MAX_BLOCK_SIZE]).unwrap();
        assert!(b.push_block(big(1)).is_none());
        // Two 2 MiB blocks plus framing exceed 4 MiB: the first is flushed.
        let first = b.push_block(big(2)).unwrap();
        assert_eq!(first.blocks.len(), 1);
        assert!(first.encode().len() <= MAX_MESSAGE_SIZE + 10);
        assert!(b.push_presence(cid(1), Presence::Have).is_none());
        let second = b.take().unwrap();
        assert_eq!((second.blocks.len(), second.presences.len()), (1, 1));
        assert!(b.take().is_none());
        // Many small answers share one message.
        for n in 0..1000 {
            assert!(b.push_presence(cid(n), Presence::DontHave).is_none());
        }
        let msg = b.take().unwrap();
        assert_eq!(msg.presences.len(), 1000);
        assert!(msg.encode().len() <= MAX_MESSAGE_SIZE);
    }
}
