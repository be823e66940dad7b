//! A discrete-event simulation of an IPSR network of thousands of nodes in
//! one process: seeded, on a virtual clock (nothing sleeps), run by
//! `cargo bench -p ipsr-node --bench sim` and by a small test in the suite.
//! `docs/dev/simulation.md` says what it models and how to read its line.
//!
//! ```text
//!  identities ─▶ connections ─▶ DHT joins ─▶ gossipsub mesh
//!  (ed25519,     (each node     (own-key      (heartbeats:
//!   peer ids)     dials a few    lookup +      graft < 5,
//!                 earlier)       refresh)      prune > 12)
//!        │
//!        ▼
//!  gossip: publish ─▶ flood to connections ─▶ each node: Service::on_gossip
//!          ─▶ Check (real signature check) ─▶ Service::on_checked ─▶ Apply
//!          ─▶ Service::on_applied ─▶ Report
//!          Accept ─▶ forward on the mesh; heartbeats: IHAVE / IWANT
//!        │
//!        ▼
//!  providers: start_providing (k closest) ─▶ get_providers from far nodes
//!        │
//!        ▼
//!  sim: nodes=N records=R delivered=D/T provider_lookups_ok=L/M p99_hops=H p99_ms=P
//! ```
//!
//! What runs for real: every node's `Service` (the gossip verdicts and
//! the per-peer record budget, fed the virtual time), the signature and
//! field checks of `ipsr-proto` on the record bytes, libp2p's peer ids,
//! Kademlia keys and XOR distance (`KBucketKey`, `KBucketDistance`),
//! gossipsub's message ids and verdict types. What is modelled: the
//! transport (per-pair latency), gossipsub's mesh and forwarding
//! (`mesh`, `gossip`), and Kademlia's routing table and iterative query
//! (`kad`), each after libp2p's own code.
//!
//! The phases are methods of [`Sim`], so a driver can time each; [`run`]
//! runs them all.

mod events;
mod gossip;
mod kad;
mod mesh;
mod net;
mod rng;

use std::fmt;
use std::time::{Duration, Instant};

use ipsr_proto::{ReleaseKey, SignedRecord};
use libp2p::gossipsub::MessageId;
use sha2::{Digest, Sha256};

use crate::config::Config as NodeConfig;
use crate::metrics::Counters;
use crate::service::{Service, Settings};

pub use mesh::{Degrees, MeshStats};

use events::Micros;
use gossip::Peer;
use kad::{Dht, point};
use net::{Ix, Latency, World};
use rng::Rng;

/// How a simulation runs. [`Config::new`] gives the defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Nodes in the network (at least 2).
    pub nodes: usize,
    /// The seed of every random choice.
    pub seed: u64,
    /// Earlier nodes each node dials when it joins (3).
    pub bootstrap: usize,
    /// One-way latency between two nodes, uniform in this range (5–80 ms).
    pub latency: (Duration, Duration),
    /// The gossipsub mesh degrees (6, 5, 12).
    pub mesh: Degrees,
    /// Kademlia's bucket size and replication factor (20).
    pub k: usize,
    /// Kademlia's requests in flight per query (3).
    pub alpha: usize,
    /// Round trips a new connection costs before a DHT request (2).
    pub dial_rtts: u64,
    /// How long a node takes to check a record before its verdict (1 ms).
    pub check_delay: Duration,
    /// Time between two publishes (20 ms).
    pub publish_every: Duration,
    /// The gossipsub heartbeat (1 s, the node's default).
    pub heartbeat: Duration,
    /// Whether heartbeats send IHAVE to non-mesh peers (on, as gossipsub).
    pub lazy_gossip: bool,
    /// Provider lookups (`None`: one per release).
    pub lookups: Option<usize>,
    /// Where `start_providing` puts provider records.
    pub provide_near: ProvideNear,
    /// Check every copy's signature (true), or each distinct message once
    /// and reuse the verdict (false: the same bytes get the same verdict).
    pub verify_every_copy: bool,
    /// The wall-clock time (unix ms) at virtual time zero, for the record
    /// checks (records created after it are refused as future-dated).
    pub unix_ms: u64,
    /// Stop by this wall-clock time, whatever is left to do.
    pub deadline: Option<Instant>,
}

