//! App bytes over HTTP: `GET /api/v1/download/{author}/{package}[/{version}]`
//! and the file form of `GET /ipfs/{cid}`. Bytes come from the node's
//! blockstore or, block by block, from providers in the swarm; every block
//! is checked against its CID before a byte of it is sent, so a complete
//! answer is the signed content. A single `Range` is honoured (206) by
//! reading only the blocks that hold it, found through the `blocksizes` of
//! the DAG's nodes (so its cost is the range's, not the file's), and
//! `If-None-Match` with the CID answers 304.

use bytes::Bytes;
use cid::Cid;
use futures::Stream;
use ipsr_content::fetch::{FetchError, FetchReport};
use ipsr_proto::{PackageKey, Release, ReleaseKey, Version};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use warp::Reply;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::conditional::{Conditions, IMMUTABLE, Wanted, matches_tag, wanted};
use crate::error::Failure;
use crate::state::Gateway;

/// `Cache-Control` of a download by package and version (a yank or a newer
/// release changes what a name points at).
const SHORT: &str = "public, max-age=60";

/// How the answer describes the file.
#[derive(Debug)]
struct Presented {
    content_type: &'static str,
    disposition: Option<String>,
    cache_control: &'static str,
    yanked: bool,
    /// The SHA-256 a whole answer must have: its last bytes are withheld
    /// (the connection is cut) when the file's differs.
    sha256: Option<[u8; 32]>,
}

/// `GET /api/v1/download/{author}/{package}[/{version}]`: the newest
/// non-yanked release when no version is given.
pub(crate) async fn download(
    g: &Gateway,
    package: PackageKey,
    version: Option<Version>,
    conditions: Conditions,
) -> Result<Response, Failure> {
    let (release, yanked) = resolve(g, package, version).await?;
    let presented = Presented {
        content_type: content_type(&release.file_name),
        disposition: Some(disposition(&release)),
        cache_control: SHORT,
        yanked,
        sha256: None,
    };
    let timeout = g.config().first_byte_timeout;
    serve_file(g, *release.cid.cid(), &conditions, presented, timeout).await
}

/// `GET /ipfs/{cid}` (file bytes).
pub(crate) async fn ipfs_file(
    g: &Gateway,
    cid: Cid,
    conditions: Conditions,
) -> Result<Response, Failure> {
    let presented = Presented {
        content_type: "application/octet-stream",
        disposition: None,
        cache_control: IMMUTABLE,
        yanked: false,
        sha256: None,
    };
    let timeout = g.config().ipfs_timeout;
    let mut response = serve_file(g, cid, &conditions, presented, timeout)
        .await
        .map_err(|e| match e {
            Failure::ContentUnavailable(_) => {
                Failure::NotFound(format!("{cid} was not found in the swarm in time"))
            }
            e => e,
        })?;
    // The same URL answers raw blocks and CARs by `Accept`.
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

/// An APK of the F-Droid repository (`/fdroid/repo/{package}_{code}.apk`)
/// or a package's latest APK: named `{package}_{code}.apk`, and checked
/// against `sha256` (the index's) as well as the CID while streaming.
pub(crate) async fn apk(
    g: &Gateway,
    release: &Release,
    sha256: Option<[u8; 32]>,
    cache_control: &'static str,
    conditions: Conditions,
) -> Result<Response, Failure> {
    let presented = Presented {
        content_type: "application/vnd.android.package-archive",
        disposition: Some(format!(
            "attachment; filename=\"{}_{}.apk\"",
            release.package, release.version_code
        )),
        cache_control,
        yanked: false,
        sha256,
    };
    let timeout = g.config().first_byte_timeout;
    serve_file(g, *release.cid.cid(), &conditions, presented, timeout).await
}

/// The SHA-256 of a file's bytes, read (and checked against its CID) from
/// the blockstore or the swarm within `timeout`.
pub(crate) async fn sha256_of(
    g: &Gateway,
    cid: Cid,
    timeout: std::time::Duration,
) -> Result<[u8; 32], Failure> {
    use sha2::Digest;
    let (mut rx, fetch) = g.node().content().cat(cid, Vec::new());
    let read = async {
        let mut hasher = sha2::Sha256::new();
        while let Some(chunk) = rx.recv().await {
            hasher.update(&chunk);
        }
        finished(fetch).await?;
        Ok::<_, Failure>(hasher.finalize().into())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| Failure::ContentUnavailable(format!("{cid} was not read in time")))?
}

/// The release a download names, and whether it is yanked.
async fn resolve(
    g: &Gateway,
    package: PackageKey,
    version: Option<Version>,
) -> Result<(Release, bool), Failure> {
    let found = match version {
        Some(version) => {
            let key = ReleaseKey {
                author: package.author,
                package: package.package,
                version,
            };
            let state = g.index().release(&key).await?;
            state.and_then(|s| {
                let yanked = s.is_yanked();
                s.release()
                    .and_then(|r| r.record().as_release().cloned())
                    .map(|r| (r, yanked))
            })
        }
        None => {
            let state = g.index().package(&package).await?;
            state.and_then(|s| {
                s.newest()
                    .and_then(|r| r.record().as_release().cloned())
                    .map(|r| (r, false))
            })
        }
    };
    found.ok_or_else(|| Failure::NotFound("no such release is known".into()))
}

fn content_type(file_name: &str) -> &'static str {
    if file_name.to_ascii_lowercase().ends_with(".apk") {
        "application/vnd.android.package-archive"
    } else {
        "application/octet-stream"
    }
}

