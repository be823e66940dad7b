//! The ordering rules under an identity (`docs/records.md`, section 9):
//! each signer key keeps its own [`ReleaseState`] of a release, and the
//! identity in force decides which of their records count.
//!
//! A record is folded into the state of every signer that signed it (after
//! dropping the signatures of keys that are not signers), so a thief holding
//! one key moves only that key's state: what the other signers signed stays.
//! A record counts when it is *complete*: signed by at least the threshold
//! of signers. The release in force is the greatest complete release record
//! among the signers' states, and the same for yanks. When the identity
//! changes, the states of keys no longer signers are dropped, with every
//! signature they made.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::identity::Authority;
use crate::order::{Change, ReleaseParts, ReleaseState, Report};
use crate::{AuthorId, ContentId, ForeignRecord, Record, RecordId, ReleaseKey, SignedRecord};

/// What applying a record, or a new identity, changed in what is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// What the record did, as in one signer's state (section 6); over
    /// several signers, the most it did in any: `New` or `Replaced`, then
    /// `Conflicting`, `Duplicate`, `Stale`. `Stale` when unauthorized, and
    /// after a change of identity.
    pub change: Change,
    /// Records now held that were not (to store and pass on).
    pub added: Vec<SignedRecord>,
    /// Records no longer held (to delete).
    pub removed: Vec<RecordId>,
    /// What to report: conflicts and equivocations in a signer's state.
    pub reports: Vec<Report>,
    /// No signature of the record is by a signer of the identity in force:
    /// nothing is kept.
    pub unauthorized: bool,
}

impl Delta {
    /// Whether anything held changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// Everything a node holds about one release of an author with an identity:
/// one [`ReleaseState`] per signer key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedRelease {
    key: ReleaseKey,
    signers: BTreeMap<AuthorId, ReleaseState>,
}

impl AuthorizedRelease {
    /// An empty state for one release.
    pub fn new(key: ReleaseKey) -> Self {
        Self {
            key,
            signers: BTreeMap::new(),
        }
    }

    /// Rebuilds a state saved as its signers' states (see
    /// [`signers`](Self::signers)), checking that each belongs to `key`.
    pub fn from_signers(
        key: ReleaseKey,
        signers: impl IntoIterator<Item = (AuthorId, ReleaseState)>,
    ) -> Result<Self, ForeignRecord> {
        let signers: BTreeMap<_, _> = signers.into_iter().collect();
        if signers.values().any(|s| *s.key() != key) {
            return Err(ForeignRecord);
        }
        Ok(Self { key, signers })
    }

    /// Each signer key's state: what records carrying its signature made it.
    pub fn signers(&self) -> &BTreeMap<AuthorId, ReleaseState> {
        &self.signers
    }

    /// The release.
    pub fn key(&self) -> &ReleaseKey {
        &self.key
    }

    /// The state in force under `authority`, as one [`ReleaseState`]: the
    /// release and the yank in force in its slots, the complete records as
    /// conflict evidence (the greatest per CID), and each slot flagged when
    /// the signer state it comes from is. What readers of one release
    /// (pages, the newest release, the DHT) look at.
    pub fn resolve(&self, authority: &Authority) -> ReleaseState {
        let flagged = |record: Option<&SignedRecord>, yank: bool| {
            record.is_some_and(|r| {
                self.signers.values().any(|s| {
                    let (slot, flag) = match yank {
                        false => (s.release(), s.is_release_equivocated()),
                        true => (s.yank(), s.is_yank_equivocated()),
                    };
                    flag && slot.is_some_and(|held| held.record().seq() == r.record().seq())
                })
            })
        };
        let release = self.release(authority);
        let yank = self.yank(authority);
        let mut evidence: BTreeMap<ContentId, SignedRecord> = BTreeMap::new();
        for (cid, r) in self
            .signers
            .iter()
            .filter(|(k, _)| authority.signers.contains(k))
            .flat_map(|(_, s)| s.evidence().iter())
            .filter(|(_, r)| authority.is_met(r.approvals()))
        {
            match evidence.get(cid) {
                Some(held) if held.order(r) != Ordering::Less => {}
                _ => {
                    evidence.insert(*cid, r.clone());
                }
            }
        }
        let parts = ReleaseParts {
            release: release.cloned(),
            release_equivocated: flagged(release, false),
            yank: yank.cloned(),
            yank_equivocated: flagged(yank, true),
            evidence,
        };
        // Every record comes from a state of this release, in its slot.
        ReleaseState::from_parts(self.key.clone(), parts)
            .unwrap_or_else(|_| ReleaseState::new(self.key.clone()))
    }

