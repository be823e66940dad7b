//! The JSON bodies of the API (`docs/node-api.md`). Authors, package names,
//! versions and CIDs are written in their canonical text forms; signed
//! records in standard, padded base64 of their envelope bytes.

use std::cmp::Ordering;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipsr_proto::{
    AuthorId, Change, ContentId, Metadata, PackageName, PackageState, Platform, Record,
    ReleaseState, SignedRecord, Version,
};
use serde::Serialize;

use crate::{Stats, Stored};

/// An error answer.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// The answer to `POST /v1/records`.
#[derive(Debug, Serialize)]
pub(crate) struct Published {
    id: String,
    change: &'static str,
    position: Option<u64>,
    author: AuthorId,
    package: PackageName,
    version: Version,
}

impl Published {
    pub(crate) fn new(stored: &Stored, record: &Record) -> Self {
        let change = match stored.applied.change {
            Change::New => "new",
            Change::Replaced { .. } => "replaced",
            Change::Conflicting => "conflicting",
            Change::Duplicate => "duplicate",
            Change::Stale => "stale",
        };
        Self {
            id: stored.id.to_string(),
            change,
            position: stored.position,
            author: *record.author(),
            package: record.package().clone(),
            version: record.version().clone(),
        }
    }
}

/// One version of a package, as listed by `GET /v1/packages/{a}/{p}`.
#[derive(Debug, Serialize)]
pub(crate) struct VersionEntry {
    version: Version,
    version_code: u64,
    cid: ContentId,
    size: u64,
    file_name: String,
    platform: Platform,
    created_at: u64,
    seq: u64,
    yanked: bool,
    yank_reason: Option<String>,
    conflicting_cids: Vec<ContentId>,
    equivocated: bool,
    record_id: String,
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

    fn entry(&self) -> VersionEntry {
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
        }
    }
}

/// The answer to `GET /v1/packages/{author}/{package}`.
#[derive(Debug, Serialize)]
pub(crate) struct Package {
    author: AuthorId,
    package: PackageName,
    newest: Option<Version>,
    versions: Vec<VersionEntry>,
    metadata: Metadata,
}

impl Package {
    /// `None` when no version has a release record.
    pub(crate) fn new(state: &PackageState) -> Option<Self> {
        let mut listed: Vec<Listed<'_>> = state.releases().filter_map(Listed::of).collect();
        listed.sort_by(|a, b| b.cmp(a));
        let newest = state.newest();
        let shown = newest
            .and_then(|n| listed.iter().find(|l| l.record.id() == n.id()))
            .or(listed.first())?;
        Some(Self {
            author: state.key().author,
            package: state.key().package.clone(),
            newest: newest.map(|n| n.record().version().clone()),
            metadata: shown.release.metadata.clone(),
            versions: listed.iter().map(Listed::entry).collect(),
        })
    }
}

/// The answer to `GET /v1/packages/{author}/{package}/{version}`.
#[derive(Debug, Serialize)]
pub(crate) struct ReleaseView {
    author: AuthorId,
    package: PackageName,
    #[serde(flatten)]
    entry: VersionEntry,
    metadata: Metadata,
    record: String,
    yank_record: Option<String>,
}

impl ReleaseView {
    /// `None` when the release slot is empty (only a yank is held).
    pub(crate) fn new(state: &ReleaseState) -> Option<Self> {
        let listed = Listed::of(state)?;
        Some(Self {
            author: state.key().author,
            package: state.key().package.clone(),
            entry: listed.entry(),
            metadata: listed.release.metadata.clone(),
            record: base64(listed.record),
            yank_record: state.yank().map(base64),
        })
    }
}

/// The answer to `GET /v1/authors/{author}`.
#[derive(Debug, Serialize)]
pub(crate) struct Author {
    pub(crate) author: AuthorId,
    pub(crate) packages: Vec<PackageName>,
}

/// One entry of the log.
#[derive(Debug, Serialize)]
pub(crate) struct LogEntry {
    position: u64,
    id: String,
    record: String,
}

/// The answer to `GET /v1/log`.
#[derive(Debug, Serialize)]
pub(crate) struct Log {
    head: u64,
    entries: Vec<LogEntry>,
}

impl Log {
    pub(crate) fn new(head: u64, entries: &[(u64, SignedRecord)]) -> Self {
        let entries: Vec<LogEntry> = entries
            .iter()
            .map(|(position, record)| LogEntry {
                position: *position,
                id: record.id().to_string(),
                record: base64(record),
            })
            .collect();
        // The head is read after the entries, so it is at least the last one.
        let last = entries.last().map_or(0, |e| e.position);
        Self {
            head: head.max(last),
            entries,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The answer to `GET /v1/peers`.
#[derive(Debug, Serialize)]
pub(crate) struct Peers {
    pub(crate) peers: Vec<String>,
}

/// The answer to `GET /v1/status`.
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    pub(crate) peer_id: String,
    pub(crate) listen_addrs: Vec<String>,
    pub(crate) peers: usize,
    pub(crate) records: u64,
    pub(crate) releases: u64,
    pub(crate) log_head: u64,
    pub(crate) conflicts: u64,
}

impl Status {
    pub(crate) fn new(
        peer_id: String,
        listen_addrs: Vec<String>,
        peers: usize,
        stats: Stats,
    ) -> Self {
        Self {
            peer_id,
            listen_addrs,
            peers,
            records: stats.records,
            releases: stats.releases,
            log_head: stats.log_head,
            conflicts: stats.conflicts,
        }
    }
}

fn base64(record: &SignedRecord) -> String {
    STANDARD.encode(record.to_bytes())
}
