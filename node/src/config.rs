//! The node's configuration: a plain struct with sane defaults. The binary
//! turns its flags, `IPSR_*` variables and config file into one of these.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use libp2p::Multiaddr;

/// How a node runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where the identity key and the store live.
    pub data_dir: PathBuf,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Addresses other peers should dial this node at, told them in
    /// provider records and identify. Empty (the default): the addresses
    /// the node listens on, as they come up (every interface's for
    /// `0.0.0.0`). Set it when peers reach the node elsewhere (a port
    /// forward, a DNS name).
    pub announce: Vec<Multiaddr>,
    /// Peers to join through (`/ip4/.../tcp/.../p2p/<peer id>`, also
    /// `/dns4/<name>/...`), dialled at start and again, with backoff, until
    /// they answer.
    pub bootstrap: Vec<Multiaddr>,
    /// How long a node with no peer at all waits before it dials its
    /// bootstrap peers again and re-runs a Kademlia bootstrap.
    pub rebootstrap_after: Duration,
    /// Most established connections in all (inbound connections in
    /// handshake: half of it, plus one).
    pub max_connections: u32,
    /// Most established connections to one peer.
    pub max_connections_per_peer: u32,
    /// Most inbound connections in handshake from one IP address (IPv6:
    /// one /64).
    pub max_pending_incoming_per_ip: u32,
    /// Most established inbound connections from one IP address (IPv6:
    /// one /64).
    pub max_incoming_per_ip: u32,
    /// Addresses the per-IP limits do not apply to (by default the
    /// loopback addresses local nodes share, `127.0.0.1` and `::1`).
    pub ip_limits_exempt: Vec<IpAddr>,
    /// The gossipsub heartbeat (mesh maintenance, gossip emission).
    pub gossip_heartbeat: Duration,
    /// Most inbound gossip records a peer may send per second before they
    /// are ignored.
    pub max_records_per_peer_per_sec: u32,
    /// Records of one author this node accepts and passes on per second,
    /// from gossip and local publishes, after a burst of
    /// [`author_records_burst`](Self::author_records_burst) (10). Over it,
    /// a gossiped record is dropped (not stored, not forwarded, no penalty
    /// for the relay) and a local publish is refused (HTTP 429). Sync and
    /// DHT records are not counted. 0: no limit.
    pub max_records_per_author_per_sec: u32,
    /// How many records of one author may come at once (200).
    pub author_records_burst: u32,
    /// Most authors whose rate is tracked at once (16 384); past it, the
    /// author closest to a full bucket is forgotten.
    pub max_tracked_authors: usize,
    /// How often to sync with one more connected peer, in turn (a node also
    /// syncs with every peer when it connects).
    pub sync_interval: Duration,
    /// Whether to sync with each peer when first connected (on by default;
    /// off only to test the other paths).
    pub sync_on_connect: bool,
    /// Serve the DHT (Kademlia server mode). On for daemons; a phone or
    /// another short-lived client may turn it off.
    pub dht_server: bool,
    /// How often to re-announce the next batch of held releases in the
    /// DHT. The batch follows the number of releases, so that every one is
    /// put again at least every quarter of [`dht_record_ttl`](Self::dht_record_ttl).
    pub dht_republish_interval: Duration,
    /// How long a DHT value record lives on the peers that keep it (48 h).
    pub dht_record_ttl: Duration,
    /// What the in-memory DHT store keeps at most.
    pub dht_store: DhtStoreLimits,
    /// Find peers on the local network with mDNS (off by default: it sends
    /// multicast off the machine).
    pub mdns: bool,
    /// Most bytes of blocks the blockstore keeps (`None`: no limit;
    /// default [`DEFAULT_BLOCKSTORE_LIMIT`]). Past it, unpinned blocks are
    /// evicted, least recently used first; pins that would take the pinned
    /// bytes past it are refused.
    pub blockstore_limit: Option<u64>,
    /// How often to re-announce this node as a provider of the next batch
    /// of pinned roots. The batch follows the number of pins, so that every
    /// one is announced again at least every quarter of
    /// [`provider_record_ttl`](Self::provider_record_ttl).
    pub provide_interval: Duration,
    /// How long a provider record lives on the peers that keep it (48 h,
    /// as in IPFS).
    pub provider_record_ttl: Duration,
}

/// The blockstore's default limit: 10 GiB (`--max-storage-mib`).
pub const DEFAULT_BLOCKSTORE_LIMIT: u64 = 10 * 1024 * 1024 * 1024;

/// What a node's in-memory DHT store keeps at most (`docs/node.md`,
/// "Kademlia DHT"). A record or provider record past a limit is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DhtStoreLimits {
    /// Value records.
    pub records: usize,
    /// Bytes of value records (keys and values).
    pub record_bytes: usize,
    /// Provider records of other peers, in all.
    pub providers: usize,
    /// Bytes of those (keys, provider ids and addresses).
    pub provider_bytes: usize,
    /// Provider records of one peer.
    pub providers_per_peer: usize,
    /// Providers of one key (besides this node).
    pub providers_per_key: usize,
}

impl Default for DhtStoreLimits {
    /// 100 000 records in 128 MiB; 200 000 provider records in 64 MiB,
    /// 20 000 of one peer, 20 (k) for one key.
    fn default() -> Self {
        Self {
            records: 100_000,
            record_bytes: 128 * 1024 * 1024,
            providers: 200_000,
            provider_bytes: 64 * 1024 * 1024,
            providers_per_peer: 20_000,
            providers_per_key: 20,
        }
    }
}

impl Config {
    /// Defaults: listen on TCP and QUIC port 4001 on every interface.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            listen: vec![
                "/ip4/0.0.0.0/tcp/4001".parse().expect("valid multiaddr"),
                "/ip4/0.0.0.0/udp/4001/quic-v1"
                    .parse()
                    .expect("valid multiaddr"),
            ],
            bootstrap: Vec::new(),
            announce: Vec::new(),
            rebootstrap_after: Duration::from_secs(30),
            max_connections: 256,
            max_connections_per_peer: 2,
            max_pending_incoming_per_ip: 4,
            max_incoming_per_ip: 8,
            ip_limits_exempt: crate::ip_limits::default_exempt(),
            gossip_heartbeat: Duration::from_secs(1),
            max_records_per_peer_per_sec: 200,
            max_records_per_author_per_sec: 10,
            author_records_burst: 200,
            max_tracked_authors: 16_384,
            sync_interval: Duration::from_secs(30),
            sync_on_connect: true,
            dht_server: true,
            dht_republish_interval: Duration::from_secs(60),
            dht_record_ttl: Duration::from_secs(48 * 60 * 60),
            dht_store: DhtStoreLimits::default(),
            mdns: false,
            blockstore_limit: Some(DEFAULT_BLOCKSTORE_LIMIT),
            provide_interval: Duration::from_secs(60),
            provider_record_ttl: Duration::from_secs(48 * 60 * 60),
        }
    }

    /// A configuration for tests and local networks: loopback TCP on a free
    /// port, a fast heartbeat.
    pub fn local(data_dir: PathBuf) -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
            gossip_heartbeat: Duration::from_millis(100),
            sync_interval: Duration::from_secs(2),
            ..Self::new(data_dir)
        }
    }
}
