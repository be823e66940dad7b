//! Pin accounting, sans-IO: how many bytes are pinned in all and per owner
//! (a release's author), what downloads under way have reserved, and
//! whether one more pin fits (`docs/content.md`, "Caps, quotas and
//! eviction").
//!
//! ```text
//!   reserve(owner, stated bytes, quota) ──► Reservation id   (or Refusal)
//!        │  the download runs; its blocks are leased (not evictable)
//!        ▼
//!   commit(id, DAG bytes, replaced pin) ──► pinned            (or Refusal)
//!   release(id)                         ──► forgotten (download failed)
//!   unpinned(owner, bytes)              ──► freed
//! ```
//!
//! The cap is on pinned plus reserved bytes, so a pin is refused *before*
//! its download when pinned data alone would pass the store's limit; a
//! quota is on the pinned plus reserved bytes of one owner. Blocks shared
//! by two pins count twice (a conservative bound).

use std::collections::HashMap;

/// The most block bytes a UnixFS DAG of a file of `size` bytes may take:
/// the file's bytes, an eighth more for the inner nodes and leaf wrappers
/// of any reasonable chunking (IPSR's profiles add well under 1%), and
/// 64 KiB for small files. A download stops past it.
pub(crate) fn dag_allowance(size: u64) -> u64 {
    size.saturating_add(size / 8).saturating_add(64 * 1024)
}

/// Why a pin does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// Pinned and reserved bytes would pass the store's limit.
    #[error(
        "pinned data would pass the blockstore limit: limit {limit} bytes, {committed} pinned or reserved, {needed} more needed"
    )]
    Storage {
        /// The store's limit in bytes.
        limit: u64,
        /// Bytes pinned or reserved by downloads under way.
        committed: u64,
        /// Bytes the pin needs.
        needed: u64,
    },
    /// The owner's pinned and reserved bytes would pass its quota.
    #[error(
        "pin quota of {owner} exceeded: quota {quota} bytes, {used} pinned or reserved, {needed} more needed"
    )]
    Quota {
        /// The owner (an author id).
        owner: String,
        /// The owner's quota in bytes.
        quota: u64,
        /// Bytes the owner has pinned or reserved.
        used: u64,
        /// Bytes the pin needs.
        needed: u64,
    },
}

/// A reservation made by [`Ledger::reserve`].
#[derive(Debug, Clone)]
struct Reservation {
    owner: Option<String>,
    /// Bytes held back (0 when the size was not known).
    bytes: u64,
    quota: Option<u64>,
}

/// A pin as the ledger counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Charge<'a> {
    /// Who it is charged to (`None`: nobody, e.g. the node's own user).
    pub(crate) owner: Option<&'a str>,
    /// Its bytes.
    pub(crate) bytes: u64,
}

/// Pinned and reserved bytes, in all and per owner, against a limit.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    limit: Option<u64>,
    pinned: u64,
    owners: HashMap<String, u64>,
    reserved: u64,
    reservations: HashMap<u64, Reservation>,
    next: u64,
}

impl Ledger {
    /// An empty ledger for a store of at most `limit` bytes.
    pub(crate) fn new(limit: Option<u64>) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Counts a pin that exists already (read at open).
    pub(crate) fn load(&mut self, pin: Charge<'_>) {
        self.add(pin);
    }

    /// Bytes pinned in all.
    pub(crate) fn pinned(&self) -> u64 {
        self.pinned
    }

    /// Bytes reserved by downloads under way.
    pub(crate) fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Bytes pinned by `owner`.
    pub(crate) fn pinned_by(&self, owner: &str) -> u64 {
        self.owners.get(owner).copied().unwrap_or(0)
    }

    /// Holds back `bytes` (when known) for a pin of `owner` within its
    /// `quota`, or says why it does not fit. A reservation of unknown size
    /// always succeeds; its pin is checked at [`commit`](Self::commit).
    pub(crate) fn reserve(
        &mut self,
        owner: Option<&str>,
        bytes: Option<u64>,
        quota: Option<u64>,
    ) -> Result<u64, Refusal> {
        if let Some(bytes) = bytes {
            self.check(owner, bytes, quota, None)?;
        }
        let id = self.next;
        self.next += 1;
        let bytes = bytes.unwrap_or(0);
        self.reserved = self.reserved.saturating_add(bytes);
        self.reservations.insert(
            id,
            Reservation {
                owner: owner.map(str::to_owned),
                bytes,
                quota,
            },
        );
        Ok(id)
    }

