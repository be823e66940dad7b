//! The gossip phase: records published at random nodes spread over the
//! mesh, each node deciding with its own [`Service`] and checking the
//! record bytes with `ipsr-proto`, as the runtime does with a real swarm.
//!
//! Gossipsub, as modelled (libp2p-gossipsub 0.50, the node's settings):
//! * a publisher sends its record to every connected peer (`flood_publish`);
//! * a node drops a message whose id it has seen (the duplicate cache
//!   outlasts the simulation), else hands it to its service and holds it
//!   back until the verdict (`validate_messages`); only `Accept` forwards
//!   it, to every mesh peer but the one it came from;
//! * every heartbeat a node sends IHAVE with the ids it accepted in the
//!   last 3 heartbeats (`history_gossip`) to `max(6, 0.25 × n)` random
//!   connected peers outside its mesh (`gossip_lazy`, `gossip_factor`);
//!   a peer missing some answers IWANT, and gets them while they are in
//!   the message cache (5 heartbeats). Heartbeats stop 5 beats after the
//!   last publish.
//!
//! Not modelled: bandwidth and queueing, peer scores, IDONTWANT, the
//! gossipsub signature of each message (the records are signed and
//! checked; the envelope's signature is not).

use std::collections::VecDeque;
use std::time::Duration;

use ipsr_proto::{Applied, Change, KeyCache, Signed, SignedRecord, VerifyError};
use libp2p::gossipsub::MessageAcceptance;

use super::events::{Micros, Queue};
use super::net::{Bits, Ix};
use super::{Sim, micros};
use crate::service::{Action, Origin, Service};
use crate::store::Stored;

/// Heartbeats a message stays in the cache (IWANT answered).
const HISTORY_LENGTH: u64 = 5;
/// Heartbeats whose messages an IHAVE announces.
const HISTORY_GOSSIP: u64 = 3;
/// Peers outside the mesh an IHAVE goes to, at least ...
const GOSSIP_LAZY: usize = 6;
/// ... or this share of them.
const GOSSIP_FACTOR: f64 = 0.25;

/// One node's gossip state.
#[derive(Debug)]
pub(crate) struct Peer {
    service: Service,
    /// Message ids seen (gossipsub's duplicate cache).
    seen: Bits,
    /// Records held (the store, reduced to what the verdicts need: every
    /// record of the simulation is a distinct release).
    held: Bits,
    /// The log position of the last record held.
    log: u64,
    /// Messages accepted or published: when, which, in which hop.
    cache: VecDeque<(Micros, u32, u32)>,
}

impl Peer {
    pub(crate) fn new(service: Service, msgs: usize) -> Self {
        Self {
            service,
            seen: Bits::new(msgs),
            held: Bits::new(msgs),
            log: 0,
            cache: VecDeque::new(),
        }
    }

    /// Applies a verified record: news once, then a duplicate.
    fn apply(&mut self, id: ipsr_proto::RecordId) -> Stored {
        self.log += 1;
        Stored {
            id,
            applied: Applied {
                change: Change::New,
                reports: Vec::new(),
            },
            position: Some(self.log),
        }
    }
}

#[derive(Debug)]
enum Event {
    /// `node` publishes record `msg`.
    Publish {
        node: Ix,
        msg: u32,
    },
    /// `node` sends the forged `msg` to its peers unchecked.
    Inject {
        node: Ix,
        msg: u32,
    },
    /// `msg` arrives at `to` from `from`, `hops` from its publisher.
    Message {
        to: Ix,
        from: Ix,
        msg: u32,
        hops: u32,
        pulled: bool,
    },
    /// `node`'s check of `msg` (the service's `Check`) is done.
    Checked {
        node: Ix,
        from: Ix,
        origin: Origin,
        bytes: Vec<u8>,
        msg: u32,
        hops: u32,
        pulled: bool,
    },
    Heartbeat {
        node: Ix,
    },
    IHave {
        to: Ix,
        from: Ix,
        ids: Vec<u32>,
    },
    IWant {
        to: Ix,
        from: Ix,
        ids: Vec<u32>,
    },
}

