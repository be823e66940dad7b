//! [`Gateway`]: what every request handler shares: the node's client, the
//! index package queries are answered from, the configuration, and the
//! gateway's metrics, rate limit, request slots and view cache.

use std::sync::Arc;

use ipsr_indexer::Index;
use ipsr_node::Client;
use tokio::sync::Semaphore;

use crate::cache::ViewCache;
use crate::config::GatewayConfig;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;

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
    slots: Arc<Semaphore>,
    views: ViewCache,
}

impl Gateway {
    /// A gateway serving `node`'s swarm and content, answering package
    /// queries from `index`.
    pub fn new(node: Client, index: Arc<dyn Index>, config: GatewayConfig) -> Self {
        let limiter = RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst);
        let slots = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        Self {
            inner: Arc::new(Inner {
                node,
                index,
                metrics: Metrics::default(),
                limiter,
                slots,
                views: ViewCache::new(config.view_ttl),
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

    /// The request slots: requests served at once.
    pub(crate) fn slots(&self) -> &Arc<Semaphore> {
        &self.inner.slots
    }

    /// The micro-cache of rendered JSON views.
    pub(crate) fn views(&self) -> &ViewCache {
        &self.inner.views
    }
}
