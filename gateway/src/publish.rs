//! `POST /api/v1/publish` and `POST /api/v1/package/{author}/{package}`: a
//! signed record, verified before anything is stored, and, when this
//! gateway takes uploads from its author, the release's content, which must
//! import to the record's CID and size.
//!
//! Two body forms (`docs/gateway.md`):
//! * `application/octet-stream`: the signed record alone; its content must
//!   be in the swarm (the gateway pins it in the background when its policy
//!   takes content from the author, `policy.rs`).
//! * `multipart/form-data`: a `record` part first, then an optional
//!   `content` part with the file's bytes, or with the file's DAG as a
//!   CARv1 when the part's `Content-Type` is `application/vnd.ipld.car`
//!   (`docs/gateway-ipfs.md`).
//!
//! A form is read as it comes, part by part, under a bound that grows with
//! what the gateway accepts: the record part and the form around it first
//! ([`FORM_HEAD_LIMIT`], the body timeout); only once the record verified
//! and its author may upload, the content ([`GatewayConfig::max_upload_bytes`],
//! the upload timeout).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use ipsr_content::blockstore::Lease;
use ipsr_content::unixfs::Profile;
use ipsr_content::{Block, ContentError};
use ipsr_node::views::Published;
use ipsr_proto::{PackageKey, Record, Release, Signed, SignedRecord, Verified};
use iroh_car::CarReader;
use serde::Serialize;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;
use tracing::{debug, info};

use crate::body::Form;
use crate::config::GatewayConfig;
use crate::error::Failure;
use crate::multipart::MAX_HEAD;
use crate::policy::{self, PinState};
use crate::state::Gateway;

/// The largest `record` part (and `application/octet-stream` body): a signed
/// record and 1 KiB to spare, so a record just over its limit is refused by
/// the record rules (`too_large`) rather than by the HTTP layer.
pub(crate) const MAX_RECORD_BODY: usize = ipsr_proto::limits::MAX_RECORD_BYTES + 1024;

/// The most a form may send before its content part begins: the record
/// part, the headers of it and of the content part, and the delimiters.
pub(crate) const FORM_HEAD_LIMIT: u64 = MAX_RECORD_BODY as u64 + 2 * MAX_HEAD as u64 + 1024;

/// What a form may send after its content: the closing delimiter.
const FORM_TAIL_LIMIT: u64 = 1024;

/// The most a form may send in all with `config`: a larger
/// `Content-Length` is refused before reading. Whatever the upload policy:
/// a form with content the gateway does not take is read up to its content
/// part and answered 403, which says more than 413.
pub(crate) fn form_limit(config: &GatewayConfig) -> u64 {
    FORM_HEAD_LIMIT
        .saturating_add(config.max_upload_bytes)
        .saturating_add(FORM_TAIL_LIMIT)
}

/// The answer to a publish.
#[derive(Debug, Serialize)]
pub(crate) struct PublishReply {
    #[serde(flatten)]
    pub(crate) published: Published,
    /// Whether content came with the record and was stored.
    pub(crate) content_uploaded: bool,
    /// Whether the content is pinned on this gateway now.
    pub(crate) pinned: bool,
    /// What became of the content (`policy.rs`).
    pub(crate) pin: PinState,
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
    /// `record` and `content` parts, read as they come (boxed: the parser
    /// is large).
    Form(Box<Form>),
}

/// Handles a publish; `expected` is the package named by the path, if any.
pub(crate) async fn publish(
    g: Gateway,
    expected: Option<PackageKey>,
    body: Body,
) -> Result<PublishReply, Failure> {
    let (record, upload) = match body {
        Body::Record(bytes) => match verify_any(&bytes, expected.as_ref())? {
            Signed::Record(record) => (record, None),
            Signed::Identity(doc) => {
                // An identity document (docs/records.md, section 8): to the
                // node, which gossips it; no content, no release.
                let author = doc.identity().author;
                let stored = g.node().publish_signed(Signed::Identity(doc)).await?;
                info!(%author, change = ?stored.applied.change, "identity document published through the gateway");
                return Ok(PublishReply {
                    published: Published::identity(&stored, author),
                    content_uploaded: false,
                    pinned: false,
                    pin: PinState::status("none"),
                    links: Links {
                        package: format!("/api/v1/author/{author}"),
                        page: format!("/p/{author}"),
                        download: String::new(),
                    },
                });
            }
        },
        Body::Form(form) => from_form(&g, expected.as_ref(), *form).await?,
    };
    let uploaded = upload.is_some();
    let payload = record.record().clone();
    let stored = g.node().publish_record(record.clone()).await?;
    let key = payload.release_key();
    info!(%key, change = ?stored.applied.change, uploaded, "published through the gateway");
    let pin = policy::pin_content(&g, &record, upload).await?;
    let (author, package, version) = (key.author, &key.package, &key.version);
    Ok(PublishReply {
        published: Published::new(&stored, &payload),
        content_uploaded: uploaded,
        pinned: pin.is_pinned(),
        pin,
        links: Links {
            package: format!("/api/v1/package/{author}/{package}/{version}"),
            page: format!("/p/{author}/{package}"),
            download: format!("/api/v1/download/{author}/{package}/{version}"),
        },
    })
}

