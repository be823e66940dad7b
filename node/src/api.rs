//! The node's local control API: HTTP+JSON on warp, specified for clients in
//! `docs/node-api.md`.
//!
//! * `filters`: the routes, each documented with its method and path; they
//!   call into the modules below, which never import it;
//! * `handlers`: plain async functions from parsed requests to models;
//! * `content`: the content handlers (add, cat, stat, pins, gc), which
//!   stream, and their bodies;
//! * `models`: the JSON bodies;
//! * `limits`: the API's limits (body size, log and search pages, long-polls);
//! * `guard`: the `Host` and `Origin` rules that keep web pages (DNS
//!   rebinding, cross-site forms) from using the API;
//! * `error`: why a request failed, and the one rejection handler that turns
//!   every failure into `{ "code": "...", "message": "..." }`. Internal
//!   errors are logged and never shown.
//!
//! Every store call runs in `spawn_blocking`; every route has a body limit;
//! long-polls of the log wait at most 30 s and at most 256 of them wait at
//! once.

use std::net::SocketAddr;

use tracing::{info, warn};

use crate::client::Client;

mod content;
mod error;
mod filters;
mod guard;
mod handlers;
mod limits;
mod models;

pub use error::ApiError;

/// Binds the API to `addr` and returns the address it is bound to (port 0
/// picks a free port) and the future that serves it. The future runs until
/// it is dropped; it holds a clone of `client`.
///
/// ```no_run
/// # async fn demo(client: ipsr_node::Client) -> Result<(), ipsr_node::ApiError> {
/// let (addr, server) = ipsr_node::serve_api(client, "127.0.0.1:0".parse().unwrap()).await?;
/// println!("api: http://{addr}");
/// tokio::spawn(server);
/// # Ok(()) }
/// ```
pub async fn serve_api(
    client: Client,
    addr: SocketAddr,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), ApiError> {
    let bind = |source| ApiError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let server = warp::serve(filters::routes(client, guard::Guard::new(bound))).incoming(listener);
    info!(addr = %bound, "serving the API");
    if !bound.ip().is_loopback() {
        warn!(
            addr = %bound,
            "the API has no authentication and anyone who can reach {bound} controls this node \
             (publish, pins, gc); keep it on 127.0.0.1 unless a firewall or proxy guards it"
        );
    }
    Ok((bound, server.run()))
}
