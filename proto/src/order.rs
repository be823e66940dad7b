//! The ordering and conflict rules (see the crate docs), as pure state
//! machines: a node folds every verified record it receives into a
//! [`PackageState`] and gets back what changed and what to report.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::continuity::{CertCheck, cert_checks};
use crate::limits::MAX_TRACKED_CIDS;
use crate::{ContentId, PackageKey, Record, RecordId, ReleaseKey, SignedRecord, Version};

/// What applying a record did to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The first record of its kind for this release: now held.
    New,
    /// Superseded the record held before: now held.
    Replaced {
        /// The record it replaced.
        previous: RecordId,
    },
    /// Not in a slot (a held record supersedes it), but it is now the
    /// greatest record seen for its CID: kept as conflict evidence and passed on.
    Conflicting,
    /// Already held.
    Duplicate,
    /// Superseded by a held record: ignore it.
    Stale,
}

impl Change {
    /// Whether the record now sits in a slot of the state.
    pub fn is_held(&self) -> bool {
        matches!(self, Self::New | Self::Replaced { .. })
    }

    /// Whether the record is now among [`ReleaseState::records`]: news to
    /// store and pass on.
    pub fn is_kept(&self) -> bool {
        matches!(self, Self::New | Self::Replaced { .. } | Self::Conflicting)
    }
}

/// Something suspicious about an author's records that must be visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A release record names a different CID than the one held for the same version.
    CidConflict {
        /// The release.
        key: ReleaseKey,
        /// The CID of the held release record.
        held: ContentId,
        /// The held release record.
        held_record: RecordId,
        /// The CID of the incoming record.
        incoming: ContentId,
        /// The incoming record.
        record: RecordId,
    },
    /// Two different records for one release with the same `seq`.
    Equivocation {
        /// The release.
        key: ReleaseKey,
        /// The shared `seq`.
        seq: u64,
        /// The two records.
        records: [RecordId; 2],
    },
}

/// What [`ReleaseState::apply`] and [`PackageState::apply`] return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// What happened to the state.
    pub change: Change,
    /// What to report (logs, metrics, the conflicts table).
    pub reports: Vec<Report>,
}

/// A record for another release or package than the state's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record belongs to another release or package")]
pub struct ForeignRecord;

/// The saved form of a [`ReleaseState`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseParts {
    /// The highest release record.
    pub release: Option<SignedRecord>,
    /// Whether another release record with its `seq` was seen.
    pub release_equivocated: bool,
    /// The highest yank record.
    pub yank: Option<SignedRecord>,
    /// Whether another yank record with its `seq` was seen.
    pub yank_equivocated: bool,
    /// Per CID seen for the release, the greatest release record naming it
    /// (for the [`MAX_TRACKED_CIDS`] smallest CIDs).
    pub evidence: BTreeMap<ContentId, SignedRecord>,
}

/// Everything a node holds about one release (author + package + version).
///
/// It keeps the highest [`Release`](crate::Release) record and the highest
/// [`Yank`](crate::Yank) record separately, so a yanked release keeps its
/// metadata, plus the CIDs seen for the version. The state after applying a
/// set of records is the same whatever their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseState {
    key: ReleaseKey,
    release: Option<SignedRecord>,
    release_equivocated: bool,
    yank: Option<SignedRecord>,
    yank_equivocated: bool,
    evidence: BTreeMap<ContentId, SignedRecord>,
}

impl ReleaseState {
    /// An empty state for one release.
    pub fn new(key: ReleaseKey) -> Self {
        Self {
            key,
            release: None,
            release_equivocated: false,
            yank: None,
            yank_equivocated: false,
            evidence: BTreeMap::new(),
        }
    }

    /// Rebuilds a state saved with [`into_parts`](Self::into_parts), checking
    /// that the records belong to `key` and sit in the right slots.
    pub fn from_parts(key: ReleaseKey, parts: ReleaseParts) -> Result<Self, ForeignRecord> {
        let slot_ok = |r: &Option<SignedRecord>, yank: bool| {
            r.as_ref().is_none_or(|r| {
                r.release_key() == key && matches!(r.record(), Record::Yank(_)) == yank
            })
        };
        let evidence_ok = parts.evidence.iter().all(|(cid, r)| {
            r.release_key() == key && r.record().as_release().is_some_and(|r| r.cid == *cid)
        });
        if !slot_ok(&parts.release, false) || !slot_ok(&parts.yank, true) || !evidence_ok {
            return Err(ForeignRecord);
        }
        Ok(Self {
            key,
            release: parts.release,
            release_equivocated: parts.release_equivocated,
            yank: parts.yank,
            yank_equivocated: parts.yank_equivocated,
            evidence: parts.evidence,
        })
    }