/// `attachment; filename="..."` with the record's file name made safe for
/// a header (ASCII letters, digits, `.`, `-`, `_`), or
/// `{package}-{version}` when nothing is left of it.
fn disposition(release: &Release) -> String {
    let safe: String = release
        .file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = if safe.trim_matches(['_', '.']).is_empty() {
        format!("{}-{}", release.package, release.version)
    } else {
        safe
    };
    format!("attachment; filename=\"{name}\"")
}

fn etag(cid: &Cid) -> String {
    format!("\"{cid}\"")
}

fn matches_etag(if_none_match: Option<&str>, cid: &Cid) -> bool {
    matches_tag(if_none_match, &etag(cid))
}

async fn serve_file(
    g: &Gateway,
    cid: Cid,
    conditions: &Conditions,
    presented: Presented,
    timeout: std::time::Duration,
) -> Result<Response, Failure> {
    if matches_etag(conditions.if_none_match.as_deref(), &cid) {
        let mut response = Response::default();
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        set_common(&mut response, &cid, &presented);
        return Ok(response);
    }
    // Fail fast: the root block (here, or from the swarm within `timeout`)
    // tells the file's size before any byte is promised.
    if g.node().content().block(cid, timeout).await?.is_none() {
        return Err(Failure::ContentUnavailable(format!(
            "no provider sent {cid} within {} s",
            timeout.as_secs()
        )));
    }
    let size = g
        .node()
        .content()
        .file_size(cid)
        .await?
        .ok_or_else(|| Failure::ContentMismatch(format!("{cid} is not a UnixFS file")))?;
    if size == 0 {
        let (_, fetch) = g.node().content().cat(cid, Vec::new());
        return empty_file(cid, fetch, conditions, &presented).await;
    }
    let part = wanted(conditions.range.as_deref(), size)?;
    let (status, start, len) = match &part {
        Wanted::Whole => (StatusCode::OK, 0, size),
        Wanted::Part(r) => (
            StatusCode::PARTIAL_CONTENT,
            *r.start(),
            r.end() - r.start() + 1,
        ),
    };
    // A range reads only the blocks that hold it (and the nodes above
    // them): `bytes=-1` of a 1 GiB file costs two blocks, not 1025.
    let (mut rx, fetch) = match &part {
        Wanted::Whole => g.node().content().cat(cid, Vec::new()),
        Wanted::Part(_) => g
            .node()
            .content()
            .cat_range(cid, start..start + len, Vec::new()),
    };
    let first = match tokio::time::timeout(timeout, rx.recv()).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(match finished(fetch).await {
                Err(e) => e,
                Ok(()) => Failure::ContentMismatch(format!("{cid} ended before its first byte")),
            });
        }
        Err(_) => {
            fetch.abort();
            return Err(Failure::ContentUnavailable(format!(
                "no provider sent the first bytes of {cid} within {} s",
                timeout.as_secs()
            )));
        }
    };
    g.metrics().served(len);
    let check = match part {
        Wanted::Whole => presented.sha256,
        Wanted::Part(_) => None,
    };
    let mut response = warp::reply::stream(body(first, rx, fetch, len, check)).into_response();
    *response.status_mut() = status;
    set_common(&mut response, &cid, &presented);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Wanted::Part(r) = &part {
        let value = format!("bytes {}-{}/{size}", r.start(), r.end());
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
}

