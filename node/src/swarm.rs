//! The libp2p swarm a node runs: its protocol ids, the behaviours it
//! combines, and their settings (connection limits per IP and in all, the
//! handshake timeout, DNS, gossipsub with peer scoring and application
//! validation, Kademlia with application-filtered inserts, the sync
//! protocol, raw streams for Bitswap, opt-in mDNS).
//! Nothing here decides what to do with an event: that is the
//! [`Service`](crate::service::Service)'s job.

use std::time::Duration;

use libp2p::gossipsub::{self, IdentTopic, MessageId};
use libp2p::kad;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    Multiaddr, StreamProtocol, Swarm, allow_block_list, connection_limits, identify, noise, ping,
    tcp, yamux,
};
use socket2::{Domain, Protocol as SockProtocol, Socket, Type};
use tracing::warn;

use crate::config::Config;
use crate::dht_store::DhtStore;
use crate::error::NodeError;
use crate::ip_limits::{self, IpLimits};
use crate::sync;

/// The gossipsub topic that carries signed records.
pub const RECORDS_TOPIC: &str = "/ipsr/records/1";
/// The Kademlia protocol id.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipsr/kad/1.0.0");
/// The identify protocol version string.
pub const PROTOCOL_VERSION: &str = "/ipsr/1.0.0";

/// Every behaviour of the node's swarm.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Per-IP limits on inbound connections (before the global ones, so a
    /// refused connection never holds a global slot).
    pub(crate) ip_limits: ip_limits::Behaviour,
    pub(crate) limits: connection_limits::Behaviour,
    /// Peers refused for a while (they sent blocks that do not match).
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::Behaviour<sync::Codec>,
    pub(crate) kad: kad::Behaviour<DhtStore>,
    /// Raw streams, for Bitswap.
    pub(crate) stream: libp2p_stream::Behaviour,
    pub(crate) mdns: libp2p::swarm::behaviour::toggle::Toggle<libp2p::mdns::tokio::Behaviour>,
}

/// Fails when `addr` is a TCP address (`/ip4|ip6/IP/tcp/PORT`, port not 0)
/// whose port another socket listens on.
///
/// libp2p's TCP transport sets `SO_REUSEPORT` on every listening socket (so
/// that dials can leave from the listen port), and Linux then lets a second
/// process of the same user listen on the same port: a second node would
/// start without a word and the kernel would split inbound connections
/// between the two. So before listening, the port is bound and listened on
/// once with the options libp2p uses (`SO_REUSEADDR`, `IPV6_V6ONLY`) but
/// without `SO_REUSEPORT`, which fails while any socket listens there, and
/// let go at once. Two nodes started within the same instant could both
/// pass; a node started after another is listening cannot.
pub(crate) fn check_tcp_port(addr: &Multiaddr) -> Result<(), NodeError> {
    let mut parts = addr.iter();
    let ip: std::net::IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    let port = match parts.next() {
        Some(Protocol::Tcp(port)) if port != 0 => port,
        _ => return Ok(()),
    };
    let at = std::net::SocketAddr::new(ip, port);
    let probe = || -> std::io::Result<()> {
        let socket = Socket::new(
            Domain::for_address(at),
            Type::STREAM,
            Some(SockProtocol::TCP),
        )?;
        if at.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_address(true)?;
        socket.bind(&at.into())?;
        socket.listen(1)
    };
    match probe() {
        Err(source) if source.kind() == std::io::ErrorKind::AddrInUse => {
            Err(NodeError::PortInUse {
                addr: addr.clone(),
                port,
                source,
            })
        }
        // Anything else (an address not on this machine, a privileged port)
        // is for the transport to report when it listens.
        _ => Ok(()),
    }
}

/// How long a connection may take to finish its handshake (TCP:
/// multistream-select, Noise and Yamux; QUIC: its own) before it is
/// dropped, inbound or outbound: an idle socket holds a pending slot no
/// longer than this.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the swarm for `config` with identity `key`: TCP (noise, yamux)
/// and QUIC behind DNS resolution (`/dns`, `/dns4`, `/dns6`, `/dnsaddr`
/// addresses), every behaviour above. It neither listens nor dials yet.
pub(crate) fn build(
    key: libp2p::identity::Keypair,
    config: &Config,
) -> Result<Swarm<Behaviour>, NodeError> {
    let swarm_error = |e: Box<dyn std::error::Error + Send + Sync>| NodeError::Swarm(e);
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_connections))
        .with_max_established_per_peer(Some(config.max_connections_per_peer))
        .with_max_pending_incoming(Some(config.max_connections / 2 + 1));
    let transports = || {
        Ok::<_, NodeError>(
            libp2p::SwarmBuilder::with_existing_identity(key.clone())
                .with_tokio()
                .with_tcp(
                    tcp::Config::default().nodelay(true),
                    noise::Config::new,
                    yamux_config,
                )
                .map_err(|e| swarm_error(Box::new(e)))?
                .with_quic(),
        )
    };
    // The rest of the builder, the same with or without DNS.
    macro_rules! finish {
        ($builder:expr) => {
            $builder
                .with_behaviour(|key| behaviour(key, config, limits.clone()))
                .map_err(|e| swarm_error(Box::new(e)))?
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
                .with_connection_timeout(HANDSHAKE_TIMEOUT)
                .build()
        };
    }
    let swarm = match transports()?.with_dns() {
        Ok(builder) => finish!(builder),
        Err(e) => {
            warn!(error = %e, "no DNS configuration: /dns addresses cannot be dialled");
            finish!(transports()?)
        }
    };
    Ok(swarm)
}

