//! Kademlia as libp2p-kad 0.49 runs it, over the simulated network: the
//! XOR metric and the keys are libp2p's own ([`KBucketKey`],
//! [`KBucketDistance`]); the routing table and the iterative query are
//! models of `kbucket` and `query/peers/closest.rs` (neither is public).
//!
//! * **Routing table**: 256 buckets of `k` peers by the log2 of the
//!   distance; a peer is added (or moved to the tail, most recently seen)
//!   when it answers this node or asks it something (every node is a DHT
//!   server and has a connection for the exchange). A full bucket refuses
//!   a newcomer: its oldest entry is alive in the simulation, so libp2p's
//!   ping of the oldest would keep it.
//! * **Join**: what `Behaviour::bootstrap` does: look up the node's own
//!   key through the peers it dialled, then refresh every bucket farther
//!   than the closest non-empty one with a lookup of a key drawn for that
//!   bucket (16 tries, as libp2p does, else any random key).
//! * **Iterative query** (`ClosestPeersIter`): start from the `k` closest
//!   peers in the table; keep `alpha` requests in flight (`k` once
//!   stalled: `alpha` answers without a closer peer); finish when the `k`
//!   closest peers seen have all answered. An answer lists the responder's
//!   `k` closest peers to the key (never the asker), plus, for a provider
//!   request, the providers it holds.
//! * **Providers**: `start_providing` looks up the `k` closest peers to
//!   the key and sends each an `ADD_PROVIDER`, which it keeps if the
//!   node's own rules allow (`providers`: the key, the caps per peer, per
//!   key and in all, at their defaults); the provider is the sender, as
//!   libp2p-kad sets it; `get_providers` runs the query with
//!   provider requests and reports providers as answers bring them.
//!
//! Time: a request costs the round trip to the peer, plus `dial_rtts`
//! round trips for the connection (TCP, Noise, multistream) unless the two
//! nodes hold one already. All peers answer (no churn, no timeouts).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry as MapEntry;

use libp2p::PeerId;
use libp2p::kad::{KBucketDistance, KBucketKey, ProviderRecord, U256};

use super::events::{Micros, Queue};
use super::net::{Ix, World};
use super::rng::Rng;
use crate::config::DhtStoreLimits;
use crate::providers::{self, Caps, Tally};

/// The place of `bytes` (a peer id's, a provider key's) in the keyspace:
/// their SHA-256 as libp2p's [`KBucketKey`] hashes them, as an integer.
pub(crate) fn point(bytes: &[u8]) -> U256 {
    U256::from_big_endian(KBucketKey::new(bytes.to_vec()).hashed_bytes())
}

/// One node's routing table: `buckets[j]` holds the peers at log2
/// distance `255 - j`, oldest first. Only as many buckets as reached.
#[derive(Debug, Default)]
pub(crate) struct Table {
    buckets: Vec<Vec<Ix>>,
}

impl Table {
    /// Adds `peer` (or marks it most recently seen); false when its bucket
    /// is full or it is `me`.
    fn insert(&mut self, keys: &[KBucketKey<PeerId>], me: Ix, peer: Ix, k: usize) -> bool {
        let Some(log) = keys[me as usize].distance(&keys[peer as usize]).ilog2() else {
            return false;
        };
        let j = (255 - log) as usize;
        if self.buckets.len() <= j {
            self.buckets.resize_with(j + 1, Vec::new);
        }
        let bucket = &mut self.buckets[j];
        if let Some(at) = bucket.iter().position(|p| *p == peer) {
            bucket.remove(at);
            bucket.push(peer);
            return true;
        }
        if bucket.len() < k {
            bucket.push(peer);
            return true;
        }
        false
    }

