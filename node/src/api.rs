//! The node's local control API: HTTP+JSON on warp, specified for clients in
//! `docs/node-api.md`.
//!
//! * `filters`: the routes, each documented with its method and path;
//! * `handlers`: plain async functions from parsed requests to models;
//! * `models`: the JSON bodies;
//! * `content`: the content routes (add, cat, stat, pins, gc), which stream;
//! * `error`: why a request failed, and the one rejection handler that turns
//!   every failure into `{ "code": "...", "message": "..." }`. Internal
//!   errors are logged and never shown.
//!
//! Every store call runs in `spawn_blocking`; every route has a body limit;
//! long-polls of the log wait at most 30 s and at most 256 of them wait at
//! once.

use std::net::SocketAddr;
use std::time::Duration;

use tracing::info;

use crate::Client;

mod content;
mod error;
mod filters;
mod handlers;
mod models;

pub use error::ApiError;

/// The longest a `GET /v1/log` request may wait for new entries.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(30);
/// How many `GET /v1/log` requests may wait at once; past that a request
/// is answered at once, as if it had asked not to wait.
pub(crate) const MAX_WAITERS: usize = 256;
/// The most log entries one `GET /v1/log` returns.
pub(crate) const MAX_LOG_LIMIT: usize = 1000;
/// The log entries a `GET /v1/log` returns when it does not say.
pub(crate) const DEFAULT_LOG_LIMIT: usize = 100;
/// The results a `GET /v1/search` returns when it does not say.
pub(crate) const DEFAULT_SEARCH_LIMIT: usize = 20;
/// The most results one `GET /v1/search` returns.
pub(crate) const MAX_SEARCH_LIMIT: usize = 100;
/// The longest query `GET /v1/search` takes, in bytes.
pub(crate) const MAX_QUERY_BYTES: usize = 200;
/// The largest request body of `POST /v1/records`: a signed record
/// ([`MAX_RECORD_BYTES`](ipsr_proto::limits::MAX_RECORD_BYTES)) and 1 KiB
/// to spare, so a record just over its limit is refused as `too_large` by
/// the record rules rather than by the HTTP layer.
pub(crate) const MAX_POST_BODY: usize = ipsr_proto::limits::MAX_RECORD_BYTES + 1024;

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
    let server = warp::serve(filters::routes(client)).incoming(listener);
    info!(addr = %bound, "serving the API");
    Ok((bound, server.run()))
}
