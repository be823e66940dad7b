//! `POST /api/v1/publish` and `POST /api/v1/package/{author}/{package}`: a
//! signed record, verified before anything is stored, and, when this
//! gateway takes uploads from its author, the release's content, which must
//! import to the record's CID and size.
//!
//! Two body forms (`docs/gateway.md`):
//! * `application/octet-stream`: the signed record alone; its content must
//!   be in the swarm (the gateway pins it in the background).
//! * `multipart/form-data`: a `record` part first, then an optional
//!   `content` part with the file's bytes, or with the file's DAG as a
//!   CARv1 when the part's `Content-Type` is `application/vnd.ipld.car`
//!   (`docs/gateway-ipfs.md`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes};
use cid::Cid;
use futures::{Stream, StreamExt};
use ipsr_content::unixfs::Profile;
use ipsr_content::{Block, ContentError};
use ipsr_node::views::Published;
use ipsr_proto::{PackageKey, Record, Release, SignedRecord, Verified};
use iroh_car::CarReader;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;
use tracing::{debug, info, warn};
use warp::multipart::{FormData, Part};

use crate::error::Failure;
use crate::state::Gateway;

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
            g.node().content().pin(cid, label, Vec::new()).await?;
        } else {
            // Seed what is published here; a failure only costs a later
            // download a fetch from the swarm.
            let node = g.node().clone();
            tokio::spawn(async move {
                match tokio::time::timeout(
                    BACKGROUND_PIN,
                    node.content().pin(cid, label, Vec::new()),
                )
                .await
                {
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
    let is_car = part
        .content_type()
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(crate::ipfs::CAR_TYPE));
    if is_car {
        import_car(g, release, part, max).await?;
        return end_of_form(form, record).await;
    }
    let profile = if release.cid.cid().version() == cid::Version::V0 {
        Profile::V0_2015
    } else {
        Profile::V1_2025
    };
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let import = g.node().content().import(rx, profile);
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
    end_of_form(form, record).await
}

/// Checks that the `content` part was the last.
async fn end_of_form(
    mut form: FormData,
    record: SignedRecord<Verified>,
) -> Result<(SignedRecord<Verified>, bool), Failure> {
    if next_part(&mut form).await?.is_some() {
        return Err(Failure::BadRequest(
            "nothing may follow the `content` part".into(),
        ));
    }
    Ok((record, true))
}

/// Stores the blocks of a `content` part sent as a CARv1
/// (`application/vnd.ipld.car`), read as it streams in, at most `max`
/// bytes: every block must match its CID, the header's one root must be
/// the record's CID, and the blocks held afterwards must make the complete
/// DAG of a UnixFS file of the record's size. Nothing is pinned here: on a
/// refusal the stored blocks are left to the next `gc`.
async fn import_car(g: &Gateway, release: &Release, part: Part, max: u64) -> Result<(), Failure> {
    let over = Arc::new(AtomicBool::new(false));
    let flag = over.clone();
    let mut total = 0u64;
    let bytes = part.stream().map(move |chunk| {
        let mut chunk = chunk.map_err(std::io::Error::other)?;
        total += chunk.remaining() as u64;
        if total > max {
            flag.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("over the upload limit"));
        }
        Ok(chunk.copy_to_bytes(chunk.remaining()))
    });
    let reader = tokio::io::BufReader::new(StreamReader::new(bytes));
    // A read error of the body surfaces inside the CAR reader's error.
    let fail = |e: iroh_car::Error| {
        if over.load(Ordering::Relaxed) {
            Failure::TooLarge { limit: max }
        } else {
            Failure::BadRequest(format!("the content part is not a valid CARv1: {e}"))
        }
    };
    let mut car = CarReader::new(reader).await.map_err(fail)?;
    let root = *release.cid.cid();
    if car.header().roots() != [root] {
        let roots: Vec<String> = car.header().roots().iter().map(Cid::to_string).collect();
        return Err(Failure::ContentMismatch(format!(
            "the CAR's roots are [{}] but the record's CID is {root}",
            roots.join(", ")
        )));
    }
    let mut blocks = 0u64;
    while let Some((cid, data)) = car.next_block().await.map_err(fail)? {
        let block = Block::new(cid, data)
            .map_err(|e| Failure::ContentMismatch(format!("CAR block {cid}: {e}")))?;
        g.node().content().put_block(block).await?;
        blocks += 1;
    }
    let size = match g.node().content().check_local_file(root).await {
        Ok(size) => size,
        Err(ContentError::Missing(cid)) => {
            return Err(Failure::ContentMismatch(format!(
                "the CAR lacks block {cid} of the DAG under {root}"
            )));
        }
        Err(ContentError::Read(e)) => {
            return Err(Failure::ContentMismatch(format!(
                "the CAR's DAG is not a valid UnixFS file: {e}"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if size != release.size {
        return Err(Failure::ContentMismatch(format!(
            "the CAR holds a file of {size} bytes but the record says {} bytes",
            release.size
        )));
    }
    debug!(%root, blocks, size, "CAR upload stored");
    Ok(())
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
