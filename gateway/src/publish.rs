//! `POST /api/v1/publish` and `POST /api/v1/package/{author}/{package}`: a
//! signed record, verified before anything is stored, and, when this
//! gateway takes uploads from its author, the release's content, which must
//! import to the record's CID and size.
//!
//! Two body forms (`docs/gateway.md`):
//! * `application/octet-stream`: the signed record alone; its content must
//!   be in the swarm (the gateway pins it in the background).
//! * `multipart/form-data`: a `record` part first, then an optional
//!   `content` part with the file's bytes.

use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};
use ipsr_node::content::unixfs::Profile;
use ipsr_node::views::Published;
use ipsr_proto::{PackageKey, Record, SignedRecord, Verified};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{info, warn};
use warp::multipart::{FormData, Part};

use crate::Gateway;
use crate::error::Failure;

/// The largest `record` part (and `application/octet-stream` body): a signed
/// record and 1 KiB to spare, so a record just over its limit is refused by
/// the record rules (`too_large`) rather than by the HTTP layer.
pub(crate) const MAX_RECORD_BODY: usize = ipsr_proto::limits::MAX_RECORD_BYTES + 1024;

/// How long the background pin of a record-only publish may take.
const BACKGROUND_PIN: Duration = Duration::from_secs(600);

/// The answer to a publish.
#[derive(Debug, Serialize)]
pub(crate) struct PublishReply {
    #[serde(flatten)]
    pub(crate) published: Published,
    /// Whether content came with the record and was stored.
    pub(crate) content_uploaded: bool,
    /// Where to see and fetch it on this gateway.
    pub(crate) links: Links,
}

/// Paths on this gateway for a release.
#[derive(Debug, Serialize)]
pub(crate) struct Links {
    pub(crate) package: String,
    pub(crate) page: String,
    pub(crate) download: String,
}

/// A publish request's body.
#[derive(Debug)]
pub(crate) enum Body {
    /// The signed record alone.
    Record(Bytes),
    /// `record` and `content` parts.
    Form(FormData),
}

/// Handles a publish; `expected` is the package named by the path, if any.
pub(crate) async fn publish(
    g: Gateway,
    expected: Option<PackageKey>,
    body: Body,
) -> Result<PublishReply, Failure> {
    let (record, uploaded) = match body {
        Body::Record(bytes) => (verify(&bytes, expected.as_ref())?, false),
        Body::Form(form) => from_form(&g, expected.as_ref(), form).await?,
    };
    let payload = record.record().clone();
    let cid = payload.as_release().map(|r| *r.cid.cid());
    let stored = g.node().publish(record).await?;
    let key = payload.release_key();
    info!(%key, change = ?stored.applied.change, uploaded, "published through the gateway");
    if let Some(cid) = cid {
        let label = Some(key.to_string());
        if uploaded {
            g.node().pin(cid, label, Vec::new()).await?;
        } else {
            // Seed what is published here; a failure only costs a later
            // download a fetch from the swarm.
            let node = g.node().clone();
            tokio::spawn(async move {
                match tokio::time::timeout(BACKGROUND_PIN, node.pin(cid, label, Vec::new())).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => warn!(%cid, error = %e, "cannot pin published content"),
                    Err(_) => warn!(%cid, "pinning published content timed out"),
                }
            });
        }
    }
    let (author, package, version) = (key.author, &key.package, &key.version);
    Ok(PublishReply {
        published: Published::new(&stored, &payload),
        content_uploaded: uploaded,
        links: Links {
            package: format!("/api/v1/package/{author}/{package}/{version}"),
            page: format!("/p/{author}/{package}"),
            download: format!("/api/v1/download/{author}/{package}/{version}"),
        },
    })
}

/// Decodes and verifies a signed record, and checks it is about `expected`.
fn verify(bytes: &[u8], expected: Option<&PackageKey>) -> Result<SignedRecord<Verified>, Failure> {
    let record = SignedRecord::from_bytes(bytes)
        .and_then(SignedRecord::verify)
        .map_err(Failure::Verify)?;
    if let Some(expected) = expected {
        let got = record.record().package_key();
        if &got != expected {
            return Err(Failure::BadRequest(format!(
                "the record is about {got}, not {expected} as the path says"
            )));
        }
    }
    Ok(record)
}

async fn from_form(
    g: &Gateway,
    expected: Option<&PackageKey>,
    mut form: FormData,
) -> Result<(SignedRecord<Verified>, bool), Failure> {
    let part = next_part(&mut form)
        .await?
        .ok_or_else(|| Failure::BadRequest("the form has no `record` part".into()))?;
    if part.name() != "record" {
        return Err(Failure::BadRequest(format!(
            "the first part must be `record`, not `{}`",
            part.name()
        )));
    }
    let limit = MAX_RECORD_BODY as u64;
    let bytes = read_part(part, limit).await?;
    let record = verify(&bytes, expected)?;
    let Some(part) = next_part(&mut form).await? else {
        return Ok((record, false));
    };
    if part.name() != "content" {
        return Err(Failure::BadRequest(format!(
            "the part after `record` must be `content`, not `{}`",
            part.name()
        )));
    }
    let Record::Release(release) = record.record() else {
        return Err(Failure::BadRequest(
            "only a release record brings content".into(),
        ));
    };
    if !g.config().uploads.allows(&release.author) {
        return Err(Failure::UploadForbidden(format!(
            "this gateway does not take uploads from author {}; publish the record alone \
             with its content served by your node",
            release.author
        )));
    }
    let max = g.config().max_upload_bytes;
    if release.size > max {
        return Err(Failure::TooLarge { limit: max });
    }
    let profile = if release.cid.cid().version() == cid::Version::V0 {
        Profile::V0_2015
    } else {
        Profile::V1_2025
    };
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let import = g.node().import(rx, profile);
    let feed = async move {
        let mut stream = std::pin::pin!(part.stream());
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let mut chunk = chunk.map_err(|e| Failure::BadRequest(e.to_string()))?;
            total += chunk.remaining() as u64;
            if total > max {
                return Err(Failure::TooLarge { limit: max });
            }
            let bytes = chunk.copy_to_bytes(chunk.remaining());
            if tx.send(bytes).await.is_err() {
                break;
            }
        }
        Ok(())
    };
    let (imported, fed) = tokio::join!(import, feed);
    fed?;
    let imported = imported?;
    if imported.root != *release.cid.cid() || imported.size != release.size {
        return Err(Failure::ContentMismatch(format!(
            "the content imports to {} ({} bytes) but the record says {} ({} bytes)",
            imported.root, imported.size, release.cid, release.size
        )));
    }
    if next_part(&mut form).await?.is_some() {
        return Err(Failure::BadRequest(
            "nothing may follow the `content` part".into(),
        ));
    }
    Ok((record, true))
}

async fn next_part(form: &mut FormData) -> Result<Option<Part>, Failure> {
    form.next()
        .await
        .transpose()
        .map_err(|e| Failure::BadRequest(format!("bad multipart body: {e}")))
}

async fn read_part(part: Part, limit: u64) -> Result<Bytes, Failure> {
    read_limited(part.stream(), limit).await
}

/// Reads a body stream whole, refusing it past `limit` bytes.
pub(crate) async fn read_limited<S, B>(stream: S, limit: u64) -> Result<Bytes, Failure>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut out = Vec::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| Failure::BadRequest(e.to_string()))?;
        if (out.len() + chunk.remaining()) as u64 > limit {
            return Err(Failure::TooLarge { limit });
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
