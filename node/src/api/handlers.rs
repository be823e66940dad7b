//! The handlers: plain async functions from a parsed request to a model.
//! Store reads run in `spawn_blocking` (redb calls block).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ipsr_proto::{AuthorId, PackageKey, PackageName, ReleaseKey, Signed, SignedRecord, Version};
use tokio::sync::Semaphore;
use tracing::debug;

use super::error::Failure;
use super::limits::{
    DEFAULT_LOG_LIMIT, DEFAULT_SEARCH_LIMIT, MAX_LOG_LIMIT, MAX_QUERY_BYTES, MAX_SEARCH_LIMIT,
    MAX_WAIT, MAX_WAITERS,
};
use super::models::{Author, Log, Package, Peers, Published, ReleaseView, SearchResults, Status};
use crate::client::Client;
use crate::store::{Store, StoreError};
use crate::views::IdentityView;

/// What every handler gets: the node and the API's shared limits.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(super) client: Client,
    /// Permits to long-poll the log.
    waiters: Arc<Semaphore>,
}

impl Ctx {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            waiters: Arc::new(Semaphore::new(MAX_WAITERS)),
        }
    }

    /// Runs a store read off the async threads.
    async fn read<T, F>(&self, read: F) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.client.store().clone();
        tokio::task::spawn_blocking(move || read(&store))
            .await
            .map_err(Failure::Task)?
            .map_err(Failure::from)
    }
}

fn author(text: &str) -> Result<AuthorId, Failure> {
    text.parse().map_err(Failure::Author)
}

fn package(text: &str) -> Result<PackageName, Failure> {
    text.parse().map_err(Failure::Package)
}

fn version(text: &str) -> Result<Version, Failure> {
    text.parse().map_err(Failure::Version)
}

/// `POST /v1/records`: verifies the body, stores it durably and gossips it.
pub(crate) async fn publish(ctx: Ctx, body: Bytes) -> Result<Published, Failure> {
    let signed = SignedRecord::from_bytes(&body)
        .and_then(SignedRecord::verify_any)
        .map_err(Failure::Verify)?;
    let published = match signed {
        Signed::Record(record) => {
            let payload = record.record().clone();
            let stored = ctx.client.publish(record).await?;
            Published::new(&stored, &payload)
        }
        Signed::Identity(doc) => {
            let author = doc.identity().author;
            let stored = ctx.client.publish_signed(Signed::Identity(doc)).await?;
            Published::identity(&stored, author)
        }
    };
    debug!(record = %published.id, change = published.change, "published");
    Ok(published)
}