impl Config {
    /// The defaults for `nodes` nodes and `seed`.
    pub fn new(nodes: usize, seed: u64) -> Self {
        Self {
            nodes,
            seed,
            bootstrap: 3,
            latency: (Duration::from_millis(5), Duration::from_millis(80)),
            mesh: Degrees::default(),
            k: libp2p::kad::K_VALUE.get(),
            alpha: libp2p::kad::ALPHA_VALUE.get(),
            dial_rtts: 2,
            check_delay: Duration::from_millis(1),
            publish_every: Duration::from_millis(20),
            heartbeat: NodeConfig::new(Default::default()).gossip_heartbeat,
            lazy_gossip: true,
            lookups: None,
            provide_near: ProvideNear::Key,
            verify_every_copy: false,
            unix_ms: ipsr_proto::now_ms(),
            deadline: None,
        }
    }
}

/// Where provider records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProvideNear {
    /// On the `k` nodes closest to the key (what libp2p does).
    Key,
    /// On the `k` nodes closest to the point across the keyspace from the
    /// key (its top bit flipped): a broken node, for the test that lookups
    /// then fail.
    Opposite,
}

/// Why a simulation cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Fewer than two nodes, or a zero degree, `k` or `alpha`.
    #[error("invalid simulation config: {0}")]
    Config(&'static str),
    /// A node identity could not be made.
    #[error("node identity: {0}")]
    Identity(String),
}

/// The 50th and 99th percentiles and the maximum of a measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spread {
    /// Half are at most this.
    pub p50: u64,
    /// 99 % are at most this.
    pub p99: u64,
    /// The largest.
    pub max: u64,
}

impl Spread {
    /// By nearest rank; zeros when there is nothing.
    fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        let rank = |p: f64| {
            let n = values.len();
            let i = ((n as f64 * p).ceil() as usize).clamp(1, n.max(1)) - 1;
            values.get(i).copied().unwrap_or(0)
        };
        Self {
            p50: rank(0.50),
            p99: rank(0.99),
            max: values.last().copied().unwrap_or(0),
        }
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p50={} p99={} max={}", self.p50, self.p99, self.max)
    }
}

/// What a simulation measured. Its [`Display`](fmt::Display) is the
/// summary line `sim: nodes=N records=R delivered=D/T
/// provider_lookups_ok=L/M p99_hops=H p99_ms=P`, where H and P are the
/// provider lookups' (the hop and the time the first provider came in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// Nodes.
    pub nodes: usize,
    /// Valid records published.
    pub records: usize,
    /// Nodes (other than the publisher) that came to hold each record,
    /// summed over the records ...
    pub delivered: u64,
    /// ... out of `records × (nodes - 1)`.
    pub expected: u64,
    /// Hops from the publisher, per delivery.
    pub gossip_hops: Spread,
    /// Milliseconds from the publish, per delivery.
    pub gossip_ms: Spread,
    /// Deliveries that came through IHAVE/IWANT rather than a push.
    pub pulled: u64,
    /// Copies a node had seen already (dropped by message id).
    pub duplicates: u64,
    /// Copies the service ignored for the sender's record budget.
    pub rate_limited: u64,
    /// Copies the service rejected (invalid records).
    pub rejected: u64,
    /// Nodes that came to hold a forged record (must be 0).
    pub forgeries_held: u64,
    /// Signature checks run.
    pub signature_checks: u64,
    /// The mesh.
    pub mesh: MeshStats,
    /// Routing-table entries over all nodes.
    pub table_entries: u64,
    /// Provider records kept by the nodes asked to keep them.
    pub provider_records: u64,
    /// `ADD_PROVIDER`s refused by the provider rules.
    pub provider_refused: u64,
    /// Provider lookups that found the provider ...
    pub lookups_ok: usize,
    /// ... of those run.
    pub lookups: usize,
    /// Lookups in which a node other than the provider named it (a
    /// provider record did its job; a lookup may also pass by the provider
    /// itself, which answers for itself).
    pub lookups_from_records: usize,
    /// The hop in which the first provider came, per successful lookup.
    pub lookup_hops: Spread,
    /// Milliseconds until the first provider came, per successful lookup.
    pub lookup_ms: Spread,
    /// DHT requests, in all (joins, provides, lookups).
    pub dht_requests: u64,
    /// Virtual milliseconds the gossip phase lasted.
    pub gossip_span_ms: u64,
    /// Whether the deadline cut a phase short.
    pub truncated: bool,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sim: nodes={} records={} delivered={}/{} provider_lookups_ok={}/{} p99_hops={} p99_ms={}",
            self.nodes,
            self.records,
            self.delivered,
            self.expected,
            self.lookups_ok,
            self.lookups,
            self.lookup_hops.p99,
            self.lookup_ms.p99,
        )
    }
}

