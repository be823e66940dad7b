//! `GET /ipfs/{cid}` ([`ipfs`]): the form a request asks for, by
//! `?format=` or `Accept`; the file's bytes come from `download`, the
//! verifiable forms (a subset of the IPFS Trustless Gateway, specified in
//! `docs/gateway-ipfs.md`) from here:
//!
//! * `?format=raw` / `Accept: application/vnd.ipld.raw`: the one block named
//!   by the CID, from the blockstore or the swarm ([`raw_block`]);
//! * `?format=car` / `Accept: application/vnd.ipld.car`: the whole DAG of
//!   a UnixFS file as a CARv1, streamed in depth-first order as the blocks
//!   arrive ([`car`]), with the IPIP-412 `order`/`dups` and the `dag-scope`
//!   parameters;
//! * the probe CID `bafkqaaa` (the empty identity CID) in both forms
//!   ([`probe`]).
//!
//! CARs are written and read with `iroh-car` (the only maintained crate that
//! does both; `rs-car` only reads), through an in-memory pipe: a writer task
//! encodes each block as it comes from the node, the response body reads
//! the pipe, so at most one pipe buffer and the node's download queue are
//! held per request, whatever the file's size.

use std::collections::HashSet;

use bytes::Bytes;
use cid::Cid;
use futures::{Stream, StreamExt};
use ipsr_content::fetch::{FetchError, FetchReport};
use ipsr_content::{Block, ContentError};
use iroh_car::{CarHeader, CarWriter};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::io::ReaderStream;
use warp::Reply;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::conditional::{Conditions, IMMUTABLE, matches_tag};
use crate::download;
use crate::error::Failure;
use crate::state::Gateway;

/// The media type of one raw block.
const RAW_TYPE: &str = "application/vnd.ipld.raw";
/// The media type of a CAR.
pub(crate) const CAR_TYPE: &str = "application/vnd.ipld.car";

/// Bytes buffered between the CAR writer task and the response body.
const PIPE_BUFFER: usize = 256 * 1024;

/// Which blocks of the DAG a CAR holds (the `dag-scope` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The root block alone (`dag-scope=block`).
    Block,
    /// Every block of the file (`dag-scope=all`, the default, and
    /// `dag-scope=entity`, which is the same for a UnixFS file).
    All,
}

/// What a CAR request asks for, from its query and `Accept` header.
/// Blocks are always in depth-first order (`order=dfs`); `order=unk` is
/// accepted and answered with `dfs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CarParams {
    /// Whether a block that occurs several times in the DAG is sent every
    /// time (`dups=y`) or once (`dups=n`, the default).
    dups: bool,
    /// Which blocks.
    scope: Scope,
}

/// The `version`, `order` and `dups` of one request, as strings, before
/// they are checked.
#[derive(Debug, Default, Clone)]
struct Wanted {
    version: Option<String>,
    order: Option<String>,
    dups: Option<String>,
}

impl Wanted {
    /// `self` with every value `query` sets replacing its own.
    fn overridden_by(&self, query: &Wanted) -> Wanted {
        Wanted {
            version: query.version.clone().or_else(|| self.version.clone()),
            order: query.order.clone().or_else(|| self.order.clone()),
            dups: query.dups.clone().or_else(|| self.dups.clone()),
        }
    }

    /// Whether `dups=y`, or why this variant is not served.
    fn check(&self) -> Result<bool, Failure> {
        if let Some(v) = self.version.as_deref().filter(|v| *v != "1") {
            return Err(Failure::bad(
                "car-version",
                format!("CAR version `{v}` is not served; only version 1"),
            ));
        }
        if let Some(o) = self
            .order
            .as_deref()
            .filter(|o| !matches!(*o, "dfs" | "unk"))
        {
            return Err(Failure::bad(
                "car-order",
                format!("`{o}` is not one of dfs, unk"),
            ));
        }
        match self.dups.as_deref() {
            None | Some("n") => Ok(false),
            Some("y") => Ok(true),
            Some(d) => Err(Failure::bad(
                "car-dups",
                format!("`{d}` is not one of y, n"),
            )),
        }
    }
}