    /// Folds one verified record into the state under `authority`.
    pub fn apply(
        &mut self,
        record: SignedRecord,
        authority: &Authority,
    ) -> Result<Delta, ForeignRecord> {
        if record.release_key() != self.key {
            return Err(ForeignRecord);
        }
        let Some(record) = record.retain(|k| authority.is_signer(k)) else {
            return Ok(Delta {
                change: Change::Stale,
                added: Vec::new(),
                removed: Vec::new(),
                reports: Vec::new(),
                unauthorized: true,
            });
        };
        let before = self.held();
        let mut reports = Vec::new();
        let mut change = Change::Stale;
        for approval in record.approvals() {
            let state = self
                .signers
                .entry(approval.key_id())
                .or_insert_with(|| ReleaseState::new(self.key.clone()));
            let applied = state.apply(record.clone())?;
            if rank(&applied.change) > rank(&change) {
                change = applied.change;
            }
            for report in applied.reports {
                if !reports.contains(&report) {
                    reports.push(report);
                }
            }
        }
        Ok(self.delta(before, change, reports))
    }

    /// Looks at the state again under a new identity: the states of keys
    /// that are no longer signers go, and the signatures of such keys are
    /// dropped from every record kept.
    pub fn restrict(&mut self, authority: &Authority) -> Delta {
        let before = self.held();
        let key = self.key.clone();
        self.signers.retain(|k, _| authority.signers.contains(k));
        for state in self.signers.values_mut() {
            let strip =
                |r: Option<SignedRecord>| r.and_then(|r| r.retain(|k| authority.is_signer(k)));
            let mut parts = state.clone().into_parts();
            parts.release = strip(parts.release);
            parts.yank = strip(parts.yank);
            parts.evidence = parts
                .evidence
                .into_iter()
                .filter_map(|(cid, r)| strip(Some(r)).map(|r| (cid, r)))
                .collect();
            // Dropping signatures changes no payload, so every record stays
            // in its slot.
            if let Ok(stripped) = ReleaseState::from_parts(key.clone(), parts) {
                *state = stripped;
            }
        }
        self.delta(before, Change::Stale, Vec::new())
    }

    fn held(&self) -> BTreeMap<RecordId, SignedRecord> {
        self.signers
            .values()
            .flat_map(|s| s.records().into_values().cloned())
            .map(|r| (r.id(), r))
            .collect()
    }

    fn delta(
        &self,
        before: BTreeMap<RecordId, SignedRecord>,
        change: Change,
        reports: Vec<Report>,
    ) -> Delta {
        let after = self.held();
        Delta {
            change,
            added: after
                .iter()
                .filter(|(id, _)| !before.contains_key(id))
                .map(|(_, r)| r.clone())
                .collect(),
            removed: before
                .keys()
                .filter(|id| !after.contains_key(id))
                .copied()
                .collect(),
            reports,
            unauthorized: false,
        }
    }

    /// Every record held, in every signer's state, by id: what a node stores
    /// and reconciles with its peers.
    pub fn records(&self) -> BTreeMap<RecordId, SignedRecord> {
        self.held()
    }

    /// The greatest complete release record: the release in force (also
    /// when yanked).
    pub fn release(&self, authority: &Authority) -> Option<&SignedRecord> {
        self.greatest(authority, |s| s.release(), true)
    }

    /// The greatest complete yank.
    pub fn yank(&self, authority: &Authority) -> Option<&SignedRecord> {
        self.greatest(authority, |s| s.yank(), true)
    }

    /// The greatest release record still short of signatures, when it is
    /// above the one in force: shown as "1 of 2 signed", served by no one.
    pub fn pending(&self, authority: &Authority) -> Option<&SignedRecord> {
        let pending = self.greatest(authority, |s| s.release(), false)?;
        match self.release(authority) {
            Some(held) if held.order(pending) != Ordering::Less => None,
            _ => Some(pending),
        }
    }

    /// The record in force: the greater of the release and the yank.
    pub fn current(&self, authority: &Authority) -> Option<&SignedRecord> {
        match (self.release(authority), self.yank(authority)) {
            (Some(r), Some(y)) => Some(if y.order(r) == Ordering::Greater {
                y
            } else {
                r
            }),
            (r, y) => r.or(y),
        }
    }

