//! The routes, as warp filters, each documented with its method and path
//! (specified in `docs/gateway.md` and `openapi.json`). Every request first
//! passes the per-client rate limit and takes one of the gateway's request
//! slots (`GET /healthz` and `GET /metrics` one of their own), within its
//! client's share; every failure is answered by [`recover`].

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipsr_proto::ReleaseKey;
use serde::Serialize;
use tokio::time::Instant;
use warp::http::{HeaderValue, Method, StatusCode, header};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::body::{BodyReader, Budget, Form};
use crate::conditional::{Conditions, conditions};
use crate::error::{Failure, recover};
use crate::occupancy::{Full, Held};
use crate::publish::{self, Body, MAX_RECORD_BODY};
use crate::server::ClientAddr;
use crate::state::Gateway;
use crate::{api, download, fdroid, feeds, ipfs, multipart, pages};

/// The OpenAPI 3.1 document of the JSON API, served at
/// `GET /api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `Cache-Control` of JSON views of packages: short, they change with
/// every release and yank.
const VIEW_CACHE: &str = "public, max-age=10";

/// Every route of a gateway, with limits, CORS on the JSON API, the
/// rejection handler and per-route metrics.
pub fn routes(
    g: Gateway,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + Send + Sync + 'static {
    let cors = warp::cors()
        .allow_any_origin()
        .allow_methods(["GET", "POST"])
        .allow_headers(["content-type", "range", "if-none-match"])
        .expose_headers([
            "etag",
            "content-length",
            "content-range",
            "content-disposition",
            "x-ipfs-roots",
        ])
        .max_age(3600);
    // The hot views first, unboxed; every other route is tried only after
    // them, in boxes: a request's future is as large as the largest route
    // it could take, and hyper and warp move it several times per request.
    let views = package(g.clone()).or(release(g.clone())).unify();
    let rest = healthz(g.clone())
        .or(metrics(g.clone()))
        .unify()
        .or(openapi())
        .unify()
        .or(publish_route(g.clone()))
        .unify()
        .or(author(g.clone()))
        .unify()
        .or(packages(g.clone()))
        .unify()
        .or(download_route(g.clone()))
        .unify()
        .or(fdroid_repo(g.clone()))
        .unify()
        .or(latest_apk(g.clone()))
        .unify()
        .or(feeds(g.clone()))
        .unify()
        .boxed();
    let api = views.or(rest).unify().with(cors).map(Reply::into_response);
    let pages = home_page(g.clone())
        .or(author_page(g.clone()))
        .unify()
        .or(package_page(g.clone()))
        .unify()
        .or(fdroid_page(g.clone()))
        .unify()
        .or(favicon())
        .unify()
        .boxed();
    let ipfs = ipfs_route(g.clone()).boxed();
    let observed = g.clone();
    guard(g.clone())
        .and(api.or(ipfs).unify().or(pages).unify())
        .map(|guard: Guard, response: Response| {
            drop(guard.permit);
            response
        })
        .recover(recover)
        .unify()
        .map(|mut response: Response| {
            response.headers_mut().insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            response
        })
        .with(warp::log::custom(move |info: warp::log::Info<'_>| {
            let route = route_label(info.path());
            let elapsed = info.elapsed().as_secs_f64();
            observed
                .metrics()
                .request(route, info.status().as_u16(), elapsed);
            tracing::debug!(
                method = %info.method(),
                path = %info.path(),
                status = info.status().as_u16(),
                elapsed_ms = info.elapsed().as_millis(),
                "gateway request"
            );
        }))
}

/// A request's admission: its slot, held until its answer is made.
struct Guard {
    permit: Held,
}

/// The rate limit per client address, then a request slot within the
/// client's share (429 past the share, 503 when every slot is taken: fail
/// fast rather than queue). `GET /healthz` and `GET /metrics` take a slot
/// of their own, so they are answered when the others are all taken. The
/// client is the one the request is attributed to ([`ClientAddr`]: behind a
/// trusted proxy, the client it names).
fn guard(g: Gateway) -> impl Filter<Extract = (Guard,), Error = Rejection> + Clone {
    client()
        .and(warp::method())
        .and(warp::path::full())
        .and_then(
            move |client: Option<IpAddr>, method: Method, path: FullPath| {
                let g = g.clone();
                async move { admit(&g, client, &method, path.as_str()).map_err(|f| refuse(&g, f)) }
            },
        )
}

