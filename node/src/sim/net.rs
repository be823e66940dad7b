//! The simulated network under the protocols: node identities (real
//! libp2p peer ids and Kademlia keys), the connections each node made when
//! it joined, and the latency between any two nodes.
//!
//! Topology: node `i` dials up to `bootstrap` distinct nodes drawn at
//! random among `0..i` (the way a testnet's nodes start from the addresses
//! of nodes already up); connections are both ways. The graph is connected
//! (every node links to an earlier one) and sparse (about `2 × bootstrap`
//! connections a node, more for the oldest).
//!
//! Latency: every pair of nodes has a fixed one-way delay drawn uniformly
//! from `[min, max]` by a hash of the seed and the pair, so it needs no
//! table, is symmetric, and is the same for a seed.

use libp2p::PeerId;
use libp2p::identity::Keypair;
use libp2p::kad::{KBucketDistance, KBucketKey, U256};

use super::SimError;
use super::events::Micros;
use super::rng::{Rng, mix};

/// A node's index in the simulation.
pub(crate) type Ix = u32;

/// Identities, connections and latencies.
#[derive(Debug)]
pub(crate) struct World {
    /// Each node's peer id, as its Kademlia key (the preimage is the id).
    pub(crate) keys: Vec<KBucketKey<PeerId>>,
    /// The same keys as integers (the XOR metric without re-parsing).
    pub(crate) ints: Vec<U256>,
    /// Each node's connected peers, in index order.
    pub(crate) conns: Vec<Vec<Ix>>,
    latency: Latency,
}

impl World {
    /// `n` nodes with ed25519 identities from `rng`, each connected to up
    /// to `bootstrap` random earlier ones.
    pub(crate) fn new(
        n: usize,
        bootstrap: usize,
        latency: Latency,
        rng: &mut Rng,
    ) -> Result<Self, SimError> {
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            let keypair = Keypair::ed25519_from_bytes(rng.bytes32())
                .map_err(|e| SimError::Identity(e.to_string()))?;
            keys.push(KBucketKey::from(keypair.public().to_peer_id()));
        }
        let mut conns: Vec<Vec<Ix>> = vec![Vec::new(); n];
        for i in 1..n {
            let mut picked: Vec<Ix> = Vec::with_capacity(bootstrap);
            while picked.len() < bootstrap.min(i) {
                let j = rng.index(i) as Ix;
                if !picked.contains(&j) {
                    picked.push(j);
                }
            }
            for j in picked {
                conns[i].push(j);
                conns[j as usize].push(i as Ix);
            }
        }
        for c in &mut conns {
            c.sort_unstable();
        }
        let ints = keys
            .iter()
            .map(|k| U256::from_big_endian(k.hashed_bytes()))
            .collect();
        Ok(Self {
            keys,
            ints,
            conns,
            latency,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn peer(&self, node: Ix) -> PeerId {
        *self.keys[node as usize].preimage()
    }

    /// The XOR distance from node `a` to the key `to`.
    pub(crate) fn distance(&self, a: Ix, to: U256) -> KBucketDistance {
        KBucketDistance(self.ints[a as usize] ^ to)
    }

    pub(crate) fn connected(&self, a: Ix, b: Ix) -> bool {
        self.conns[a as usize].binary_search(&b).is_ok()
    }

    /// One-way delay from `a` to `b` (the same both ways).
    pub(crate) fn one_way(&self, a: Ix, b: Ix) -> Micros {
        self.latency.between(a, b)
    }
}

/// Per-pair one-way delays, uniform in `[min, max]` microseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latency {
    seed: u64,
    min: Micros,
    span: Micros,
}

impl Latency {
    pub(crate) fn new(seed: u64, min: Micros, max: Micros) -> Self {
        Self {
            seed: mix(seed ^ 0x6c61_7465_6e63_7921),
            min,
            span: max.saturating_sub(min) + 1,
        }
    }

    pub(crate) fn between(&self, a: Ix, b: Ix) -> Micros {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let h = mix(self.seed ^ (u64::from(lo) << 32 | u64::from(hi)));
        self.min + ((u128::from(h) * u128::from(self.span)) >> 64) as u64
    }
}

/// A fixed-size set of small numbers (records a node has seen or holds).
#[derive(Debug, Clone, Default)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub(crate) fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }

    pub(crate) fn contains(&self, i: u32) -> bool {
        self.0[i as usize / 64] & (1 << (i % 64)) != 0
    }

    /// Adds `i`; false when it was there.
    pub(crate) fn insert(&mut self, i: u32) -> bool {
        let word = &mut self.0[i as usize / 64];
        let bit = 1 << (i % 64);
        let new = *word & bit == 0;
        *word |= bit;
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_symmetric_in_range_and_seeded() {
        let l = Latency::new(1, 5_000, 80_000);
        for (a, b) in [(0, 1), (7, 3), (100, 2_000)] {
            let d = l.between(a, b);
            assert_eq!(d, l.between(b, a));
            assert!((5_000..=80_000).contains(&d));
        }
        let other = Latency::new(2, 5_000, 80_000);
        assert!((0..20).any(|i| l.between(i, i + 1) != other.between(i, i + 1)));
    }

    #[test]
    fn every_node_links_to_earlier_ones_both_ways() {
        let w = World::new(50, 3, Latency::new(1, 1, 2), &mut Rng::new(3)).unwrap();
        for i in 1..50u32 {
            let earlier = w.conns[i as usize].iter().filter(|j| **j < i).count();
            assert_eq!(earlier, 3.min(i as usize));
            for &j in &w.conns[i as usize] {
                assert!(w.connected(j, i));
            }
        }
    }

    #[test]
    fn bits_insert_once() {
        let mut b = Bits::new(130);
        assert!(b.insert(129));
        assert!(!b.insert(129));
        assert!(b.contains(129) && !b.contains(128));
    }
}