/// Runs the gossip phase of `sim` to the end.
pub(crate) fn run(sim: &mut Sim) {
    let mut q: Queue<Event> = Queue::new();
    let n = sim.world.len();
    for (i, m) in sim.msgs.iter().enumerate() {
        let (node, msg) = (m.publisher, i as u32);
        q.at(
            m.at,
            match m.key {
                Some(_) => Event::Publish { node, msg },
                None => Event::Inject { node, msg },
            },
        );
    }
    let beat = micros(sim.config.heartbeat).max(1);
    let last = sim.msgs.iter().map(|m| m.at).max().unwrap_or(0);
    let beats_end = last + HISTORY_LENGTH * beat;
    if sim.config.lazy_gossip {
        for node in 0..n as Ix {
            let phase = sim.rng.gossip.below(beat);
            q.at(phase, Event::Heartbeat { node });
        }
    }
    let mut verdicts: Vec<Option<Result<Signed, VerifyError>>> = vec![None; sim.msgs.len()];
    let mut steps: u64 = 0;
    while let Some(event) = q.pop() {
        steps += 1;
        if steps.is_multiple_of(4096) && sim.past_deadline() {
            break;
        }
        let now = q.now();
        match event {
            Event::Publish { node, msg } => publish(sim, &mut q, node, msg),
            Event::Inject { node, msg } => {
                sim.peers[node as usize].seen.insert(msg);
                send_to_connections(sim, &mut q, node, msg);
            }
            Event::Message {
                to,
                from,
                msg,
                hops,
                pulled,
            } => {
                let peer = &mut sim.peers[to as usize];
                if !peer.seen.insert(msg) {
                    sim.outcome.duplicates += 1;
                    continue;
                }
                let m = &sim.msgs[msg as usize];
                let source = sim.world.peer(from);
                let at = sim.t0 + Duration::from_micros(now);
                peer.service
                    .on_gossip(source, m.id.clone(), m.bytes.clone(), at);
                while let Some(action) = peer.service.next_action() {
                    match action {
                        Action::Check { origin, bytes } => q.after(
                            micros(sim.config.check_delay),
                            Event::Checked {
                                node: to,
                                from,
                                origin,
                                bytes,
                                msg,
                                hops,
                                pulled,
                            },
                        ),
                        Action::Report { .. } => sim.outcome.rate_limited += 1,
                        _ => {}
                    }
                }
            }
            Event::Checked {
                node,
                from,
                origin,
                bytes,
                msg,
                hops,
                pulled,
            } => {
                let verdict = check(sim, &mut verdicts, msg, &bytes, now);
                let peer = &mut sim.peers[node as usize];
                let at = sim.t0 + Duration::from_micros(now);
                peer.service.on_checked(origin, bytes, verdict, at);
                let mut accepted = false;
                // The store's part (`Apply`) is done at once: its outcome
                // comes back through the same outbox.
                while let Some(action) = peer.service.next_action() {
                    match action {
                        Action::Apply { origin, record } => {
                            let stored = match peer.held.insert(msg) {
                                true => peer.apply(record.id()),
                                false => Stored {
                                    id: record.id(),
                                    applied: Applied {
                                        change: Change::Duplicate,
                                        reports: Vec::new(),
                                    },
                                    position: None,
                                },
                            };
                            peer.service.on_applied(origin, &record, &Ok(stored), at);
                        }
                        Action::Report { acceptance, .. } => match acceptance {
                            MessageAcceptance::Accept => accepted = true,
                            MessageAcceptance::Reject => sim.outcome.rejected += 1,
                            MessageAcceptance::Ignore => {}
                        },
                        _ => {}
                    }
                }
                if accepted {
                    let m = &sim.msgs[msg as usize];
                    match m.key {
                        Some(_) => {
                            sim.outcome.delivered += 1;
                            sim.outcome.pulled += u64::from(pulled);
                            sim.deliveries.push((hops, now - m.at));
                        }
                        None => sim.outcome.forgeries_held += 1,
                    }
                    peer.cache.push_back((now, msg, hops));
                    for i in 0..sim.mesh[node as usize].len() {
                        let to = sim.mesh[node as usize][i];
                        if to != from {
                            let delay = sim.world.one_way(node, to);
                            q.after(delay, message(to, node, msg, hops + 1, false));
                        }
                    }
                }
            }
            Event::Heartbeat { node } => {
                heartbeat(sim, &mut q, node, beat);
                if now + beat <= beats_end {
                    q.after(beat, Event::Heartbeat { node });
                }
            }
            Event::IHave { to, from, ids } => {
                let seen = &sim.peers[to as usize].seen;
                let want: Vec<u32> = ids.into_iter().filter(|m| !seen.contains(*m)).collect();
                if !want.is_empty() {
                    let delay = sim.world.one_way(to, from);
                    q.after(
                        delay,
                        Event::IWant {
                            to: from,
                            from: to,
                            ids: want,
                        },
                    );
                }
            }
            Event::IWant { to, from, ids } => {
                let oldest = now.saturating_sub(HISTORY_LENGTH * beat);
                let delay = sim.world.one_way(to, from);
                for id in ids {
                    let cached = sim.peers[to as usize]
                        .cache
                        .iter()
                        .find(|(at, m, _)| *m == id && *at >= oldest);
                    if let Some(&(_, msg, hops)) = cached {
                        q.after(delay, message(from, to, msg, hops + 1, true));
                    }
                }
            }
        }
    }
    sim.outcome.gossip_span_ms = q.now().div_ceil(1000);
}