fn behaviour(
    key: &libp2p::identity::Keypair,
    config: &Config,
    limits: connection_limits::ConnectionLimits,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let peer = key.public().to_peer_id();
    Ok(Behaviour {
        ip_limits: ip_limits::Behaviour::new(IpLimits {
            pending: config.max_pending_incoming_per_ip,
            established: config.max_incoming_per_ip,
            exempt: config.ip_limits_exempt.clone(),
        }),
        limits: connection_limits::Behaviour::new(limits),
        blocked: Default::default(),
        identify: identify::Behaviour::new(identify::Config::new(
            PROTOCOL_VERSION.into(),
            key.public(),
        )),
        ping: ping::Behaviour::default(),
        gossipsub: gossipsub(key, config.gossip_heartbeat)?,
        kad: kad(peer, config),
        stream: libp2p_stream::Behaviour::new(),
        // LAN discovery sends multicast beyond this machine: opt-in only.
        mdns: match config.mdns {
            true => Some(libp2p::mdns::tokio::Behaviour::new(
                libp2p::mdns::Config::default(),
                peer,
            )?),
            false => None,
        }
        .into(),
        sync: request_response::Behaviour::with_codec(
            sync::Codec,
            [(sync::PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(30))
                .with_max_concurrent_streams(64),
        ),
    })
}

/// Gossipsub that waits for the application's verdict on every message
/// before forwarding it, with peer scoring (see [`score_params`]).
fn gossipsub(
    key: &libp2p::identity::Keypair,
    heartbeat: Duration,
) -> Result<gossipsub::Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let config = gossipsub::ConfigBuilder::default()
        .validate_messages()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .heartbeat_interval(heartbeat)
        // Keep messages in the cache (where validation results must find
        // them) for at least 5 s, whatever the heartbeat.
        .history_length(history_length(heartbeat))
        .max_transmit_size(ipsr_proto::limits::MAX_RECORD_BYTES + 1024)
        .message_id_fn(message_id)
        .build()?;
    let mut gossipsub =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)?;
    let topic = IdentTopic::new(RECORDS_TOPIC);
    gossipsub.with_peer_score(
        score_params(&topic),
        gossipsub::PeerScoreThresholds::default(),
    )?;
    Ok(gossipsub)
}

/// A gossip message's id: the record id of the signed record it carries
/// (`docs/records.md`), the SHA-256 of its bytes. Receivers accept only
/// the canonical encoding of a record, so a record has one message id and
/// cannot be made new gossip by writing it another way.
fn message_id(message: &gossipsub::Message) -> MessageId {
    MessageId::from(ipsr_proto::RecordId::of(&message.data).as_bytes().to_vec())
}

/// Kademlia on [`KAD_PROTOCOL`]: inbound records and provider records go
/// to the application before they are stored (`StoreInserts::FilterBoth`),
/// into a bounded [`DhtStore`]. Kademlia's own periodic jobs (replicating
/// every record hourly, re-announcing every provided key at once) are off:
/// the service's paced walks republish releases and re-provide pins.
fn kad(peer: libp2p::PeerId, config: &Config) -> kad::Behaviour<DhtStore> {
    let mut cfg = kad::Config::new(KAD_PROTOCOL);
    cfg.set_record_filtering(kad::StoreInserts::FilterBoth);
    cfg.set_max_packet_size(64 * 1024);
    cfg.set_record_ttl(Some(config.dht_record_ttl));
    cfg.set_replication_interval(None);
    cfg.set_publication_interval(None);
    cfg.set_provider_record_ttl(Some(config.provider_record_ttl));
    cfg.set_provider_publication_interval(None);
    let store = DhtStore::new(
        peer,
        config.dht_store,
        config.dht_record_ttl,
        config.provider_record_ttl,
    );
    let mut kad = kad::Behaviour::with_config(peer, store, cfg);
    // Fixed either way: in auto mode kad would serve as soon as the node
    // has an external address, and every node announces its listen ones.
    kad.set_mode(Some(match config.dht_server {
        true => kad::Mode::Server,
        false => kad::Mode::Client,
    }));
    kad
}