/// A message on the records topic: a valid record, or forged bytes.
#[derive(Debug)]
struct Msg {
    bytes: Vec<u8>,
    /// Gossipsub's id of it (SHA-256 of the bytes, as the node's swarm).
    id: MessageId,
    /// The release it is a record of (`None`: forged).
    key: Option<ReleaseKey>,
    /// The provider key of its content (a release's CID multihash).
    content: Option<Vec<u8>>,
    /// Who publishes it, and when.
    publisher: Ix,
    at: Micros,
}

/// The random draws of each phase.
#[derive(Debug)]
struct Streams {
    join: Rng,
    mesh: Rng,
    gossip: Rng,
    lookups: Rng,
}

/// A simulated network; run the phases in order (or call [`run`]).
#[derive(Debug)]
pub struct Sim {
    config: Config,
    /// The draws of the joins, the mesh, the gossip and the lookups.
    rng: Streams,
    world: World,
    dht: Dht,
    mesh: Vec<Vec<Ix>>,
    peers: Vec<Peer>,
    msgs: Vec<Msg>,
    /// The instant virtual time zero stands for (the services take
    /// `Instant`s; only differences matter).
    t0: Instant,
    outcome: Outcome,
    /// Per delivery: hops and microseconds.
    deliveries: Vec<(u32, Micros)>,
    /// Per successful lookup: hop and microseconds.
    found: Vec<(u32, Micros)>,
}

impl Sim {
    /// A network of `config.nodes` nodes with their identities and
    /// connections, to publish `records` (from random nodes, in order,
    /// `publish_every` apart) and to have `forgeries` (bytes that are not
    /// valid records) injected between them by random nodes.
    pub fn new(
        config: Config,
        records: Vec<SignedRecord>,
        forgeries: Vec<Vec<u8>>,
    ) -> Result<Self, SimError> {
        if config.nodes < 2 {
            return Err(SimError::Config("at least two nodes"));
        }
        if config.k == 0 || config.alpha == 0 || config.mesh.n == 0 {
            return Err(SimError::Config(
                "k, alpha and the mesh degree must be positive",
            ));
        }
        if config.mesh.low > config.mesh.n || config.mesh.n > config.mesh.high {
            return Err(SimError::Config("mesh degrees must be low <= n <= high"));
        }
        let seed = config.seed;
        let (min, max) = config.latency;
        let latency = Latency::new(seed, micros(min), micros(max));
        let world = World::new(
            config.nodes,
            config.bootstrap,
            latency,
            &mut Rng::stream(seed, 0),
        )?;
        let (mut publishers, mut forgers) = (Rng::stream(seed, 1), Rng::stream(seed, 2));
        let n = config.nodes;
        let every = micros(config.publish_every);
        let mut msgs = Vec::new();
        let mut at = 0;
        let message = |bytes: Vec<u8>| MessageId::from(Sha256::digest(&bytes).to_vec());
        for record in &records {
            let bytes = record.to_bytes();
            let content = record
                .record()
                .as_release()
                .map(|r| r.cid.cid().hash().to_bytes());
            msgs.push(Msg {
                id: message(bytes.clone()),
                bytes,
                key: Some(record.release_key()),
                content,
                publisher: publishers.index(n) as Ix,
                at,
            });
            at += every;
        }
        for (i, bytes) in forgeries.into_iter().enumerate() {
            msgs.push(Msg {
                id: message(bytes.clone()),
                bytes,
                key: None,
                content: None,
                publisher: forgers.index(n) as Ix,
                at: (i as u64 * 2 + 1) * every / 2,
            });
        }
        let dht = Dht::new(n, config.k, config.alpha, config.dial_rtts);
        let outcome = Outcome {
            nodes: n,
            records: records.len(),
            expected: records.len() as u64 * (n as u64 - 1),
            ..Outcome::default()
        };
        Ok(Self {
            rng: Streams {
                join: Rng::stream(seed, 3),
                mesh: Rng::stream(seed, 4),
                gossip: Rng::stream(seed, 5),
                lookups: Rng::stream(seed, 6),
            },
            world,
            dht,
            mesh: Vec::new(),
            peers: Vec::new(),
            msgs,
            t0: Instant::now(),
            outcome,
            deliveries: Vec::new(),
            found: Vec::new(),
            config,
        })
    }