fn message(to: Ix, from: Ix, msg: u32, hops: u32, pulled: bool) -> Event {
    Event::Message {
        to,
        from,
        msg,
        hops,
        pulled,
    }
}

/// The publisher's service takes its own record as a local publish (it is
/// verified already) and says to gossip and announce it.
fn publish(sim: &mut Sim, q: &mut Queue<Event>, node: Ix, msg: u32) {
    let at = sim.t0 + Duration::from_micros(q.now());
    let m = &sim.msgs[msg as usize];
    let Some(key) = m.key.clone() else { return };
    let peer = &mut sim.peers[node as usize];
    peer.seen.insert(msg);
    peer.held.insert(msg);
    let Ok(record) = SignedRecord::from_trusted_storage(&m.bytes) else {
        return;
    };
    let stored = peer.apply(record.id());
    peer.service.on_applied(
        Origin::Local(Some(key)),
        &Signed::Record(record),
        &Ok(stored),
        at,
    );
    let mut gossip = false;
    while let Some(action) = peer.service.next_action() {
        gossip |= matches!(action, Action::Gossip(_));
    }
    if gossip {
        peer.cache.push_back((q.now(), msg, 0));
        send_to_connections(sim, q, node, msg);
    }
}

fn send_to_connections(sim: &Sim, q: &mut Queue<Event>, node: Ix, msg: u32) {
    for &to in &sim.world.conns[node as usize] {
        q.after(
            sim.world.one_way(node, to),
            message(to, node, msg, 1, false),
        );
    }
}

/// The record check: decode, fields, signature, as of the virtual time.
/// One check per distinct message unless every copy is to be checked.
fn check(
    sim: &mut Sim,
    verdicts: &mut [Option<Result<Signed, VerifyError>>],
    msg: u32,
    bytes: &[u8],
    now: Micros,
) -> Result<Signed, VerifyError> {
    if !sim.config.verify_every_copy
        && let Some(v) = &verdicts[msg as usize]
    {
        return v.clone();
    }
    sim.outcome.signature_checks += 1;
    let unix = sim.config.unix_ms + now / 1000;
    let v = SignedRecord::from_bytes(bytes)
        .and_then(|r| r.verify_any_at_cached(unix, &mut KeyCache::new(0)));
    verdicts[msg as usize] = Some(v.clone());
    v
}

/// Drops what left the message cache; sends IHAVE for the recent messages
/// to some connected peers outside the mesh.
fn heartbeat(sim: &mut Sim, q: &mut Queue<Event>, node: Ix, beat: Micros) {
    let now = q.now();
    let peer = &mut sim.peers[node as usize];
    let oldest = now.saturating_sub(HISTORY_LENGTH * beat);
    while peer.cache.front().is_some_and(|(at, _, _)| *at < oldest) {
        peer.cache.pop_front();
    }
    let recent = now.saturating_sub(HISTORY_GOSSIP * beat);
    let ids: Vec<u32> = peer
        .cache
        .iter()
        .filter(|(at, _, _)| *at >= recent)
        .map(|(_, m, _)| *m)
        .collect();
    if ids.is_empty() {
        return;
    }
    let mesh = &sim.mesh[node as usize];
    let mut others: Vec<Ix> = sim.world.conns[node as usize]
        .iter()
        .copied()
        .filter(|p| mesh.binary_search(p).is_err())
        .collect();
    let wanted = GOSSIP_LAZY.max((GOSSIP_FACTOR * others.len() as f64) as usize);
    sim.rng.gossip.shuffle(&mut others);
    for to in others.into_iter().take(wanted) {
        let delay = sim.world.one_way(node, to);
        q.after(
            delay,
            Event::IHave {
                to,
                from: node,
                ids: ids.clone(),
            },
        );
    }
}
