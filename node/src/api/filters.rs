//! The routes, as warp filters, each documented with its method and path;
//! each parses its request and calls a handler of `handlers` or `content`.
//! Each matches its path first and its method second, so an unknown path is
//! a 404 and a known path with another method a 405. Every route limits its
//! request body.

use std::convert::Infallible;
use std::future::Future;

use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tracing::{Instrument, debug};
use warp::http::Method;
use warp::{Filter, Rejection, Reply};

use super::content::{self, AddQuery, CatQuery, PinQuery};
use super::error::{Failure, recover};
use super::guard::{Guard, Head};
use super::handlers::{self, Ctx, LogQuery, SearchQuery};
use super::limits::MAX_POST_BODY;
use crate::client::Client;

/// Every route, with the rejection handler and a debug-level access log.
/// (warp's own `trace` filter logs every request at info level, too loud
/// for operators; handlers run in a debug span per request instead.)
pub(crate) fn routes(
    client: Client,
    guard: Guard,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + Send + Sync + 'static {
    let ctx = Ctx::new(client);
    let routes = publish(ctx.clone())
        .or(package(ctx.clone()))
        .or(release(ctx.clone()))
        .or(author(ctx.clone()))
        .or(search(ctx.clone()))
        .or(log(ctx.clone()))
        .or(peers(ctx.clone()))
        .or(status(ctx.clone()))
        .or(metrics(ctx.clone()))
        .or(content_routes(ctx));
    guarded(guard)
        .and(routes)
        .recover(recover)
        .map(|reply| warp::reply::with_header(reply, "x-content-type-options", "nosniff"))
        .with(warp::log::custom(|info| {
            debug!(
                method = %info.method(),
                path = %info.path(),
                status = info.status().as_u16(),
                elapsed_ms = info.elapsed().as_millis(),
                "api request"
            );
        }))
}

/// Every request first: the API's token when it has one, else a `Host`
/// of this node's; for a state change an `Origin` and `Sec-Fetch-Site` of
/// this node's (`guard`).
fn guarded(guard: Guard) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    let optional = warp::header::optional::<String>;
    warp::method()
        .and(optional("host"))
        .and(optional("origin"))
        .and(optional("sec-fetch-site"))
        .and(optional("authorization"))
        .and_then(
            move |method: Method,
                  host: Option<String>,
                  origin: Option<String>,
                  fetch_site: Option<String>,
                  authorization: Option<String>| {
                let verdict = guard.check(&Head {
                    method: &method,
                    host: host.as_deref(),
                    origin: origin.as_deref(),
                    fetch_site: fetch_site.as_deref(),
                    authorization: authorization.as_deref(),
                });
                async move {
                    verdict.map_err(|refusal| warp::reject::custom(Failure::Refused(refusal)))
                }
            },
        )
        .untuple_one()
}

/// `POST /v1/records`: one signed record as `application/octet-stream`.
fn publish(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "records")
        .and(warp::post())
        .and(octet_stream())
        .and(body(MAX_POST_BODY))
        .and(with(ctx))
        .and_then(|body, ctx| json("publish", handlers::publish(ctx, body)))
}

/// `GET /v1/packages/{author}/{package}`.
fn package(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "packages" / String / String)
        .and(get())
        .and(with(ctx))
        .and_then(|author, package, ctx| {
            json("package", handlers::package_info(ctx, author, package))
        })
}

/// `GET /v1/packages/{author}/{package}/{version}`.
fn release(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "packages" / String / String / String)
        .and(get())
        .and(with(ctx))
        .and_then(|author, package, version, ctx| {
            json(
                "release",
                handlers::release_info(ctx, author, package, version),
            )
        })
}

/// `GET /v1/authors/{author}`.
fn author(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "authors" / String)
        .and(get())
        .and(with(ctx))
        .and_then(|author, ctx| json("author", handlers::author_info(ctx, author)))
}

/// `GET /v1/search?q=WORDS&limit=N`.
fn search(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "search")
        .and(get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(with(ctx))
        .and_then(|pairs: Vec<(String, String)>, ctx| async move {
            let query = SearchQuery::parse(&pairs).map_err(warp::reject::custom)?;
            json("search", handlers::search(ctx, query)).await
        })
}

/// `GET /v1/log?after=N&limit=M&wait=S`.
fn log(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "log")
        .and(get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(with(ctx))
        .and_then(|pairs: Vec<(String, String)>, ctx| async move {
            let query = LogQuery::parse(&pairs).map_err(warp::reject::custom)?;
            json("log", handlers::log(ctx, query)).await
        })
}

/// `GET /v1/peers`.
fn peers(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "peers")
        .and(get())
        .and(with(ctx))
        .and_then(|ctx| json("peers", handlers::peers(ctx)))
}

/// `GET /v1/status`.
fn status(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "status")
        .and(get())
        .and(with(ctx))
        .and_then(|ctx| json("status", handlers::status(ctx)))
}

/// `GET /metrics`: Prometheus text exposition format.
fn metrics(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("metrics")
        .and(get())
        .and(with(ctx))
        .and_then(|ctx: Ctx| async move {
            let text = handlers::metrics(ctx).await.map_err(warp::reject::custom)?;
            Ok::<_, Rejection>(warp::reply::with_header(
                text,
                "content-type",
                "text/plain; version=0.0.4; charset=utf-8",
            ))
        })
}

