//! The content handlers (`docs/node-api.md`, "Content"): add, cat, stat,
//! pins and gc, as plain async functions, and their JSON bodies; their
//! routes are in `filters`. Uploads and downloads stream: neither holds a
//! whole file in memory.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use cid::Cid;
use futures::{Stream, StreamExt};
use libp2p::PeerId;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use warp::Reply;
use warp::http::header;
use warp::reply::Response;

use super::error::Failure;
use super::handlers::Ctx;
use ipsr_content::blockstore::{GcReport, Pin as PinInfo};
use ipsr_content::fetch::{FetchError, FetchReport};
use ipsr_content::unixfs::Profile;
use ipsr_content::{ContentError, ContentStat};

/// The body of `POST /v1/content`.
#[derive(Debug, Serialize)]
pub(crate) struct Added {
    cid: String,
    size: u64,
    blocks: u64,
    profile: String,
}

/// The body of `PUT /v1/pins/{cid}`.
#[derive(Debug, Serialize)]
pub(crate) struct Pinned {
    cid: String,
    fetched: u64,
    local: u64,
    size: u64,
}

/// One entry of `GET /v1/pins`.
#[derive(Debug, Serialize)]
pub(crate) struct PinView {
    cid: String,
    label: Option<String>,
    created_at: u64,
}

/// The body of `POST /v1/gc`.
#[derive(Debug, Serialize)]
pub(crate) struct Collected {
    removed: u64,
    freed: u64,
}

/// The query of `POST /v1/content`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddQuery {
    profile: Option<String>,
    label: Option<String>,
}

/// The query of `PUT /v1/pins/{cid}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PinQuery {
    label: Option<String>,
    providers: Option<String>,
}

/// The query of `GET /v1/content/{cid}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CatQuery {
    providers: Option<String>,
}

/// Peers to ask first, besides those the DHT names: `providers=ID,ID`.
fn providers(text: Option<&str>) -> Result<Vec<PeerId>, Failure> {
    let bad = Failure::Query {
        param: "providers",
        reason: "must be peer ids separated by commas",
    };
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let peers = text
        .split(',')
        .map(|p| p.trim().parse::<PeerId>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad)?;
    if peers.len() > MAX_PROVIDER_HINTS {
        return Err(Failure::Query {
            param: "providers",
            reason: "at most 16 peer ids",
        });
    }
    Ok(peers)
}

/// Most peers a request may name as providers.
const MAX_PROVIDER_HINTS: usize = 16;

fn cid(text: &str) -> Result<Cid, Failure> {
    let cid: Cid = text
        .parse()
        .map_err(|e: cid::Error| Failure::Cid(e.to_string()))?;
    ipsr_content::block::check_cid(&cid).map_err(|e| Failure::Cid(e.to_string()))?;
    Ok(cid)
}

/// `POST /v1/content?profile=unixfs-v1-2025&label=...`: the body (any size,
/// streamed) becomes a pinned UnixFS file.
pub(crate) async fn add<S, B>(ctx: Ctx, query: AddQuery, body: S) -> Result<Added, Failure>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let profile = match query.profile.as_deref() {
        None => Profile::default(),
        Some(text) => text.parse().map_err(|_| Failure::Query {
            param: "profile",
            reason: "must be unixfs-v1-2025 or unixfs-v0-2015",
        })?,
    };
    let (tx, rx) = mpsc::channel(8);
    let adding = ctx.client.content().add(rx, profile, query.label);
    let feeding = feed(body, tx);
    let (added, fed) = futures::join!(adding, feeding);
    fed?;
    let added = added?;
    Ok(Added {
        cid: added.root.to_string(),
        size: added.size,
        blocks: added.blocks,
        profile: profile.to_string(),
    })
}

/// Passes the request body on to the importer, chunk by chunk.
async fn feed<S, B>(body: S, tx: mpsc::Sender<Bytes>) -> Result<(), Failure>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| Failure::BodyRead(e.to_string()))?;
        let bytes = chunk.copy_to_bytes(chunk.remaining());
        if tx.send(bytes).await.is_err() {
            // The importer stopped (its error is the answer).
            return Ok(());
        }
    }
    Ok(())
}

