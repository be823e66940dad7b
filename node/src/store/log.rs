//! The record log: where consumers (the indexer, `GET /v1/log`, mirrors)
//! follow the records a node holds, from a position.
//!
//! ```text
//!  position   1    2    3    4    5    6        head = 6 (stored: never goes back)
//!  entry      a1   ·    b1   ·    ·    a4       · = compacted (its record is gone)
//!  held       a1        b1             a4       a2, a3 replaced a1's successor ...
//! ```
//!
//! The rules (`docs/node.md`, "The record log"):
//! * A record that becomes held (`Change::is_kept`) is appended at
//!   `head + 1`, in the transaction that stores it. Positions count from 1,
//!   and are never reused or renumbered: the head is stored, so it never
//!   goes back, even when the entry at the head is gone.
//! * Compaction: when a record stops being held (a newer record replaced it
//!   in its slot, or took its place as conflict evidence), its entry is
//!   removed in the same transaction. The record that displaced it is
//!   appended in that transaction, at a higher position.
//! * Witnesses: while a slot (release or yank) is equivocated, the entry of
//!   one record it replaced with the same `seq` stays (the first such
//!   record), so that a consumer learns of the equivocation as this node
//!   did. It goes when the slot moves to a higher `seq`.
//!
//! So the log holds one entry per held record plus at most one witness per
//! equivocated slot: its size follows what is held, not how often records
//! replaced each other. A consumer that read up to a position has seen
//! every record still held at or below it, and each record it missed (a
//! compacted one) was displaced by one at a higher position, which it will
//! read: whatever cursor it resumes from, the state it builds with the
//! ordering rules is the state of one that read everything.
//!
//! Tables (this module's own; keys and values are bytes):
//!
//! | table | key | value |
//! |---|---|---|
//! | `log` | position (u64) | signed record bytes |
//! | `log_ids` | record id (32 bytes) | its position in `log` |
//! | `log_witnesses` | release key ‖ slot (`0` release, `1` yank) | record id of the slot's witness |
//! | `log_meta` | `"head"` | the last position ever given |

use std::collections::{BTreeMap, BTreeSet};

use ipsr_proto::{Record, RecordId, ReleaseState, Signed, SignedRecord};
use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};

use super::{Store, StoreError, load_state, release_key_bytes};

const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("log");
const LOG_IDS: TableDefinition<'_, &[u8], u64> = TableDefinition::new("log_ids");
const LOG_WITNESSES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("log_witnesses");
const LOG_META: TableDefinition<'_, &str, u64> = TableDefinition::new("log_meta");
const HEAD: &str = "head";

/// A page of the log: what [`Store::log_after`] and
/// [`Store::log_bytes_after`] return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage<T> {
    /// Entries after the position asked for, in position order; positions
    /// of compacted entries are skipped.
    pub entries: Vec<(u64, T)>,
    /// Where to read on from: the last entry's position when the page is
    /// full, else the head (every entry up to it has been read; never less
    /// than the position asked for).
    pub next: u64,
    /// The last position given, when the page was read.
    pub head: u64,
}

/// The slots of one release in force before a change, and the records
/// held then (in every signer's state): what [`LogWriter::settle`]
/// compares the new state with.
#[derive(Debug, Clone)]
pub(super) struct Before {
    resolved: ReleaseState,
    slots: [Option<(RecordId, u64)>; 2],
    held: BTreeSet<RecordId>,
}

impl Before {
    pub(super) fn of(resolved: &ReleaseState, held: BTreeSet<RecordId>) -> Self {
        Self {
            resolved: resolved.clone(),
            slots: slots(resolved),
            held,
        }
    }

    /// The records held before.
    pub(super) fn held(&self) -> &BTreeSet<RecordId> {
        &self.held
    }

    /// The state in force before.
    pub(super) fn resolved(&self) -> &ReleaseState {
        &self.resolved
    }
}

/// The (id, seq) of the release slot and of the yank slot.
fn slots(state: &ReleaseState) -> [Option<(RecordId, u64)>; 2] {
    let slot = |r: Option<&SignedRecord>| r.map(|r| (r.id(), r.record().seq()));
    [slot(state.release()), slot(state.yank())]
}

