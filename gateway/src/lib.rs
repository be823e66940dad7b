//! `ipsr-gateway`: an IPSR node that also serves HTTP, so phones, app-store
//! front ends and browsers can use IPSR without running a node. It trusts
//! nothing it did not verify.
//!
//! * [`GatewayConfig`]: limits and policies (uploads, rate limits, timeouts,
//!   the [`TrustedProxies`] whose `X-Forwarded-For` names the client).
//! * [`Gateway`]: what every request handler shares: the node's
//!   [`Client`](ipsr_node::Client), the [`Index`](ipsr_indexer::Index) it
//!   reads packages from (the node's embedded store or Redis), the limits
//!   and the metrics.
//! * [`routes`] and [`serve`]: the warp routes (specified in
//!   `docs/gateway.md` and in [`OPENAPI`]) and a server for them that
//!   holds under hostile clients (`docs/dev/abuse.md`).
//!
//! Inside, the routes in one module and the handlers they call in others
//! (handlers never import the routes; no module imports this file):
//! * `filters`: every route as a warp filter, each documented with its
//!   method and path, behind the rate limit and the request slots;
//! * `api`: the JSON API's read handlers under `/api/v1/` (packages,
//!   authors, search);
//! * `publish`: `POST /api/v1/publish` (a signed record, and its content
//!   when uploads are allowed);
//! * `body`: request bodies read under a byte bound and timeouts, and the
//!   publish form read part by part;
//! * `multipart`: the bounded, linear `multipart/form-data` parser (sans
//!   IO);
//! * `policy`: which content a publish brings in (uploads, record-only
//!   publishes), the per-author quota and the background pins;
//! * `download`: app bytes by author/package@version and the file form of
//!   `/ipfs/{cid}`, verified while streaming, with `Range` and `ETag`;
//! * `ipfs`: `/ipfs/{cid}`: which form a request asks for, and the
//!   verifiable forms (raw blocks, CARs, the probe);
//! * `pages`: the server-rendered web pages;
//! * `fdroid`: the F-Droid repository at `/fdroid/repo` (its key, signed
//!   JARs and index files);
//! * `feeds`: Atom feeds of releases (recent, per author, per package);
//! * `conditional`: the `Range` and `If-None-Match` headers downloads and
//!   `/ipfs/` honour, and the `Cache-Control` of content named by its CID;
//! * `state`: [`Gateway`], the state every handler shares;
//! * `config`: [`GatewayConfig`] and [`Uploads`];
//! * `cache`: the micro-cache of rendered JSON views;
//! * `rendered`: package views kept as bytes under the index's token of
//!   their state, served again only while a read finds the same token;
//! * `server`: the HTTP server: connection caps at accept, the header
//!   timeout, each request marked with its client's address;
//! * `client_addr`: which client a request is attributed to behind trusted
//!   reverse proxies (`X-Forwarded-For`, sans IO);
//! * `occupancy`: connections and requests held per client address,
//!   against a cap per client and in total (sans IO);
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

use std::net::SocketAddr;

use tracing::info;

mod api;
mod body;
mod cache;
mod client_addr;
mod conditional;
mod config;
mod download;
mod error;
mod fdroid;
mod feeds;
mod filters;
mod ipfs;
mod limits;
mod metrics;
mod multipart;
mod occupancy;
mod pages;
mod policy;
mod publish;
mod rendered;
mod server;
mod state;

pub use cache::{VIEW_CACHE_BYTES, VIEW_TTL};
pub use client_addr::{Cidr, CidrError, TrustedProxies};
pub use config::{GatewayConfig, Uploads};
pub use error::GatewayError;
pub use fdroid::{FdroidConfig, KeyError, RepoKey};
pub use filters::{OPENAPI, routes};
pub use state::Gateway;

/// Binds the gateway to `addr` and returns the address it is bound to (port
/// 0 picks a free port) and the future that serves it until dropped (then
/// open connections finish the request in progress and close).
pub async fn serve(
    gateway: Gateway,
    addr: SocketAddr,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), GatewayError> {
    let bind = |source| GatewayError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    gateway.set_bound(bound);
    let server = server::serve(listener, gateway.clone(), routes(gateway));
    info!(addr = %bound, "serving the gateway");
    Ok((bound, server))
}