/// `GET /v1/packages/{author}/{package}`.
pub(crate) async fn package_info(
    ctx: Ctx,
    author_text: String,
    package_text: String,
) -> Result<Package, Failure> {
    let key = PackageKey {
        author: author(&author_text)?,
        package: package(&package_text)?,
    };
    let not_found = || Failure::NotFound(format!("no release of {key} is known"));
    let read =
        |ctx: Ctx, key: PackageKey| async move { ctx.read(move |store| store.package(&key)).await };
    let state = match read(ctx.clone(), key.clone()).await? {
        Some(state) => state,
        None => {
            // Not known here (this node may have missed the gossip): ask the
            // DHT, which stores what it finds, then read again.
            let lookup = ctx.client.dht_get_package(key.clone());
            match tokio::time::timeout(DHT_LOOKUP, lookup).await {
                Ok(Ok(Some(_))) => read(ctx, key.clone()).await?.ok_or_else(not_found)?,
                Ok(Ok(None)) | Err(_) => return Err(not_found()),
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    };
    Package::new(&state).ok_or_else(not_found)
}

/// How long a package route waits for the DHT when the package is unknown.
const DHT_LOOKUP: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET /v1/packages/{author}/{package}/{version}`.
pub(crate) async fn release_info(
    ctx: Ctx,
    author_text: String,
    package_text: String,
    version_text: String,
) -> Result<ReleaseView, Failure> {
    let key = ReleaseKey {
        author: author(&author_text)?,
        package: package(&package_text)?,
        version: version(&version_text)?,
    };
    let not_found = || Failure::NotFound(format!("release {key} is not known"));
    let (state, check) = ctx
        .read({
            let key = key.clone();
            move |store| {
                let Some(state) = store.release(&key)? else {
                    return Ok((None, None));
                };
                // Rule 9 looks at the package's other releases.
                let check = match crate::views::names_certificate(&state) {
                    true => {
                        let package = store.package(&key.package_key())?;
                        crate::views::cert_check(package.as_ref(), &key.version)
                    }
                    false => None,
                };
                Ok((Some(state), check))
            }
        })
        .await?;
    ReleaseView::new(&state.ok_or_else(not_found)?, check).ok_or_else(not_found)
}

/// `GET /v1/authors/{author}`.
pub(crate) async fn author_info(ctx: Ctx, author_text: String) -> Result<Author, Failure> {
    let author = author(&author_text)?;
    let (packages, identity) = ctx
        .read(move |store| Ok((store.packages_of(&author)?, store.identity(&author)?)))
        .await?;
    Ok(Author {
        author,
        packages,
        identity: IdentityView::new(&identity),
    })
}

/// The parameters of `GET /v1/search`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchQuery {
    q: String,
    limit: usize,
}

impl SearchQuery {
    /// Parses `q` (required, at most [`MAX_QUERY_BYTES`]) and `limit`; other
    /// parameters are ignored, a repeated one counts with its last value.
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Self, Failure> {
        let mut q = None;
        let mut limit = DEFAULT_SEARCH_LIMIT;
        for (name, value) in pairs {
            match name.as_str() {
                "q" => q = Some(value.trim().to_owned()),
                "limit" => {
                    limit = value
                        .parse()
                        .ok()
                        .filter(|l: &usize| *l > 0)
                        .ok_or(Failure::Query {
                            param: "limit",
                            reason: "must be an integer, 1 or more",
                        })?
                        .min(MAX_SEARCH_LIMIT);
                }
                _ => {}
            }
        }
        let q = q.filter(|q| !q.is_empty()).ok_or(Failure::Query {
            param: "q",
            reason: "is required: the words to look for",
        })?;
        if q.len() > MAX_QUERY_BYTES {
            return Err(Failure::Query {
                param: "q",
                reason: "must be at most 200 bytes",
            });
        }
        Ok(Self { q, limit })
    }
}

/// `GET /v1/search`: the packages the node holds whose name or title match,
/// ranked by [`crate::search`].
pub(crate) async fn search(ctx: Ctx, query: SearchQuery) -> Result<SearchResults, Failure> {
    let hits = ctx
        .read(move |store| store.search(&query.q, query.limit))
        .await?;
    Ok(SearchResults::new(hits))
}

/// The parameters of `GET /v1/log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogQuery {
    after: u64,
    limit: usize,
    wait: Duration,
}

impl LogQuery {
    /// Parses `after`, `limit` and `wait` (seconds); other parameters are
    /// ignored, a repeated one counts with its last value.
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Self, Failure> {
        let mut query = Self {
            after: 0,
            limit: DEFAULT_LOG_LIMIT,
            wait: Duration::ZERO,
        };
        for (name, value) in pairs {
            match name.as_str() {
                "after" => {
                    query.after = value.parse().map_err(|_| Failure::Query {
                        param: "after",
                        reason: "must be a log position (an integer, 0 or more)",
                    })?;
                }
                "limit" => {
                    let limit: usize =
                        value
                            .parse()
                            .ok()
                            .filter(|l| *l > 0)
                            .ok_or(Failure::Query {
                                param: "limit",
                                reason: "must be an integer, 1 or more",
                            })?;
                    query.limit = limit.min(MAX_LOG_LIMIT);
                }
                "wait" => {
                    let secs: u64 = value.parse().map_err(|_| Failure::Query {
                        param: "wait",
                        reason: "must be a number of seconds (an integer, 0 or more)",
                    })?;
                    query.wait = Duration::from_secs(secs).min(MAX_WAIT);
                }
                _ => {}
            }
        }
        Ok(query)
    }
}

/// `GET /v1/log`: entries after a position; with `wait`, a long-poll.
///
/// It never skips an entry: the store appends positions in commit order
/// and the log head is announced only after the commit, so an entry is
/// either in the first read or announced to the waiting receiver, which is
/// taken before that read. A read that finds no entry (none new, or only
/// compacted ones) waits for the head to pass the page's `next`, not the
/// `after` asked for, so that a stretch of compacted positions does not
/// answer at once, again and again.
pub(crate) async fn log(ctx: Ctx, query: LogQuery) -> Result<Log, Failure> {
    let mut head = ctx.client.log_head();
    let log = read_log(&ctx, query).await?;
    if !log.is_empty() || query.wait.is_zero() {
        return Ok(log);
    }
    let Ok(_permit) = ctx.waiters.try_acquire() else {
        debug!("too many waiting log requests; answering at once");
        return Ok(log);
    };
    // Ends when the head passes `next`, the wait is over, or the node stops.
    let next = log.next();
    let _ = tokio::time::timeout(query.wait, head.wait_for(|h| *h > next)).await;
    read_log(&ctx, query).await
}

async fn read_log(ctx: &Ctx, query: LogQuery) -> Result<Log, Failure> {
    ctx.read(move |store| Ok(Log::new(&store.log_bytes_after(query.after, query.limit)?)))
        .await
}

/// `GET /v1/peers`.
pub(crate) async fn peers(ctx: Ctx) -> Result<Peers, Failure> {
    let peers = ctx.client.peers().await?;
    Ok(Peers {
        peers: peers.iter().map(ToString::to_string).collect(),
    })
}

/// `GET /metrics`.
pub(crate) async fn metrics(ctx: Ctx) -> Result<String, Failure> {
    Ok(ctx.client.metrics_text().await?)
}

/// `GET /v1/status`.
pub(crate) async fn status(ctx: Ctx) -> Result<Status, Failure> {
    let stats = ctx.read(Store::stats).await?;
    let listen_addrs = ctx.client.listen_addrs().await?;
    let peers = ctx.client.peers().await?;
    let dht_peers = ctx.client.dht_peers().await?;
    Ok(Status::new(
        ctx.client.peer_id().to_string(),
        listen_addrs.iter().map(ToString::to_string).collect(),
        (peers.len(), dht_peers),
        stats,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<LogQuery, Failure> {
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LogQuery::parse(&pairs)
    }

    #[test]
    fn search_query_requires_q_and_caps_limit() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let q = SearchQuery::parse(&pairs(&[("q", " camera "), ("limit", "5000")])).unwrap();
        assert_eq!((q.q.as_str(), q.limit), ("camera", MAX_SEARCH_LIMIT));
        let q = SearchQuery::parse(&pairs(&[("q", "x")])).unwrap();
        assert_eq!(q.limit, DEFAULT_SEARCH_LIMIT);
        let long = "x".repeat(MAX_QUERY_BYTES + 1);
        for (bad, param) in [
            (vec![], "q"),
            (vec![("q", "  ")], "q"),
            (vec![("q", long.as_str())], "q"),
            (vec![("q", "a"), ("limit", "0")], "limit"),
        ] {
            let err = SearchQuery::parse(&pairs(&bad)).unwrap_err();
            assert!(
                matches!(err, Failure::Query { param: p, .. } if p == param),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn log_query_defaults_caps_and_errors() {
        let q = parse(&[]).unwrap();
        assert_eq!(
            (q.after, q.limit, q.wait),
            (0, DEFAULT_LOG_LIMIT, Duration::ZERO)
        );
        let q = parse(&[
            ("after", "7"),
            ("limit", "5000"),
            ("wait", "99"),
            ("x", "y"),
        ])
        .unwrap();
        assert_eq!((q.after, q.limit, q.wait), (7, MAX_LOG_LIMIT, MAX_WAIT));
        for (name, value) in [
            ("after", "-1"),
            ("after", "x"),
            ("limit", "0"),
            ("limit", ""),
            ("wait", "1.5"),
        ] {
            let err = parse(&[(name, value)]).unwrap_err();
            assert!(
                matches!(err, Failure::Query { param, .. } if param == name),
                "{name}={value}: {err}"
            );
        }
    }
}
