//! [`Gateway`]: what every request handler shares: the node's client, the
//! index package queries are answered from, the configuration, and the
//! gateway's metrics, rate limit, request slots, connection table, view
//! cache and rendered package views.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use ipsr_indexer::Index;
use ipsr_node::Client;
use tokio::sync::Semaphore;

use crate::cache::ViewCache;
use crate::config::GatewayConfig;
use crate::fdroid::Repository;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::occupancy::Occupancy;
use crate::rendered::{RENDERED_BYTES, RenderedViews};

/// Slots of `GET /healthz` and `GET /metrics`, apart from the others.
const PROBE_SLOTS: usize = 16;
/// Of those, what one client may hold.
const PROBE_SLOTS_PER_CLIENT: usize = 4;

/// What every request handler shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    node: Client,
    index: Arc<dyn Index>,
    config: GatewayConfig,
    metrics: Metrics,
    limiter: RateLimiter,
    slots: Occupancy,
    probe_slots: Occupancy,
    connections: Occupancy,
    views: ViewCache,
    rendered: RenderedViews,
    /// The address [`serve`](crate::serve) bound, once it has.
    bound: OnceLock<SocketAddr>,
    background_pins: Arc<Semaphore>,
    fdroid: Option<Repository>,
}

impl Gateway {
    /// A gateway serving `node`'s swarm and content, answering package
    /// queries from `index`.
    pub fn new(node: Client, index: Arc<dyn Index>, config: GatewayConfig) -> Self {
        let limiter = RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst);
        let slots = Occupancy::new(config.max_per_client, config.max_concurrent);
        let probe_slots = Occupancy::new(PROBE_SLOTS_PER_CLIENT, PROBE_SLOTS);
        let connections = Occupancy::new(config.max_connections_per_client, config.max_connections);
        Self {
            inner: Arc::new(Inner {
                node,
                index,
                metrics: Metrics::default(),
                limiter,
                slots,
                probe_slots,
                connections,
                views: ViewCache::new(config.view_ttl, config.view_cache_bytes),
                rendered: RenderedViews::new(RENDERED_BYTES),
                bound: OnceLock::new(),
                background_pins: Arc::new(Semaphore::new(config.background_pins.max(1))),
                fdroid: config.fdroid.clone().map(Repository::new),
                config,
            }),
        }
    }

    /// The node.
    pub fn node(&self) -> &Client {
        &self.inner.node
    }

    /// The index package queries are answered from.
    pub fn index(&self) -> &dyn Index {
        self.inner.index.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    /// The gateway's own metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The per-client rate limit.
    pub(crate) fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The request slots: requests served at once, in all and per client.
    pub(crate) fn slots(&self) -> &Occupancy {
        &self.inner.slots
    }

    /// The slots of `GET /healthz` and `GET /metrics`.
    pub(crate) fn probe_slots(&self) -> &Occupancy {
        &self.inner.probe_slots
    }

    /// The open connections, in all and per client.
    pub(crate) fn connections(&self) -> &Occupancy {
        &self.inner.connections
    }

    /// The background pins of record-only publishes under way.
    pub(crate) fn background_pins(&self) -> &Arc<Semaphore> {
        &self.inner.background_pins
    }

    /// The micro-cache of rendered JSON views.
    pub(crate) fn views(&self) -> &ViewCache {
        &self.inner.views
    }

    /// Package views kept under the index's token of their state.
    pub(crate) fn rendered(&self) -> &RenderedViews {
        &self.inner.rendered
    }

    /// The F-Droid repository, when the gateway serves one.
    pub(crate) fn fdroid(&self) -> Option<&Repository> {
        self.inner.fdroid.as_ref()
    }

    /// The gateway's absolute base URL (see [`crate::pages::base_url`]).
    pub(crate) fn base_url(&self) -> Option<String> {
        crate::pages::base_url(self.config().public_url.as_deref(), self.bound())
    }

    /// Records the address the gateway serves on (the first one, when it
    /// is served more than once).
    pub(crate) fn set_bound(&self, addr: SocketAddr) {
        let _ = self.inner.bound.set(addr);
    }

    /// The address the gateway serves on, once [`serve`](crate::serve)
    /// bound it.
    pub(crate) fn bound(&self) -> Option<SocketAddr> {
        self.inner.bound.get().copied()
    }
}