    /// Whether reservation `id`'s pin of `bytes` fits once `replaced` (the
    /// pin of the same root it replaces, if any) is gone. Changes nothing.
    pub(crate) fn can_commit(
        &self,
        id: u64,
        bytes: u64,
        replaced: Option<Charge<'_>>,
    ) -> Result<(), Refusal> {
        let Some(r) = self.reservations.get(&id) else {
            return Ok(());
        };
        // What the reservation admitted already fits.
        if bytes <= r.bytes {
            return Ok(());
        }
        self.check(r.owner.as_deref(), bytes, r.quota, Some((id, replaced)))
    }

    /// Turns reservation `id` into a pin of `bytes` (replacing `replaced`),
    /// after [`can_commit`](Self::can_commit) said it fits.
    pub(crate) fn commit(&mut self, id: u64, bytes: u64, replaced: Option<Charge<'_>>) {
        let owner = self.reservations.get(&id).and_then(|r| r.owner.clone());
        self.release(id);
        if let Some(old) = replaced {
            self.remove(old);
        }
        self.add(Charge {
            owner: owner.as_deref(),
            bytes,
        });
    }

    /// Forgets reservation `id` (its download ended without a pin, or it
    /// was committed).
    pub(crate) fn release(&mut self, id: u64) {
        if let Some(r) = self.reservations.remove(&id) {
            self.reserved = self.reserved.saturating_sub(r.bytes);
        }
    }

    /// Frees a pin that was removed.
    pub(crate) fn unpinned(&mut self, pin: Charge<'_>) {
        self.remove(pin);
    }

    fn add(&mut self, pin: Charge<'_>) {
        self.pinned = self.pinned.saturating_add(pin.bytes);
        if let Some(owner) = pin.owner {
            *self.owners.entry(owner.to_owned()).or_default() += pin.bytes;
        }
    }

    fn remove(&mut self, pin: Charge<'_>) {
        self.pinned = self.pinned.saturating_sub(pin.bytes);
        if let Some(owner) = pin.owner
            && let Some(used) = self.owners.get_mut(owner)
        {
            *used = used.saturating_sub(pin.bytes);
            if *used == 0 {
                self.owners.remove(owner);
            }
        }
    }