    /// Whether the release is retracted: the record in force is a yank.
    pub fn is_yanked(&self, authority: &Authority) -> bool {
        matches!(
            self.current(authority).map(SignedRecord::record),
            Some(Record::Yank(_))
        )
    }

    /// The CIDs of complete release records seen for the version, when
    /// there is more than one (a conflict).
    pub fn conflicting_cids(&self, authority: &Authority) -> Option<BTreeSet<ContentId>> {
        let cids: BTreeSet<_> = self
            .signers
            .values()
            .flat_map(|s| s.evidence().iter())
            .filter(|(_, r)| authority.is_met(r.approvals()))
            .map(|(cid, _)| *cid)
            .collect();
        (cids.len() > 1).then_some(cids)
    }

    /// The greatest record of one slot, among those that are complete
    /// (`complete`) or short of signatures (`!complete`).
    fn greatest<'a>(
        &'a self,
        authority: &Authority,
        slot: impl Fn(&'a ReleaseState) -> Option<&'a SignedRecord>,
        complete: bool,
    ) -> Option<&'a SignedRecord> {
        self.signers
            .iter()
            .filter(|(k, _)| authority.signers.contains(k))
            .filter_map(|(_, s)| slot(s))
            .filter(|r| authority.is_met(r.approvals()) == complete)
            .max_by(|a, b| a.order(b))
    }
}

/// How much a change did, to combine the changes in several signer states.
fn rank(change: &Change) -> u8 {
    match change {
        Change::Stale => 0,
        Change::Duplicate => 1,
        Change::Conflicting => 2,
        Change::New | Change::Replaced { .. } => 3,
    }
}

/// Rule 7 (the newest release) over the releases of one package under an
/// identity: among the ones in force that are not yanked and not of a
/// changed APK certificate (rule 9), the highest `version_code`, then the
/// higher version, then the record order.
pub fn newest_authorized<'a>(
    releases: impl IntoIterator<Item = &'a AuthorizedRelease>,
    authority: &Authority,
) -> Option<&'a SignedRecord> {
    crate::order::newest_in_force(
        releases
            .into_iter()
            .filter_map(|s| Some((s.release(authority)?, s.is_yanked(authority)))),
        &authority.apk_certs,
    )
}

/// Everything held about one package of an author with an identity: an
/// [`AuthorizedRelease`] per version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedPackage {
    key: crate::PackageKey,
    releases: BTreeMap<crate::Version, AuthorizedRelease>,
}

impl AuthorizedPackage {
    /// An empty state for one package.
    pub fn new(key: crate::PackageKey) -> Self {
        Self {
            key,
            releases: BTreeMap::new(),
        }
    }

    /// The package.
    pub fn key(&self) -> &crate::PackageKey {
        &self.key
    }

    /// Adds the saved state of one of the package's releases.
    pub fn insert(&mut self, state: AuthorizedRelease) -> Result<(), ForeignRecord> {
        if state.key().package_key() != self.key {
            return Err(ForeignRecord);
        }
        self.releases.insert(state.key().version.clone(), state);
        Ok(())
    }

    /// Folds one verified record into the state under `authority`.
    pub fn apply(
        &mut self,
        record: SignedRecord,
        authority: &Authority,
    ) -> Result<Delta, ForeignRecord> {
        if record.record().package_key() != self.key {
            return Err(ForeignRecord);
        }
        let key = record.release_key();
        self.releases
            .entry(key.version.clone())
            .or_insert_with(|| AuthorizedRelease::new(key))
            .apply(record, authority)
    }

    /// Every release looked at again under a new identity
    /// ([`AuthorizedRelease::restrict`]); releases left with nothing go.
    pub fn restrict(&mut self, authority: &Authority) {
        for release in self.releases.values_mut() {
            release.restrict(authority);
        }
        self.releases.retain(|_, r| !r.records().is_empty());
    }

    /// Every version's state.
    pub fn releases(&self) -> impl Iterator<Item = &AuthorizedRelease> {
        self.releases.values()
    }

    /// The package in force under `authority`, as a [`crate::PackageState`]
    /// of each release's [`AuthorizedRelease::resolve`].
    pub fn resolve(&self, authority: &Authority) -> crate::PackageState {
        let mut state =
            crate::PackageState::with_apk_certs(self.key.clone(), authority.apk_certs.clone());
        for release in self.releases.values() {
            // Each release belongs to this package (checked on insert).
            let _ = state.insert(release.resolve(authority));
        }
        state
    }
}
