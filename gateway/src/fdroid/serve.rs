//! The answers of `/fdroid/repo/...` and `/latest/{author}/{package}.apk`.

use bytes::Bytes;
use ipsr_proto::PackageKey;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::{ICON, current};
use crate::conditional::{Conditions, matches_tag};
use crate::download;
use crate::error::Failure;
use crate::state::Gateway;

/// `Cache-Control` of the index files: phones poll; the `ETag` makes a
/// poll of an unchanged index a 304.
const INDEX_CACHE: &str = "public, max-age=60";
/// `Cache-Control` of an APK by package and version code.
const APK_CACHE: &str = "public, max-age=3600";
/// `Cache-Control` of a package's latest APK.
const LATEST_CACHE: &str = "public, max-age=60";

/// `GET /fdroid/repo/{path}`.
pub(crate) async fn repo_file(
    g: &Gateway,
    path: &str,
    conditions: Conditions,
) -> Result<Response, Failure> {
    if g.fdroid().is_none() {
        return Err(Failure::NotFound(
            "this gateway serves no F-Droid repository".into(),
        ));
    }
    if path == super::index::REPO_ICON {
        return Ok(icon(&conditions));
    }
    let built = current(g).await?;
    if let Some((file, tag)) = built.files.get(path) {
        let kind = if path.ends_with(".jar") {
            "application/java-archive"
        } else {
            "application/json"
        };
        return Ok(bytes(file.clone(), tag, kind, INDEX_CACHE, &conditions));
    }
    if let Some((file, tag)) = built.diffs.get(path) {
        return Ok(bytes(
            file.clone(),
            tag,
            "application/json",
            INDEX_CACHE,
            &conditions,
        ));
    }
    if let Some((release, sha256)) = built.apks.get(path) {
        return download::apk(g, release, Some(*sha256), APK_CACHE, conditions).await;
    }
    if let Some(cid) = built.graphics.get(path) {
        return download::ipfs_file(g, *cid.cid(), conditions).await;
    }
    Err(Failure::NotFound(format!(
        "the F-Droid repository has no {path}"
    )))
}

/// The gateway's icon (a PNG): the repository's, and `GET /favicon.ico`.
pub(crate) fn icon(conditions: &Conditions) -> Response {
    bytes(
        Bytes::from_static(ICON),
        &super::etag(ICON),
        "image/png",
        "public, max-age=86400",
        conditions,
    )
}

/// `GET /latest/{author}/{package}.apk`: the package's newest release.
pub(crate) async fn latest(
    g: &Gateway,
    key: &PackageKey,
    conditions: Conditions,
) -> Result<Response, Failure> {
    let state = g.index().package(key).await?;
    let release = state
        .as_ref()
        .and_then(|s| s.newest())
        .and_then(|r| r.record().as_release())
        .ok_or_else(|| Failure::NotFound("the package has no release in force".into()))?;
    download::apk(g, release, release.sha256, LATEST_CACHE, conditions).await
}

/// A file held in memory, with its strong `ETag` and 304 for a matching
/// `If-None-Match`.
fn bytes(
    body: Bytes,
    tag: &str,
    content_type: &'static str,
    cache: &'static str,
    conditions: &Conditions,
) -> Response {
    let not_modified = matches_tag(conditions.if_none_match.as_deref(), tag);
    let mut response = if not_modified {
        let mut r = Response::default();
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(body.into())
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(tag) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, tag);
    }
    response
}