impl CarParams {
    /// Reads `car-version`, `car-order`, `car-dups`, `dag-scope` and
    /// `entity-bytes` from the query and the `version`, `order` and `dups`
    /// parameters of the `application/vnd.ipld.car` ranges of `Accept`.
    /// The query wins over `Accept`; among several CAR ranges the one of
    /// highest `q` that can be served is taken. Anything that cannot be
    /// served is a 400.
    fn parse(query: &[(String, String)], accept: Option<&str>) -> Result<Self, Failure> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if get("entity-bytes").is_some() {
            return Err(Failure::bad(
                "entity-bytes",
                "byte ranges of CARs are not served; ask for the whole file",
            ));
        }
        let scope = match get("dag-scope").as_deref() {
            None | Some("all") | Some("entity") => Scope::All,
            Some("block") => Scope::Block,
            Some(other) => {
                return Err(Failure::bad(
                    "dag-scope",
                    format!("`{other}` is not one of all, entity, block"),
                ));
            }
        };
        let from_query = Wanted {
            version: get("car-version"),
            order: get("car-order"),
            dups: get("car-dups"),
        };
        let mut ranges = car_ranges(accept.unwrap_or_default());
        if ranges.is_empty() {
            ranges.push(Wanted::default());
        }
        let mut first_refusal = None;
        for range in &ranges {
            match range.overridden_by(&from_query).check() {
                Ok(dups) => return Ok(Self { dups, scope }),
                Err(e) => {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        Err(first_refusal.unwrap_or_else(|| Failure::bad("accept", "no CAR variant can be served")))
    }

    /// The `Content-Type` of the answer.
    fn content_type(&self) -> String {
        let dups = if self.dups { "y" } else { "n" };
        format!("{CAR_TYPE}; version=1; order=dfs; dups={dups}")
    }

    /// The `ETag` of the answer for `cid`: the CID, the format and every
    /// parameter that changes the bytes (the answer is deterministic, so
    /// the tag is strong).
    fn etag(&self, cid: &Cid) -> String {
        let scope = match self.scope {
            Scope::Block => "block",
            Scope::All => "all",
        };
        let dups = if self.dups { "y" } else { "n" };
        format!("\"{cid}.car.{scope}.dfs.dups-{dups}\"")
    }
}

/// The `application/vnd.ipld.car` media ranges of an `Accept` header,
/// highest `q` first (ranges with `q=0` are left out).
fn car_ranges(accept: &str) -> Vec<Wanted> {
    let mut ranges: Vec<(f32, Wanted)> = Vec::new();
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let essence = parts.next().unwrap_or_default();
        if !essence.eq_ignore_ascii_case(CAR_TYPE) {
            continue;
        }
        let mut q = 1.0f32;
        let mut wanted = Wanted::default();
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"').to_owned();
            match name.trim().to_ascii_lowercase().as_str() {
                "q" => q = value.parse().unwrap_or(1.0),
                "version" => wanted.version = Some(value),
                "order" => wanted.order = Some(value),
                "dups" => wanted.dups = Some(value),
                _ => {}
            }
        }
        if q > 0.0 {
            ranges.push((q, wanted));
        }
    }
    // Stable: equal weights keep the order the client wrote them in.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges.into_iter().map(|(_, w)| w).collect()
}

/// What `GET /ipfs/{cid}` answers with (`?format=` or the `Accept` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpfsFormat {
    /// The file's bytes.
    File,
    /// The root block alone (`application/vnd.ipld.raw`).
    Raw,
    /// Every block of the DAG as a CARv1 (`application/vnd.ipld.car`).
    Car,
}

