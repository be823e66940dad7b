//! Which content a gateway keeps for a publish (`docs/gateway.md`, "Content
//! policy"): the upload policy decides for every way content can arrive.
//!
//! ```text
//!                      author may upload?  size ≤ --max-upload-mib?
//!  multipart + content ──── no: 403 ────────── no: 413 ──┐
//!  record alone ─────────── no: not pinned ─── no: not pinned
//!                                                        ▼
//!                 reserve the stated size within the blockstore limit and
//!                 the author's quota (507 blockstore_full / quota_exceeded,
//!                 or, for a record alone, not pinned with that code)
//!                                                        ▼
//!  upload:       import (must match the record's CID and size), pin
//!  record alone: fetch in the background, stopped as soon as the DAG is
//!                not of the stated size; pin
//! ```
//!
//! A record is stored and propagated whatever becomes of its content: it
//! is valid. Nothing is pinned for an author the gateway takes no uploads
//! from, also when the blocks happen to be here (a `GET /ipfs/` cached
//! them). Every pin is charged to the record's author.

use std::sync::Arc;
use std::time::Duration;

use cid::Cid;
use ipsr_content::blockstore::{BlockstoreError, Lease};
use ipsr_content::fetch::FetchError;
use ipsr_content::{ContentError, PinSpec};
use ipsr_proto::{Release, SignedRecord};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::error::Failure;
use crate::state::Gateway;

/// How long the background pin of a record-only publish may take.
const BACKGROUND_PIN: Duration = Duration::from_secs(600);

/// What became of a publish's content, in the answer (`pin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PinState {
    /// `pinned` (uploaded and pinned), `fetching` (being fetched and
    /// pinned in the background), `refused` (not kept here; see `code`),
    /// `none` (a record without content, e.g. a yank).
    pub(crate) status: &'static str,
    /// Why it was refused: `uploads_forbidden`, `too_large`,
    /// `quota_exceeded`, `blockstore_full` or `busy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<&'static str>,
    /// The same for humans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
}

impl PinState {
    pub(crate) fn status(status: &'static str) -> Self {
        Self {
            status,
            code: None,
            message: None,
        }
    }

    /// Whether the content is pinned on this gateway now.
    pub(crate) fn is_pinned(&self) -> bool {
        self.status == "pinned"
    }

    fn refused(g: &Gateway, release: &Release, failure: &Failure) -> Self {
        let (_, code) = failure.status_and_code();
        g.metrics().pin_refused(code);
        let (author, size) = (&release.author, release.size);
        let key = release_key(release);
        // Strangers' records are the everyday case of a gateway without
        // uploads; limits reached are news for the operator.
        if matches!(failure, Failure::UploadForbidden(_)) {
            debug!(%author, key, size, code, "not pinning the content of a published record");
        } else {
            info!(%author, key, size, code, reason = %failure, "not pinning the content of a published record");
        }
        Self {
            status: "refused",
            code: Some(code),
            message: Some(failure.to_string()),
        }
    }
}

/// What a pin of `release`'s content is: labelled with its key, charged
/// to its author within the gateway's per-author quota, of its stated size.
fn spec(g: &Gateway, release: &Release, size: Option<u64>) -> PinSpec {
    PinSpec {
        label: Some(release_key(release)),
        owner: Some(release.author.to_string()),
        size,
        quota: g.config().max_pinned_per_author,
    }
}

/// Whether content of `release` may be kept here at all: the author takes
/// uploads here and the stated size is within the upload limit.
fn allowed(g: &Gateway, release: &Release) -> Result<(), Failure> {
    if !g.config().uploads.allows(&release.author) {
        return Err(Failure::UploadForbidden(format!(
            "this gateway does not take content from author {}; the record is \
             published, and its content is served from the author's nodes",
            release.author
        )));
    }
    let max = g.config().max_upload_bytes;
    if release.size > max {
        return Err(Failure::TooLarge { limit: max });
    }
    Ok(())
}

