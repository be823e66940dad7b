//! The JSON bodies of the API (`docs/node-api.md`). Authors, package names,
//! versions and CIDs are written in their canonical text forms; signed
//! records in standard, padded base64 of their envelope bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipsr_proto::{AuthorId, PackageName, RecordId, Version};
use serde::Serialize;

use crate::search::Hit;
use crate::store::{LogPage, Stats};
pub(crate) use crate::views::{Package, Published, ReleaseView};

/// An error answer.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// The answer to `GET /v1/authors/{author}`.
#[derive(Debug, Serialize)]
pub(crate) struct Author {
    pub(crate) author: AuthorId,
    pub(crate) packages: Vec<PackageName>,
    pub(crate) identity: crate::views::IdentityView,
}

/// One result of `GET /v1/search`.
#[derive(Debug, Serialize)]
pub(crate) struct SearchResult {
    author: AuthorId,
    package: PackageName,
    newest: Option<Version>,
    title: String,
    score: u32,
}

/// The answer to `GET /v1/search`.
#[derive(Debug, Serialize)]
pub(crate) struct SearchResults {
    packages: Vec<SearchResult>,
}

impl SearchResults {
    pub(crate) fn new(hits: Vec<Hit>) -> Self {
        Self {
            packages: hits
                .into_iter()
                .map(|h| SearchResult {
                    author: h.package.author,
                    package: h.package.package,
                    newest: h.newest,
                    title: h.title,
                    score: h.score,
                })
                .collect(),
        }
    }
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
    next: u64,
    entries: Vec<LogEntry>,
}

impl Log {
    /// From a page of stored envelope bytes (checked when they were stored).
    pub(crate) fn new(page: &LogPage<Vec<u8>>) -> Self {
        let entries: Vec<LogEntry> = page
            .entries
            .iter()
            .map(|(position, bytes)| LogEntry {
                position: *position,
                id: RecordId::of(bytes).to_string(),
                record: STANDARD.encode(bytes),
            })
            .collect();
        Self {
            head: page.head,
            next: page.next,
            entries,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where the next read starts: a long-poll that found nothing waits
    /// for the head to pass it.
    pub(crate) fn next(&self) -> u64 {
        self.next
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
    pub(crate) dht_peers: usize,
    pub(crate) records: u64,
    pub(crate) releases: u64,
    pub(crate) log_head: u64,
    pub(crate) log_entries: u64,
    pub(crate) conflicts: u64,
}

impl Status {
    pub(crate) fn new(
        peer_id: String,
        listen_addrs: Vec<String>,
        (peers, dht_peers): (usize, usize),
        stats: Stats,
    ) -> Self {
        Self {
            peer_id,
            listen_addrs,
            peers,
            dht_peers,
            records: stats.records,
            releases: stats.releases,
            log_head: stats.log_head,
            log_entries: stats.log_entries,
            conflicts: stats.conflicts,
        }
    }
}
