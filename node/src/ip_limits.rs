//! Per-IP limits on inbound connections: a [`NetworkBehaviour`] that
//! refuses an inbound connection when its source address already has
//! `pending` connections in handshake, or `established` inbound
//! connections, so that one address cannot take every slot of the global
//! limits (`connection_limits`) and keep other peers out.
//!
//! ```text
//!  accept ──▶ pending (≤ pending per source) ──handshake──▶ established (≤ per source)
//!                │ refused, failed, timed out                │ closed
//!                ▼                                           ▼
//!             slot freed                                  slot freed
//! ```
//!
//! A source is an IPv4 address, or the /64 prefix of an IPv6 address (one
//! host usually holds a whole /64); an IPv4-mapped IPv6 address counts as
//! its IPv4 address. Addresses in the exempt list (by default the
//! loopback addresses `127.0.0.1` and `::1`, which every node of a local
//! testnet shares) and non-IP addresses are not counted. Outbound
//! connections are never limited here: this node chose to dial them.
//!
//! Bookkeeping follows the swarm's events: a pending connection is counted
//! from `handle_pending_inbound_connection` until it is established or a
//! `ListenFailure` reports it gone (refused by any behaviour, failed, timed
//! out); an established inbound one from `ConnectionEstablished` until
//! `ConnectionClosed`. Both maps are bounded by the global connection
//! limits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::{ConnectionEstablished, ListenFailure};
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};
use tracing::debug;

/// The limits, from the node's [`Config`](crate::config::Config).
#[derive(Debug, Clone)]
pub(crate) struct IpLimits {
    /// Most inbound connections in handshake per source.
    pub(crate) pending: u32,
    /// Most established inbound connections per source.
    pub(crate) established: u32,
    /// Addresses not limited.
    pub(crate) exempt: Vec<IpAddr>,
}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Connections in handshake.
    Pending,
    /// Established inbound connections.
    Established,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending inbound",
            Self::Established => "established inbound",
        })
    }
}

/// Why an inbound connection was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("per-IP limit: at most {limit} {kind} connections from {from}")]
pub(crate) struct Exceeded {
    /// The source (an IPv4 address or an IPv6 /64 prefix).
    pub(crate) from: IpAddr,
    /// The limit reached.
    pub(crate) limit: u32,
    /// Which one.
    pub(crate) kind: Kind,
}

/// Counts inbound connections per source and refuses those over the
/// limits.
#[derive(Debug)]
pub(crate) struct Behaviour {
    limits: IpLimits,
    pending: Counts,
    established: Counts,
}

/// Connections by id, with their source, and how many per source.
#[derive(Debug, Default)]
struct Counts {
    by_id: HashMap<ConnectionId, IpAddr>,
    by_source: HashMap<IpAddr, u32>,
}

impl Counts {
    fn count(&self, source: &IpAddr) -> u32 {
        self.by_source.get(source).copied().unwrap_or(0)
    }

    fn add(&mut self, id: ConnectionId, source: IpAddr) {
        if self.by_id.insert(id, source).is_none() {
            *self.by_source.entry(source).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, id: &ConnectionId) {
        let Some(source) = self.by_id.remove(id) else {
            return;
        };
        if let Some(n) = self.by_source.get_mut(&source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_source.remove(&source);
            }
        }
    }
}

impl Behaviour {
    pub(crate) fn new(limits: IpLimits) -> Self {
        Self {
            limits,
            pending: Counts::default(),
            established: Counts::default(),
        }
    }

    /// The source `remote` counts under, or `None` when it is exempt or
    /// not an IP address.
    fn source(&self, remote: &Multiaddr) -> Option<IpAddr> {
        let ip = match remote.iter().next()? {
            Protocol::Ip4(ip) => IpAddr::V4(ip),
            Protocol::Ip6(ip) => match ip.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(ip),
            },
            _ => return None,
        };
        if self.limits.exempt.contains(&ip) {
            return None;
        }
        Some(match ip {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => IpAddr::V6(prefix_64(v6)),
        })
    }

    fn check(
        counts: &Counts,
        from: IpAddr,
        limit: u32,
        kind: Kind,
    ) -> Result<(), ConnectionDenied> {
        if counts.count(&from) >= limit {
            debug!(%from, limit, %kind, "inbound connection refused: per-IP limit");
            return Err(ConnectionDenied::new(Exceeded { from, limit, kind }));
        }
        Ok(())
    }
}