    fn past_deadline(&mut self) -> bool {
        let late = self.config.deadline.is_some_and(|d| Instant::now() >= d);
        self.outcome.truncated |= late;
        late
    }

    /// Every node joins the DHT, in order (each bootstraps through the
    /// nodes it dialled). Returns the nodes that joined.
    pub fn join(&mut self) -> usize {
        for me in 0..self.world.len() {
            if me.is_multiple_of(64) && self.past_deadline() {
                return me;
            }
            self.dht.join(&self.world, me as Ix, &mut self.rng.join);
        }
        self.outcome.table_entries = self.dht.tables.iter().map(|t| t.len() as u64).sum();
        self.world.len()
    }

    /// Builds the gossipsub mesh and starts every node's service, connected
    /// to its peers.
    pub fn form_mesh(&mut self) -> MeshStats {
        let (mesh, stats) = mesh::form(&self.world, self.config.mesh, &mut self.rng.mesh);
        self.mesh = mesh;
        self.outcome.mesh = stats;
        let mut settings = Settings::from(&NodeConfig::new(Default::default()));
        // Gossip alone is measured: sync would hand over what gossip missed.
        settings.sync_on_connect = false;
        let counters = Counters::default();
        self.peers = (0..self.world.len())
            .map(|me| {
                let mut service = Service::new(settings.clone(), counters.clone(), self.t0);
                for &p in &self.world.conns[me] {
                    service.on_connected(self.world.peer(p), true);
                }
                while service.next_action().is_some() {}
                Peer::new(service, self.msgs.len())
            })
            .collect();
        stats
    }

    /// Publishes the records (and injects the forgeries) and runs the
    /// network until no message is in flight (forming the mesh first if
    /// [`form_mesh`](Self::form_mesh) has not run).
    pub fn gossip(&mut self) {
        if self.peers.is_empty() {
            self.form_mesh();
        }
        gossip::run(self);
    }

    /// Each release's publisher provides its content in the DHT.
    pub fn provide(&mut self) {
        for rec in 0..self.msgs.len() {
            if rec.is_multiple_of(64) && self.past_deadline() {
                return;
            }
            let Some(key) = self.msgs[rec].content.clone() else {
                continue;
            };
            let me = self.msgs[rec].publisher;
            let target = match self.config.provide_near {
                ProvideNear::Key => point(&key),
                ProvideNear::Opposite => point(&key) ^ (libp2p::kad::U256::one() << 255),
            };
            let (kept, refused) = self.dht.provide(&self.world, me, rec as u32, &key, target);
            self.outcome.provider_records += kept as u64;
            self.outcome.provider_refused += refused as u64;
        }
    }