/// Whether each slot is equivocated, in the order of [`slots`].
fn equivocated(state: &ReleaseState) -> [bool; 2] {
    [state.is_release_equivocated(), state.is_yank_equivocated()]
}

/// The witness of one slot after a record was applied: none unless the
/// slot is equivocated; else the one it had, or else the record the slot
/// held before when an equal-`seq` record replaced it.
fn witness(
    had: Option<RecordId>,
    before: Option<(RecordId, u64)>,
    after: Option<(RecordId, u64)>,
    equivocated: bool,
) -> Option<RecordId> {
    if !equivocated {
        return None;
    }
    match (had, before, after) {
        (Some(had), _, _) => Some(had),
        (None, Some((old, s)), Some((new, t))) if s == t && old != new => Some(old),
        _ => None,
    }
}

fn witness_key(release: &[u8], slot: usize) -> Vec<u8> {
    let mut key = release.to_vec();
    key.push(u8::try_from(slot).expect("two slots"));
    key
}

fn record_id(bytes: &[u8]) -> Result<RecordId, StoreError> {
    let raw: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("log record id".into()))?;
    Ok(RecordId::from_bytes(raw))
}

/// The log's tables, open for writing in one transaction.
pub(super) struct LogWriter<'t> {
    log: Table<'t, u64, &'static [u8]>,
    ids: Table<'t, &'static [u8], u64>,
    witnesses: Table<'t, &'static [u8], &'static [u8]>,
    meta: Table<'t, &'static str, u64>,
    head: u64,
    moved: bool,
}

impl<'t> LogWriter<'t> {
    pub(super) fn open(tx: &'t WriteTransaction) -> Result<Self, StoreError> {
        let log = tx.open_table(LOG)?;
        let ids = tx.open_table(LOG_IDS)?;
        let witnesses = tx.open_table(LOG_WITNESSES)?;
        let meta = tx.open_table(LOG_META)?;
        let head = read_head(&meta, &log)?;
        Ok(Self {
            log,
            ids,
            witnesses,
            meta,
            head,
            moved: false,
        })
    }

    /// Appends a record that became held; returns its position.
    pub(super) fn append(&mut self, id: &RecordId, bytes: &[u8]) -> Result<u64, StoreError> {
        self.head += 1;
        self.moved = true;
        let position = self.head;
        // One entry per record: should a record come back, its old entry goes.
        if let Some(old) = self.ids.insert(&id.as_bytes()[..], position)? {
            let old = old.value();
            self.log.remove(old)?;
        }
        self.log.insert(position, bytes)?;
        Ok(position)
    }

    /// Compacts after a record was applied to the release `key` (its
    /// bytes): removes the entry of every record that left the state,
    /// unless it is now a witness of an equivocated slot, and the entry of
    /// a witness no longer needed.
    pub(super) fn settle(
        &mut self,
        key: &[u8],
        before: &Before,
        state: &ReleaseState,
        held: &BTreeSet<RecordId>,
    ) -> Result<(), StoreError> {
        let after = slots(state);
        let flags = equivocated(state);
        let mut drop: Vec<RecordId> = before.held.difference(held).copied().collect();
        let mut witnesses = Vec::with_capacity(2);
        for slot in 0..2 {
            let wkey = witness_key(key, slot);
            let had = self
                .witnesses
                .get(&wkey[..])?
                .map(|v| record_id(v.value()))
                .transpose()?;
            let now = witness(had, before.slots[slot], after[slot], flags[slot]);
            if now != had {
                match now {
                    Some(id) => self.witnesses.insert(&wkey[..], &id.as_bytes()[..])?,
                    None => self.witnesses.remove(&wkey[..])?,
                };
                drop.extend(had);
            }
            witnesses.extend(now);
        }
        for id in drop {
            if !held.contains(&id) && !witnesses.contains(&id) {
                self.forget(&id)?;
            }
        }
        Ok(())
    }

    /// Removes the entry of a record no longer held that is no witness
    /// (an identity document's envelope replaced by a merge).
    pub(super) fn remove(&mut self, id: &RecordId) -> Result<(), StoreError> {
        self.forget(id)
    }

    /// Removes the entry of a record, if it has one.
    fn forget(&mut self, id: &RecordId) -> Result<(), StoreError> {
        if let Some(position) = self.ids.remove(&id.as_bytes()[..])? {
            let position = position.value();
            self.log.remove(position)?;
        }
        Ok(())
    }