/// The /64 network of an IPv6 address.
fn prefix_64(ip: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(ip) & !u128::from(u64::MAX))
}

/// The loopback addresses local nodes share, exempt by default.
pub(crate) fn default_exempt() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ]
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        if let Some(from) = self.source(remote_addr) {
            Self::check(&self.pending, from, self.limits.pending, Kind::Pending)?;
            self.pending.add(connection_id, from);
        }
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // No longer in handshake, whatever is decided now.
        self.pending.remove(&connection_id);
        if let Some(from) = self.source(remote_addr) {
            let limit = self.limits.established;
            Self::check(&self.established, from, limit, Kind::Established)?;
        }
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            // Counted only once every behaviour has accepted it.
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                connection_id,
                endpoint: ConnectedPoint::Listener { send_back_addr, .. },
                ..
            }) => {
                if let Some(from) = self.source(send_back_addr) {
                    self.established.add(connection_id, from);
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.established.remove(&connection_id);
            }
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.pending.remove(&connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use libp2p::swarm::ListenError;

    use super::*;

    fn limits(pending: u32, established: u32) -> Behaviour {
        Behaviour::new(IpLimits {
            pending,
            established,
            exempt: default_exempt(),
        })
    }

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn id(n: usize) -> ConnectionId {
        ConnectionId::new_unchecked(n)
    }

    fn local() -> Multiaddr {
        ma("/ip4/127.0.0.1/tcp/4001")
    }

    fn pending(b: &mut Behaviour, n: usize, remote: &str) -> Result<(), ConnectionDenied> {
        b.handle_pending_inbound_connection(id(n), &local(), &ma(remote))
    }

    fn failed(b: &mut Behaviour, n: usize, remote: &str) {
        let error = ListenError::Aborted;
        b.on_swarm_event(FromSwarm::ListenFailure(ListenFailure {
            local_addr: &local(),
            send_back_addr: &ma(remote),
            error: &error,
            connection_id: id(n),
            peer_id: None,
        }));
    }

    /// The whole inbound path of connection `n`: handshake, every
    /// behaviour's consent, then the swarm's `ConnectionEstablished`.
    fn establish(b: &mut Behaviour, n: usize, remote: &str) -> Result<(), ConnectionDenied> {
        pending(b, n, remote)?;
        let peer = PeerId::random();
        b.handle_established_inbound_connection(id(n), peer, &local(), &ma(remote))?;
        let endpoint = ConnectedPoint::Listener {
            local_addr: local(),
            send_back_addr: ma(remote),
        };
        b.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id: peer,
            connection_id: id(n),
            endpoint: &endpoint,
            failed_addresses: &[],
            other_established: 0,
        }));
        Ok(())
    }

    fn close(b: &mut Behaviour, n: usize, remote: &str) {
        let endpoint = ConnectedPoint::Listener {
            local_addr: local(),
            send_back_addr: ma(remote),
        };
        b.on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id: PeerId::random(),
            connection_id: id(n),
            endpoint: &endpoint,
            cause: None,
            remaining_established: 0,
        }));
    }

    fn refused_kind(result: Result<(), ConnectionDenied>) -> Kind {
        let denied = result.expect_err("refused");
        denied
            .downcast::<Exceeded>()
            .expect("a per-IP refusal")
            .kind
    }

    const FLOODER: &str = "/ip4/198.51.100.7/tcp/50000";

    #[test]
    fn one_address_holds_at_most_the_pending_limit_others_still_get_in() {
        let mut b = limits(4, 8);
        for n in 0..4 {
            pending(&mut b, n, FLOODER).unwrap();
        }
        for n in 4..200 {
            assert_eq!(refused_kind(pending(&mut b, n, FLOODER)), Kind::Pending);
            // The swarm reports every refusal: no slot may leak.
            failed(&mut b, n, FLOODER);
        }
        assert_eq!(b.pending.count(&"198.51.100.7".parse().unwrap()), 4);
        pending(&mut b, 500, "/ip4/203.0.113.9/tcp/1").unwrap();
        // A handshake that fails or times out frees its slot.
        failed(&mut b, 0, FLOODER);
        pending(&mut b, 600, FLOODER).unwrap();
        assert!(pending(&mut b, 601, FLOODER).is_err());
    }

    #[test]
    fn established_inbound_connections_are_limited_per_address() {
        let mut b = limits(4, 2);
        establish(&mut b, 1, FLOODER).unwrap();
        establish(&mut b, 2, FLOODER).unwrap();
        assert_eq!(
            refused_kind(establish(&mut b, 3, FLOODER)),
            Kind::Established
        );
        failed(&mut b, 3, FLOODER);
        // The refused one left no pending slot behind; others are fine.
        assert_eq!(b.pending.by_id.len(), 0);
        establish(&mut b, 4, "/ip4/203.0.113.9/tcp/1").unwrap();
        close(&mut b, 1, FLOODER);
        establish(&mut b, 5, FLOODER).unwrap();
        // Outbound connections are never limited.
        for n in 10..20 {
            assert!(
                b.handle_established_outbound_connection(
                    id(n),
                    PeerId::random(),
                    &ma(FLOODER),
                    Endpoint::Dialer,
                    PortUse::Reuse,
                )
                .is_ok()
            );
        }
    }

    #[test]
    fn a_connection_refused_by_another_behaviour_is_not_counted() {
        let mut b = limits(4, 1);
        pending(&mut b, 1, FLOODER).unwrap();
        // Accepted here, refused by a later behaviour: no
        // ConnectionEstablished, a ListenFailure instead.
        b.handle_established_inbound_connection(id(1), PeerId::random(), &local(), &ma(FLOODER))
            .unwrap();
        failed(&mut b, 1, FLOODER);
        assert!(b.established.by_id.is_empty());
        establish(&mut b, 2, FLOODER).unwrap();
    }

    #[test]
    fn loopback_is_exempt_and_ipv6_counts_per_64() {
        let mut b = limits(1, 1);
        for n in 0..50 {
            establish(&mut b, n, "/ip4/127.0.0.1/tcp/1").unwrap();
            establish(&mut b, 100 + n, "/ip6/::1/tcp/1").unwrap();
        }
        // 127.0.0.2 is loopback too, but not in the default list.
        pending(&mut b, 200, "/ip4/127.0.0.2/tcp/1").unwrap();
        assert!(pending(&mut b, 201, "/ip4/127.0.0.2/tcp/1").is_err());
        // One /64: one source.
        pending(&mut b, 300, "/ip6/2001:db8:1:2::1/tcp/1").unwrap();
        assert!(pending(&mut b, 301, "/ip6/2001:db8:1:2:ffff::9/udp/1/quic-v1").is_err());
        pending(&mut b, 302, "/ip6/2001:db8:1:3::1/tcp/1").unwrap();
        // An IPv4-mapped address is its IPv4 address.
        pending(&mut b, 400, "/ip4/192.0.2.1/tcp/1").unwrap();
        assert!(pending(&mut b, 401, "/ip6/::ffff:192.0.2.1/tcp/1").is_err());
        // Non-IP addresses are not counted.
        for n in 500..510 {
            pending(&mut b, n, "/memory/1234").unwrap();
        }
    }

    #[test]
    fn an_empty_exempt_list_limits_loopback_too() {
        let mut b = Behaviour::new(IpLimits {
            pending: 1,
            established: 1,
            exempt: Vec::new(),
        });
        pending(&mut b, 1, "/ip4/127.0.0.1/tcp/1").unwrap();
        assert!(pending(&mut b, 2, "/ip4/127.0.0.1/tcp/2").is_err());
    }
}