fn admit(
    g: &Gateway,
    client: Option<IpAddr>,
    method: &Method,
    path: &str,
) -> Result<Guard, Failure> {
    if !g.limiter().check(client) {
        return Err(Failure::RateLimited);
    }
    let probe = method == Method::GET && matches!(path, "/healthz" | "/metrics");
    let slots = if probe { g.probe_slots() } else { g.slots() };
    let ip = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let permit = slots.take(ip).map_err(|full| match full {
        Full::Client => Failure::ClientBusy,
        Full::Total => Failure::Busy,
    })?;
    Ok(Guard { permit })
}

/// The client a request is attributed to: set by [`crate::server`], or
/// warp's remote address (its own server and `warp::test`).
fn client() -> impl Filter<Extract = (Option<IpAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<ClientAddr>()
        .and(warp::addr::remote())
        .map(|client: Option<ClientAddr>, remote: Option<SocketAddr>| {
            client.map(|c| c.0).or(remote.map(|r| r.ip()))
        })
}

/// A refusal to protect the gateway, counted in its metrics, or any other
/// failure, as a rejection.
fn refuse(g: &Gateway, failure: Failure) -> Rejection {
    if let Some(reason) = failure.refusal() {
        g.metrics().refused(reason);
    }
    reject(failure)
}

/// The metrics label of a path: its route, never its parameters.
fn route_label(path: &str) -> &'static str {
    // The first segments, on the stack (no route has more than six; a
    // longer path keeps eight, which only the `..` patterns match).
    let mut segments = [""; 8];
    let mut n = 0;
    for segment in path.trim_matches('/').split('/').take(segments.len()) {
        segments[n] = segment;
        n += 1;
    }
    match &segments[..n] {
        ["healthz"] => "healthz",
        ["metrics"] => "metrics",
        ["api", "v1", "openapi.json"] => "openapi",
        ["api", "v1", "package", _, _] => "package",
        ["api", "v1", "package", _, _, _] => "release",
        ["api", "v1", "publish"] => "publish",
        ["api", "v1", "author", _] => "author",
        ["api", "v1", "packages"] => "packages",
        ["api", "v1", "download", ..] => "download",
        ["ipfs", ..] => "ipfs",
        [
            "fdroid",
            "repo",
            "entry.jar" | "entry.json" | "index-v2.json",
        ] => "fdroid_index",
        ["fdroid", "repo", "index-v1.jar" | "index-v1.json"] => "fdroid_index_v1",
        ["fdroid", "repo", ..] => "fdroid_file",
        ["fdroid"] => "page_fdroid",
        ["latest", ..] => "latest_apk",
        ["feeds", ..] => "feed",
        [""] => "page_home",
        ["p", _] => "page_author",
        ["p", _, _] => "page_package",
        _ => "other",
    }
}

fn with(g: Gateway) -> impl Filter<Extract = (Gateway,), Error = Infallible> + Clone {
    warp::any().map(move || g.clone())
}

/// Turns a handler's answer into JSON with `cache`, or its failure into a
/// rejection for [`recover`].
fn json<T: Serialize>(
    result: Result<T, Failure>,
    cache: &'static str,
) -> Result<Response, Rejection> {
    let body = result.map_err(warp::reject::custom)?;
    let mut response = warp::reply::json(&body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(response)
}

/// A JSON view of the index through the micro-cache ([`crate::cache`]):
/// `key` names the request; `render` is called only when no fresh copy is
/// held, and its future is boxed: a request answered from the cache
/// carries none of the index's read state in its own future (which hyper
/// and warp move several times on the way).
async fn view<R: Future<Output = Result<bytes::Bytes, Failure>>>(
    g: &Gateway,
    key: String,
    render: impl FnOnce() -> R,
) -> Result<Response, Rejection> {
    let head = *g.node().log_head().borrow();
    let body = g
        .views()
        .get_or_render(key, head, async { Box::pin(render()).await })
        .await
        .map_err(reject)?;
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(VIEW_CACHE));
    Ok(response)
}

fn reject(failure: Failure) -> Rejection {
    warp::reject::custom(failure)
}

/// `GET /healthz`.
fn healthz(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("healthz")
        .and(warp::get())
        .and(with(g))
        .and_then(|g: Gateway| async move { json(api::health(&g).await, "no-store") })
}

