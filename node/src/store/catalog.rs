//! The catalog: indexes of what the store holds, kept in the transaction
//! that changes it, so that search, "recent" and the totals read a few keys
//! instead of every package (`docs/node.md`, "The catalog").
//!
//! Each package has an [`Entry`] (its title, newest version, counts, whole
//! search words with their weights and its recent releases), derived from
//! its state alone. When a write changes a package, its old entry's keys go
//! and the new entry's keys come, and the totals move by the difference.
//!
//! Tables (this module's own; keys and values are bytes):
//!
//! | table | key | value |
//! |---|---|---|
//! | `catalog` | package prefix (`author ‖ package ‖ 0x00`) | the package's [`Entry`] (JSON) |
//! | `catalog_words` | word ‖ `0x00` ‖ (255 − weight) ‖ `author/package` | empty |
//! | `catalog_word_list` | word | how many packages have it (u64) |
//! | `catalog_recent` | `created_at` (u64, big-endian) ‖ `author/package@version` | the release record's id |
//! | `catalog_meta` | `"version"`, `"totals"` | format version; [`Totals`] (JSON) |
//!
//! A store written before the catalog existed (no `version`) is indexed
//! once when it opens.
//!
//! Search ([`search`]) follows the rules of [`crate::search`] over whole
//! words: a query word matches an indexed word equal to it (the word's
//! weight) or, when it has at most [`MAX_PREFIX`](crate::search::MAX_PREFIX)
//! characters, one it is a strict prefix of (the prefix weight of the
//! word's source: name when the word's weight is a name weight, else
//! title). Per query word it reads at most [`WORDS_PER_QUERY_WORD`] words
//! and [`CANDIDATES`] packages, highest weight first, as the Redis index
//! does; the packages found for every query word are scored and sorted.

use std::collections::HashMap;

use ipsr_proto::{PackageKey, PackageState, RecordId, ReleaseKey, SignedRecord, Version};
use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::{StoreError, load_package, package_prefix, parse_release_key, verify_stored};
use crate::listing::{Counts, Totals, recent_entries};
use crate::search::{self, Hit};

const CATALOG: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("catalog");
const WORDS: TableDefinition<'_, &[u8], ()> = TableDefinition::new("catalog_words");
const WORD_LIST: TableDefinition<'_, &str, u64> = TableDefinition::new("catalog_word_list");
const RECENT: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("catalog_recent");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("catalog_meta");
const VERSION_KEY: &str = "version";
const TOTALS_KEY: &str = "totals";
/// The format of the catalog's tables; another value rebuilds them.
const FORMAT: u64 = 1;

/// The most packages read per query word.
const CANDIDATES: usize = 1000;
/// The most indexed words a query word is matched to (itself first).
const WORDS_PER_QUERY_WORD: usize = 64;

/// What one package puts in the catalog, derived from its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Entry {
    title: String,
    newest: Option<String>,
    counts: Counts,
    /// Whole words with their weights ([`search::whole_words`]).
    words: Vec<(String, u32)>,
    /// `(created_at, version, release record id)` of each recent release.
    recent: Vec<(u64, String, String)>,
}

impl Entry {
    fn of(state: &PackageState) -> Self {
        let title = search::title(state);
        Self {
            words: search::whole_words(state.key().package.as_str(), &title)
                .into_iter()
                .collect(),
            title,
            newest: state.newest().map(|r| r.record().version().to_string()),
            counts: Counts::of(state),
            recent: recent_entries(state)
                .into_iter()
                .map(|(at, release, record)| {
                    (
                        at,
                        release.key().version.to_string(),
                        record.id().to_string(),
                    )
                })
                .collect(),
        }
    }
}

/// `word ‖ 0x00 ‖ (255 − weight) ‖ member`: a word's packages, highest
/// weight first, then by `author/package`.
fn word_key(word: &str, weight: u32, member: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(word.len() + 2 + member.len());
    out.extend_from_slice(word.as_bytes());
    out.push(0);
    out.push(255 - u8::try_from(weight.min(255)).unwrap_or(255));
    out.extend_from_slice(member.as_bytes());
    out
}

/// `created_at ‖ author/package@version`.
fn recent_key(at: u64, member: &str, version: &str) -> Vec<u8> {
    let mut out = at.to_be_bytes().to_vec();
    out.extend_from_slice(member.as_bytes());
    out.push(b'@');
    out.extend_from_slice(version.as_bytes());
    out
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("catalog: {what}"))
}