    /// The state's parts, to save it.
    pub fn into_parts(self) -> ReleaseParts {
        ReleaseParts {
            release: self.release,
            release_equivocated: self.release_equivocated,
            yank: self.yank,
            yank_equivocated: self.yank_equivocated,
            evidence: self.evidence,
        }
    }

    /// Whether another release record with the held one's `seq` was seen.
    pub fn is_release_equivocated(&self) -> bool {
        self.release_equivocated
    }

    /// Whether another yank record with the held one's `seq` was seen.
    pub fn is_yank_equivocated(&self) -> bool {
        self.yank_equivocated
    }

    /// Per CID seen for the release, the greatest release record naming it.
    pub fn evidence(&self) -> &BTreeMap<ContentId, SignedRecord> {
        &self.evidence
    }

    /// The release.
    pub fn key(&self) -> &ReleaseKey {
        &self.key
    }

    /// The highest release record, if any (also when yanked).
    pub fn release(&self) -> Option<&SignedRecord> {
        self.release.as_ref()
    }

    /// The highest yank record, if any (also when a later release overrides it).
    pub fn yank(&self) -> Option<&SignedRecord> {
        self.yank.as_ref()
    }

    /// The record that decides the state: the higher of the two.
    pub fn current(&self) -> Option<&SignedRecord> {
        match (&self.release, &self.yank) {
            (Some(r), Some(y)) => Some(if y.order(r) == Ordering::Greater {
                y
            } else {
                r
            }),
            (r, y) => r.as_ref().or(y.as_ref()),
        }
    }

    /// Whether the release is retracted: the highest record is a yank.
    pub fn is_yanked(&self) -> bool {
        matches!(
            self.current().map(SignedRecord::record),
            Some(Record::Yank(_))
        )
    }

    /// The CIDs seen for this version when there is more than one (a
    /// conflict), at most [`MAX_TRACKED_CIDS`], the smallest kept.
    pub fn conflicting_cids(&self) -> Option<BTreeSet<ContentId>> {
        (self.evidence.len() > 1).then(|| self.evidence.keys().copied().collect())
    }

    /// Whether different records with the `seq` of the held ones were seen.
    pub fn is_equivocated(&self) -> bool {
        let cross = match (&self.release, &self.yank) {
            (Some(r), Some(y)) => r.record().seq() == y.record().seq(),
            _ => false,
        };
        self.release_equivocated || self.yank_equivocated || cross
    }

    /// Every record held: both slots and the conflict evidence, each once,
    /// by id. This set is what a node stores and reconciles with its peers.
    pub fn records(&self) -> BTreeMap<RecordId, &SignedRecord> {
        self.release
            .iter()
            .chain(self.yank.iter())
            .chain(self.evidence.values())
            .map(|r| (r.id(), r))
            .collect()
    }

    /// Folds one verified record into the state.
    pub fn apply(&mut self, record: SignedRecord) -> Result<Applied, ForeignRecord> {
        if record.release_key() != self.key {
            return Err(ForeignRecord);
        }
        let mut reports = Vec::new();
        let mut new_cid = false;
        if let Record::Release(incoming) = record.record() {
            if let Some(held_record) = self.release.as_ref()
                && let Record::Release(held) = held_record.record()
                && held.cid != incoming.cid
            {
                reports.push(Report::CidConflict {
                    key: self.key.clone(),
                    held: held.cid,
                    held_record: held_record.id(),
                    incoming: incoming.cid,
                    record: record.id(),
                });
            }
            // The same payload with other signatures merges into the
            // evidence record; otherwise the greater record is kept.
            let kept = match self.evidence.get(&incoming.cid) {
                Some(max) => match max.merge(&record) {
                    Some(merged) => (merged != *max).then_some(merged),
                    None => (record.order(max) == Ordering::Greater).then(|| record.clone()),
                },
                None => Some(record.clone()),
            };
            new_cid = kept.is_some();
            if let Some(kept) = kept {
                self.evidence.insert(incoming.cid, kept);
                if self.evidence.len() > MAX_TRACKED_CIDS {
                    let largest = self.evidence.pop_last().map(|(cid, _)| cid);
                    new_cid = largest != Some(incoming.cid);
                }
            }
        }
        let other_seq = match record.record() {
            Record::Release(_) => self.yank.as_ref(),
            Record::Yank(_) => self.release.as_ref(),
        }
        .filter(|other| other.record().seq() == record.record().seq())
        .map(SignedRecord::id);
        if let Some(other) = other_seq {
            reports.push(Report::Equivocation {
                key: self.key.clone(),
                seq: record.record().seq(),
                records: [other, record.id()],
            });
        }
        let (slot, equivocated) = match record.record() {
            Record::Release(_) => (&mut self.release, &mut self.release_equivocated),
            Record::Yank(_) => (&mut self.yank, &mut self.yank_equivocated),
        };
        let change = fold(slot, equivocated, record, &self.key, &mut reports);
        let change = match change {
            Change::Stale if new_cid => Change::Conflicting,
            other => other,
        };
        Ok(Applied { change, reports })
    }
}