/// The answer for an empty file.
async fn empty_file(
    cid: Cid,
    fetch: JoinHandle<Result<FetchReport, FetchError>>,
    conditions: &Conditions,
    presented: &Presented,
) -> Result<Response, Failure> {
    // The walk of an empty file still checks its root.
    finished(fetch).await?;
    wanted(conditions.range.as_deref(), 0)?;
    let mut response = Response::default();
    set_common(&mut response, &cid, presented);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
    Ok(response)
}

fn set_common(response: &mut Response, cid: &Cid, presented: &Presented) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(presented.content_type),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(presented.cache_control),
    );
    if let Ok(tag) = HeaderValue::from_str(&etag(cid)) {
        headers.insert(header::ETAG, tag);
    }
    if let Ok(root) = HeaderValue::from_str(&cid.to_string()) {
        headers.insert("x-ipfs-roots", root);
    }
    if let Some(d) = presented
        .disposition
        .as_deref()
        .and_then(|d| HeaderValue::from_str(d).ok())
    {
        headers.insert(header::CONTENT_DISPOSITION, d);
    }
    if presented.yanked {
        headers.insert("x-ipsr-yanked", HeaderValue::from_static("true"));
    }
}

/// How a finished fetch ended, as a request failure.
async fn finished(fetch: JoinHandle<Result<FetchReport, FetchError>>) -> Result<(), Failure> {
    match fetch.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ipsr_content::ContentError::Fetch(e).into()),
        Err(e) => Err(Failure::Internal(format!("download task: {e}"))),
    }
}

/// The `len` bytes of the answer, whose first chunk is `first` and whose
/// other chunks arrive on `rx` (the fetch sends only the bytes asked for).
/// Ends with an error (so the server cuts the connection short of
/// `Content-Length`) if the fetch fails, or if the bytes' SHA-256 is not
/// `sha256` (then the last chunk is withheld); stops the fetch once `len`
/// bytes are sent.
fn body(
    first: Bytes,
    rx: mpsc::Receiver<Bytes>,
    fetch: JoinHandle<Result<FetchReport, FetchError>>,
    len: u64,
    sha256: Option<[u8; 32]>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
    use sha2::Digest;
    struct State {
        pending: Option<Bytes>,
        rx: mpsc::Receiver<Bytes>,
        fetch: Option<JoinHandle<Result<FetchReport, FetchError>>>,
        left: u64,
        check: Option<([u8; 32], sha2::Sha256)>,
    }
    impl Drop for State {
        fn drop(&mut self) {
            if let Some(fetch) = self.fetch.take() {
                fetch.abort();
            }
        }
    }
    let state = State {
        pending: Some(first),
        rx,
        fetch: Some(fetch),
        left: len,
        check: sha256.map(|want| (want, sha2::Sha256::new())),
    };
    futures::stream::unfold(state, |mut s| async move {
        if s.left == 0 {
            return None;
        }
        let chunk = match s.pending.take() {
            Some(chunk) => chunk,
            None => match s.rx.recv().await {
                Some(chunk) => chunk,
                None => {
                    let why = match s.fetch.take() {
                        Some(fetch) => match finished(fetch).await {
                            Ok(()) => "the file ended early".to_owned(),
                            Err(e) => e.to_string(),
                        },
                        None => "the download stopped".to_owned(),
                    };
                    tracing::warn!(error = %why, "download cut short");
                    return Some((Err(std::io::Error::other(why)), s));
                }
            },
        };
        // Never more than promised, whatever the fetch sends.
        let take = (chunk.len() as u64).min(s.left) as usize;
        s.left -= take as u64;
        let chunk = chunk.slice(..take);
        if let Some((want, hasher)) = s.check.as_mut() {
            hasher.update(&chunk);
            if s.left == 0 && <[u8; 32]>::from(hasher.clone().finalize()) != *want {
                tracing::warn!("download cut short: the file's SHA-256 is not the index's");
                let why = "the file's SHA-256 is not the one its record states";
                return Some((Err(std::io::Error::other(why)), s));
            }
        }
        Some((Ok(chunk), s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        let cid: Cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
            .parse()
            .unwrap();
        let tag = etag(&cid);
        assert!(matches_etag(Some(&tag), &cid));
        assert!(matches_etag(Some(&format!("\"x\", W/{tag}")), &cid));
        assert!(matches_etag(Some("*"), &cid));
        assert!(!matches_etag(Some("\"other\""), &cid));
        assert!(!matches_etag(None, &cid));
    }
}