    /// Up to `n` peers closest to `target`, nearest first, without `skip`.
    /// Walks the buckets in order of their distance to the target (as
    /// libp2p's `ClosestBucketsIter`): with `d` = local XOR target and `m`
    /// its highest bit, bucket `m`, then the buckets of `d`'s other set
    /// bits downwards, then those of its clear bits upwards, then the ones
    /// above `m`; each bucket lies wholly nearer than the next.
    fn closest(
        &self,
        world: &World,
        me: Ix,
        target: U256,
        n: usize,
        skip: Ix,
    ) -> Vec<(KBucketDistance, Ix)> {
        let d = world.distance(me, target).0;
        let m = KBucketDistance(d).ilog2().map_or(-1, |m| m as i32);
        // Only the buckets this table has (the nearest ones are empty).
        let lo = 256 - self.buckets.len() as i32;
        let below = (lo..m).rev().filter(|i| d.bit(*i as usize));
        let clear = (lo..m).filter(|i| !d.bit(*i as usize));
        let order = (m >= 0)
            .then_some(m)
            .into_iter()
            .chain(below)
            .chain(clear)
            .chain((m + 1).max(lo)..256);
        let mut out = Vec::with_capacity(n + self.buckets.first().map_or(0, Vec::len));
        for log in order {
            let j = (255 - log) as usize;
            let Some(bucket) = self.buckets.get(j) else {
                continue;
            };
            let from = out.len();
            out.extend(
                bucket
                    .iter()
                    .filter(|p| **p != skip)
                    .map(|p| (world.distance(*p, target), *p)),
            );
            out[from..].sort_unstable();
            if out.len() >= n {
                break;
            }
        }
        out.truncate(n);
        out
    }

    /// Peers in the table.
    pub(crate) fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }

    /// The log2 distances of the buckets to refresh after the self lookup:
    /// every one farther than the closest non-empty bucket.
    fn to_refresh(&self) -> std::ops::RangeInclusive<u32> {
        let closest = self.buckets.iter().rposition(|b| !b.is_empty());
        match closest {
            Some(j) => (256 - j as u32)..=255,
            #[allow(clippy::reversed_empty_ranges)]
            None => 1..=0,
        }
    }
}

/// What a query asks each peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// `FIND_NODE`: closer peers only.
    FindNode,
    /// `GET_PROVIDERS` for the provider key of record `rec`.
    Providers(u32),
}

/// What a query found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The closest peers that answered, nearest first (up to `k`).
    pub(crate) closest: Vec<Ix>,
    /// Providers found, in the order they came.
    pub(crate) providers: Vec<Ix>,
    /// When the first provider came, and in which hop: the peer that
    /// named it was learnt through `hops - 1` others (1: it was in the
    /// asker's own table; 0: the asker holds the record itself).
    pub(crate) first_provider: Option<(u32, Micros)>,
    /// Whether a node other than a provider named one (a provider record
    /// put there), not only a provider speaking for itself.
    pub(crate) from_records: bool,
    /// Requests sent.
    pub(crate) requests: u64,
    /// When the query finished.
    pub(crate) took: Micros,
}

/// The DHT side of every node.
#[derive(Debug)]
pub(crate) struct Dht {
    k: usize,
    alpha: usize,
    dial_rtts: u64,
    pub(crate) tables: Vec<Table>,
    /// Provider records each node keeps: (record, provider).
    pub(crate) providers: Vec<Vec<(u32, Ix)>>,
    /// The same, counted as the node's store counts them.
    tallies: Vec<Tally>,
    caps: Caps,
    /// Requests sent, in all.
    pub(crate) requests: u64,
}

impl Dht {
    pub(crate) fn new(n: usize, k: usize, alpha: usize, dial_rtts: u64) -> Self {
        Self {
            k,
            alpha,
            dial_rtts,
            tables: (0..n).map(|_| Table::default()).collect(),
            providers: vec![Vec::new(); n],
            tallies: (0..n).map(|_| Tally::default()).collect(),
            caps: Caps::of(&DhtStoreLimits::default()),
            requests: 0,
        }
    }

    fn link(&mut self, world: &World, a: Ix, b: Ix) {
        self.tables[a as usize].insert(&world.keys, a, b, self.k);
        self.tables[b as usize].insert(&world.keys, b, a, self.k);
    }

    /// Node `me` joins: its connections go into its table (and it into
    /// theirs), then it bootstraps as libp2p does.
    pub(crate) fn join(&mut self, world: &World, me: Ix, rng: &mut Rng) {
        for i in 0..world.conns[me as usize].len() {
            let peer = world.conns[me as usize][i];
            self.link(world, me, peer);
        }
        self.query(world, me, world.ints[me as usize], Ask::FindNode);
        for log in self.tables[me as usize].to_refresh() {
            // A random peer id's key is uniform in the keyspace.
            let mut target = U256::from_big_endian(&rng.bytes32());
            for _ in 1..16 {
                if world.distance(me, target).ilog2() == Some(log) {
                    break;
                }
                target = U256::from_big_endian(&rng.bytes32());
            }
            self.query(world, me, target, Ask::FindNode);
        }
    }