/// Folds `record` into one slot (the release slot or the yank slot).
fn fold(
    slot: &mut Option<SignedRecord>,
    equivocated: &mut bool,
    record: SignedRecord,
    key: &ReleaseKey,
    reports: &mut Vec<Report>,
) -> Change {
    let Some(held) = slot.as_ref() else {
        *slot = Some(record);
        return Change::New;
    };
    if *held == record {
        return Change::Duplicate;
    }
    let previous = held.id();
    // The same payload with other signatures: one record, whose signatures
    // are all those seen (`docs/records.md`, section 9).
    if let Some(merged) = held.merge(&record) {
        if merged == *held {
            return Change::Duplicate;
        }
        *slot = Some(merged);
        return Change::Replaced { previous };
    }
    match held.record().seq().cmp(&record.record().seq()) {
        Ordering::Less => {
            *equivocated = false;
            *slot = Some(record);
            Change::Replaced { previous }
        }
        Ordering::Greater => Change::Stale,
        Ordering::Equal => {
            reports.push(Report::Equivocation {
                key: key.clone(),
                seq: record.record().seq(),
                records: [previous, record.id()],
            });
            *equivocated = true;
            if record.order(held) == Ordering::Greater {
                *slot = Some(record);
                Change::Replaced { previous }
            } else {
                Change::Stale
            }
        }
    }
}

/// Everything a node holds about one package: one [`ReleaseState`] per version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageState {
    key: PackageKey,
    releases: BTreeMap<Version, ReleaseState>,
    /// The APK certificates the author's identity document names (rule 9).
    apk_certs: BTreeSet<[u8; 32]>,
}

impl PackageState {
    /// An empty state for one package of an author whose identity names no
    /// APK certificates (the implicit identity, say).
    pub fn new(key: PackageKey) -> Self {
        Self::with_apk_certs(key, BTreeSet::new())
    }

    /// An empty state for one package of an author whose identity document
    /// names `apk_certs` (rule 9).
    pub fn with_apk_certs(key: PackageKey, apk_certs: BTreeSet<[u8; 32]>) -> Self {
        Self {
            key,
            releases: BTreeMap::new(),
            apk_certs,
        }
    }

    /// The APK certificates the author's identity document names.
    pub fn apk_certs(&self) -> &BTreeSet<[u8; 32]> {
        &self.apk_certs
    }

    /// How each release that names an APK certificate follows the ones
    /// before it (rule 9), yanked releases included.
    pub fn cert_checks(&self) -> BTreeMap<Version, CertCheck> {
        cert_checks(
            self.releases
                .values()
                .filter_map(|s| s.release()?.record().as_release()),
            &self.apk_certs,
        )
    }

    /// The package.
    pub fn key(&self) -> &PackageKey {
        &self.key
    }

    /// Folds one verified record into the state.
    pub fn apply(&mut self, record: SignedRecord) -> Result<Applied, ForeignRecord> {
        if record.record().package_key() != self.key {
            return Err(ForeignRecord);
        }
        let version = record.record().version().clone();
        self.releases
            .entry(version)
            .or_insert_with(|| ReleaseState::new(record.release_key()))
            .apply(record)
    }

    /// Adds the saved state of one of the package's releases.
    pub fn insert(&mut self, state: ReleaseState) -> Result<(), ForeignRecord> {
        if state.key().package_key() != self.key {
            return Err(ForeignRecord);
        }
        self.releases.insert(state.key().version.clone(), state);
        Ok(())
    }

    /// The state of one version.
    pub fn release(&self, version: &Version) -> Option<&ReleaseState> {
        self.releases.get(version)
    }

    /// Every version, in semantic version order.
    pub fn releases(&self) -> impl Iterator<Item = &ReleaseState> {
        self.releases.values()
    }

