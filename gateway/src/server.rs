//! The HTTP server under the routes: it accepts connections within the
//! connection table's caps (per client address and in total; past them a
//! new connection is answered at once and closed), serves each with
//! hyper's HTTP/1 with a header read timeout (which also closes idle
//! keep-alive connections) and a cap on the header size, and marks each
//! request with the client it is attributed to ([`ClientAddr`]).
//!
//! ```text
//! accept ─► connection table ─full─► 429/503, close
//!               │ taken (given back when the connection ends)
//!               ▼
//!           hyper HTTP/1: headers within the timeout, at most 32 KiB
//!               │ request + ClientAddr (`client_addr`)
//!               ▼
//!           the routes (rate limit, request slots, bounded bodies)
//! ```
//!
//! The connection table sees no headers, so it keys a connection by its
//! peer; a trusted proxy's connections count against the total cap only
//! (it carries many clients). Each request is then attributed to a client:
//! its peer, or, from a trusted proxy, the client `X-Forwarded-For` names
//! (`client_addr`), and the routes key their limits by that client.
//!
//! Dropping the server future closes the listener and asks every open
//! connection to finish its request in progress and close (waiting at
//! most [`GRACE`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hyper::HeaderMap;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};
use warp::{Filter, Reply};

use crate::client_addr::{MAX_ENTRIES, TrustedProxies, client_address};
use crate::occupancy::{Full, Held};
use crate::state::Gateway;

/// The largest request head (request line and headers); past it, 431.
const MAX_HEADER_BYTES: usize = 32 * 1024;
/// How long a connection may take to finish once the server is dropped.
const GRACE: Duration = Duration::from_secs(10);
/// How long to pause accepting after an error such as too many open files.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The client a request is attributed to: its TCP peer, or behind a
/// trusted proxy the client its `X-Forwarded-For` names. Set on every
/// request by this server (warp's own `remote` address is not set by it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) IpAddr);

/// Serves `routes` on `listener` until dropped.
pub(crate) fn serve<F, R>(
    listener: TcpListener,
    gateway: Gateway,
    routes: F,
) -> impl Future<Output = ()> + Send + 'static
where
    F: Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    R: Reply,
{
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(gateway.config().header_timeout)
        .max_header_size(MAX_HEADER_BYTES);
    async move {
        // Dropped with this future: every connection then shuts down.
        let (_stop, stopped) = watch::channel(());
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            };
            let connections = gateway.connections();
            let taken = if gateway.config().trusted_proxies.contains(peer.ip()) {
                connections.take_uncapped(peer.ip())
            } else {
                connections.take(peer.ip())
            };
            let held = match taken {
                Ok(held) => held,
                Err(full) => {
                    refuse(&stream, full);
                    let reason = match full {
                        Full::Client => "connections_per_client",
                        Full::Total => "connections",
                    };
                    gateway.metrics().refused(reason);
                    debug!(%peer, reason, "connection refused");
                    continue;
                }
            };
            let connection = Connection {
                gateway: gateway.clone(),
                peer,
                _held: held,
            };
            let service = TowerToHyperService::new(warp::service(routes.clone()));
            tokio::spawn(connection.run(stream, http.clone(), service, stopped.clone()));
        }
    }
}

/// One accepted connection, holding its place in the connection table.
struct Connection {
    gateway: Gateway,
    peer: SocketAddr,
    _held: Held,
}

