//! The pure mapping from a package's state to its keys: every value the
//! keyspace holds for a package ([`Derived`]: release rows, records,
//! versions, yanked set, package document, entries outside its slot and the
//! content hash) follows from its [`PackageState`] alone, with no IO. This
//! is what makes writes converge (see the parent module).

use std::collections::{BTreeMap, BTreeSet};

use ipsr_proto::{PackageState, ReleaseState, SignedRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::{Names, search_keys};
use crate::index::{Counts, recent_entries, title};
use crate::search;

/// The saved form of one release, the value of a field of `rel:{…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ReleaseRow {
    pub(super) release: Option<String>,
    pub(super) release_equivocated: bool,
    pub(super) yank: Option<String>,
    pub(super) yank_equivocated: bool,
    pub(super) evidence: Vec<(String, String)>,
    yanked: bool,
    conflict: bool,
    version_code: Option<u64>,
    created_at: Option<u64>,
}

impl ReleaseRow {
    fn of(state: &ReleaseState) -> Self {
        let id = |r: Option<&SignedRecord>| r.map(|r| r.id().to_string());
        Self {
            release: id(state.release()),
            release_equivocated: state.is_release_equivocated(),
            yank: id(state.yank()),
            yank_equivocated: state.is_yank_equivocated(),
            evidence: state
                .evidence()
                .iter()
                .map(|(c, r)| (c.to_string(), r.id().to_string()))
                .collect(),
            yanked: state.is_yanked(),
            conflict: state.conflicting_cids().is_some() || state.is_equivocated(),
            version_code: state
                .release()
                .and_then(|r| r.record().as_release())
                .map(|r| r.version_code),
            created_at: state.current().map(|r| r.record().created_at()),
        }
    }

    pub(super) fn ids(&self) -> BTreeSet<&str> {
        self.release
            .iter()
            .chain(self.yank.iter())
            .chain(self.evidence.iter().map(|(_, id)| id))
            .map(String::as_str)
            .collect()
    }
}

/// An entry of a key outside the package's slot: (key suffix, member, score).
pub(super) type Global = (String, String, u64);

/// Everything the keyspace holds for one package, derived from its state.
#[derive(Debug, Default)]
pub(super) struct Derived {
    pub(super) rels: BTreeMap<String, String>,
    pub(super) recs: BTreeMap<String, Vec<u8>>,
    pub(super) vers: BTreeMap<String, u64>,
    pub(super) yanked: BTreeSet<String>,
    pub(super) globals: BTreeSet<Global>,
    pub(super) counts: Counts,
    pub(super) title: String,
    pub(super) newest: String,
    pub(super) hash: String,
}

impl Derived {
    pub(super) fn of(state: &PackageState, names: &Names) -> Self {
        let mut d = Self::default();
        let pk = state.key();
        let member = &names.member;
        for r in state.releases() {
            let version = r.key().version.to_string();
            let row = ReleaseRow::of(r);
            if let Some(code) = row.version_code {
                d.vers.insert(version.clone(), code);
            }
            if row.yanked {
                d.yanked.insert(version.clone());
            }
            d.rels.insert(
                version,
                serde_json::to_string(&row).expect("a row of strings, bools and numbers"),
            );
            for (id, rec) in r.records() {
                d.recs.insert(id.to_string(), rec.to_bytes());
            }
        }
        d.counts = Counts::of(state);
        d.title = title(state);
        d.newest = state
            .newest()
            .map(|r| r.record().version().to_string())
            .unwrap_or_default();
        d.globals.insert(("packages".into(), member.clone(), 0));
        d.globals.insert((
            format!("author:{}", names.author),
            pk.package.to_string(),
            0,
        ));
        for (word, weight) in search::whole_words(pk.package.as_str(), &d.title) {
            d.globals
                .insert((search_keys(&word).0, member.clone(), u64::from(weight)));
        }
        for (at, release, _) in recent_entries(state) {
            // `author/package@version`, as `ReleaseKey`'s text form.
            let entry = format!("{member}@{}", release.key().version);
            d.globals.insert(("recent".into(), entry, at));
        }
        let mut hasher = Sha256::new();
        for (version, row) in &d.rels {
            hasher.update(version.as_bytes());
            hasher.update([0]);
            hasher.update(row.as_bytes());
            hasher.update(b"\n");
        }
        d.hash = hex::encode(hasher.finalize());
        d
    }
}
