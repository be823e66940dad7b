//! JSON views of packages and releases, shared by the node's API
//! (`docs/node-api.md`) and the gateway's (`docs/gateway.md`), so both
//! describe a package in the same words. Authors, package names, versions
//! and CIDs are written in their canonical text forms; signed records in
//! standard, padded base64 of their envelope bytes.

use std::cmp::Ordering;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipsr_proto::{
    AuthorId, CertCheck, Change, ContentId, Metadata, PackageName, PackageState, Platform, Record,
    ReleaseState, SignedRecord, Version,
};
use serde::Serialize;

use crate::store::Stored;

/// The answer to `POST /v1/records`.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub id: String,
    pub change: &'static str,
    pub position: Option<u64>,
    /// `release`, `yank` or `identity`.
    pub kind: &'static str,
    pub author: AuthorId,
    /// The package and version of a release or yank.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<PackageName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
}

impl Published {
    /// The answer for a release or a yank.
    pub fn new(stored: &Stored, record: &Record) -> Self {
        Self {
            id: stored.id.to_string(),
            change: change_label(&stored.applied.change),
            position: stored.position,
            kind: match record {
                Record::Release(_) => "release",
                Record::Yank(_) => "yank",
            },
            author: *record.author(),
            package: Some(record.package().clone()),
            version: Some(record.version().clone()),
        }
    }

    /// The answer for an identity document.
    pub fn identity(stored: &Stored, author: AuthorId) -> Self {
        Self {
            id: stored.id.to_string(),
            change: change_label(&stored.applied.change),
            position: stored.position,
            kind: "identity",
            author,
            package: None,
            version: None,
        }
    }
}

fn change_label(change: &Change) -> &'static str {
    match change {
        Change::New => "new",
        Change::Replaced { .. } => "replaced",
        Change::Conflicting => "conflicting",
        Change::Duplicate => "duplicate",
        Change::Stale => "stale",
    }
}

/// An author's identity in force, as `GET /v1/authors/{author}` shows it
/// (`docs/node-api.md`).
#[derive(Debug, Clone, Serialize)]
pub struct IdentityView {
    /// The document in force; the implicit one (`seq` 0) when the author
    /// published none.
    pub document: ipsr_proto::Identity,
    /// Its identity id, `null` for the implicit one.
    pub identity_id: Option<String>,
    /// The keys that signed it.
    pub signed_by: Vec<AuthorId>,
    /// Its signed envelope, base64, `null` for the implicit one.
    pub record: Option<String>,
    /// Documents followed by more than one authorized successor (`null`
    /// stands for the implicit one): someone signed two. Pages show the
    /// identity as disputed.
    pub forks: Vec<Option<String>>,
    /// How many authorized documents the node holds.
    pub documents: usize,
    /// The signed documents from the author's first to the one in force,
    /// base64: what a client checks the document in force against.
    pub chain: Vec<String>,
}

impl IdentityView {
    pub fn new(state: &ipsr_proto::IdentityState) -> Self {
        let head = state.head();
        Self {
            document: state.identity(),
            identity_id: head.map(|d| d.identity_id().to_string()),
            signed_by: head
                .map(|d| d.approvals().iter().map(|a| a.key_id()).collect())
                .unwrap_or_default(),
            record: head.map(|d| STANDARD.encode(d.to_bytes())),
            forks: state
                .forks()
                .into_iter()
                .map(|f| f.map(|id| id.to_string()))
                .collect(),
            documents: state.docs().count(),
            chain: state
                .chain()
                .map(|d| STANDARD.encode(d.to_bytes()))
                .collect(),
        }
    }
}

/// One version of a package, as listed by `GET /v1/packages/{a}/{p}`.
#[derive(Debug, Clone, Serialize)]
pub struct VersionEntry {
    pub version: Version,
    pub version_code: u64,
    pub cid: ContentId,
    pub size: u64,
    /// SHA-256 of the file's bytes (hex), when the record states it.
    pub sha256: Option<String>,
    pub file_name: String,
    pub platform: Platform,
    pub created_at: u64,
    pub seq: u64,
    pub yanked: bool,
    pub yank_reason: Option<String>,
    pub conflicting_cids: Vec<ContentId>,
    pub equivocated: bool,
    pub record_id: String,
    /// The APK signing certificate and how it follows the package's earlier
    /// releases (`docs/records.md`, rule 9); `null` when the release names
    /// none.
    pub certificate: Option<CertificateView>,
    /// What changed in this version (the record's `metadata.changelog`),
    /// `""` when it says nothing.
    pub changelog: String,
}

/// A release's APK certificate: `{"sha256": HEX, "check": "same"}`, with
/// `from` (`rotated`, `allowed`) or `expected` (`changed`) beside `check`.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateView {
    pub sha256: String,
    #[serde(flatten)]
    pub check: CertCheck,
}