/// `GET /v1/content/{cid}/stat`.
pub(crate) async fn stat(ctx: Ctx, text: String) -> Result<ContentStat, Failure> {
    let stat: ContentStat = ctx.client.content().stat(cid(&text)?).await?;
    Ok(stat)
}

/// `GET /v1/content/{cid}`: the file's bytes, from here or from the swarm,
/// every block checked.
pub(crate) async fn cat(ctx: Ctx, text: String, query: CatQuery) -> Result<Response, Failure> {
    let root = cid(&text)?;
    let hint = providers(query.providers.as_deref())?;
    // The length comes from the root block alone (no DAG walk).
    let size = ctx
        .client
        .content()
        .file_size(root)
        .await
        .map_err(Failure::from)?;
    let (rx, handle) = ctx.client.content().cat(root, hint);
    let mut download = Download {
        rx,
        handle: Some(handle),
    };
    // Wait for the first bytes, so a file nobody has is an error
    // status rather than an empty body.
    let first = match download.next().await {
        Some(Ok(bytes)) => Some(bytes),
        Some(Err(e)) => return Err(Failure::from(e)),
        None => None,
    };
    let body = futures::stream::iter(first.map(Ok)).chain(download);
    let mut response = warp::reply::stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(etag) = header::HeaderValue::from_str(&format!("\"{root}\"")) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(size) = size {
        headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(size));
    }
    Ok(response)
}

/// The bytes of a download, then how it ended: an error ends the stream
/// with an error, which aborts the response (the client sees a short body).
struct Download {
    rx: mpsc::Receiver<Bytes>,
    handle: Option<JoinHandle<Result<FetchReport, FetchError>>>,
}

impl Stream for Download {
    type Item = Result<Bytes, ContentError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(Some(bytes)) = self.rx.poll_recv(cx) {
            return Poll::Ready(Some(Ok(bytes)));
        }
        if !self.rx.is_closed() && !self.rx.is_empty() {
            return Poll::Pending;
        }
        let Some(handle) = self.handle.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(handle).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                self.handle = None;
                // Bytes sent just before the end are still queued.
                if let Poll::Ready(Some(bytes)) = self.rx.poll_recv(cx) {
                    return Poll::Ready(Some(Ok(bytes)));
                }
                match result {
                    Ok(Ok(_)) => Poll::Ready(None),
                    Ok(Err(e)) => Poll::Ready(Some(Err(ContentError::Fetch(e)))),
                    Err(e) => Poll::Ready(Some(Err(ContentError::Task(e)))),
                }
            }
        }
    }
}

/// `GET /v1/pins`.
pub(crate) async fn pins(ctx: Ctx) -> Result<Vec<PinView>, Failure> {
    let pins: Vec<PinInfo> = ctx.client.content().pins().await?;
    Ok(pins
        .into_iter()
        .map(|p| PinView {
            cid: p.root.to_string(),
            label: p.label,
            created_at: p.created,
        })
        .collect::<Vec<_>>())
}

/// `PUT /v1/pins/{cid}?label=...`: fetches what is missing, then pins.
pub(crate) async fn pin(ctx: Ctx, text: String, query: PinQuery) -> Result<Pinned, Failure> {
    let root = cid(&text)?;
    let hint = providers(query.providers.as_deref())?;
    let report = ctx.client.content().pin(root, query.label, hint).await?;
    Ok(Pinned {
        cid: root.to_string(),
        fetched: report.fetched,
        local: report.local,
        size: report.size,
    })
}

/// `DELETE /v1/pins/{cid}`.
pub(crate) async fn unpin(ctx: Ctx, text: String) -> Result<serde_json::Value, Failure> {
    let root = cid(&text)?;
    if !ctx.client.content().unpin(root).await? {
        return Err(Failure::NotFound(format!("{root} is not pinned")));
    }
    Ok(serde_json::json!({ "cid": root.to_string(), "pinned": false }))
}

/// `POST /v1/gc`.
pub(crate) async fn gc(ctx: Ctx) -> Result<Collected, Failure> {
    let report: GcReport = ctx.client.content().gc().await?;
    Ok(Collected {
        removed: report.removed,
        freed: report.freed,
    })
}