    /// `start_providing`: `me` finds the `k` closest peers to `target` and
    /// sends each an `ADD_PROVIDER` for record `rec` under `key`. Returns
    /// how many kept it and how many refused.
    pub(crate) fn provide(
        &mut self,
        world: &World,
        me: Ix,
        rec: u32,
        key: &[u8],
        target: U256,
    ) -> (usize, usize) {
        self.providers[me as usize].push((rec, me));
        let found = self.query(world, me, target, Ask::FindNode);
        let (mut kept, mut refused) = (0, 0);
        let sender = world.peer(me);
        let size = providers::size(&ProviderRecord::new(key.to_vec(), sender, Vec::new()));
        for peer in found.closest {
            self.requests += 1;
            let held = &self.providers[peer as usize];
            let of_key = held.iter().filter(|(r, _)| *r == rec).count();
            let tally = &mut self.tallies[peer as usize];
            let admitted = providers::check_key(key)
                .and_then(|()| tally.admit(&self.caps, &sender, size, of_key, None));
            match admitted {
                Ok(()) => {
                    tally.add(sender, size);
                    self.providers[peer as usize].push((rec, me));
                    kept += 1;
                }
                Err(_) => refused += 1,
            }
        }
        (kept, refused)
    }

    /// The time of one request from `a` to `b`.
    fn request_time(&self, world: &World, a: Ix, b: Ix) -> Micros {
        let rtt = 2 * world.one_way(a, b);
        match world.connected(a, b) {
            true => rtt,
            false => rtt * (1 + self.dial_rtts),
        }
    }

    /// An iterative query from `me` for `target`, in virtual time of its
    /// own (it starts at 0).
    pub(crate) fn query(&mut self, world: &World, me: Ix, t: U256, ask: Ask) -> Found {
        let mut found = Found::default();
        if let Ask::Providers(rec) = ask {
            // get_providers first reports what the local store holds.
            for &(r, provider) in &self.providers[me as usize] {
                if r == rec {
                    found.providers.push(provider);
                    found.first_provider.get_or_insert((0, 0));
                }
            }
        }
        let start = self.tables[me as usize].closest(world, me, t, self.k, me);
        let mut iter = ClosestPeers::new(self.k, self.alpha, start);
        let mut flight: Queue<Ix> = Queue::new();
        'query: loop {
            loop {
                match iter.next() {
                    Next::Ask(peer) => {
                        found.requests += 1;
                        flight.after(self.request_time(world, me, peer), peer);
                    }
                    Next::Wait => break,
                    Next::Finished => break 'query,
                }
            }
            let Some(peer) = flight.pop() else { break };
            let now = flight.now();
            // The peer learns of the asker, and the asker of the peer.
            self.link(world, me, peer);
            let mut closer = self.tables[peer as usize].closest(world, peer, t, self.k, me);
            let hop = iter.hop(world.distance(peer, t));
            if let Ask::Providers(rec) = ask {
                for &(r, provider) in &self.providers[peer as usize] {
                    if r != rec {
                        continue;
                    }
                    found.from_records |= provider != peer;
                    if found.providers.contains(&provider) {
                        continue;
                    }
                    found.providers.push(provider);
                    found.first_provider.get_or_insert((hop, now));
                    // libp2p treats the providers as closer peers too.
                    if provider != me {
                        closer.push((world.distance(provider, t), provider));
                    }
                }
            }
            iter.on_success(world.distance(peer, t), closer, hop + 1);
            found.took = now;
        }
        self.requests += found.requests;
        found.closest = iter.into_result();
        found
    }
}

/// What the query does next.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Send a request to this peer.
    Ask(Ix),
    /// Wait for an answer.
    Wait,
    /// Done.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerState {
    NotContacted,
    Waiting,
    Succeeded,
}

#[derive(Debug)]
struct Peer {
    node: Ix,
    state: PeerState,
    /// The hop its request is in (1: from the asker's own table).
    hop: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Iterating { no_progress: usize },
    Stalled,
    Finished,
}