/// A release state with a release record in its release slot (a yank may
/// arrive before its release; such a version is not listed).
struct Listed<'a> {
    state: &'a ReleaseState,
    record: &'a SignedRecord,
    release: &'a ipsr_proto::Release,
}

impl<'a> Listed<'a> {
    fn of(state: &'a ReleaseState) -> Option<Self> {
        let record = state.release()?;
        let release = record.record().as_release()?;
        Some(Self {
            state,
            record,
            release,
        })
    }

    /// Rule 7's order without the yank filter: `version_code`, then the
    /// version, then the record order.
    fn cmp(&self, other: &Self) -> Ordering {
        self.release
            .version_code
            .cmp(&other.release.version_code)
            .then_with(|| self.release.version.cmp(&other.release.version))
            .then_with(|| self.record.order(other.record))
    }

    /// The listed form; `check` is the release's under rule 9, when it
    /// names a certificate.
    fn entry(&self, check: Option<CertCheck>) -> VersionEntry {
        let r = self.release;
        let yanked = self.state.is_yanked();
        let yank_reason = match self.state.yank().map(SignedRecord::record) {
            Some(Record::Yank(y)) if yanked => Some(y.reason.clone()),
            _ => None,
        };
        VersionEntry {
            version: r.version.clone(),
            version_code: r.version_code,
            cid: r.cid,
            size: r.size,
            sha256: r.sha256.map(hex::encode),
            file_name: r.file_name.clone(),
            platform: r.platform.clone(),
            created_at: r.created_at,
            seq: r.seq,
            yanked,
            yank_reason,
            conflicting_cids: self
                .state
                .conflicting_cids()
                .map(|c| c.into_iter().collect())
                .unwrap_or_default(),
            equivocated: self.state.is_equivocated(),
            record_id: self.record.id().to_string(),
            certificate: r
                .metadata
                .signing_cert_sha256
                .zip(check)
                .map(|(cert, check)| CertificateView {
                    sha256: hex::encode(cert),
                    check,
                }),
            changelog: r.metadata.changelog.clone(),
        }
    }
}

/// The answer to `GET /v1/packages/{author}/{package}`.
#[derive(Debug, Clone, Serialize)]
pub struct Package {
    pub author: AuthorId,
    pub package: PackageName,
    pub newest: Option<Version>,
    pub versions: Vec<VersionEntry>,
    pub metadata: Metadata,
}

impl Package {
    /// `None` when no version has a release record.
    pub fn new(state: &PackageState) -> Option<Self> {
        let mut listed: Vec<Listed<'_>> = state.releases().filter_map(Listed::of).collect();
        listed.sort_by(|a, b| b.cmp(a));
        let newest = state.newest();
        let checks = state.cert_checks();
        let shown = newest
            .and_then(|n| listed.iter().find(|l| l.record.id() == n.id()))
            .or(listed.first())?;
        Some(Self {
            author: state.key().author,
            package: state.key().package.clone(),
            newest: newest.map(|n| n.record().version().clone()),
            metadata: shown.release.metadata.clone(),
            versions: listed
                .iter()
                .map(|l| l.entry(checks.get(&l.release.version).copied()))
                .collect(),
        })
    }
}

/// The answer to `GET /v1/packages/{author}/{package}/{version}`.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseView {
    pub author: AuthorId,
    pub package: PackageName,
    #[serde(flatten)]
    pub entry: VersionEntry,
    pub metadata: Metadata,
    pub record: String,
    pub yank_record: Option<String>,
}

impl ReleaseView {
    /// `None` when the release slot is empty (only a yank is held).
    /// `check` is the release's under rule 9 ([`cert_check`]).
    pub fn new(state: &ReleaseState, check: Option<CertCheck>) -> Option<Self> {
        let listed = Listed::of(state)?;
        Some(Self {
            author: state.key().author,
            package: state.key().package.clone(),
            entry: listed.entry(check),
            metadata: listed.release.metadata.clone(),
            record: base64(listed.record),
            yank_record: state.yank().map(base64),
        })
    }
}

/// Whether a release's record in force names an APK certificate, so that
/// [`cert_check`] needs its package.
pub fn names_certificate(state: &ReleaseState) -> bool {
    state
        .release()
        .and_then(|r| r.record().as_release())
        .is_some_and(|r| r.metadata.signing_cert_sha256.is_some())
}

/// The rule 9 check of `version` in its package's state.
pub fn cert_check(package: Option<&PackageState>, version: &Version) -> Option<CertCheck> {
    package?.cert_checks().get(version).copied()
}

fn base64(record: &SignedRecord) -> String {
    STANDARD.encode(record.to_bytes())
}