/// Every content route (`docs/node-api.md`, "Content"); their handlers are
/// in `content`.
fn content_routes(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    add(ctx.clone())
        .or(stat(ctx.clone()))
        .or(cat(ctx.clone()))
        .or(pins(ctx.clone()))
        .or(pin(ctx.clone()))
        .or(unpin(ctx.clone()))
        .or(gc(ctx))
}

/// `POST /v1/content?profile=unixfs-v1-2025&label=...`: the body (any size,
/// streamed) becomes a pinned UnixFS file.
fn add(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "content")
        .and(warp::post())
        .and(octet_stream())
        .and(warp::query::<AddQuery>())
        .and(warp::body::stream())
        .and(with(ctx))
        .and_then(|query: AddQuery, body, ctx: Ctx| json("add", content::add(ctx, query, body)))
}

/// `GET /v1/content/{cid}/stat`.
fn stat(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "content" / String / "stat")
        .and(get())
        .and(with(ctx))
        .and_then(|text: String, ctx: Ctx| json("stat", content::stat(ctx, text)))
}

/// `GET /v1/content/{cid}`: the file's bytes, streamed, from here or from
/// the swarm, every block checked.
fn cat(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "content" / String)
        .and(get())
        .and(warp::query::<CatQuery>())
        .and(with(ctx))
        .and_then(|text: String, query: CatQuery, ctx: Ctx| async move {
            content::cat(ctx, text, query)
                .await
                .map_err(warp::reject::custom)
        })
}

/// `GET /v1/pins`.
fn pins(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "pins")
        .and(get())
        .and(with(ctx))
        .and_then(|ctx: Ctx| json("pins", content::pins(ctx)))
}

/// `PUT /v1/pins/{cid}?label=...&providers=...`: fetches what is missing,
/// then pins.
fn pin(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "pins" / String)
        .and(warp::put())
        .and(warp::query::<PinQuery>())
        .and(with(ctx))
        .and_then(|text: String, query: PinQuery, ctx: Ctx| {
            json("pin", content::pin(ctx, text, query))
        })
}

/// `DELETE /v1/pins/{cid}`.
fn unpin(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "pins" / String)
        .and(warp::delete())
        .and(with(ctx))
        .and_then(|text: String, ctx: Ctx| json("unpin", content::unpin(ctx, text)))
}

/// `POST /v1/gc`.
fn gc(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("v1" / "gc")
        .and(warp::post())
        .and(with(ctx))
        .and_then(|ctx: Ctx| json("gc", content::gc(ctx)))
}

fn with(ctx: Ctx) -> impl Filter<Extract = (Ctx,), Error = Infallible> + Clone {
    warp::any().map(move || ctx.clone())
}

/// `GET` with no request body: a declared body is refused, an undeclared
/// one is never read.
fn get() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::get()
        .and(warp::header::optional::<u64>("content-length"))
        .and_then(|length: Option<u64>| async move {
            match length {
                Some(n) if n > 0 => Err(warp::reject::custom(Failure::BodyTooLarge { limit: 0 })),
                _ => Ok(()),
            }
        })
        .untuple_one()
}

/// Requires `Content-Type: application/octet-stream` (parameters allowed).
/// Besides naming the format, this keeps web pages from posting records
/// through a visitor's browser: such a cross-origin request needs a CORS
/// preflight, which the API never grants.
fn octet_stream() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and_then(|value: Option<String>| async move {
            let essence = value
                .as_deref()
                .and_then(|v| v.split(';').next())
                .map(str::trim);
            match essence {
                Some(e) if e.eq_ignore_ascii_case("application/octet-stream") => Ok(()),
                _ => Err(warp::reject::custom(Failure::MediaType)),
            }
        })
        .untuple_one()
}

/// The whole request body, refused past `limit` bytes whether it declares
/// its length or is chunked.
fn body(limit: usize) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |length: Option<u64>, stream| async move {
            read_body(length, stream, limit)
                .await
                .map_err(warp::reject::custom)
        })
}

async fn read_body<S, B>(length: Option<u64>, stream: S, limit: usize) -> Result<Bytes, Failure>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let too_large = Failure::BodyTooLarge { limit };
    let declared = match length.map(usize::try_from) {
        Some(Ok(n)) if n <= limit => n,
        Some(_) => return Err(too_large),
        None => 0,
    };
    let mut out = Vec::with_capacity(declared);
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| Failure::BodyRead(e.to_string()))?;
        if out.len() + chunk.remaining() > limit {
            return Err(too_large);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out.into())
}

/// Runs a handler in a span named after its route and turns its answer
/// into JSON, or its failure into a rejection for [`recover`].
async fn json<T: Serialize>(
    route: &'static str,
    handler: impl Future<Output = Result<T, Failure>>,
) -> Result<warp::reply::Json, Rejection> {
    handler
        .instrument(tracing::debug_span!("api", route))
        .await
        .map(|body| warp::reply::json(&body))
        .map_err(warp::reject::custom)
}