/// `GET /metrics`: the node's and the gateway's metrics (OpenMetrics text).
fn metrics(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(with(g))
        .and_then(|g: Gateway| async move {
            let node = g
                .node()
                .metrics_text()
                .await
                .map_err(|e| reject(e.into()))?;
            g.metrics().view_cache(g.views().bytes(), g.views().count());
            g.metrics()
                .rendered(g.rendered().bytes(), g.rendered().count());
            let text = g.metrics().encode(&node);
            Ok::<_, Rejection>(
                warp::reply::with_header(
                    text,
                    "content-type",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .into_response(),
            )
        })
}

/// `GET /api/v1/openapi.json`.
fn openapi() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .map(|| {
            let mut response =
                warp::reply::with_header(OPENAPI, "content-type", "application/json")
                    .into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            response
        })
}

/// `GET /api/v1/package/{author}/{package}`.
fn package(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "package" / String / String)
        .and(warp::get())
        .and(with(g))
        .and_then(|a: String, p: String, g: Gateway| async move {
            // Keyed by the path as sent: only a valid, canonical one is
            // ever rendered and kept, so a hit needs no parsing.
            let (a, p, g) = (&a, &p, &g);
            let render = move || async move {
                let key = api::package_key(a, p)?;
                api::package_json(g, &key).await
            };
            view(g, format!("package/{a}/{p}"), render).await
        })
}

/// `GET /api/v1/package/{author}/{package}/{version}`.
fn release(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "package" / String / String / String)
        .and(warp::get())
        .and(with(g))
        .and_then(|a: String, p: String, v: String, g: Gateway| async move {
            // Keyed by the path as sent, as the package view.
            let (a, p, v, g) = (&a, &p, &v, &g);
            let render = move || async move {
                let key = api::package_key(a, p)?;
                let key = ReleaseKey {
                    author: key.author,
                    package: key.package,
                    version: api::version(v)?,
                };
                api::to_json(&api::release(g, &key).await?)
            };
            view(g, format!("release/{a}/{p}/{v}"), render).await
        })
}

/// `POST /api/v1/publish` and `POST /api/v1/package/{author}/{package}`.
fn publish_route(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let any = warp::path!("api" / "v1" / "publish").map(|| None);
    let named = warp::path!("api" / "v1" / "package" / String / String).and_then(
        |a: String, p: String| async move { api::package_key(&a, &p).map(Some).map_err(reject) },
    );
    any.or(named)
        .unify()
        .and(warp::post())
        .and(publish_body(g.clone()))
        .and(with(g))
        .and_then(|expected, body, g: Gateway| async move {
            let reply = publish::publish(g.clone(), expected, body)
                .await
                .map_err(|f| refuse(&g, f))?;
            let status = match reply.published.change {
                "new" | "replaced" => StatusCode::CREATED,
                _ => StatusCode::OK,
            };
            let mut response = json(Ok(reply), "no-store")?;
            *response.status_mut() = status;
            Ok::<_, Rejection>(response)
        })
}

/// A publish body: `multipart/form-data`, or the signed record alone as
/// `application/octet-stream` (anything else: 415). Either is read under
/// its bound (a `Content-Length` over it: 413 before reading) and the
/// body timeouts.
fn publish_body(g: Gateway) -> impl Filter<Extract = (Body,), Error = Rejection> + Clone {
    let form = media("multipart/form-data")
        .and(warp::header::<String>("content-type"))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and(with(g.clone()))
        .and_then(
            |content_type: String, length: Option<u64>, stream, g: Gateway| async move {
                let boundary = multipart::boundary(&content_type).ok_or_else(|| {
                    reject(Failure::BadRequest(
                        "a multipart/form-data body needs a boundary".into(),
                    ))
                })?;
                within(&g, length, publish::form_limit(g.config()))?;
                let body = BodyReader::new(stream, publish::FORM_HEAD_LIMIT, budget(&g));
                Ok::<_, Rejection>(Body::Form(Box::new(Form::new(body, &boundary))))
            },
        );
    let record = media("application/octet-stream")
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and(with(g))
        .and_then(|length: Option<u64>, stream, g: Gateway| async move {
            let limit = MAX_RECORD_BODY as u64;
            within(&g, length, limit)?;
            BodyReader::new(stream, limit, budget(&g))
                .read_all()
                .await
                .map(Body::Record)
                .map_err(|e| refuse(&g, e.into()))
        });
    // Reached only when neither matched by media type (a failure of the
    // matching branch, such as a body over the limit, is kept).
    let other = warp::header::optional::<String>("content-type").and_then(
        |value: Option<String>| async move {
            if essence(value.as_deref()).is_some_and(|e| {
                e.eq_ignore_ascii_case("multipart/form-data")
                    || e.eq_ignore_ascii_case("application/octet-stream")
            }) {
                return Err(warp::reject::not_found());
            }
            Err::<Body, _>(reject(Failure::MediaType(
                "send the signed record as application/octet-stream, or record and content \
                 as multipart/form-data",
            )))
        },
    );
    form.or(record).unify().or(other).unify()
}