/// Before an upload's content is read: refuses it (403, 413, 507) unless
/// the policy lets it in, else reserves its bytes. The blocks imported
/// under the lease are not evicted before the pin.
pub(crate) fn admit_upload(g: &Gateway, release: &Release) -> Result<Arc<Lease>, Failure> {
    let admitted = allowed(g, release).and_then(|()| {
        g.node()
            .content()
            .reserve(&spec(g, release, Some(release.size)))
            .map_err(Failure::from)
    });
    if let Err(failure) = &admitted {
        PinState::refused(g, release, failure);
    }
    admitted
}

/// After the record is stored: pins its content as the policy says.
/// `upload` is the lease of content uploaded with it (already checked
/// against the record); without one, the content is fetched in the
/// background when the policy lets it in.
pub(crate) async fn pin_content(
    g: &Gateway,
    record: &SignedRecord,
    upload: Option<Arc<Lease>>,
) -> Result<PinState, Failure> {
    let Some(release) = record.record().as_release() else {
        return Ok(PinState::status("none"));
    };
    let cid = *release.cid.cid();
    let state = match upload {
        Some(lease) => {
            let label = Some(release_key(release));
            g.node()
                .content()
                .pin_leased(cid, label, Vec::new(), lease)
                .await?;
            PinState::status("pinned")
        }
        None => match start_background(g, release, cid) {
            Ok(()) => PinState::status("fetching"),
            Err(failure) => return Ok(PinState::refused(g, release, &failure)),
        },
    };
    pin_media(g, release).await;
    Ok(state)
}

fn release_key(release: &Release) -> String {
    format!("{}/{}@{}", release.author, release.package, release.version)
}

/// Reserves the record's stated size and starts fetching and pinning it,
/// or says why not.
fn start_background(g: &Gateway, release: &Release, cid: Cid) -> Result<(), Failure> {
    allowed(g, release)?;
    let Ok(slot) = g.background_pins().clone().try_acquire_owned() else {
        return Err(Failure::Busy);
    };
    let spec = spec(g, release, Some(release.size));
    let lease = g.node().content().reserve(&spec)?;
    let (gateway, label) = (g.clone(), spec.label);
    let author = release.author;
    tokio::spawn(async move {
        let _slot = slot;
        let content = gateway.node().content();
        let pinned = tokio::time::timeout(
            BACKGROUND_PIN,
            content.pin_leased(cid, label, Vec::new(), lease),
        )
        .await;
        let failed = match pinned {
            Ok(Ok(report)) => {
                debug!(%cid, %author, fetched = report.fetched, "pinned published content");
                return;
            }
            Ok(Err(
                e
                @ ContentError::Fetch(FetchError::WrongSize { .. } | FetchError::Oversized { .. }),
            )) => {
                warn!(%cid, %author, error = %e, "published content is not of its stated size; not pinned");
                "content_mismatch"
            }
            Ok(Err(e @ ContentError::Store(BlockstoreError::QuotaExceeded { .. }))) => {
                warn!(%cid, %author, error = %e, "not pinning published content");
                "quota_exceeded"
            }
            Ok(Err(e @ ContentError::Store(BlockstoreError::Full { .. }))) => {
                warn!(%cid, %author, error = %e, "not pinning published content");
                "blockstore_full"
            }
            Ok(Err(e)) => {
                warn!(%cid, %author, error = %e, "cannot pin published content");
                "unavailable"
            }
            Err(_) => {
                warn!(%cid, %author, "pinning published content timed out");
                "unavailable"
            }
        };
        gateway.metrics().pin_refused(failed);
    });
    Ok(())
}

/// Pins the release's icon and screenshots when their blocks are here
/// (charged to the author); fetches nothing.
async fn pin_media(g: &Gateway, release: &Release) {
    if allowed(g, release).is_err() {
        return;
    }
    let spec = spec(g, release, None);
    let media = release
        .metadata
        .icon
        .iter()
        .chain(release.metadata.screenshots.iter());
    for cid in media.map(|c| *c.cid()) {
        match g.node().content().pin_if_complete(cid, &spec).await {
            Ok(true) => debug!(%cid, "pinned published media"),
            Ok(false) => {}
            Err(e) => debug!(%cid, error = %e, "not pinning published media"),
        }
    }
}
