//! What a package contributes to listings, derived from its state alone:
//! the releases that appear in "recent" and the counts that add up to the
//! totals. The store's catalog (`store/catalog.rs`) and the Redis index of
//! `ipsr-indexer` derive them alike, so both answer the same.

use ipsr_proto::{PackageState, ReleaseState, SignedRecord};
use serde::{Deserialize, Serialize};

/// The releases of a package that appear in "recent": not yanked, with a
/// release record; each with its record's `created_at`.
pub fn recent_entries(state: &PackageState) -> Vec<(u64, &ReleaseState, &SignedRecord)> {
    state
        .releases()
        .filter(|r| !r.is_yanked())
        .filter_map(|r| r.release().map(|rec| (rec.record().created_at(), r, rec)))
        .collect()
}

/// Per-package counts; their sums over all packages are [`Totals`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Releases (versions) of the package.
    pub releases: u64,
    /// Records held for them: release slots, yank slots, conflict evidence.
    pub records: u64,
    /// Releases currently yanked.
    pub yanked: u64,
    /// Releases with a CID conflict or an equivocation.
    pub conflicts: u64,
}

impl Counts {
    /// The counts of one package.
    pub fn of(state: &PackageState) -> Self {
        let mut c = Self::default();
        for r in state.releases() {
            c.releases += 1;
            c.records += r.records().len() as u64;
            c.yanked += u64::from(r.is_yanked());
            c.conflicts += u64::from(r.conflicting_cids().is_some() || r.is_equivocated());
        }
        c
    }
}

/// Totals over every package.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Packages (author + package) known.
    pub packages: u64,
    /// Releases (author + package + version) known.
    pub releases: u64,
    /// Records held: release slots, yank slots and conflict evidence.
    pub records: u64,
    /// Releases currently yanked.
    pub yanked: u64,
    /// Releases with a CID conflict or an equivocation.
    pub conflicts: u64,
}

impl Totals {
    /// Counts one more package.
    pub fn add(&mut self, c: &Counts) {
        self.packages += 1;
        self.releases += c.releases;
        self.records += c.records;
        self.yanked += c.yanked;
        self.conflicts += c.conflicts;
    }

    /// Takes back a package counted by [`add`](Self::add).
    pub fn remove(&mut self, c: &Counts) {
        self.packages = self.packages.saturating_sub(1);
        self.releases = self.releases.saturating_sub(c.releases);
        self.records = self.records.saturating_sub(c.records);
        self.yanked = self.yanked.saturating_sub(c.yanked);
        self.conflicts = self.conflicts.saturating_sub(c.conflicts);
    }
}