impl IpfsFormat {
    fn pick(format: Option<&str>, accept: Option<&str>) -> Result<Self, Failure> {
        match format {
            Some("raw") => return Ok(Self::Raw),
            Some("car") => return Ok(Self::Car),
            Some(other) => {
                return Err(Failure::bad(
                    "format",
                    format!("`{other}` is not one of raw, car"),
                ));
            }
            None => {}
        }
        let accept = accept.unwrap_or_default();
        Ok(if accept.contains("application/vnd.ipld.raw") {
            Self::Raw
        } else if accept.contains("application/vnd.ipld.car") {
            Self::Car
        } else {
            Self::File
        })
    }
}

/// `GET /ipfs/{cid}[?format=raw|car]`: the file's bytes
/// ([`download::ipfs_file`]), its root block ([`raw_block`]) or its DAG as
/// a CAR ([`car`]), as `?format=` or `Accept` asks; the probe CID in the
/// verifiable forms ([`probe`]).
pub(crate) async fn ipfs(
    g: &Gateway,
    cid: &str,
    query: &[(String, String)],
    accept: Option<&str>,
    conditions: Conditions,
) -> Result<Response, Failure> {
    let cid: Cid = cid.parse().map_err(|e| Failure::bad("cid", e))?;
    let format = query
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.as_str());
    let format = IpfsFormat::pick(format, accept)?;
    if format != IpfsFormat::File && is_probe(&cid) {
        return probe(cid, format, query, accept).await;
    }
    ipsr_content::block::check_cid(&cid).map_err(|e| Failure::bad("cid", e))?;
    match format {
        IpfsFormat::File => download::ipfs_file(g, cid, conditions).await,
        IpfsFormat::Raw => raw_block(g, cid, &conditions).await,
        IpfsFormat::Car => car(g, cid, query, accept, &conditions).await,
    }
}

/// Whether `cid` is the probe CID `bafkqaaa`: CIDv1, raw, the identity
/// multihash of no bytes.
fn is_probe(cid: &Cid) -> bool {
    cid.version() == cid::Version::V1
        && cid.codec() == ipsr_content::block::RAW
        && cid.hash().code() == 0
        && cid.hash().size() == 0
}

/// `GET /ipfs/bafkqaaa?format=raw|car`: tells a client this is a trustless
/// gateway. Raw: an empty block; CAR: a CAR whose header names the probe
/// CID and that holds no block.
async fn probe(
    cid: Cid,
    format: IpfsFormat,
    query: &[(String, String)],
    accept: Option<&str>,
) -> Result<Response, Failure> {
    match format {
        IpfsFormat::Car => {
            let params = CarParams::parse(query, accept)?;
            let bytes = car_in_memory(cid, &[]).await?;
            let mut response = Response::new(bytes.into());
            car_headers(&mut response, &cid, &params);
            Ok(response)
        }
        IpfsFormat::Raw | IpfsFormat::File => {
            let mut response = Response::default();
            raw_headers(&mut response, &cid, 0);
            Ok(response)
        }
    }
}

/// `GET /ipfs/{cid}?format=raw`: the block's bytes, from the blockstore or
/// the swarm; 404 when no peer sent it within `ipfs_timeout`.
async fn raw_block(g: &Gateway, cid: Cid, conditions: &Conditions) -> Result<Response, Failure> {
    if matches_tag(conditions.if_none_match.as_deref(), &raw_etag(&cid)) {
        return Ok(not_modified(|r| raw_headers(r, &cid, 0)));
    }
    let timeout = g.config().ipfs_timeout;
    let block = g
        .node()
        .content()
        .block(cid, timeout)
        .await?
        .ok_or_else(|| {
            Failure::NotFound(format!(
                "block {cid} was not found in the swarm within {} s",
                timeout.as_secs()
            ))
        })?;
    let (_, data) = block.into_parts();
    let len = data.len() as u64;
    g.metrics().served(len);
    let mut response = Response::new(data.into());
    raw_headers(&mut response, &cid, len);
    Ok(response)
}

