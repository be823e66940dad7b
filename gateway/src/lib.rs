//! `ipsr-gateway`: an IPSR node that also serves HTTP, so phones, app-store
//! front ends and browsers can use IPSR without running a node. It trusts
//! nothing it did not verify.
//!
//! * [`GatewayConfig`]: limits and policies (uploads, rate limits, timeouts).
//! * [`Gateway`]: what every request handler shares: the node's [`Client`],
//!   the [`Index`] it reads packages from (the node's embedded store or
//!   Redis), the limits and the metrics.
//! * [`routes`] and [`serve`]: the warp routes (specified in
//!   `docs/gateway.md` and in [`OPENAPI`]) and a server for them.
//!
//! Inside, the routes in one module and the handlers they call in others
//! (handlers never import the routes):
//! * `filters`: every route as a warp filter, each documented with its
//!   method and path, behind the rate limit and the request slots;
//! * `api`: the JSON API's read handlers under `/api/v1/` (packages,
//!   authors, search);
//! * `publish`: `POST /api/v1/publish` (a signed record, and its content
//!   when uploads are allowed);
//! * `download`: app bytes by author/package@version and the file form of
//!   `/ipfs/{cid}`, verified while streaming, with `Range` and `ETag`;
//! * `ipfs`: `/ipfs/{cid}`: which form a request asks for, and the
//!   verifiable forms (raw blocks, CARs, the probe);
//! * `pages`: the server-rendered web pages;
//! * `conditional`: the `Range` and `If-None-Match` headers downloads and
//!   `/ipfs/` honour, and the `Cache-Control` of content named by its CID;
//! * `cache`: the micro-cache of rendered JSON views;
//! * `limits`: the per-client rate limit;
//! * `metrics`: the gateway's own metrics;
//! * `error`: every failure as `{ "code", "message" }` with its status.
//!
//! ```no_run
//! # async fn demo(node: ipsr_node::Client) -> Result<(), ipsr_gateway::GatewayError> {
//! use std::sync::Arc;
//! let index = Arc::new(ipsr_indexer::StoreIndex::new(node.store().clone()));
//! let gateway = ipsr_gateway::Gateway::new(node, index, ipsr_gateway::GatewayConfig::default());
//! let (addr, server) = ipsr_gateway::serve(gateway, "127.0.0.1:8080".parse().unwrap()).await?;
//! println!("gateway: http://{addr}");
//! server.await;
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ipsr_indexer::Index;
use ipsr_node::Client;
use ipsr_proto::AuthorId;
use tokio::sync::Semaphore;
use tracing::info;

mod api;
mod cache;
mod conditional;
mod download;
mod error;
mod filters;
mod ipfs;
mod limits;
mod metrics;
mod pages;
mod publish;

pub use cache::VIEW_TTL;
pub use error::GatewayError;
pub use filters::routes;

/// The OpenAPI 3.1 document of the JSON API, served at
/// `GET /api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Who may upload content through `POST /api/v1/publish`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Uploads {
    /// Nobody: the gateway accepts signed records only; their content must
    /// be in the swarm already.
    #[default]
    Off,
    /// Records signed by these authors may bring their content.
    Authors(HashSet<AuthorId>),
    /// Any author.
    Anyone,
}

impl Uploads {
    /// Whether `author` may upload content.
    pub fn allows(&self, author: &AuthorId) -> bool {
        match self {
            Self::Off => false,
            Self::Authors(set) => set.contains(author),
            Self::Anyone => true,
        }
    }
}

/// How a gateway runs: its limits and policies.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Who may upload content with a publish.
    pub uploads: Uploads,
    /// The largest content upload, in bytes (413 past it).
    pub max_upload_bytes: u64,
    /// Requests served at once; past it requests are answered 503 at once.
    pub max_concurrent: usize,
    /// Requests per second one client address may make (0: no limit);
    /// past it, 429.
    pub rate_limit_per_sec: u32,
    /// Requests one client may make in a burst above the rate.
    pub rate_limit_burst: u32,
    /// The longest a download waits for its first byte from the swarm
    /// before answering 504 (fail fast rather than hang).
    pub first_byte_timeout: Duration,
    /// The longest `GET /ipfs/{cid}` looks for a root it does not hold
    /// before answering 404.
    pub ipfs_timeout: Duration,
    /// The public base URL of the gateway (for QR codes and absolute links),
    /// e.g. `https://ipsr.example.org`; `None`: taken from the request's
    /// `Host` header.
    pub public_url: Option<String>,
    /// How long a rendered JSON view (package, release, author, listing)
    /// may be served again; it is never served after the node's log has
    /// changed. Zero turns the cache off.
    pub view_ttl: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            uploads: Uploads::Off,
            max_upload_bytes: 256 * 1024 * 1024,
            max_concurrent: 1024,
            rate_limit_per_sec: 0,
            rate_limit_burst: 200,
            first_byte_timeout: Duration::from_secs(20),
            ipfs_timeout: Duration::from_secs(10),
            public_url: None,
            view_ttl: cache::VIEW_TTL,
        }
    }
}

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
    metrics: metrics::Metrics,
    limiter: limits::RateLimiter,
    slots: Arc<Semaphore>,
    views: cache::ViewCache,
}

impl Gateway {
    /// A gateway serving `node`'s swarm and content, answering package
    /// queries from `index`.
    pub fn new(node: Client, index: Arc<dyn Index>, config: GatewayConfig) -> Self {
        let limiter = limits::RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst);
        let slots = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        Self {
            inner: Arc::new(Inner {
                node,
                index,
                metrics: metrics::Metrics::default(),
                limiter,
                slots,
                views: cache::ViewCache::new(config.view_ttl),
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

    fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }
}

/// Binds the gateway to `addr` and returns the address it is bound to (port
/// 0 picks a free port) and the future that serves it until dropped.
pub async fn serve(
    gateway: Gateway,
    addr: SocketAddr,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), GatewayError> {
    let bind = |source| GatewayError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let server = warp::serve(routes(gateway)).incoming(listener);
    info!(addr = %bound, "serving the gateway");
    Ok((bound, server.run()))
}