/// Keeps the catalog in step with the writes of one transaction.
pub(super) struct CatalogWriter<'t> {
    catalog: Table<'t, &'static [u8], &'static [u8]>,
    words: Table<'t, &'static [u8], ()>,
    word_list: Table<'t, &'static str, u64>,
    recent: Table<'t, &'static [u8], &'static [u8]>,
    meta: Table<'t, &'static str, &'static [u8]>,
    totals: Totals,
    moved: bool,
}

impl<'t> CatalogWriter<'t> {
    pub(super) fn open(tx: &'t WriteTransaction) -> Result<Self, StoreError> {
        let meta = tx.open_table(META)?;
        let totals = match meta.get(TOTALS_KEY)? {
            Some(v) => serde_json::from_slice(v.value()).map_err(|_| corrupt("totals"))?,
            None => Totals::default(),
        };
        Ok(Self {
            catalog: tx.open_table(CATALOG)?,
            words: tx.open_table(WORDS)?,
            word_list: tx.open_table(WORD_LIST)?,
            recent: tx.open_table(RECENT)?,
            meta,
            totals,
            moved: false,
        })
    }

    /// Replaces the package's entry by the one of `state` (`None`: the
    /// package is gone).
    pub(super) fn update(
        &mut self,
        key: &PackageKey,
        state: Option<&PackageState>,
    ) -> Result<(), StoreError> {
        let prefix = package_prefix(key);
        let old: Option<Entry> = match self.catalog.get(&prefix[..])? {
            Some(v) => Some(serde_json::from_slice(v.value()).map_err(|_| corrupt("entry"))?),
            None => None,
        };
        let new = state.map(Entry::of);
        if old == new {
            return Ok(());
        }
        self.moved = true;
        let member = key.to_string();
        if let Some(old) = &old {
            self.totals.remove(&old.counts);
            for (word, weight) in &old.words {
                self.words.remove(&word_key(word, *weight, &member)[..])?;
                let left = self
                    .word_list
                    .get(word.as_str())?
                    .map_or(0, |v| v.value())
                    .saturating_sub(1);
                if left == 0 {
                    self.word_list.remove(word.as_str())?;
                } else {
                    self.word_list.insert(word.as_str(), left)?;
                }
            }
            for (at, version, _) in &old.recent {
                self.recent.remove(&recent_key(*at, &member, version)[..])?;
            }
            self.catalog.remove(&prefix[..])?;
        }
        if let Some(new) = &new {
            self.totals.add(&new.counts);
            for (word, weight) in &new.words {
                self.words
                    .insert(&word_key(word, *weight, &member)[..], ())?;
                let count = self.word_list.get(word.as_str())?.map_or(0, |v| v.value());
                self.word_list.insert(word.as_str(), count + 1)?;
            }
            for (at, version, id) in &new.recent {
                self.recent
                    .insert(&recent_key(*at, &member, version)[..], id.as_bytes())?;
            }
            let json = serde_json::to_vec(new).map_err(|_| corrupt("entry"))?;
            self.catalog.insert(&prefix[..], &json[..])?;
        }
        Ok(())
    }

    /// Saves the totals.
    pub(super) fn finish(mut self) -> Result<(), StoreError> {
        if self.moved {
            let json = serde_json::to_vec(&self.totals).map_err(|_| corrupt("totals"))?;
            self.meta.insert(TOTALS_KEY, &json[..])?;
        }
        Ok(())
    }
}

/// Builds the catalog when the store has none of this format yet (a store
/// written before it existed): one walk over every package.
pub(super) fn open(
    tx: &WriteTransaction,
    recs: &Table<'_, &'static [u8], &'static [u8]>,
    rels: &Table<'_, &'static [u8], &'static [u8]>,
) -> Result<(), StoreError> {
    {
        let meta = tx.open_table(META)?;
        let format = meta
            .get(VERSION_KEY)?
            .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes));
        if format == Some(FORMAT) {
            return Ok(());
        }
    }
    for table in [CATALOG, RECENT] {
        tx.delete_table(table)?;
    }
    tx.delete_table(WORDS)?;
    tx.delete_table(WORD_LIST)?;
    tx.delete_table(META)?;
    let mut writer = CatalogWriter::open(tx)?;
    writer.moved = true;
    let mut last: Option<Vec<u8>> = None;
    for entry in rels.iter()? {
        let (k, _) = entry?;
        let key = parse_release_key(k.value())?.package_key();
        let prefix = package_prefix(&key);
        if last.as_ref() == Some(&prefix) {
            continue;
        }
        let state = load_package(recs, rels, &key)?;
        writer.update(&key, state.as_ref())?;
        last = Some(prefix);
    }
    writer.meta.insert(VERSION_KEY, &FORMAT.to_be_bytes()[..])?;
    writer.finish()
}

