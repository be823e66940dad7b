//! Joining and staying joined, sans-IO: when to dial each bootstrap
//! address and when to run a Kademlia bootstrap again. The runtime feeds
//! the [`Schedule`] dial outcomes, connections and the time; it answers
//! with [`Step`]s.
//!
//! ```text
//!            dial failed: wait 1 s, 2 s, 4 s ... 60 s (±jitter)
//!          ┌──────────────────────────────┐
//!          ▼                              │
//!   start ─▶ Due ──poll─▶ Dialing ─────────┘
//!            ▲                  │ connected (to this address, or its peer
//!            │                  ▼ connected by any way): backoff reset
//!            └─── alone ─── Joined
//!       (no peer at all for `rebootstrap_after`: dial again, and
//!        bootstrap Kademlia; repeated every `rebootstrap_after` alone)
//! ```
//!
//! The rules:
//! * At start every bootstrap address is due.
//! * A failed dial is retried after a delay that doubles with each
//!   consecutive failure of that address, from [`FIRST_RETRY`] up to
//!   [`MAX_RETRY`], drawn uniformly from the upper half of that delay
//!   (so nodes that lost the same peer do not come back in lockstep).
//! * A connection to an address's peer (whoever dialled) resets its
//!   backoff, and the address is not dialled again while the node has
//!   peers.
//! * When the node has had no connected peer for `rebootstrap_after`, the
//!   addresses that had joined are due again and a Kademlia bootstrap
//!   runs; while it stays alone, again every `rebootstrap_after` (the
//!   addresses still failing keep their backoff).

use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use tracing::{debug, info};

/// The delay before the first retry of a failed bootstrap dial.
pub(crate) const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest delay between two dials of a failing bootstrap address.
pub(crate) const MAX_RETRY: Duration = Duration::from_secs(60);

/// What the runtime is to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Dial bootstrap address number `index`; tell the schedule the dial's
    /// connection id ([`Schedule::on_dialing`]).
    Dial {
        /// Which address (its place in the list).
        index: usize,
        /// The address.
        addr: Multiaddr,
    },
    /// Run a Kademlia bootstrap.
    Kademlia,
}

/// Where one bootstrap address stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// To be dialled at this time.
    Due(Instant),
    /// A dial is under way (its id once the runtime tells it).
    Dialing(Option<ConnectionId>),
    /// Its peer is (or was) connected; dialled again only when the node is
    /// alone.
    Joined,
}

#[derive(Debug)]
struct Entry {
    addr: Multiaddr,
    /// The peer the address ends with (`/p2p/<id>`), if it does.
    peer: Option<PeerId>,
    state: State,
    /// Consecutive failed dials.
    failures: u32,
}

/// The bootstrap schedule of one node. Everything that varies with time
/// takes `now`.
#[derive(Debug)]
pub(crate) struct Schedule {
    entries: Vec<Entry>,
    rebootstrap_after: Duration,
    /// When the node had no peer left (`None`: it has peers), moved on by
    /// each re-bootstrap.
    alone_since: Option<Instant>,
    /// Jitter source (xorshift64*).
    rng: u64,
}