impl Connection {
    async fn run<S>(
        self,
        stream: TcpStream,
        http: http1::Builder,
        routes: S,
        mut stopped: watch::Receiver<()>,
    ) where
        S: hyper::service::Service<
                hyper::Request<Incoming>,
                Response = warp::reply::Response,
                Error = Infallible,
            > + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let metrics = self.gateway.metrics();
        metrics.connection(1);
        let peer = self.peer;
        let gateway = self.gateway.clone();
        let service = service_fn(move |mut request: hyper::Request<Incoming>| {
            let config = gateway.config();
            let client = attribute(peer, request.headers(), &config.trusted_proxies);
            request.extensions_mut().insert(ClientAddr(client));
            // The access log: one line per answer, never the query.
            let logged = config.access_log.then(|| {
                (
                    request.method().clone(),
                    request.uri().path().to_owned(),
                    std::time::Instant::now(),
                )
            });
            // Boxed: hyper moves the request's future into place, and a
            // pointer is cheaper to move than the routes' state (under
            // 1 KiB, as the rarely taken routes are boxed: `filters`).
            let answer = Box::pin(routes.call(request));
            async move {
                let response = answer.await;
                if let (Some((method, path, started)), Ok(r)) = (logged, &response) {
                    tracing::info!(
                        target: "ipsr_gateway::access",
                        %client,
                        %method,
                        path = %path.escape_debug(),
                        status = r.status().as_u16(),
                        ms = started.elapsed().as_millis() as u64,
                        "request"
                    );
                }
                response
            }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let mut connection = std::pin::pin!(connection);
        let ended = tokio::select! {
            ended = connection.as_mut() => ended,
            _ = stopped.changed() => {
                connection.as_mut().graceful_shutdown();
                tokio::time::timeout(GRACE, connection).await.unwrap_or(Ok(()))
            }
        };
        match ended {
            Err(e) if e.is_timeout() => {
                metrics.refused("header_timeout");
                debug!(%peer, "headers not sent in time: connection closed");
            }
            Err(e) => debug!(%peer, error = %e, "connection failed"),
            Ok(()) => {}
        }
        metrics.connection(-1);
    }
}

/// The client a request from `peer` with `headers` is attributed to
/// ([`client_address`]). Only the last header values the walk can reach
/// are read; a value that is not UTF-8 is read as an empty one, which
/// stops the walk.
fn attribute(peer: SocketAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer.ip()) {
        return peer.ip();
    }
    // Each value holds at least one entry, so the walk never reaches past
    // the last `MAX_ENTRIES + 1`.
    let mut values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .take(MAX_ENTRIES + 1)
        .map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or(""))
        .collect();
    values.reverse();
    let client = client_address(peer.ip(), &values, trusted);
    debug!(%peer, %client, "request from a trusted proxy attributed");
    client
}

/// Answers a connection past a cap and lets it close: 429 when its client
/// holds its share, 503 when the gateway is full. The answer is written
/// only if the socket takes it at once (it always does on a new
/// connection); the request, if any, is never read.
fn refuse(stream: &TcpStream, full: Full) {
    let answer = match full {
        Full::Client => refusal(
            "429 Too Many Requests",
            "client_busy",
            "too many connections from this address; retry shortly",
        ),
        Full::Total => refusal(
            "503 Service Unavailable",
            "busy",
            "the gateway is busy; retry shortly",
        ),
    };
    let _ = stream.try_write(answer.as_bytes());
}

fn refusal(status: &str, code: &str, message: &str) -> String {
    let body = format!("{{\"code\":\"{code}\",\"message\":\"{message}\"}}");
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Errors of one connection that `accept` reports; the next one is fine.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn requests_are_attributed_from_every_forwarded_for_header() {
        let trusted = TrustedProxies::new(["127.0.0.2".parse().unwrap()]);
        let proxy: SocketAddr = "127.0.0.2:4000".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(attribute(proxy, &headers, &trusted), proxy.ip());
        headers.append("x-forwarded-for", "6.6.6.6".parse().unwrap());
        headers.append("X-Forwarded-For", "203.0.113.7".parse().unwrap());
        assert_eq!(
            attribute(proxy, &headers, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap(),
            "the last header holds the entry the proxy appended"
        );
        let other: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(attribute(other, &headers, &trusted), other.ip());
        headers.append(
            "x-forwarded-for",
            hyper::header::HeaderValue::from_bytes(b"\xff203.0.113.8").unwrap(),
        );
        assert_eq!(
            attribute(proxy, &headers, &trusted),
            proxy.ip(),
            "a value that is not UTF-8 stops the walk"
        );
        // Many values: only the last ones are read.
        let mut many = HeaderMap::new();
        many.append("x-forwarded-for", "203.0.113.9".parse().unwrap());
        for _ in 0..1000 {
            many.append("x-forwarded-for", "127.0.0.2".parse().unwrap());
        }
        assert_eq!(attribute(proxy, &many, &trusted), proxy.ip());
    }

    #[test]
    fn refusals_are_complete_http_answers() {
        let text = refusal("503 Service Unavailable", "busy", "retry");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("retry-after: 1"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], "busy");
    }
}