/// libp2p-kad's `ClosestPeersIter`, without timeouts (every peer answers).
#[derive(Debug)]
struct ClosestPeers {
    k: usize,
    alpha: usize,
    peers: BTreeMap<KBucketDistance, Peer>,
    state: State,
    waiting: usize,
}

impl ClosestPeers {
    fn new(k: usize, alpha: usize, start: Vec<(KBucketDistance, Ix)>) -> Self {
        let peers = start
            .into_iter()
            .take(k)
            .map(|(d, node)| {
                let state = PeerState::NotContacted;
                (
                    d,
                    Peer {
                        node,
                        state,
                        hop: 1,
                    },
                )
            })
            .collect();
        Self {
            k,
            alpha,
            peers,
            state: State::Iterating { no_progress: 0 },
            waiting: 0,
        }
    }

    fn at_capacity(&self) -> bool {
        match self.state {
            State::Stalled => self.waiting >= self.k.max(self.alpha),
            State::Iterating { .. } => self.waiting >= self.alpha,
            State::Finished => true,
        }
    }

    fn hop(&self, d: KBucketDistance) -> u32 {
        self.peers.get(&d).map_or(1, |p| p.hop)
    }

    fn next(&mut self) -> Next {
        if self.state == State::Finished {
            return Next::Finished;
        }
        let mut succeeded = Some(0);
        let at_capacity = self.at_capacity();
        for peer in self.peers.values_mut() {
            match peer.state {
                PeerState::Waiting if at_capacity => return Next::Wait,
                PeerState::Waiting => succeeded = None,
                PeerState::Succeeded => {
                    if let Some(n) = succeeded.as_mut() {
                        *n += 1;
                        if *n >= self.k {
                            self.state = State::Finished;
                            return Next::Finished;
                        }
                    }
                }
                PeerState::NotContacted if at_capacity => return Next::Wait,
                PeerState::NotContacted => {
                    peer.state = PeerState::Waiting;
                    self.waiting += 1;
                    return Next::Ask(peer.node);
                }
            }
        }
        if self.waiting > 0 {
            Next::Wait
        } else {
            self.state = State::Finished;
            Next::Finished
        }
    }

    /// The peer at distance `d` answered with `closer` peers (in hop `hop`).
    fn on_success(&mut self, d: KBucketDistance, closer: Vec<(KBucketDistance, Ix)>, hop: u32) {
        if self.state == State::Finished {
            return;
        }
        match self.peers.get_mut(&d) {
            Some(p) if p.state == PeerState::Waiting => {
                self.waiting -= 1;
                p.state = PeerState::Succeeded;
            }
            _ => return,
        }
        let range = self
            .peers
            .keys()
            .nth(self.k - 1)
            .or_else(|| self.peers.keys().last())
            .copied()
            .unwrap_or(d);
        let mut progress = self.peers.len() < self.k;
        for (distance, node) in closer {
            if let MapEntry::Vacant(e) = self.peers.entry(distance) {
                let state = PeerState::NotContacted;
                e.insert(Peer { node, state, hop });
                progress |= distance < range;
            }
        }
        self.state = match self.state {
            State::Iterating { no_progress } => {
                let no_progress = if progress { 0 } else { no_progress + 1 };
                if no_progress >= self.alpha {
                    State::Stalled
                } else {
                    State::Iterating { no_progress }
                }
            }
            State::Stalled if progress => State::Iterating { no_progress: 0 },
            other => other,
        };
    }