impl Schedule {
    /// A node that starts now, with no peer, and dials every address of
    /// `addrs` at once. `seed` varies the jitter between nodes.
    pub(crate) fn new(
        addrs: Vec<Multiaddr>,
        rebootstrap_after: Duration,
        now: Instant,
        seed: u64,
    ) -> Self {
        let entries = addrs
            .into_iter()
            .map(|addr| Entry {
                peer: match addr.iter().last() {
                    Some(Protocol::P2p(peer)) => Some(peer),
                    _ => None,
                },
                addr,
                state: State::Due(now),
                failures: 0,
            })
            .collect();
        Self {
            entries,
            rebootstrap_after,
            alone_since: Some(now),
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// The next step due at `now`, if any: call until `None`.
    pub(crate) fn poll(&mut self, now: Instant) -> Option<Step> {
        if let Some(since) = self.alone_since
            && now >= since + self.rebootstrap_after
        {
            self.alone_since = Some(now);
            let mut again = 0;
            for entry in &mut self.entries {
                if entry.state == State::Joined {
                    entry.state = State::Due(now);
                    again += 1;
                }
            }
            match again {
                0 => debug!("no peer: Kademlia bootstrap"),
                n => info!(
                    addresses = n,
                    "no peer for a while: dialling the bootstrap peers again"
                ),
            }
            return Some(Step::Kademlia);
        }
        let (index, entry) = self
            .entries
            .iter_mut()
            .enumerate()
            .find(|(_, e)| matches!(e.state, State::Due(at) if at <= now))?;
        entry.state = State::Dialing(None);
        Some(Step::Dial {
            index,
            addr: entry.addr.clone(),
        })
    }

    /// When [`poll`](Self::poll) has something next (`None`: only an event
    /// can change that).
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        let due = self.entries.iter().filter_map(|e| match e.state {
            State::Due(at) => Some(at),
            _ => None,
        });
        let alone = self.alone_since.map(|since| since + self.rebootstrap_after);
        due.chain(alone).min()
    }

    /// The dial of address `index` that [`poll`](Self::poll) asked for has
    /// id `connection`.
    pub(crate) fn on_dialing(&mut self, index: usize, connection: ConnectionId) {
        if let Some(entry) = self.entries.get_mut(index)
            && entry.state == State::Dialing(None)
        {
            entry.state = State::Dialing(Some(connection));
        }
    }

    /// The dial `connection` failed (or could not start): if it was a
    /// bootstrap dial, its address is due again after its backoff.
    pub(crate) fn on_dial_failed(&mut self, connection: ConnectionId, now: Instant) {
        let Some(index) = self
            .entries
            .iter()
            .position(|e| e.state == State::Dialing(Some(connection)))
        else {
            return;
        };
        let delay = self.retry_delay(self.entries[index].failures);
        let entry = &mut self.entries[index];
        entry.failures = entry.failures.saturating_add(1);
        entry.state = State::Due(now + delay);
        match entry.failures {
            1 => {
                info!(addr = %entry.addr, retry_in = ?delay, "bootstrap peer unreachable; retrying with backoff")
            }
            n => {
                debug!(addr = %entry.addr, failures = n, retry_in = ?delay, "bootstrap dial failed")
            }
        }
    }

    /// A connection to `peer` was established (`connection`, whoever
    /// dialled).
    pub(crate) fn on_connected(&mut self, connection: ConnectionId, peer: PeerId) {
        for entry in &mut self.entries {
            if entry.state == State::Dialing(Some(connection)) || entry.peer == Some(peer) {
                if entry.state != State::Joined {
                    debug!(addr = %entry.addr, %peer, "joined through a bootstrap address");
                }
                entry.state = State::Joined;
                entry.failures = 0;
            }
        }
        self.alone_since = None;
    }

    /// A peer's last connection closed; the node has `peers` left.
    pub(crate) fn on_disconnected(&mut self, peers: usize, now: Instant) {
        if peers == 0 && self.alone_since.is_none() {
            self.alone_since = Some(now);
        }
    }

    /// The delay after the `failures + 1`-th consecutive failure: half of
    /// `FIRST_RETRY × 2^failures` (capped at [`MAX_RETRY`]) plus a random
    /// part of the other half.
    fn retry_delay(&mut self, failures: u32) -> Duration {
        let full = FIRST_RETRY
            .saturating_mul(1 << failures.min(16))
            .min(MAX_RETRY);
        let half = full / 2;
        let millis = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(self.next_random() % (millis + 1))
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64* (Vigna): plenty for spreading retries.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A jitter seed that differs between nodes: a hash of the peer id.
pub(crate) fn seed(peer: &PeerId) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    peer.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REBOOT: Duration = Duration::from_secs(30);

    fn addr(peer: PeerId, port: u16) -> Multiaddr {
        format!("/ip4/192.0.2.1/tcp/{port}/p2p/{peer}")
            .parse()
            .unwrap()
    }

    fn id(n: usize) -> ConnectionId {
        ConnectionId::new_unchecked(n)
    }

    /// Polls every step due at `now`, answering each dial with the next
    /// connection id from `ids`.
    fn steps(s: &mut Schedule, now: Instant, ids: &mut usize) -> Vec<Step> {
        let mut out = Vec::new();
        while let Some(step) = s.poll(now) {
            if let Step::Dial { index, .. } = step {
                *ids += 1;
                s.on_dialing(index, id(*ids));
            }
            out.push(step);
        }
        out
    }

    fn dials(steps: &[Step]) -> Vec<usize> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Dial { index, .. } => Some(*index),
                Step::Kademlia => None,
            })
            .collect()
    }

    #[test]
    fn every_address_is_dialled_at_start_once() {
        let t0 = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut s = Schedule::new(vec![addr(a, 1), addr(b, 2)], REBOOT, t0, 7);
        let mut ids = 0;
        let first = steps(&mut s, t0, &mut ids);
        assert_eq!(
            first,
            vec![
                Step::Dial {
                    index: 0,
                    addr: addr(a, 1)
                },
                Step::Dial {
                    index: 1,
                    addr: addr(b, 2)
                }
            ]
        );
        // While the dials are under way nothing more is due.
        assert!(steps(&mut s, t0 + Duration::from_secs(5), &mut ids).is_empty());
    }

    #[test]
    fn a_failing_address_is_retried_with_growing_capped_jittered_delays() {
        let t0 = Instant::now();
        let peer = PeerId::random();
        let mut s = Schedule::new(vec![addr(peer, 1)], Duration::from_secs(86_400), t0, 42);
        let mut ids = 0;
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..12 {
            assert_eq!(dials(&steps(&mut s, now, &mut ids)), vec![0]);
            s.on_dial_failed(id(ids), now);
            let next = s.next_wakeup().unwrap();
            // Not a moment before it is due.
            assert!(steps(&mut s, next - Duration::from_millis(1), &mut ids).is_empty());
            delays.push(next - now);
            now = next;
        }
        for (n, delay) in delays.iter().enumerate() {
            let full = (FIRST_RETRY * 2u32.pow(n as u32)).min(MAX_RETRY);
            assert!(
                *delay >= full / 2 && *delay <= full,
                "retry {n}: {delay:?} not within [{:?}, {full:?}]",
                full / 2
            );
        }
        assert!(delays[5] > delays[0] * 8, "the delays grow: {delays:?}");
        assert!(delays.iter().all(|d| *d <= MAX_RETRY));
    }

    #[test]
    fn jitter_differs_between_seeds() {
        let t0 = Instant::now();
        let peer = PeerId::random();
        let delay_after_five = |seed| {
            let mut s = Schedule::new(vec![addr(peer, 1)], REBOOT * 100, t0, seed);
            let (mut ids, mut now) = (0, t0);
            for _ in 0..5 {
                steps(&mut s, now, &mut ids);
                s.on_dial_failed(id(ids), now);
                now = s.next_wakeup().unwrap();
            }
            now
        };
        let distinct: std::collections::HashSet<_> = (1..6).map(delay_after_five).collect();
        assert!(distinct.len() > 1, "five seeds, one schedule");
    }

    #[test]
    fn success_resets_the_backoff_and_stops_the_dials() {
        let t0 = Instant::now();
        let peer = PeerId::random();
        let mut s = Schedule::new(vec![addr(peer, 1)], REBOOT, t0, 3);
        let mut ids = 0;
        let mut now = t0;
        for _ in 0..5 {
            steps(&mut s, now, &mut ids);
            s.on_dial_failed(id(ids), now);
            now = s.next_wakeup().unwrap();
        }
        steps(&mut s, now, &mut ids);
        s.on_connected(id(ids), peer);
        assert_eq!(s.entries[0].failures, 0);
        assert_eq!(s.next_wakeup(), None, "joined and not alone: nothing to do");
        assert!(steps(&mut s, now + REBOOT * 10, &mut ids).is_empty());
        // Failures of unrelated dials change nothing.
        s.on_dial_failed(id(999), now);
        assert_eq!(s.next_wakeup(), None);
    }

    #[test]
    fn the_peer_connecting_by_another_way_counts_as_joined() {
        let t0 = Instant::now();
        let peer = PeerId::random();
        let mut s = Schedule::new(vec![addr(peer, 1)], REBOOT, t0, 3);
        let mut ids = 0;
        steps(&mut s, t0, &mut ids);
        s.on_dial_failed(id(ids), t0);
        // It dialled us (a connection the schedule did not ask for).
        s.on_connected(id(500), peer);
        assert_eq!(s.next_wakeup(), None);
        assert!(steps(&mut s, t0 + MAX_RETRY * 2, &mut ids).is_empty());
    }

    #[test]
    fn alone_for_a_while_redials_and_bootstraps_kademlia() {
        let t0 = Instant::now();
        let (a, b, other) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut s = Schedule::new(vec![addr(a, 1), addr(b, 2)], REBOOT, t0, 9);
        let mut ids = 0;
        steps(&mut s, t0, &mut ids);
        s.on_connected(id(1), a);
        s.on_dial_failed(id(2), t0);
        let b_due = s.next_wakeup().unwrap();
        steps(&mut s, b_due, &mut ids);
        s.on_connected(id(ids), b);
        s.on_connected(id(100), other);
        // Losing some peers is no reason to re-dial.
        let t1 = t0 + Duration::from_secs(100);
        s.on_disconnected(2, t1);
        s.on_disconnected(1, t1);
        assert!(steps(&mut s, t1 + REBOOT * 2, &mut ids).is_empty());
        // Alone: nothing before `rebootstrap_after`, then Kademlia and both.
        let t2 = t1 + Duration::from_secs(10);
        s.on_disconnected(0, t2);
        assert_eq!(s.next_wakeup(), Some(t2 + REBOOT));
        assert!(steps(&mut s, t2 + REBOOT - Duration::from_millis(1), &mut ids).is_empty());
        let again = steps(&mut s, t2 + REBOOT, &mut ids);
        assert_eq!(again[0], Step::Kademlia);
        assert_eq!(dials(&again), vec![0, 1]);
        // Both fail: they back off from the first delay; the node stays
        // alone, so Kademlia again after another `rebootstrap_after`.
        let t3 = t2 + REBOOT;
        s.on_dial_failed(id(ids - 1), t3);
        s.on_dial_failed(id(ids), t3);
        assert!(s.entries.iter().all(|e| e.failures == 1));
        let retry = s.next_wakeup().unwrap();
        assert!(retry <= t3 + FIRST_RETRY, "{:?}", retry - t3);
        assert_eq!(
            dials(&steps(&mut s, retry + FIRST_RETRY, &mut ids)).len(),
            2
        );
        let later = steps(&mut s, t3 + REBOOT, &mut ids);
        assert!(later.contains(&Step::Kademlia), "{later:?}");
        // A connection ends the loneliness.
        s.on_connected(id(777), a);
        assert!(!steps(&mut s, t3 + REBOOT * 3, &mut ids).contains(&Step::Kademlia));
    }

    #[test]
    fn a_node_without_bootstrap_addresses_still_bootstraps_kademlia_when_alone() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Vec::new(), REBOOT, t0, 1);
        let mut ids = 0;
        assert!(steps(&mut s, t0, &mut ids).is_empty());
        assert_eq!(steps(&mut s, t0 + REBOOT, &mut ids), vec![Step::Kademlia]);
    }

    #[test]
    fn an_address_without_a_peer_id_is_retried_by_its_dial_outcome() {
        let t0 = Instant::now();
        let plain: Multiaddr = "/dns4/example.invalid/tcp/4001".parse().unwrap();
        let mut s = Schedule::new(vec![plain.clone()], REBOOT, t0, 5);
        let mut ids = 0;
        assert_eq!(
            steps(&mut s, t0, &mut ids),
            vec![Step::Dial {
                index: 0,
                addr: plain
            }]
        );
        s.on_connected(id(1), PeerId::random());
        assert_eq!(s.entries[0].state, State::Joined);
    }
}