/// Refuses a body whose `Content-Length` is over `limit` before reading it.
fn within(g: &Gateway, length: Option<u64>, limit: u64) -> Result<(), Rejection> {
    match length {
        Some(length) if length > limit => Err(refuse(g, Failure::TooLarge { limit })),
        _ => Ok(()),
    }
}

/// The time rules of a body starting now.
fn budget(g: &Gateway) -> Budget {
    let config = g.config();
    Budget::new(
        Instant::now(),
        config.body_idle_timeout,
        config.body_timeout,
    )
}

/// The media type of a `Content-Type` value, without its parameters.
fn essence(content_type: Option<&str>) -> Option<&str> {
    content_type
        .and_then(|v| v.split(';').next())
        .map(str::trim)
}

/// Passes requests whose `Content-Type` is `wanted` (parameters allowed).
fn media(wanted: &'static str) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and_then(move |value: Option<String>| async move {
            match essence(value.as_deref()) {
                Some(g) if g.eq_ignore_ascii_case(wanted) => Ok(()),
                _ => Err(warp::reject::not_found()),
            }
        })
        .untuple_one()
}

/// `GET /api/v1/author/{author}`.
fn author(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "author" / String)
        .and(warp::get())
        .and(with(g))
        .and_then(|a: String, g: Gateway| async move {
            let author = api::author(&a).map_err(reject)?;
            view(&g, format!("author/{author}"), || async {
                api::to_json(&api::author_view(&g, author).await?)
            })
            .await
        })
}

/// `GET /api/v1/packages?q=&platform=&category=&cursor=&limit=`.
fn packages(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "packages")
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(with(g))
        .and_then(|pairs: Vec<(String, String)>, g: Gateway| async move {
            let query = api::ListQuery::parse(&pairs).map_err(reject)?;
            view(&g, format!("packages/{query:?}"), || async {
                api::to_json(&api::list(&g, &query).await?)
            })
            .await
        })
}

/// `GET /api/v1/download/{author}/{package}[/{version}]`.
fn download_route(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let newest = warp::path!("api" / "v1" / "download" / String / String)
        .map(|a: String, p: String| (a, p, None));
    let versioned = warp::path!("api" / "v1" / "download" / String / String / String)
        .map(|a: String, p: String, v: String| (a, p, Some(v)));
    newest
        .or(versioned)
        .unify()
        .and(warp::get())
        .and(conditions())
        .and(with(g))
        .and_then(
            |(a, p, v): (String, String, Option<String>), conditions, g: Gateway| async move {
                let key = api::package_key(&a, &p).map_err(reject)?;
                let version = v.as_deref().map(api::version).transpose().map_err(reject)?;
                download::download(&g, key, version, conditions)
                    .await
                    .map_err(reject)
            },
        )
}

/// `GET /ipfs/{cid}[?format=raw|car]`: a subset of the IPFS trustless
/// gateway (`docs/gateway-ipfs.md`).
fn ipfs_route(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("ipfs" / String)
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(warp::header::optional::<String>("accept"))
        .and(conditions())
        .and(with(g))
        .and_then(
            |cid: String,
             query: Vec<(String, String)>,
             accept: Option<String>,
             conditions: Conditions,
             g: Gateway| async move {
                ipfs::ipfs(&g, &cid, &query, accept.as_deref(), conditions)
                    .await
                    .map_err(reject)
            },
        )
}

/// Page handlers answer failures with an HTML page, not JSON.
fn html(result: Result<Response, Failure>) -> Result<Response, Rejection> {
    Ok(result.unwrap_or_else(|failure| pages::error_page(&failure)))
}

/// `GET /?q=&cursor=`.
fn home_page(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path::end()
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(with(g))
        .and_then(|pairs: Vec<(String, String)>, g: Gateway| async move {
            html(pages::home(&g, &pairs).await)
        })
}

/// `GET /fdroid/repo/{path}`: the F-Droid repository (`docs/fdroid.md`):
/// its index files, APKs, icons and screenshots.
fn fdroid_repo(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("fdroid" / "repo" / ..)
        .and(warp::path::tail())
        .and(warp::get().or(warp::head()).unify())
        .and(conditions())
        .and(with(g))
        .and_then(
            |tail: warp::path::Tail, conditions: Conditions, g: Gateway| async move {
                fdroid::repo_file(&g, tail.as_str(), conditions)
                    .await
                    .map_err(reject)
            },
        )
}