    /// The peers that answered, nearest first, up to `k`.
    fn into_result(self) -> Vec<Ix> {
        self.peers
            .into_values()
            .filter(|p| p.state == PeerState::Succeeded)
            .map(|p| p.node)
            .take(self.k)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::net::Latency;
    use super::*;

    /// Targets as libp2p makes them, for the brute-force checks.
    type Target = KBucketKey<Vec<u8>>;

    fn int(target: &Target) -> U256 {
        U256::from_big_endian(target.hashed_bytes())
    }

    fn world(n: usize) -> World {
        World::new(n, 3, Latency::new(1, 1_000, 2_000), &mut Rng::new(5)).unwrap()
    }

    /// Every node joined, in order.
    fn joined(world: &World, k: usize) -> Dht {
        let mut dht = Dht::new(world.len(), k, 3, 2);
        let mut rng = Rng::new(9);
        for me in 0..world.len() as Ix {
            dht.join(world, me, &mut rng);
        }
        dht
    }

    /// The `n` nodes closest to `target`, by brute force.
    fn truly_closest(world: &World, target: &Target, n: usize) -> Vec<Ix> {
        let mut all: Vec<Ix> = (0..world.len() as Ix).collect();
        all.sort_by_key(|i| target.distance(&world.keys[*i as usize]));
        all.truncate(n);
        all
    }

    #[test]
    fn a_bucket_holds_k_peers_and_refuses_the_next() {
        let w = world(200);
        let mut t = Table::default();
        // The farthest bucket (log2 distance 255) holds about half of all.
        let far: Vec<Ix> = (1..200)
            .filter(|p| w.keys[0].distance(&w.keys[*p as usize]).ilog2() == Some(255))
            .collect();
        assert!(far.len() > 5);
        for &p in &far[..4] {
            assert!(t.insert(&w.keys, 0, p, 4));
        }
        assert!(!t.insert(&w.keys, 0, far[4], 4), "a full bucket refuses");
        assert!(
            t.insert(&w.keys, 0, far[0], 4),
            "a known peer moves to the tail"
        );
        assert_eq!(t.buckets[0], vec![far[1], far[2], far[3], far[0]]);
        assert!(!t.insert(&w.keys, 0, 0, 4), "never itself");
    }

    #[test]
    fn the_bucket_walk_gives_the_closest_peers_in_order() {
        let w = world(400);
        let mut t = Table::default();
        for p in 1..400 {
            t.insert(&w.keys, 0, p, 20);
        }
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            let target = Target::new(rng.bytes32().to_vec());
            let mut truth: Vec<(KBucketDistance, Ix)> = t
                .buckets
                .iter()
                .flatten()
                .filter(|p| **p != 7)
                .map(|p| (target.distance(&w.keys[*p as usize]), *p))
                .collect();
            truth.sort_unstable();
            truth.truncate(20);
            assert_eq!(t.closest(&w, 0, int(&target), 20, 7), truth);
        }
    }

    #[test]
    fn a_lookup_after_the_joins_finds_the_true_closest_nodes() {
        let w = world(300);
        let mut dht = joined(&w, 20);
        let mut rng = Rng::new(11);
        for _ in 0..10 {
            let target = Target::new(rng.bytes32().to_vec());
            let from = rng.index(300) as Ix;
            let found = dht.query(&w, from, int(&target), Ask::FindNode);
            let mut truth = truly_closest(&w, &target, 21);
            truth.retain(|n| *n != from);
            truth.truncate(20);
            assert_eq!(found.closest, truth);
            assert!(found.requests >= 20 && found.took > 0);
        }
    }

    #[test]
    fn providers_are_found_from_far_away_and_only_where_put() {
        let w = world(300);
        let mut dht = joined(&w, 20);
        let key = cid::multihash::Multihash::<64>::wrap(0x12, &[7; 32])
            .unwrap()
            .to_bytes();
        let target = Target::new(key.clone());
        assert_eq!(int(&target), point(&key));
        let (kept, refused) = dht.provide(&w, 3, 0, &key, int(&target));
        assert_eq!((kept, refused), (20, 0));
        let holders: Vec<Ix> = (0..300)
            .filter(|n| *n != 3 && dht.providers[*n as usize].contains(&(0, 3)))
            .collect();
        let mut truth = truly_closest(&w, &target, 21);
        truth.retain(|n| *n != 3);
        truth.truncate(20);
        truth.sort_unstable();
        assert_eq!(holders, truth);
        let found = dht.query(&w, 250, int(&target), Ask::Providers(0));
        assert_eq!(found.providers, vec![3]);
        assert!(found.from_records);
        let (hops, at) = found.first_provider.unwrap();
        assert!(hops >= 1 && at > 0);
        // Another record's providers were never put: none is found.
        let none = dht.query(&w, 250, int(&target), Ask::Providers(1));
        assert!(none.providers.is_empty() && none.first_provider.is_none());
    }
}