/// Decodes and verifies a signed record, and checks it is about `expected`.
/// A record or identity document alone: verified; a record must be about
/// the package the path names, if any, and a document comes without one.
fn verify_any(bytes: &[u8], expected: Option<&PackageKey>) -> Result<Signed, Failure> {
    let signed = SignedRecord::from_bytes(bytes)
        .and_then(SignedRecord::verify_any)
        .map_err(Failure::Verify)?;
    match signed {
        Signed::Record(record) => Ok(Signed::Record(check_package(record, expected)?)),
        Signed::Identity(_) if expected.is_some() => Err(Failure::BadRequest(
            "an identity document is posted to /api/v1/publish, not to a package's path".into(),
        )),
        identity => Ok(identity),
    }
}

fn verify(bytes: &[u8], expected: Option<&PackageKey>) -> Result<SignedRecord<Verified>, Failure> {
    let record = SignedRecord::from_bytes(bytes)
        .and_then(SignedRecord::verify)
        .map_err(Failure::Verify)?;
    check_package(record, expected)
}

/// `record` when it is about `expected` (or nothing is expected).
fn check_package(
    record: SignedRecord<Verified>,
    expected: Option<&PackageKey>,
) -> Result<SignedRecord<Verified>, Failure> {
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

/// The record of a form, and the lease of its content when it came with
/// one (checked against the record, not yet pinned).
type FromForm = (SignedRecord<Verified>, Option<Arc<Lease>>);

async fn from_form(
    g: &Gateway,
    expected: Option<&PackageKey>,
    mut form: Form,
) -> Result<FromForm, Failure> {
    let part = form
        .next_part()
        .await?
        .ok_or_else(|| Failure::BadRequest("the form has no `record` part".into()))?;
    if part.name != "record" {
        return Err(Failure::BadRequest(format!(
            "the first part must be `record`, not `{}`",
            part.name
        )));
    }
    let bytes = read_part(&mut form, MAX_RECORD_BODY as u64).await?;
    let record = verify(&bytes, expected)?;
    let Some(part) = form.next_part().await? else {
        return Ok((record, None));
    };
    if part.name != "content" {
        return Err(Failure::BadRequest(format!(
            "the part after `record` must be `content`, not `{}`",
            part.name
        )));
    }
    let Record::Release(release) = record.record() else {
        return Err(Failure::BadRequest(
            "only a release record brings content".into(),
        ));
    };
    let lease = policy::admit_upload(g, release)?;
    let max = g.config().max_upload_bytes;
    if release.size > max {
        return Err(Failure::TooLarge { limit: max });
    }
    // Now, and only now, the content may come.
    form.body().allow(
        max.saturating_add(FORM_TAIL_LIMIT),
        g.config().upload_timeout,
    );
    let is_car = part
        .content_type
        .as_deref()
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(crate::ipfs::CAR_TYPE));
    if is_car {
        import_car(g, release, &mut form, max, &lease).await?;
        return end_of_form(form, record, lease).await;
    }
    let profile = if release.cid.cid().version() == cid::Version::V0 {
        Profile::V0_2015
    } else {
        Profile::V1_2025
    };
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let import = g
        .node()
        .content()
        .import_into(rx, profile, Some(lease.clone()));
    let feed = async {
        let tx = tx;
        let mut total = 0u64;
        while let Some(bytes) = form.data().await? {
            total += bytes.len() as u64;
            if total > max {
                return Err(Failure::TooLarge { limit: max });
            }
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
    end_of_form(form, record, lease).await
}

/// Checks that the `content` part was the last.
async fn end_of_form(
    mut form: Form,
    record: SignedRecord<Verified>,
    lease: Arc<Lease>,
) -> Result<FromForm, Failure> {
    if form.next_part().await?.is_some() {
        return Err(Failure::BadRequest(
            "nothing may follow the `content` part".into(),
        ));
    }
    Ok((record, Some(lease)))
}

/// Stores the blocks of a `content` part sent as a CARv1
/// (`application/vnd.ipld.car`), read as it streams in, at most `max`
/// bytes: every block must match its CID, the header's one root must be
/// the record's CID, and the blocks held afterwards must make the complete
/// DAG of a UnixFS file of the record's size. Nothing is pinned here: on a
/// refusal the stored blocks are left to the next `gc`.
async fn import_car(
    g: &Gateway,
    release: &Release,
    form: &mut Form,
    max: u64,
    lease: &Arc<Lease>,
) -> Result<(), Failure> {
    let over = AtomicBool::new(false);
    let stored = {
        let over = &over;
        let mut total = 0u64;
        let bytes = form.data_stream().map(move |chunk| {
            let chunk = chunk?;
            total += chunk.len() as u64;
            if total > max {
                over.store(true, Ordering::Relaxed);
                return Err(std::io::Error::other("over the upload limit"));
            }
            Ok(chunk)
        });
        let reader = tokio::io::BufReader::new(StreamReader::new(Box::pin(bytes)));
        store_car(g, release, reader, lease).await
    };
    // A read error of the body surfaces inside the CAR reader's error.
    stored.map_err(|e| match e {
        CarFailure::Car(_) if over.load(Ordering::Relaxed) => Failure::TooLarge { limit: max },
        CarFailure::Car(e) => match form.error() {
            Some(body) => body.clone().into(),
            None => Failure::BadRequest(format!("the content part is not a valid CARv1: {e}")),
        },
        CarFailure::Refused(failure) => failure,
    })
}

/// Why a CAR was not stored.
enum CarFailure {
    /// It could not be read (a body failure shows here too).
    Car(iroh_car::Error),
    /// It was read and refused.
    Refused(Failure),
}

impl From<Failure> for CarFailure {
    fn from(failure: Failure) -> Self {
        Self::Refused(failure)
    }
}

async fn store_car<R>(
    g: &Gateway,
    release: &Release,
    reader: R,
    lease: &Arc<Lease>,
) -> Result<(), CarFailure>
where
    R: AsyncRead + Send + Unpin,
{
    let mut car = CarReader::new(reader).await.map_err(CarFailure::Car)?;
    let root = *release.cid.cid();
    if car.header().roots() != [root] {
        let roots: Vec<String> = car.header().roots().iter().map(Cid::to_string).collect();
        return Err(Failure::ContentMismatch(format!(
            "the CAR's roots are [{}] but the record's CID is {root}",
            roots.join(", ")
        ))
        .into());
    }
    let mut blocks = 0u64;
    while let Some((cid, data)) = car.next_block().await.map_err(CarFailure::Car)? {
        let block = Block::new(cid, data)
            .map_err(|e| Failure::ContentMismatch(format!("CAR block {cid}: {e}")))?;
        g.node()
            .content()
            .put_block_into(block, Some(lease.clone()))
            .await
            .map_err(Failure::from)?;
        blocks += 1;
    }
    let size = match g.node().content().check_local_file(root).await {
        Ok(size) => size,
        Err(ContentError::Missing(cid)) => {
            return Err(Failure::ContentMismatch(format!(
                "the CAR lacks block {cid} of the DAG under {root}"
            ))
            .into());
        }
        Err(ContentError::Read(e)) => {
            return Err(Failure::ContentMismatch(format!(
                "the CAR's DAG is not a valid UnixFS file: {e}"
            ))
            .into());
        }
        Err(e) => return Err(Failure::from(e).into()),
    };
    if size != release.size {
        return Err(Failure::ContentMismatch(format!(
            "the CAR holds a file of {size} bytes but the record says {} bytes",
            release.size
        ))
        .into());
    }
    debug!(%root, blocks, size, "CAR upload stored");
    Ok(())
}

/// The current part of `form` whole, refused past `limit` bytes.
async fn read_part(form: &mut Form, limit: u64) -> Result<Bytes, Failure> {
    let mut out = Vec::new();
    while let Some(chunk) = form.data().await? {
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(Failure::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.into())
}