/// `GET /ipfs/{cid}?format=car`: the file's DAG as a CARv1 with `cid` as
/// its one root, streamed as the blocks come; 404 when the root block is
/// not found within `ipfs_timeout`. A failure after the first byte cuts
/// the answer short (the client sees an incomplete CAR and a broken
/// connection, never a clean end).
async fn car(
    g: &Gateway,
    cid: Cid,
    query: &[(String, String)],
    accept: Option<&str>,
    conditions: &Conditions,
) -> Result<Response, Failure> {
    let params = CarParams::parse(query, accept)?;
    if matches_tag(conditions.if_none_match.as_deref(), &params.etag(&cid)) {
        return Ok(not_modified(|r| car_headers(r, &cid, &params)));
    }
    let timeout = g.config().ipfs_timeout;
    let not_found = || {
        Failure::NotFound(format!(
            "{cid} was not found in the swarm within {} s",
            timeout.as_secs()
        ))
    };
    if params.scope == Scope::Block {
        let root = g
            .node()
            .content()
            .block(cid, timeout)
            .await?
            .ok_or_else(not_found)?;
        let bytes = car_in_memory(cid, &[root]).await?;
        g.metrics().served(bytes.len() as u64);
        let mut response = Response::new(bytes.into());
        car_headers(&mut response, &cid, &params);
        return Ok(response);
    }
    let (mut rx, fetch) = g.node().content().cat_blocks(cid, Vec::new());
    let mut fetch = Abort(Some(fetch));
    let first = match tokio::time::timeout(timeout, rx.recv()).await {
        Ok(Some(first)) => first,
        // The download ended before its root block: it failed.
        Ok(None) => {
            return Err(match fetch.finish().await {
                Err(Failure::ContentUnavailable(_)) => not_found(),
                Err(e) => e,
                Ok(_) => Failure::Internal(format!("{cid}: the download ended without a block")),
            });
        }
        Err(_) => return Err(not_found()),
    };
    let (pipe, body) = tokio::io::duplex(PIPE_BUFFER);
    let writer = tokio::spawn(write_car(cid, first, rx, fetch, params.dups, pipe));
    let metrics = g.clone();
    let served = move |n| metrics.metrics().served(n);
    let mut response = warp::reply::stream(car_body(body, writer, served)).into_response();
    car_headers(&mut response, &cid, &params);
    Ok(response)
}

/// A download that is stopped when dropped (the request went away).
struct Abort(Option<JoinHandle<Result<FetchReport, FetchError>>>);

impl Abort {
    /// Waits for the download's end; its failure as a request failure.
    async fn finish(&mut self) -> Result<FetchReport, Failure> {
        let Some(handle) = self.0.take() else {
            return Err(Failure::Internal("the download was already awaited".into()));
        };
        match handle.await {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(FetchError::Read(e))) => Err(Failure::ContentMismatch(format!(
                "{e}; CARs are served for UnixFS files only (?format=raw serves one block)"
            ))),
            Ok(Err(e)) => Err(ContentError::Fetch(e).into()),
            Err(e) => Err(Failure::Internal(format!("download task: {e}"))),
        }
    }
}