    /// Saves the head, when it moved.
    pub(super) fn finish(mut self) -> Result<(), StoreError> {
        if self.moved {
            self.meta.insert(HEAD, self.head)?;
        }
        Ok(())
    }
}

fn read_head(
    meta: &impl ReadableTable<&'static str, u64>,
    log: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<u64, StoreError> {
    let stored = meta.get(HEAD)?.map_or(0, |v| v.value());
    let last = log.last()?.map_or(0, |(k, _)| k.value());
    Ok(stored.max(last))
}

/// Creates the log's tables, and brings a log written before compaction
/// (entries without an id, superseded records still in it) to the rules:
/// every entry of a record no longer held goes, unless it is a witness.
/// Runs once: afterwards every entry has an id.
pub(super) fn open(
    tx: &WriteTransaction,
    recs: &Table<'_, &'static [u8], &'static [u8]>,
    rels: &Table<'_, &'static [u8], &'static [u8]>,
) -> Result<(), StoreError> {
    let mut writer = LogWriter::open(tx)?;
    if writer.log.len()? == writer.ids.len()? {
        return Ok(());
    }
    // The head as it stands, saved before any entry goes.
    writer.moved = true;
    let mut states: BTreeMap<Vec<u8>, ReleaseState> = BTreeMap::new();
    let mut gone = Vec::new();
    let mut keep = Vec::new();
    for entry in writer.log.iter()? {
        let (position, bytes) = entry?;
        let (position, bytes) = (position.value(), bytes.value());
        let id = RecordId::of(bytes);
        if writer.ids.get(&id.as_bytes()[..])?.is_some() {
            continue;
        }
        if recs.get(&id.as_bytes()[..])?.is_some() {
            keep.push((id, position));
            continue;
        }
        // Not held: a witness if its slot is equivocated at its seq.
        let record = SignedRecord::from_trusted_storage(bytes)?;
        let key = release_key_bytes(&record.release_key());
        if !states.contains_key(&key) {
            let Some(row) = rels.get(&key[..])? else {
                gone.push(position);
                continue;
            };
            // Stores with entries but no index predate identity documents:
            // every record counts under the author's implicit identity.
            let authority =
                ipsr_proto::Identity::implicit(record.record().author().to_owned()).authority();
            let state = load_state(recs, record.release_key(), row.value(), &authority)?;
            states.insert(key.clone(), state);
        }
        let state = &states[&key];
        let slot = usize::from(matches!(record.record(), Record::Yank(_)));
        let wkey = witness_key(&key, slot);
        let held = slots(state)[slot];
        let is_witness = equivocated(state)[slot]
            && held.is_some_and(|(h, seq)| h != id && seq == record.record().seq())
            && writer.witnesses.get(&wkey[..])?.is_none();
        if is_witness {
            writer.witnesses.insert(&wkey[..], &id.as_bytes()[..])?;
            keep.push((id, position));
        } else {
            gone.push(position);
        }
    }
    for (id, position) in keep {
        writer.ids.insert(&id.as_bytes()[..], position)?;
    }
    for position in gone {
        writer.log.remove(position)?;
    }
    writer.finish()
}

impl Store {
    /// Up to `limit` log entries after position `after`, oldest first,
    /// decoded (`log_bytes_after` as package records and identity documents).
    pub fn log_after(&self, after: u64, limit: usize) -> Result<LogPage<Signed>, StoreError> {
        let page = self.log_bytes_after(after, limit)?;
        let entries = page
            .entries
            .into_iter()
            .map(|(pos, bytes)| Ok((pos, SignedRecord::from_trusted_storage_any(&bytes)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(LogPage {
            entries,
            next: page.next,
            head: page.head,
        })
    }

    /// Up to `limit` log entries after position `after`, oldest first, as
    /// the stored envelope bytes, not decoded again: for handing the log on
    /// (`GET /v1/log`, an indexer in the same process), whose reader
    /// verifies every record anyway. Entries, `next` and `head` are read in
    /// one transaction.
    pub fn log_bytes_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<LogPage<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read()?;
        let log = tx.open_table(LOG)?;
        let head = read_head(&tx.open_table(LOG_META)?, &log)?;
        let mut entries = Vec::new();
        for entry in log.range(after.saturating_add(1)..)?.take(limit) {
            let (pos, bytes) = entry?;
            entries.push((pos.value(), bytes.value().to_vec()));
        }
        let next = match entries.last() {
            Some((last, _)) if entries.len() == limit => *last,
            _ => head.max(after),
        };
        Ok(LogPage {
            entries,
            next,
            head,
        })
    }
}

/// The head and the number of entries, for [`Store::stats`].
pub(super) fn counts(tx: &redb::ReadTransaction) -> Result<(u64, u64), StoreError> {
    let log = tx.open_table(LOG)?;
    let head = read_head(&tx.open_table(LOG_META)?, &log)?;
    Ok((head, log.len()?))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ipsr_proto::{AuthorKey, PackageKey, PackageState};
    use ipsr_testkit::{cid, release, yank};
    use proptest::prelude::*;

    use super::*;
    use crate::store::tests::open;

    /// Every entry after `after`, paging `limit` at a time and following
    /// `next`; checks the pages' own rules on the way.
    fn read_all(store: &Store, after: u64, limit: usize) -> (Vec<(u64, SignedRecord)>, u64) {
        let (mut out, mut cursor) = (Vec::new(), after);
        loop {
            let page = store.log_after(cursor, limit).unwrap();
            assert!(page.entries.len() <= limit);
            assert!(page.next >= cursor && page.next <= page.head.max(cursor));
            let mut previous = cursor;
            for (position, _) in &page.entries {
                assert!(*position > previous && *position <= page.next);
                previous = *position;
            }
            let done = page.next == cursor;
            cursor = page.next;
            out.extend(page.entries.into_iter().filter_map(|(p, s)| match s {
                Signed::Record(r) => Some((p, r)),
                Signed::Identity(_) => None,
            }));
            if done {
                return (out, cursor);
            }
        }
    }

    /// What a consumer builds from the records it read: the ordering rules,
    /// per package.
    #[derive(Debug, Default, Clone, PartialEq)]
    struct Consumer(BTreeMap<PackageKey, PackageState>);

    impl Consumer {
        fn fold(&mut self, records: impl IntoIterator<Item = (u64, SignedRecord)>) {
            for (_, record) in records {
                let key = record.record().package_key();
                self.0
                    .entry(key.clone())
                    .or_insert_with(|| PackageState::new(key))
                    .apply(record)
                    .unwrap();
            }
        }
    }

    /// A record of one release of key 7: version `1.{v}.0`, `seq`, a CID
    /// (releases) and a title that tells records with one `seq` apart.
    fn make(key: &AuthorKey, (v, seq, c, t, is_yank): (u8, u64, u8, u8, bool)) -> SignedRecord {
        let version = format!("1.{v}.0");
        if is_yank {
            yank(key, &version).seq(seq).reason(format!("r{t}")).sign()
        } else {
            release(key, &version)
                .code(seq)
                .seq(seq)
                .cid(cid(u32::from(c)))
                .title(format!("t{t}"))
                .sign()
        }
    }

    fn spec() -> impl Strategy<Value = (u8, u64, u8, u8, bool)> {
        (0u8..2, 1u64..5, 0u8..10, 0u8..3, prop::bool::weighted(0.2))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// Records applied one at a time, with a consumer that reads the
        /// log after every step: positions are never reused; the log holds
        /// what is held (plus witnesses); and a consumer resuming from the
        /// head of any earlier step, a fresh one, and the one that read
        /// every entry ever written all end with the same state.
        #[test]
        fn compaction_keeps_positions_and_every_cursor_converges(
            specs in proptest::collection::vec(spec(), 1..24),
            limit in 1usize..4,
        ) {
            let key = AuthorKey::from_seed(&[7; 32]);
            let (_dir, store) = open();
            let mut positions = Vec::new();
            let mut everything = Consumer::default();
            // After each step: the head, and the state of a consumer that
            // had read everything up to it.
            let mut snapshots = vec![(0, Consumer::default())];
            let mut cursor = 0;
            for spec in &specs {
                let stored = store.apply(vec![make(&key, *spec)]).unwrap();
                positions.extend(stored.iter().filter_map(|s| s.position));
                let (entries, next) = read_all(&store, cursor, limit);
                cursor = next;
                everything.fold(entries);
                snapshots.push((cursor, everything.clone()));
                let stats = store.stats().unwrap();
                prop_assert_eq!(stats.log_head, cursor);
                prop_assert!(stats.log_entries >= stats.records);
                prop_assert!(stats.log_entries <= stats.records + 2 * stats.releases);
            }
            // Positions count up from 1, one per kept record, never reused.
            let expected: Vec<u64> = (1..=positions.len() as u64).collect();
            prop_assert_eq!(&positions, &expected);
            // The log holds exactly the held records, and witnesses.
            let (log, _) = read_all(&store, 0, limit);
            let held: BTreeSet<RecordId> =
                store.record_ids().unwrap().into_iter().map(|(_, id)| id).collect();
            let logged: BTreeSet<RecordId> = log.iter().map(|(_, r)| r.id()).collect();
            prop_assert!(logged.is_superset(&held));
            // Each record logged but not held witnesses an equivocation of
            // its slot at the slot's seq, one per slot.
            let mut witnessed = BTreeSet::new();
            for (_, r) in log.iter().filter(|(_, r)| !held.contains(&r.id())) {
                let state = store.release(&r.release_key()).unwrap().unwrap();
                let is_yank = matches!(r.record(), Record::Yank(_));
                let (slot, equivocated) = match is_yank {
                    false => (state.release(), state.is_release_equivocated()),
                    true => (state.yank(), state.is_yank_equivocated()),
                };
                prop_assert!(equivocated, "{} is neither held nor a witness", r.id());
                prop_assert_eq!(slot.map(|h| h.record().seq()), Some(r.record().seq()));
                prop_assert!(witnessed.insert((r.release_key(), is_yank)), "one witness a slot");
            }
            let mut fresh = Consumer::default();
            fresh.fold(log);
            prop_assert_eq!(&fresh, &everything);
            for (head, snapshot) in snapshots {
                let mut resumed = snapshot;
                resumed.fold(read_all(&store, head, limit).0);
                prop_assert_eq!(&resumed, &everything, "resumed from {}", head);
            }
        }
    }

    #[test]
    fn an_equivocation_keeps_one_witness_until_the_slot_moves_on() {
        let (_dir, store) = open();
        let key = AuthorKey::from_seed(&[7; 32]);
        // Four records of 1.0.0 with seq 5, applied lowest first: each
        // replaces the one before; the first stays as the witness.
        let mut same: Vec<SignedRecord> = (0..4).map(|t| make(&key, (0, 5, 1, t, false))).collect();
        same.sort_by(|a, b| a.order(b));
        for r in &same {
            store.apply(vec![r.clone()]).unwrap();
        }
        let ids = |store: &Store| -> Vec<RecordId> {
            let log = store.log_after(0, 100).unwrap().entries;
            log.iter().map(|(_, r)| r.id()).collect()
        };
        assert_eq!(ids(&store), vec![same[0].id(), same[3].id()]);
        let state = store.release(&same[0].release_key()).unwrap().unwrap();
        assert!(state.is_release_equivocated());
        // A higher seq ends the equivocation: the witness goes.
        let next = make(&key, (0, 6, 1, 0, false));
        store.apply(vec![next.clone()]).unwrap();
        assert_eq!(ids(&store), vec![next.id()]);
        let stats = store.stats().unwrap();
        assert_eq!((stats.log_head, stats.log_entries), (5, 1));
    }

    /// A record of the churn test: big (a 4 000-byte description), like
    /// a real release's.
    fn churn(key: &AuthorKey, seq: u64) -> SignedRecord {
        release(key, "1.0.0")
            .code(1)
            .seq(seq)
            .cid(cid(1))
            .metadata(|m| m.description = format!("{seq} ").repeat(4000 / 5))
            .sign()
    }

    fn file_size(dir: &tempfile::TempDir) -> u64 {
        std::fs::metadata(dir.path().join("store.redb"))
            .unwrap()
            .len()
    }

    #[test]
    fn a_thousand_replacing_records_leave_one_entry_and_a_small_store() {
        let (dir, store) = open();
        let key = AuthorKey::from_seed(&[7; 32]);
        let honest = release(&AuthorKey::from_seed(&[8; 32]), "2.0.0")
            .package("org.example.honest")
            .sign();
        store.apply(vec![honest.clone(), churn(&key, 1)]).unwrap();
        let before = file_size(&dir);
        // One durable transaction each, as gossip and publishes do.
        for seq in 2..=1000 {
            let stored = store.apply(vec![churn(&key, seq)]).unwrap();
            assert!(stored[0].is_news());
        }
        let after = file_size(&dir);
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.records, stats.log_entries, stats.log_head),
            (2, 2, 1001)
        );
        let log = store.log_after(0, 1000).unwrap();
        let ids: Vec<_> = log.entries.iter().map(|(p, r)| (*p, r.id())).collect();
        assert_eq!(ids, vec![(1, honest.id()), (1001, churn(&key, 1000).id())]);
        println!("store.redb: {before} bytes with 2 records, {after} after 1000 replacing records");
        // Without compaction the log alone holds 1000 × 4 KB; freed pages
        // are reused, so the file stays near its size with two records.
        assert!(after < 2 * 1024 * 1024, "{after} bytes");
        assert!(after < before + 1024 * 1024, "{before} → {after} bytes");
    }

    #[test]
    fn a_log_from_before_compaction_is_compacted_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let key = AuthorKey::from_seed(&[7; 32]);
        let mut same: Vec<SignedRecord> = (0..2).map(|t| make(&key, (0, 5, 1, t, false))).collect();
        same.sort_by(|a, b| a.order(b));
        let replaced = make(&key, (1, 1, 1, 0, false));
        let fix = make(&key, (1, 2, 1, 0, false));
        let all = vec![
            replaced.clone(),
            same[0].clone(),
            fix.clone(),
            same[1].clone(),
        ];
        Store::open(&path).unwrap().apply(all.clone()).unwrap();
        // Rewrite it as the store was before compaction: every record at
        // its position, no ids, no witnesses, no stored head.
        {
            let db = redb::Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            for table in ["log_ids", "log_witnesses"] {
                tx.delete_table(TableDefinition::<&[u8], &[u8]>::new(table))
                    .unwrap();
            }
            tx.delete_table(LOG_META).unwrap();
            {
                let mut log = tx.open_table(LOG).unwrap();
                for (i, r) in all.iter().enumerate() {
                    log.insert(i as u64 + 1, &r.to_bytes()[..]).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let log = store.log_after(0, 100).unwrap();
        let ids: Vec<_> = log.entries.iter().map(|(p, r)| (*p, r.id())).collect();
        // `replaced` is gone; `same[0]` stays as the witness of 1.0.0.
        assert_eq!(
            ids,
            vec![(2, same[0].id()), (3, fix.id()), (4, same[1].id())]
        );
        assert_eq!((log.head, log.next), (4, 4));
        // It goes on from there, compacting as it goes.
        let newer = make(&key, (1, 3, 1, 0, false));
        assert_eq!(
            store.apply(vec![newer.clone()]).unwrap()[0].position,
            Some(5)
        );
        let ids: Vec<_> = store
            .log_after(0, 100)
            .unwrap()
            .entries
            .iter()
            .map(|(p, _)| *p)
            .collect();
        assert_eq!(ids, vec![2, 4, 5]);
        drop(store);
        // Opening again changes nothing.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.stats().unwrap().log_entries, 3);
    }

    #[test]
    fn the_head_never_goes_back_and_pages_say_where_to_go_on() {
        let (_dir, store) = open();
        let key = AuthorKey::from_seed(&[7; 32]);
        for seq in 1..=5 {
            store
                .apply(vec![make(&key, (0, seq, 1, 0, false))])
                .unwrap();
        }
        // Positions 1–4 compacted: an empty stretch, then the one entry.
        let page = store.log_after(0, 2).unwrap();
        assert_eq!(page.entries.len(), 1);
        assert_eq!((page.entries[0].0, page.next, page.head), (5, 5, 5));
        let page = store.log_after(2, 1).unwrap();
        assert_eq!(
            (page.entries[0].0, page.next),
            (5, 5),
            "a full page ends at its entry"
        );
        let page = store.log_after(5, 10).unwrap();
        assert_eq!((page.entries.len(), page.next), (0, 5));
        // A cursor past the head (a replaced store) is not moved back.
        assert_eq!(store.log_after(9, 10).unwrap().next, 9);
        assert_eq!(store.log_after(9, 10).unwrap().head, 5);
    }
}