    /// Whether `bytes` more for `owner` fit, not counting reservation
    /// `except.0` and the pin `except.1` it would replace.
    fn check(
        &self,
        owner: Option<&str>,
        bytes: u64,
        quota: Option<u64>,
        except: Option<(u64, Option<Charge<'_>>)>,
    ) -> Result<(), Refusal> {
        let (own_reserved, replaced) = match except {
            Some((id, replaced)) => (self.reservations.get(&id).map_or(0, |r| r.bytes), replaced),
            None => (0, None),
        };
        let freed = replaced.map_or(0, |p| p.bytes);
        if let Some(limit) = self.limit {
            let committed = (self.pinned.saturating_add(self.reserved))
                .saturating_sub(own_reserved)
                .saturating_sub(freed);
            if committed.saturating_add(bytes) > limit {
                return Err(Refusal::Storage {
                    limit,
                    committed,
                    needed: bytes,
                });
            }
        }
        if let (Some(owner), Some(quota)) = (owner, quota) {
            let reserved: u64 = self
                .reservations
                .values()
                .filter(|r| r.owner.as_deref() == Some(owner))
                .fold(0u64, |sum, r| sum.saturating_add(r.bytes));
            let freed = replaced
                .filter(|p| p.owner == Some(owner))
                .map_or(0, |p| p.bytes);
            let used = (self.pinned_by(owner).saturating_add(reserved))
                .saturating_sub(own_reserved)
                .saturating_sub(freed);
            if used.saturating_add(bytes) > quota {
                return Err(Refusal::Quota {
                    owner: owner.to_owned(),
                    quota,
                    used,
                    needed: bytes,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(owner: &str, bytes: u64) -> Charge<'_> {
        Charge {
            owner: Some(owner),
            bytes,
        }
    }

    #[test]
    fn reservations_count_against_the_limit_until_released() {
        let mut l = Ledger::new(Some(100));
        let a = l.reserve(Some("a"), Some(60), None).unwrap();
        let err = l.reserve(Some("b"), Some(50), None).unwrap_err();
        assert_eq!(
            err,
            Refusal::Storage {
                limit: 100,
                committed: 60,
                needed: 50
            }
        );
        l.release(a);
        assert_eq!(l.reserved(), 0);
        let b = l.reserve(Some("b"), Some(50), None).unwrap();
        l.commit(b, 48, None);
        assert_eq!((l.pinned(), l.reserved(), l.pinned_by("b")), (48, 0, 48));
        assert!(l.reserve(None, Some(53), None).is_err(), "48 + 53 > 100");
        assert!(l.reserve(None, Some(52), None).is_ok());
    }

    #[test]
    fn a_quota_holds_one_owner_back_and_not_another() {
        let mut l = Ledger::new(Some(1000));
        let a = l.reserve(Some("a"), Some(30), Some(50)).unwrap();
        l.commit(a, 30, None);
        // 30 pinned + 15 reserved + 10 > 50.
        let _pending = l.reserve(Some("a"), Some(15), Some(50)).unwrap();
        let err = l.reserve(Some("a"), Some(10), Some(50)).unwrap_err();
        assert_eq!(
            err,
            Refusal::Quota {
                owner: "a".into(),
                quota: 50,
                used: 45,
                needed: 10
            }
        );
        assert!(err.to_string().contains("quota of a"), "{err}");
        assert!(l.reserve(Some("b"), Some(50), Some(50)).is_ok());
        assert!(
            l.reserve(None, Some(500), Some(50)).is_ok(),
            "no owner, no quota"
        );
        l.unpinned(of("a", 30));
        assert_eq!(l.pinned_by("a"), 0);
        assert!(l.reserve(Some("a"), Some(35), Some(50)).is_ok());
    }

    #[test]
    fn an_unsized_pin_is_checked_when_committed() {
        let mut l = Ledger::new(Some(100));
        l.load(of("a", 70));
        let id = l.reserve(Some("b"), None, Some(1000)).unwrap();
        assert_eq!(l.reserved(), 0);
        assert!(matches!(
            l.can_commit(id, 40, None),
            Err(Refusal::Storage { committed: 70, .. })
        ));
        assert_eq!(l.can_commit(id, 30, None), Ok(()));
        l.commit(id, 30, None);
        assert_eq!(l.pinned(), 100);
    }

    #[test]
    fn a_commit_within_its_reservation_always_fits() {
        let mut l = Ledger::new(Some(100));
        let id = l.reserve(Some("a"), Some(90), Some(90)).unwrap();
        l.load(of("x", 50)); // e.g. the limit was lowered meanwhile
        assert_eq!(l.can_commit(id, 90, None), Ok(()));
        assert!(l.can_commit(id, 91, None).is_err());
    }

    #[test]
    fn pinning_a_root_again_replaces_its_charge() {
        let mut l = Ledger::new(Some(100));
        let id = l.reserve(Some("a"), Some(60), Some(60)).unwrap();
        l.commit(id, 60, None);
        // The same root again, for the same owner: fits though 60 + 60 > 100.
        let again = l.reserve(Some("a"), None, Some(60)).unwrap();
        assert_eq!(l.can_commit(again, 60, Some(of("a", 60))), Ok(()));
        l.commit(again, 60, Some(of("a", 60)));
        assert_eq!((l.pinned(), l.pinned_by("a")), (60, 60));
        // Taken over by another owner: the charge moves.
        let b = l.reserve(Some("b"), None, None).unwrap();
        l.commit(b, 60, Some(of("a", 60)));
        assert_eq!((l.pinned_by("a"), l.pinned_by("b")), (0, 60));
    }

    #[test]
    fn no_limit_never_refuses_storage() {
        let mut l = Ledger::new(None);
        assert!(l.reserve(None, Some(u64::MAX), None).is_ok());
        assert!(l.reserve(None, Some(u64::MAX), None).is_ok());
    }

    #[test]
    fn the_allowance_covers_the_profiles_and_little_more() {
        assert_eq!(dag_allowance(0), 64 * 1024);
        assert_eq!(dag_allowance(8 << 20), (9 << 20) + 64 * 1024);
        assert_eq!(dag_allowance(u64::MAX), u64::MAX);
    }
}