/// `GET /latest/{author}/{package}.apk`: a package's newest release, at a
/// URL that never changes (for Obtainium and links).
fn latest_apk(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("latest" / String / String)
        .and(warp::get().or(warp::head()).unify())
        .and(conditions())
        .and(with(g))
        .and_then(
            |a: String, file: String, conditions: Conditions, g: Gateway| async move {
                let Some(p) = file.strip_suffix(".apk") else {
                    return Err(reject(Failure::NotFound(
                        "a latest APK ends in .apk".into(),
                    )));
                };
                let key = api::package_key(&a, p).map_err(reject)?;
                fdroid::latest(&g, &key, conditions).await.map_err(reject)
            },
        )
}

/// `GET /feeds/recent.atom`, `GET /feeds/{author}.atom` and
/// `GET /feeds/{author}/{package}.atom`: Atom feeds of releases.
fn feeds(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    fn atom(name: &str) -> Result<&str, Rejection> {
        name.strip_suffix(".atom")
            .ok_or_else(|| reject(Failure::NotFound("a feed ends in .atom".into())))
    }
    let one = warp::path!("feeds" / String)
        .and(warp::get())
        .and(with(g.clone()))
        .and_then(|name: String, g: Gateway| async move {
            match atom(&name)? {
                "recent" => feeds::feed(&g, feeds::Of::Recent).await,
                author => {
                    let author = api::author(author).map_err(reject)?;
                    feeds::feed(&g, feeds::Of::Author(&author)).await
                }
            }
            .map_err(reject)
        });
    let package = warp::path!("feeds" / String / String)
        .and(warp::get())
        .and(with(g))
        .and_then(|a: String, p: String, g: Gateway| async move {
            let key = api::package_key(&a, atom(&p)?).map_err(reject)?;
            feeds::feed(&g, feeds::Of::Package(&key))
                .await
                .map_err(reject)
        });
    one.or(package).unify()
}

/// `GET /favicon.ico`: the gateway's icon (a PNG, which browsers take
/// under that name), for clients that ask for it.
fn favicon() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("favicon.ico")
        .and(warp::get())
        .and(conditions())
        .map(|conditions: Conditions| fdroid::icon(&conditions))
}

/// `GET /fdroid`: how to add the repository to an F-Droid client.
fn fdroid_page(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("fdroid")
        .and(warp::get())
        .and(with(g))
        .and_then(|g: Gateway| async move { html(pages::fdroid(&g).await) })
}

/// `GET /p/{author}`.
fn author_page(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("p" / String)
        .and(warp::get())
        .and(with(g))
        .and_then(|a: String, g: Gateway| async move { html(pages::author(&g, &a).await) })
}

/// `GET /p/{author}/{package}`.
fn package_page(g: Gateway) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("p" / String / String)
        .and(warp::get())
        .and(with(g))
        .and_then(|a: String, p: String, g: Gateway| async move {
            let result = match api::package_key(&a, &p) {
                Ok(key) => pages::package(&g, &key).await,
                Err(e) => Err(e),
            };
            html(result)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_never_carry_parameters() {
        assert_eq!(route_label("/api/v1/package/a/b"), "package");
        assert_eq!(route_label("/api/v1/package/a/b/1.0.0"), "release");
        assert_eq!(route_label("/api/v1/download/a/b"), "download");
        assert_eq!(route_label("/ipfs/bafy"), "ipfs");
        assert_eq!(route_label("/"), "page_home");
        assert_eq!(route_label("/p/a/b"), "page_package");
        assert_eq!(route_label("/whatever/else"), "other");
        assert_eq!(route_label("/fdroid/repo/entry.jar"), "fdroid_index");
        assert_eq!(route_label("/fdroid/repo/com.x_1.apk"), "fdroid_file");
        assert_eq!(route_label("/latest/a/b.apk"), "latest_apk");
        // Past the segments a route has: only the `..` routes match.
        assert_eq!(route_label("/api/v1/package/a/b/1.0.0/x"), "other");
        assert_eq!(route_label("/p/a/b/c/d/e/f/g/h/i"), "other");
        assert_eq!(route_label("/ipfs/a/b/c/d/e/f/g/h/i"), "ipfs");
    }
}