/// Up to `limit` package keys after `after`, in key order (author bytes,
/// then name): every package the store has a release of.
pub(super) fn package_keys(
    tx: &ReadTransaction,
    after: Option<&PackageKey>,
    limit: usize,
) -> Result<Vec<PackageKey>, StoreError> {
    let catalog = tx.open_table(CATALOG)?;
    let start = after.map(package_prefix).unwrap_or_default();
    let mut out = Vec::new();
    for entry in catalog.range(&start[..]..)? {
        let (k, _) = entry?;
        let k = k.value();
        if after.is_some() && k == &start[..] {
            continue;
        }
        if out.len() == limit {
            break;
        }
        let (author, rest) = k
            .split_at_checked(32)
            .ok_or_else(|| corrupt("catalog key"))?;
        let name = rest
            .strip_suffix(&[0])
            .ok_or_else(|| corrupt("catalog key"))?;
        out.push(PackageKey {
            author: ipsr_proto::AuthorId::from_bytes(author).map_err(|_| corrupt("catalog key"))?,
            package: std::str::from_utf8(name)
                .ok()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| corrupt("catalog key"))?,
        });
    }
    Ok(out)
}

/// The totals over every package.
pub(super) fn totals(tx: &ReadTransaction) -> Result<Totals, StoreError> {
    let meta = tx.open_table(META)?;
    match meta.get(TOTALS_KEY)? {
        Some(v) => serde_json::from_slice(v.value()).map_err(|_| corrupt("totals")),
        None => Ok(Totals::default()),
    }
}

/// The most recent releases that are not yanked, newest `created_at` first
/// (ties: `author/package@version`, greatest first); at most `limit`.
pub(super) fn recent(
    tx: &ReadTransaction,
    recs: &ReadOnlyTable<&'static [u8], &'static [u8]>,
    limit: usize,
) -> Result<Vec<SignedRecord>, StoreError> {
    let table = tx.open_table(RECENT)?;
    let mut out = Vec::with_capacity(limit.min(1024));
    for entry in table.iter()?.rev().take(limit) {
        let (_, id) = entry?;
        let id: RecordId = std::str::from_utf8(id.value())
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| corrupt("recent id"))?;
        let bytes = recs
            .get(&id.as_bytes()[..])?
            .ok_or_else(|| corrupt("recent record missing"))?;
        out.push(verify_stored(bytes.value())?);
    }
    Ok(out)
}

/// The releases of [`recent`], in its order, from the keys alone.
pub(super) fn recent_keys(
    tx: &ReadTransaction,
    limit: usize,
) -> Result<Vec<ReleaseKey>, StoreError> {
    let table = tx.open_table(RECENT)?;
    let mut out = Vec::with_capacity(limit.min(1024));
    for entry in table.iter()?.rev().take(limit) {
        let (key, _) = entry?;
        let text = key
            .value()
            .get(8..)
            .and_then(|t| std::str::from_utf8(t).ok())
            .ok_or_else(|| corrupt("recent key"))?;
        let (member, version) = text.split_once('@').ok_or_else(|| corrupt("recent key"))?;
        let package = parse_member(member)?;
        out.push(ReleaseKey {
            author: package.author,
            package: package.package,
            version: version.parse().map_err(|_| corrupt("recent version"))?,
        });
    }
    Ok(out)
}