    /// Provider lookups of the releases' content, each from a random node
    /// far from the provider (in the other half of the keyspace).
    pub fn look_up(&mut self) {
        let releases: Vec<u32> = (0..self.msgs.len() as u32)
            .filter(|r| self.msgs[*r as usize].content.is_some())
            .collect();
        if releases.is_empty() {
            return;
        }
        let m = self.config.lookups.unwrap_or(releases.len());
        for i in 0..m {
            if i.is_multiple_of(64) && self.past_deadline() {
                return;
            }
            let rec = releases[i % releases.len()];
            let msg = &self.msgs[rec as usize];
            let (provider, target) = match &msg.content {
                Some(key) => (msg.publisher, point(key)),
                None => continue,
            };
            let from = self.far_from(provider);
            let found = self
                .dht
                .query(&self.world, from, target, kad::Ask::Providers(rec));
            self.outcome.lookups += 1;
            self.outcome.lookups_from_records += usize::from(found.from_records);
            if found.providers.contains(&provider)
                && let Some(first) = found.first_provider
            {
                self.outcome.lookups_ok += 1;
                self.found.push(first);
            }
        }
    }

    /// A random node other than `node` whose XOR distance to it has the top
    /// bit set, if one turns up in 64 draws.
    fn far_from(&mut self, node: Ix) -> Ix {
        let n = self.world.len();
        let mut pick = (node as usize + 1) % n;
        for _ in 0..64 {
            let c = self.rng.lookups.index(n);
            if c == node as usize {
                continue;
            }
            pick = c;
            let d = self.world.keys[c].distance(&self.world.keys[node as usize]);
            if d.ilog2() == Some(255) {
                break;
            }
        }
        pick as Ix
    }

    /// What the phases run so far measured.
    pub fn outcome(&self) -> Outcome {
        let mut o = self.outcome.clone();
        o.gossip_hops = Spread::of(self.deliveries.iter().map(|d| u64::from(d.0)).collect());
        o.gossip_ms = Spread::of(self.deliveries.iter().map(|d| d.1.div_ceil(1000)).collect());
        o.lookup_hops = Spread::of(self.found.iter().map(|f| u64::from(f.0)).collect());
        o.lookup_ms = Spread::of(self.found.iter().map(|f| f.1.div_ceil(1000)).collect());
        o.dht_requests = self.dht.requests;
        o
    }
}

/// Runs every phase: join, mesh, gossip, provide, look up.
pub fn run(
    config: Config,
    records: Vec<SignedRecord>,
    forgeries: Vec<Vec<u8>>,
) -> Result<Outcome, SimError> {
    let mut sim = Sim::new(config, records, forgeries)?;
    sim.join();
    sim.form_mesh();
    sim.gossip();
    sim.provide();
    sim.look_up();
    Ok(sim.outcome())
}

/// The process's resident memory (`VmRSS` in `/proc/self/status`), in
/// bytes; `None` where there is no such file.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn micros(d: Duration) -> Micros {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_by_nearest_rank() {
        let s = Spread::of((1..=100).rev().collect());
        assert_eq!((s.p50, s.p99, s.max), (50, 99, 100));
        assert_eq!(Spread::of(vec![]), Spread::default());
        assert_eq!(Spread::of(vec![7]).p99, 7);
    }

    #[test]
    fn the_summary_line_has_the_agreed_shape() {
        let o = Outcome {
            nodes: 3,
            records: 2,
            delivered: 4,
            expected: 4,
            lookups_ok: 2,
            lookups: 2,
            lookup_hops: Spread {
                p50: 1,
                p99: 2,
                max: 2,
            },
            lookup_ms: Spread {
                p50: 10,
                p99: 20,
                max: 20,
            },
            ..Outcome::default()
        };
        assert_eq!(
            o.to_string(),
            "sim: nodes=3 records=2 delivered=4/4 provider_lookups_ok=2/2 p99_hops=2 p99_ms=20"
        );
    }

    #[test]
    fn a_config_that_cannot_run_is_refused() {
        assert!(matches!(
            Sim::new(Config::new(1, 1), vec![], vec![]),
            Err(SimError::Config(_))
        ));
        let mut c = Config::new(10, 1);
        c.mesh.low = 9;
        assert!(matches!(
            Sim::new(c, vec![], vec![]),
            Err(SimError::Config(_))
        ));
    }
}