impl Drop for Abort {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

/// Writes the CAR (header naming `root`, then `first` and every block that
/// comes on `rx`, repeats skipped unless `dups`) into `pipe`; fails, so
/// that the body is cut short, if the download fails.
async fn write_car(
    root: Cid,
    first: Block,
    mut rx: mpsc::Receiver<Block>,
    mut fetch: Abort,
    dups: bool,
    pipe: DuplexStream,
) -> Result<(), String> {
    let mut car = CarWriter::new(CarHeader::new_v1(vec![root]), pipe);
    let mut seen = HashSet::new();
    let mut next = Some(first);
    while let Some(block) = next {
        if dups || seen.insert(*block.cid()) {
            car.write(*block.cid(), block.data())
                .await
                .map_err(|e| format!("writing the CAR: {e}"))?;
        }
        next = rx.recv().await;
    }
    fetch.finish().await.map_err(|e| format!("{root}: {e}"))?;
    car.finish()
        .await
        .map_err(|e| format!("writing the CAR: {e}"))?;
    Ok(())
}

/// The response body: what the writer task puts in the pipe (each chunk
/// counted with `served`), then an error if the task failed.
fn car_body<F>(
    pipe: DuplexStream,
    writer: JoinHandle<Result<(), String>>,
    served: F,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static
where
    F: Fn(u64) + Send + Sync + 'static,
{
    struct State<F> {
        served: F,
        chunks: ReaderStream<DuplexStream>,
        writer: Option<JoinHandle<Result<(), String>>>,
    }
    impl<F> Drop for State<F> {
        fn drop(&mut self) {
            // The client went away: stop writing, and so downloading.
            if let Some(writer) = self.writer.take() {
                writer.abort();
            }
        }
    }
    let state = State {
        served,
        chunks: ReaderStream::with_capacity(pipe, 64 * 1024),
        writer: Some(writer),
    };
    futures::stream::unfold(state, |mut s| async move {
        match s.chunks.next().await {
            Some(Ok(chunk)) => {
                (s.served)(chunk.len() as u64);
                Some((Ok(chunk), s))
            }
            Some(Err(e)) => Some((Err(e), s)),
            None => {
                let writer = s.writer.take()?;
                let why = match writer.await {
                    Ok(Ok(())) => return None,
                    Ok(Err(why)) => why,
                    Err(e) => format!("CAR writer task: {e}"),
                };
                tracing::warn!(error = %why, "CAR cut short");
                Some((Err(std::io::Error::other(why)), s))
            }
        }
    })
}

/// A whole (small) CAR: `root` in the header, then `blocks`.
async fn car_in_memory(root: Cid, blocks: &[Block]) -> Result<Vec<u8>, Failure> {
    let mut car = CarWriter::new(CarHeader::new_v1(vec![root]), Vec::new());
    let internal = |e: iroh_car::Error| Failure::Internal(format!("writing a CAR: {e}"));
    car.write_header().await.map_err(internal)?;
    for block in blocks {
        car.write(*block.cid(), block.data())
            .await
            .map_err(internal)?;
    }
    car.finish().await.map_err(internal)
}

fn raw_etag(cid: &Cid) -> String {
    format!("\"{cid}.raw\"")
}

fn not_modified(set_headers: impl FnOnce(&mut Response)) -> Response {
    let mut response = Response::default();
    set_headers(&mut response);
    response.headers_mut().remove(header::CONTENT_LENGTH);
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    response
}

fn raw_headers(response: &mut Response, cid: &Cid, len: u64) {
    common_headers(response, cid, RAW_TYPE, &raw_etag(cid), "bin");
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
}

fn car_headers(response: &mut Response, cid: &Cid, params: &CarParams) {
    common_headers(
        response,
        cid,
        &params.content_type(),
        &params.etag(cid),
        "car",
    );
}

/// The headers of both forms: type, tag, caching, download as a file.
fn common_headers(
    response: &mut Response,
    cid: &Cid,
    content_type: &str,
    etag: &str,
    extension: &str,
) {
    let headers = response.headers_mut();
    let mut set = |name, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, content_type.to_owned());
    set(header::ETAG, etag.to_owned());
    set(header::CACHE_CONTROL, IMMUTABLE.to_owned());
    set(
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{cid}.{extension}\""),
    );
    set(header::VARY, "Accept".to_owned());
    set(
        header::HeaderName::from_static("x-content-type-options"),
        "nosniff".to_owned(),
    );
    set(
        header::HeaderName::from_static("x-ipfs-path"),
        format!("/ipfs/{cid}"),
    );
    set(
        header::HeaderName::from_static("x-ipfs-roots"),
        cid.to_string(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(pairs: &[(&str, &str)], accept: Option<&str>) -> Result<CarParams, Failure> {
        CarParams::parse(&q(pairs), accept)
    }

    #[test]
    fn car_defaults_are_dfs_without_duplicates_of_the_whole_dag() {
        let p = parse(&[("format", "car")], None).unwrap();
        assert_eq!(
            p,
            CarParams {
                dups: false,
                scope: Scope::All
            }
        );
        assert_eq!(
            p.content_type(),
            "application/vnd.ipld.car; version=1; order=dfs; dups=n"
        );
    }

    #[test]
    fn car_parameters_come_from_accept_and_the_query_wins() {
        let accept = "application/vnd.ipld.car; version=1; order=dfs; dups=y";
        assert!(parse(&[], Some(accept)).unwrap().dups);
        assert!(!parse(&[("car-dups", "n")], Some(accept)).unwrap().dups);
        let v2 = "application/vnd.ipld.car; version=2";
        assert!(parse(&[], Some(v2)).is_err());
        assert!(parse(&[("car-version", "1")], Some(v2)).is_ok());
        // The preferred range cannot be served; the next one can.
        let list =
            "application/vnd.ipld.car;order=foo, application/vnd.ipld.car;order=dfs;dups=y;q=0.5";
        assert!(parse(&[], Some(list)).unwrap().dups);
        let weighted = "application/vnd.ipld.car;dups=y;q=0.2, application/vnd.ipld.car;dups=n";
        assert!(!parse(&[], Some(weighted)).unwrap().dups);
        assert!(
            parse(&[("car-order", "unk")], None).is_ok(),
            "unk is answered with dfs"
        );
    }

    #[test]
    fn unservable_car_requests_are_refused() {
        for pairs in [
            &[("car-dups", "maybe")][..],
            &[("car-order", "bfs")],
            &[("car-version", "2")],
            &[("dag-scope", "everything")],
            &[("entity-bytes", "0:*")],
        ] {
            let e = parse(pairs, None).unwrap_err();
            assert_eq!(e.status_and_code().0, StatusCode::BAD_REQUEST, "{pairs:?}");
        }
        assert_eq!(
            parse(&[("dag-scope", "block")], None).unwrap().scope,
            Scope::Block
        );
        assert_eq!(
            parse(&[("dag-scope", "entity")], None).unwrap().scope,
            Scope::All
        );
    }

    #[test]
    fn etags_name_the_cid_the_format_and_the_parameters() {
        let cid: Cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
            .parse()
            .unwrap();
        assert_eq!(raw_etag(&cid), format!("\"{cid}.raw\""));
        let p = parse(&[], None).unwrap();
        assert_eq!(p.etag(&cid), format!("\"{cid}.car.all.dfs.dups-n\""));
    }

    /// A writer that fails after some bytes: the body gives those bytes,
    /// then an error (so the server cuts the answer short), never a clean
    /// end; one that succeeds gives a clean end.
    #[tokio::test]
    async fn a_failed_writer_ends_the_body_with_an_error() {
        use tokio::io::AsyncWriteExt;
        for fail in [true, false] {
            let (mut pipe, body) = tokio::io::duplex(16);
            let writer = tokio::spawn(async move {
                pipe.write_all(&[7u8; 100])
                    .await
                    .map_err(|e| e.to_string())?;
                if fail {
                    return Err("the provider went away".to_owned());
                }
                Ok(())
            });
            let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let count = counted.clone();
            let served = move |n| {
                count.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            };
            let items: Vec<_> = car_body(body, writer, served).collect().await;
            let (ok, errors): (Vec<_>, Vec<_>) = items.into_iter().partition(|i| i.is_ok());
            let bytes: usize = ok.into_iter().map(|c| c.unwrap().len()).sum();
            assert_eq!(bytes, 100);
            assert_eq!(counted.load(std::sync::atomic::Ordering::Relaxed), 100);
            assert_eq!(errors.len(), usize::from(fail));
        }
    }

    #[test]
    fn only_the_empty_identity_cid_is_the_probe() {
        let probe: Cid = "bafkqaaa".parse().unwrap();
        assert!(is_probe(&probe));
        let other: Cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
            .parse()
            .unwrap();
        assert!(!is_probe(&other));
    }
}