/// Yamux with each stream's receive window capped at 1 MiB. rust-yamux
/// refuses frames over 1 MiB (and closes the connection), yet grows a busy
/// stream's window up to the connection's 1 GiB budget; peers such as
/// js-yamux send frames as large as the window, so a window over 1 MiB
/// breaks Bitswap from Helia. libp2p-yamux only exposes the stream count:
/// 4093 streams × 256 KiB guaranteed leaves 0.75 MiB of the 1 GiB budget
/// for growth, so no stream's window passes 1 MiB.
fn yamux_config() -> yamux::Config {
    let mut config = yamux::Config::default();
    config.set_max_num_streams(4093);
    config
}

/// Heartbeats in gossipsub's message cache: at least 5, and at least 5 s.
fn history_length(heartbeat: Duration) -> usize {
    let beats = Duration::from_secs(5).as_millis() / heartbeat.as_millis().max(1);
    usize::try_from(beats).unwrap_or(usize::MAX).max(5)
}

/// Gossipsub peer scoring for the records topic (see `docs/node.md`): an
/// invalid record costs far more than any good behaviour can earn, so a
/// single forgery drives the sender's score below zero.
fn score_params(topic: &IdentTopic) -> gossipsub::PeerScoreParams {
    let mut params = gossipsub::PeerScoreParams {
        // Good behaviour earns at most this much.
        topic_score_cap: 100.0,
        // Many honest nodes share an address (NAT, phones, local testnets).
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    params.topics.insert(
        topic.hash(),
        gossipsub::TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 0.1,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 300.0,
            first_message_deliveries_weight: 1.0,
            first_message_deliveries_cap: 50.0,
            // Records are rare: staying quiet in the mesh is no fault.
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            invalid_message_deliveries_weight: -1000.0,
            invalid_message_deliveries_decay: 0.3,
            ..Default::default()
        },
    );
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_cache_spans_five_seconds_and_five_beats() {
        assert_eq!(history_length(Duration::from_secs(1)), 5);
        assert_eq!(history_length(Duration::from_millis(100)), 50);
        assert_eq!(history_length(Duration::from_secs(10)), 5);
        assert_eq!(history_length(Duration::ZERO), 5000);
    }

    #[test]
    fn a_message_id_is_the_record_id_of_its_data() {
        let record = ipsr_testkit::release(&ipsr_testkit::key(1), "1.0.0").sign();
        let message = gossipsub::Message {
            source: None,
            data: record.to_bytes(),
            sequence_number: None,
            topic: IdentTopic::new(RECORDS_TOPIC).hash(),
        };
        assert_eq!(message_id(&message).0, record.id().as_bytes().to_vec());
    }

    #[test]
    fn one_forgery_outweighs_the_most_a_peer_can_earn() {
        let topic = IdentTopic::new(RECORDS_TOPIC);
        let params = score_params(&topic);
        let t = &params.topics[&topic.hash()];
        let most = t.time_in_mesh_weight * t.time_in_mesh_cap
            + t.first_message_deliveries_weight * t.first_message_deliveries_cap;
        let capped = most.min(params.topic_score_cap);
        // P4 is squared: one invalid message costs its weight once.
        assert!(capped + t.invalid_message_deliveries_weight * 1.0 < 0.0);
    }

    /// A listener as libp2p's TCP transport makes one: `SO_REUSEADDR` and
    /// `SO_REUSEPORT`.
    fn shared_listener(at: std::net::SocketAddr) -> Socket {
        let socket = Socket::new(Domain::for_address(at), Type::STREAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket.bind(&at.into()).unwrap();
        socket.listen(8).unwrap();
        socket
    }

    #[test]
    fn a_tcp_port_in_use_is_refused_even_when_shareable() {
        let taken = shared_listener("127.0.0.1:0".parse().unwrap());
        let port = taken.local_addr().unwrap().as_socket().unwrap().port();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
        let e = check_tcp_port(&addr).unwrap_err();
        assert!(matches!(e, NodeError::PortInUse { port: p, .. } if p == port));
        assert!(
            e.to_string()
                .contains(&format!("TCP port {port} is already in use")),
            "{e}"
        );
        // Every interface covers loopback.
        let any: Multiaddr = format!("/ip4/0.0.0.0/tcp/{port}").parse().unwrap();
        assert!(check_tcp_port(&any).is_err());
        // Free again once it is closed; port 0, QUIC and other forms are
        // not checked here.
        drop(taken);
        assert!(check_tcp_port(&addr).is_ok());
        for other in [
            "/ip4/127.0.0.1/tcp/0".to_owned(),
            format!("/ip4/127.0.0.1/udp/{port}/quic-v1"),
            format!("/dns4/localhost/tcp/{port}"),
        ] {
            assert!(check_tcp_port(&other.parse().unwrap()).is_ok(), "{other}");
        }
    }
}