    /// The newest release (rule 7): among the releases not yanked and not
    /// of a changed APK certificate (rule 9), the highest `version_code`;
    /// ties go to the higher version, then to the record order.
    pub fn newest(&self) -> Option<&SignedRecord> {
        newest_in_force(
            self.releases
                .values()
                .filter_map(|s| Some((s.release()?, s.is_yanked()))),
            &self.apk_certs,
        )
    }
}

/// Rule 7 over the release records of one package, each with whether it is
/// yanked: rule 9 is applied to all of them, yanked ones included.
pub(crate) fn newest_in_force<'a>(
    held: impl IntoIterator<Item = (&'a SignedRecord, bool)>,
    apk_certs: &BTreeSet<[u8; 32]>,
) -> Option<&'a SignedRecord> {
    let held: Vec<(&SignedRecord, bool)> = held.into_iter().collect();
    let checks = cert_checks(
        held.iter().filter_map(|(r, _)| r.record().as_release()),
        apk_certs,
    );
    newest_of(
        held.into_iter()
            .filter(|(_, yanked)| !yanked)
            .map(|(r, _)| r)
            .filter(|r| {
                checks
                    .get(r.record().version())
                    .is_none_or(CertCheck::is_continuous)
            }),
    )
}

/// The newest of release records of one package that are in force: the
/// highest `version_code`, then the higher version, then the record order.
fn newest_of<'a>(releases: impl Iterator<Item = &'a SignedRecord>) -> Option<&'a SignedRecord> {
    releases.max_by(|a, b| {
        let (ra, rb) = (a.record(), b.record());
        let code = |r: &Record| r.as_release().map_or(0, |r| r.version_code);
        code(ra)
            .cmp(&code(rb))
            .then_with(|| ra.version().cmp(rb.version()))
            .then_with(|| a.order(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthorKey, Release, Yank};

    fn key() -> AuthorKey {
        AuthorKey::from_seed(&[9; 32])
    }

    fn cid(n: u8) -> ContentId {
        let mh = multihash::Multihash::<64>::wrap(0x12, &[n; 32]).unwrap();
        ContentId::new(cid::Cid::new_v1(0x55, mh)).unwrap()
    }

    fn release(version: &str, code: u64, seq: u64, c: u8) -> SignedRecord {
        let k = key();
        let mut r = Release::new(
            k.author_id(),
            "com.example.app".parse().unwrap(),
            version.parse().unwrap(),
            code,
            cid(c),
        );
        r.seq = seq;
        r.created_at = seq;
        r.sign(&k).unwrap()
    }

    fn yank(version: &str, seq: u64) -> SignedRecord {
        let k = key();
        let mut y = Yank::new(
            k.author_id(),
            "com.example.app".parse().unwrap(),
            version.parse().unwrap(),
            "broken".into(),
        );
        y.seq = seq;
        y.created_at = seq;
        y.sign(&k).unwrap()
    }

    fn state() -> PackageState {
        PackageState::new(release("1.0.0", 1, 1, 1).record().package_key())
    }

    #[test]
    fn higher_seq_supersedes_lower_never() {
        let mut s = state();
        let v1 = release("1.0.0", 1, 1, 1);
        let v1_fix = release("1.0.0", 1, 2, 1);
        assert_eq!(s.apply(v1.clone()).unwrap().change, Change::New);
        assert_eq!(s.apply(v1.clone()).unwrap().change, Change::Duplicate);
        let applied = s.apply(v1_fix.clone()).unwrap();
        assert_eq!(applied.change, Change::Replaced { previous: v1.id() });
        assert!(applied.reports.is_empty());
        // Replaying the old record rolls nothing back.
        assert_eq!(s.apply(v1).unwrap().change, Change::Stale);
        assert_eq!(s.newest(), Some(&v1_fix));
    }

    #[test]
    fn releases_coexist_and_newest_is_highest_version_code() {
        let mut s = state();
        let a = release("1.0.0", 10, 1, 1);
        let b = release("1.1.0", 11, 2, 2);
        let c = release("0.9.0", 9, 3, 3);
        for r in [&b, &a, &c] {
            assert_eq!(s.apply(r.clone()).unwrap().change, Change::New);
        }
        assert_eq!(s.releases().count(), 3);
        assert_eq!(s.newest(), Some(&b));
        // Yank 1.1.0: newest falls back to 1.0.0, and 1.1.0 keeps its metadata.
        assert_eq!(s.apply(yank("1.1.0", 4)).unwrap().change, Change::New);
        let yanked = s.release(&"1.1.0".parse().unwrap()).unwrap();
        assert!(yanked.is_yanked());
        assert_eq!(yanked.release(), Some(&b));
        assert_eq!(s.newest(), Some(&a));
        // A re-release with a higher seq restores it.
        let b2 = release("1.1.0", 11, 5, 2);
        assert!(s.apply(b2.clone()).unwrap().change.is_held());
        assert_eq!(s.newest(), Some(&b2));
    }

    #[test]
    fn lower_seq_yank_does_not_retract() {
        let mut s = state();
        s.apply(release("1.0.0", 1, 5, 1)).unwrap();
        s.apply(yank("1.0.0", 4)).unwrap();
        assert!(!s.release(&"1.0.0".parse().unwrap()).unwrap().is_yanked());
    }

    #[test]
    fn cid_change_is_a_conflict_either_way() {
        let original = release("1.0.0", 1, 5, 1);
        let repointed_old = release("1.0.0", 1, 4, 2);
        let repointed_new = release("1.0.0", 1, 6, 2);

        let mut s = state();
        s.apply(original.clone()).unwrap();
        let applied = s.apply(repointed_old.clone()).unwrap();
        assert_eq!(applied.change, Change::Conflicting);
        assert!(matches!(applied.reports[..], [Report::CidConflict { .. }]));
        assert_eq!(
            s.newest(),
            Some(&original),
            "kept out of the way of the original"
        );
        // Seen again, it is no longer news.
        assert_eq!(s.apply(repointed_old).unwrap().change, Change::Stale);

        let applied = s.apply(repointed_new.clone()).unwrap();
        assert!(applied.change.is_held());
        assert!(matches!(applied.reports[..], [Report::CidConflict { .. }]));
        let state = s.release(&"1.0.0".parse().unwrap()).unwrap();
        assert_eq!(state.conflicting_cids().map(|c| c.len()), Some(2));
    }

    #[test]
    fn equal_seq_is_an_equivocation_broken_by_bytes() {
        let a = release("1.0.0", 1, 5, 1);
        let b = release("1.0.0", 1, 5, 2);
        let winner = if a.order(&b) == Ordering::Greater {
            &a
        } else {
            &b
        };
        for (first, second) in [(&a, &b), (&b, &a)] {
            let mut s = state();
            s.apply(first.clone()).unwrap();
            let applied = s.apply(second.clone()).unwrap();
            assert!(
                applied
                    .reports
                    .iter()
                    .any(|r| matches!(r, Report::Equivocation { seq: 5, .. }))
            );
            assert_eq!(s.newest(), Some(winner));
            assert!(
                s.release(&"1.0.0".parse().unwrap())
                    .unwrap()
                    .is_equivocated()
            );
        }
    }

    #[test]
    fn parts_round_trip_and_are_checked() {
        let mut s = ReleaseState::new(release("1.0.0", 1, 1, 1).release_key());
        s.apply(release("1.0.0", 1, 1, 1)).unwrap();
        s.apply(release("1.0.0", 1, 1, 2)).unwrap();
        s.apply(yank("1.0.0", 2)).unwrap();
        let back = ReleaseState::from_parts(s.key().clone(), s.clone().into_parts()).unwrap();
        assert_eq!(back, s);
        let mut swapped = s.clone().into_parts();
        std::mem::swap(&mut swapped.release, &mut swapped.yank);
        assert_eq!(
            ReleaseState::from_parts(s.key().clone(), swapped),
            Err(ForeignRecord)
        );
        let other = release("2.0.0", 1, 1, 1).release_key();
        assert_eq!(
            ReleaseState::from_parts(other, s.into_parts()),
            Err(ForeignRecord)
        );
    }

    #[test]
    fn foreign_records_are_refused() {
        let mut r = ReleaseState::new(release("1.0.0", 1, 1, 1).release_key());
        assert_eq!(r.apply(release("2.0.0", 2, 1, 1)), Err(ForeignRecord));
        let other = AuthorKey::from_seed(&[10; 32]);
        let mut foreign = Release::new(
            other.author_id(),
            "com.example.app".parse().unwrap(),
            "1.0.0".parse().unwrap(),
            1,
            cid(1),
        );
        foreign.created_at = foreign.seq.min(1_700_000_000_000);
        foreign.seq = foreign.created_at;
        let mut s = state();
        assert_eq!(s.apply(foreign.sign(&other).unwrap()), Err(ForeignRecord));
    }
}
