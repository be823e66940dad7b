//! The gossipsub mesh of the records topic over the simulated
//! connections, as gossipsub's heartbeat builds it (libp2p-gossipsub
//! 0.50, default `mesh_n` = 6, `mesh_n_low` = 5, `mesh_n_high` = 12):
//!
//! * a node with fewer than `mesh_n_low` mesh peers grafts connected
//!   peers at random until it has `mesh_n` (or runs out); the grafted
//!   peer accepts, whatever its own count;
//! * a node with more than `mesh_n_high` prunes peers at random down to
//!   `mesh_n`; a pruned pair does not graft each other again (the 60 s
//!   prune backoff outlasts the simulation);
//! * heartbeats repeat, every node in a seeded random order, until one
//!   changes nothing (or `MAX_ROUNDS`).
//!
//! Not modelled: peer scores (all honest peers score alike), the
//! outbound quota, opportunistic grafting.

use std::collections::HashSet;

use super::net::{Ix, World};
use super::rng::Rng;

/// Heartbeats at most.
const MAX_ROUNDS: usize = 50;

/// The mesh degrees (gossipsub's `mesh_n`, `mesh_n_low`, `mesh_n_high`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Degrees {
    /// The target.
    pub n: usize,
    /// Graft below this.
    pub low: usize,
    /// Prune above this.
    pub high: usize,
}

impl Default for Degrees {
    fn default() -> Self {
        Self {
            n: 6,
            low: 5,
            high: 12,
        }
    }
}

/// What the mesh came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeshStats {
    /// Heartbeats run.
    pub rounds: usize,
    /// Mesh links, each counted once.
    pub links: usize,
    /// The fewest mesh peers of any node.
    pub min_degree: usize,
    /// The most mesh peers of any node.
    pub max_degree: usize,
    /// Connected parts of the mesh (1: every node reaches every other).
    pub components: usize,
}

/// Builds the mesh: each node's mesh peers, in index order.
pub(crate) fn form(world: &World, d: Degrees, rng: &mut Rng) -> (Vec<Vec<Ix>>, MeshStats) {
    let n = world.len();
    let mut mesh: Vec<Vec<Ix>> = vec![Vec::new(); n];
    let mut backoff: HashSet<(Ix, Ix)> = HashSet::new();
    let mut order: Vec<Ix> = (0..n as Ix).collect();
    let mut rounds = 0;
    for _ in 0..MAX_ROUNDS {
        rounds += 1;
        let mut changed = false;
        rng.shuffle(&mut order);
        for &me in &order {
            let m = me as usize;
            if mesh[m].len() < d.low {
                let mut candidates: Vec<Ix> = world.conns[m]
                    .iter()
                    .copied()
                    .filter(|p| !mesh[m].contains(p) && !backoff.contains(&pair(me, *p)))
                    .collect();
                rng.shuffle(&mut candidates);
                for p in candidates.into_iter().take(d.n - mesh[m].len()) {
                    mesh[m].push(p);
                    mesh[p as usize].push(me);
                    changed = true;
                }
            } else if mesh[m].len() > d.high {
                rng.shuffle(&mut mesh[m]);
                while mesh[m].len() > d.n {
                    let Some(p) = mesh[m].pop() else { break };
                    mesh[p as usize].retain(|q| *q != me);
                    backoff.insert(pair(me, p));
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    for peers in &mut mesh {
        peers.sort_unstable();
    }
    let stats = MeshStats {
        rounds,
        links: mesh.iter().map(Vec::len).sum::<usize>() / 2,
        min_degree: mesh.iter().map(Vec::len).min().unwrap_or(0),
        max_degree: mesh.iter().map(Vec::len).max().unwrap_or(0),
        components: components(&mesh),
    };
    (mesh, stats)
}

fn pair(a: Ix, b: Ix) -> (Ix, Ix) {
    (a.min(b), a.max(b))
}

/// Connected parts of an undirected graph.
fn components(graph: &[Vec<Ix>]) -> usize {
    let mut seen = vec![false; graph.len()];
    let mut parts = 0;
    let mut stack = Vec::new();
    for start in 0..graph.len() {
        if seen[start] {
            continue;
        }
        parts += 1;
        seen[start] = true;
        stack.push(start);
        while let Some(v) = stack.pop() {
            for &w in &graph[v] {
                if !std::mem::replace(&mut seen[w as usize], true) {
                    stack.push(w as usize);
                }
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::super::net::Latency;
    use super::*;

    #[test]
    fn the_mesh_uses_connections_symmetrically_within_the_degrees() {
        let w = World::new(500, 3, Latency::new(1, 1, 2), &mut Rng::new(2)).unwrap();
        let d = Degrees::default();
        let (mesh, stats) = form(&w, d, &mut Rng::new(4));
        for (me, peers) in mesh.iter().enumerate() {
            assert!(peers.len() <= d.high, "node {me}: {}", peers.len());
            for &p in peers {
                assert!(w.connected(me as Ix, p));
                assert!(mesh[p as usize].contains(&(me as Ix)));
            }
            // A node short of `low` has meshed every peer it may.
            if peers.len() < d.low {
                assert!(w.conns[me].len() >= peers.len());
            }
        }
        assert!(stats.min_degree >= 1 && stats.max_degree <= d.high);
        assert_eq!(components(&[vec![1], vec![0], vec![]]), 2);
    }
}