/// Packages matching `query`, best first; at most `limit` (see the module's
/// rules).
pub(super) fn search(
    tx: &ReadTransaction,
    query: &str,
    limit: usize,
) -> Result<Vec<Hit>, StoreError> {
    let query_words = search::query_words(query);
    if query_words.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let word_list = tx.open_table(WORD_LIST)?;
    let words = tx.open_table(WORDS)?;
    // Per query word, the packages it matches with their best weight.
    let mut found: Vec<HashMap<String, u32>> = Vec::with_capacity(query_words.len());
    for q in &query_words {
        let prefixes = q.chars().count() <= search::MAX_PREFIX;
        let mut matched = Vec::new();
        for entry in word_list.range(q.as_str()..)? {
            let (word, _) = entry?;
            let word = word.value();
            if !word.starts_with(q.as_str()) || matched.len() == WORDS_PER_QUERY_WORD {
                break;
            }
            if word == q || prefixes {
                matched.push(word.to_owned());
            }
        }
        let mut packages: HashMap<String, u32> = HashMap::new();
        'words: for word in &matched {
            let mut start = word.as_bytes().to_vec();
            start.push(0);
            let mut end = word.as_bytes().to_vec();
            end.push(1);
            for entry in words.range(&start[..]..&end[..])? {
                let (k, _) = entry?;
                let rest = &k.value()[start.len()..];
                let (&inverse, member) = rest.split_first().ok_or_else(|| corrupt("word key"))?;
                let weight = 255 - u32::from(inverse);
                let weight = if word == q {
                    weight
                } else if weight >= search::W_NAME {
                    search::W_NAME_PREFIX
                } else {
                    search::W_TITLE_PREFIX
                };
                let member = std::str::from_utf8(member).map_err(|_| corrupt("word key"))?;
                if let Some(best) = packages.get_mut(member) {
                    *best = (*best).max(weight);
                } else if packages.len() == CANDIDATES {
                    break 'words;
                } else {
                    packages.insert(member.to_owned(), weight);
                }
            }
        }
        if packages.is_empty() {
            return Ok(Vec::new());
        }
        found.push(packages);
    }
    found.sort_by_key(HashMap::len);
    let Some((first, rest)) = found.split_first() else {
        return Ok(Vec::new());
    };
    let mut scored: Vec<(u32, &str)> = first
        .iter()
        .filter_map(|(member, weight)| {
            rest.iter()
                .try_fold(*weight, |sum, other| {
                    other.get(member).map(|w| sum.saturating_add(*w))
                })
                .map(|score| (score, member.as_str()))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.truncate(limit);
    let catalog = tx.open_table(CATALOG)?;
    let mut hits = Vec::with_capacity(scored.len());
    for (score, member) in scored {
        let package = parse_member(member)?;
        let Some(row) = catalog.get(&package_prefix(&package)[..])? else {
            return Err(corrupt("word of a package without an entry"));
        };
        let entry: Entry = serde_json::from_slice(row.value()).map_err(|_| corrupt("entry"))?;
        let newest = entry
            .newest
            .map(|v| v.parse::<Version>())
            .transpose()
            .map_err(|_| corrupt("newest version"))?;
        hits.push(Hit {
            package,
            title: entry.title,
            newest,
            score,
        });
    }
    Ok(hits)
}

fn parse_member(member: &str) -> Result<PackageKey, StoreError> {
    let (author, package) = member.split_once('/').ok_or_else(|| corrupt("member"))?;
    Ok(PackageKey {
        author: author.parse().map_err(|_| corrupt("member author"))?,
        package: package.parse().map_err(|_| corrupt("member package"))?,
    })
}

#[cfg(test)]
mod tests {
    use ipsr_proto::{AuthorKey, PackageState, ReleaseKey};
    use ipsr_testkit::{cid, release, yank};
    use proptest::prelude::*;

    use super::super::Store;
    use super::super::tests::open;
    use super::*;
    use crate::listing::recent_entries;

    const NAMES: [&str; 4] = [
        "com.example.chat",
        "org.chat.client",
        "net.photo.editor",
        "com.exam.notes",
    ];
    const TITLES: [&str; 4] = [
        "Chat Pro",
        "Photo Editor",
        "Example notes",
        "Client for chat",
    ];
    const QUERIES: [&str; 10] = [
        "chat",
        "ch",
        "exam",
        "example",
        "photo edit",
        "client chat",
        "co",
        "notes pro",
        "zz",
        "c",
    ];

    /// Every package of the store, by reading each one.
    fn packages(store: &Store) -> Vec<PackageState> {
        let mut out: Vec<PackageState> = Vec::new();
        let mut after: Option<ReleaseKey> = None;
        loop {
            let page = store.release_keys(after.as_ref(), 100).unwrap();
            let Some(tail) = page.last().cloned() else {
                return out;
            };
            for key in page {
                let pk = key.package_key();
                if out.last().is_none_or(|p| p.key() != &pk) {
                    out.push(store.package(&pk).unwrap().unwrap());
                }
            }
            after = Some(tail);
        }
    }

    /// What the catalog answers, checked against reading every package.
    fn check(store: &Store) -> Result<(), TestCaseError> {
        for q in QUERIES {
            prop_assert_eq!(
                store.search(q, 50).unwrap(),
                search::scan(store, q, 50).unwrap(),
                "query {}",
                q
            );
        }
        let all = packages(store);
        let mut recent: Vec<(u64, String, SignedRecord)> = all
            .iter()
            .flat_map(|p| {
                recent_entries(p)
                    .into_iter()
                    .map(|(at, r, rec)| (at, r.key().to_string(), rec.clone()))
            })
            .collect();
        recent.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
        let recent: Vec<SignedRecord> = recent.into_iter().map(|(_, _, r)| r).take(7).collect();
        let keys: Vec<ReleaseKey> = recent.iter().map(SignedRecord::release_key).collect();
        prop_assert_eq!(store.recent(7).unwrap(), recent);
        prop_assert_eq!(store.recent_keys(7).unwrap(), keys);
        let mut totals = Totals::default();
        for p in &all {
            totals.add(&Counts::of(p));
        }
        prop_assert_eq!(store.totals().unwrap(), totals);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// Releases, replacements, yanks and conflicts in any batches: the
        /// catalog answers as a read of every package would, also when it
        /// is built anew from the records of a store that had none.
        #[test]
        fn catalog_answers_as_a_full_read(
            specs in proptest::collection::vec((0usize..4, 0usize..4, 0u8..3, 1u64..5, 0u8..3, any::<bool>(), 0u8..2), 1..30),
            batch in 1usize..6,
        ) {
            let keys = [AuthorKey::from_seed(&[1; 32]), AuthorKey::from_seed(&[2; 32])];
            let (dir, store) = open();
            let records: Vec<SignedRecord> = specs
                .iter()
                .map(|&(name, title, v, seq, c, is_yank, author)| {
                    let key = &keys[usize::from(author)];
                    let version = format!("1.{v}.0");
                    if is_yank {
                        yank(key, &version).package(NAMES[name]).seq(seq).sign()
                    } else {
                        release(key, &version)
                            .package(NAMES[name])
                            .title(TITLES[title])
                            .code(u64::from(v))
                            .seq(seq)
                            .cid(cid(u32::from(c)))
                            .sign()
                    }
                })
                .collect();
            for chunk in records.chunks(batch) {
                store.apply(chunk.to_vec()).unwrap();
                check(&store)?;
            }
            // A store from before the catalog: its catalog is built on open.
            let path = dir.path().join("store.redb");
            let before = store.search("chat", 50).unwrap();
            {
                let tx = store.db.begin_write().unwrap();
                tx.delete_table(META).unwrap();
                tx.delete_table(CATALOG).unwrap();
                tx.delete_table(WORDS).unwrap();
                tx.commit().unwrap();
            }
            drop(store);
            let store = Store::open(&path).unwrap();
            prop_assert_eq!(store.search("chat", 50).unwrap(), before);
            check(&store)?;
        }
    }

    #[test]
    fn caps_bound_what_one_query_word_reads() {
        let (_dir, store) = open();
        let key = AuthorKey::from_seed(&[3; 32]);
        // More packages with the word than one query word reads.
        let records: Vec<SignedRecord> = (0..CANDIDATES + 50)
            .map(|i| {
                release(&key, "1.0.0")
                    .package(&format!("com.many.app{i}"))
                    .title("Many")
                    .cid(cid(1))
                    .sign()
            })
            .collect();
        store.apply(records).unwrap();
        let hits = store.search("many", usize::MAX).unwrap();
        assert_eq!(hits.len(), CANDIDATES);
        assert!(hits.iter().all(|h| h.score == search::W_NAME));
        // The first ones in order are those a full read ranks first.
        let full = search::scan(&store, "many", 20).unwrap();
        assert_eq!(&hits[..20], &full[..]);
        assert_eq!(store.totals().unwrap().packages, (CANDIDATES + 50) as u64);
        assert_eq!(store.recent(5).unwrap().len(), 5);
    }
}
