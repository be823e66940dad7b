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
//! * `guard`: who may use the API: the token, and the `Host` and `Origin`
//!   rules that keep web pages (DNS rebinding, cross-site forms) out;
//! * `token`: [`ApiToken`], the secret requests carry when the API is off
//!   loopback, its file and the node's own;
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
mod token;

pub use error::ApiError;
pub use token::{ApiToken, BadToken, TOKEN_FILE, TokenError};

/// Binds the API to `addr` and returns the address it is bound to (port 0
/// picks a free port) and the future that serves it. The future runs until
/// it is dropped; it holds a clone of `client`.
///
/// Without a token the API is for this machine only: an `addr` off
/// loopback is refused ([`ApiError::TokenRequired`]); use
/// [`serve_api_with_token`] there.
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
    if !addr.ip().is_loopback() {
        return Err(ApiError::TokenRequired { addr });
    }
    serve(client, addr, None).await
}

/// [`serve_api`] that answers only requests carrying `token`
/// (`Authorization: Bearer TOKEN`; `401 unauthorized` otherwise), on any
/// address. With the token, a request may name the node by any host name.
///
/// ```no_run
/// # async fn demo(client: ipsr_node::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let (token, path) = ipsr_node::ApiToken::load_or_create("/var/lib/ipsr".as_ref())?;
/// let addr = "0.0.0.0:5050".parse()?;
/// let (addr, server) = ipsr_node::serve_api_with_token(client, addr, token).await?;
/// println!("api: http://{addr}, token in {}", path.display());
/// tokio::spawn(server);
/// # Ok(()) }
/// ```
pub async fn serve_api_with_token(
    client: Client,
    addr: SocketAddr,
    token: ApiToken,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), ApiError> {
    serve(client, addr, Some(token)).await
}

async fn serve(
    client: Client,
    addr: SocketAddr,
    token: Option<ApiToken>,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), ApiError> {
    let bind = |source| ApiError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let with_token = token.is_some();
    let guard = guard::Guard::new(bound, token);
    let server = warp::serve(filters::routes(client, guard)).incoming(listener);
    info!(addr = %bound, token = with_token, "serving the API");
    if !bound.ip().is_loopback() {
        warn!(
            addr = %bound,
            "the API is reachable from other machines: every request must carry the API \
             token, and anyone who has it controls this node (publish, pins, gc); it is \
             plain HTTP, so the token crosses the network in clear unless a TLS proxy \
             guards it"
        );
    }
    Ok((bound, server.run()))
}
