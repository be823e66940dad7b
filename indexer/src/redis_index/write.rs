//! The write path (`docs/redis.md`, section 3): records folded into each
//! package's state and written with the compare-and-set `apply` script
//! ([`RedisIndex::write_packages`]), then the entries outside the
//! packages' slots and the counters ([`RedisIndex::sync_packages`]), and
//! the durable cursors of the nodes' logs.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipsr_proto::{
    AuthorId, Authority, Identity, IdentityState, KeyCache, PackageKey, Signed, SignedIdentity,
    SignedRecord,
};
use redis::Script;
use serde::Serialize;
use tracing::debug;

use super::derive::{Derived, Global};
use super::keys::{AuthorTexts, Names, search_keys, search_word};
use super::read::{push_read, take_exec};
use super::{Batch, RedisIndex, evalsha};
use crate::IndexError;
use crate::index::Counts;

/// What one [`RedisIndex::apply`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Packages whose state changed.
    pub changed: usize,
    /// Packages already in the state the records lead to (replays).
    pub unchanged: usize,
    /// Compare-and-set conflicts met (another writer was faster).
    pub conflicts: u64,
}

/// Packages whose new states [`RedisIndex::write_packages`] stored, and
/// whose entries outside their slots [`RedisIndex::sync_packages`] writes.
#[derive(Debug, Default)]
pub(crate) struct Unsynced(Vec<Pending>);

/// A package on its way through [`RedisIndex::apply`], with what its
/// `pkg:` hash says (or will say) about the global phase.
#[derive(Debug, Clone)]
struct Pending {
    key: PackageKey,
    names: Names,
    info: SyncInfo,
}

/// What the package hash (`pkg:{…}`) says about the global phase.
#[derive(Debug, Clone, Default)]
struct SyncInfo {
    hash: String,
    identity: String,
    synced: String,
    globals: BTreeSet<Global>,
    stale: BTreeSet<(String, String)>,
    counts: Counts,
}

impl SyncInfo {
    fn parse(key: &str, mut fields: HashMap<String, String>) -> Result<Self, IndexError> {
        fn field<T: serde::de::DeserializeOwned + Default>(
            key: &str,
            fields: &mut HashMap<String, String>,
            name: &str,
        ) -> Result<T, IndexError> {
            fields
                .remove(name)
                .map(|s| serde_json::from_str(&s))
                .transpose()
                .map(Option::unwrap_or_default)
                .map_err(|e| IndexError::corrupt(format!("{key} {name}"), e))
        }
        Ok(Self {
            hash: fields.remove("hash").unwrap_or_default(),
            identity: fields.remove("identity").unwrap_or_default(),
            synced: fields.remove("synced").unwrap_or_default(),
            globals: field(key, &mut fields, "globals")?,
            stale: field(key, &mut fields, "stale")?,
            counts: field(key, &mut fields, "counts")?,
        })
    }
}

/// What one batch does to a word's `s:` key: (score, member) pairs added,
/// members removed.
type WordChange<'a> = (Vec<(u64, &'a str)>, Vec<&'a str>);

impl RedisIndex {
    /// Applies verified records: per package, one compare-and-set script,
    /// then the entries outside the package's slot. Idempotent: applying
    /// records again, or in another order, or from several writers at once,
    /// leaves the same keys. When this returns `Ok`, every record is in.
    pub async fn apply(&self, records: &[SignedRecord]) -> Result<BatchOutcome, IndexError> {
        let items: Vec<Signed> = records.iter().cloned().map(Signed::Record).collect();
        self.apply_signed(&items).await
    }

    /// [`apply`](Self::apply) for records and identity documents: the
    /// documents first (`idn:{A}`), then the packages, those of every author
    /// whose document in force moved included.
    pub async fn apply_signed(&self, items: &[Signed]) -> Result<BatchOutcome, IndexError> {
        let (mut outcome, unsynced) = self.write_signed(items).await?;
        outcome.conflicts += self.sync_packages(&unsynced).await?;
        Ok(outcome)
    }

    /// Steps 0–3 for records and identity documents (see
    /// [`write_packages`](Self::write_packages)).
    pub(crate) async fn write_signed(
        &self,
        items: &[Signed],
    ) -> Result<(BatchOutcome, Unsynced), IndexError> {
        let docs: Vec<&SignedIdentity> = items
            .iter()
            .filter_map(|s| match s {
                Signed::Identity(d) => Some(d),
                Signed::Record(_) => None,
            })
            .collect();
        let records: Vec<SignedRecord> = items
            .iter()
            .filter_map(|s| match s {
                Signed::Record(r) => Some(r.clone()),
                Signed::Identity(_) => None,
            })
            .collect();
        let moved = self.write_identities(&docs).await?;
        let mut extra = self.packages_of(&moved).await?;
        let mut outcome = BatchOutcome::default();
        let mut unsynced = Unsynced::default();
        let mut records = &records[..];
        for _ in 0..self.max_conflicts {
            let (o, u, used) = self.write_packages(records, &extra).await?;
            outcome.changed += o.changed;
            outcome.unchanged += o.unchanged;
            outcome.conflicts += o.conflicts;
            unsynced.0.extend(u.0);
            // A document written meanwhile by another writer: the packages
            // derived under the head it replaced are derived again.
            let now = self.identities(used.keys().copied()).await?;
            let stale: BTreeSet<AuthorId> = used
                .iter()
                .filter(|(a, head)| now.get(*a).map(head_id) != Some((*head).clone()))
                .map(|(a, _)| *a)
                .collect();
            if stale.is_empty() {
                return Ok((outcome, unsynced));
            }
            outcome.conflicts += stale.len() as u64;
            extra = self.packages_of(&stale).await?;
            records = &[];
        }
        Err(IndexError::Contended {
            package: "identity documents".into(),
            attempts: self.max_conflicts,
        })
    }

    /// Adds identity documents to their authors' `idn:{A}` hashes; returns
    /// the authors whose document in force moved.
    async fn write_identities(
        &self,
        docs: &[&SignedIdentity],
    ) -> Result<BTreeSet<AuthorId>, IndexError> {
        let authors: BTreeSet<AuthorId> = docs.iter().map(|d| d.identity().author).collect();
        let mut states = self.identities(authors.iter().copied()).await?;
        let mut pipe = Batch::new();
        let mut writes = 0;
        let mut moved = BTreeSet::new();
        for author in &authors {
            let Some(state) = states.get_mut(author) else {
                continue;
            };
            let before: BTreeMap<String, SignedIdentity> = state
                .docs()
                .map(|d| (d.id().to_string(), d.clone()))
                .collect();
            let head = head_id(state);
            for d in docs.iter().filter(|d| d.identity().author == *author) {
                state
                    .apply((*d).clone())
                    .map_err(|e| IndexError::corrupt(self.keys.idn(author), e))?;
            }
            if head_id(state) != head {
                moved.insert(*author);
            }
            let after: BTreeMap<String, SignedIdentity> = state
                .docs()
                .map(|d| (d.id().to_string(), d.clone()))
                .collect();
            if before.keys().eq(after.keys()) {
                continue;
            }
            // One key: the new envelopes and the removal of those a merge
            // replaced go in together.
            let key = self.keys.idn(author);
            writes += 1;
            pipe.multi().ignore();
            for (id, d) in after.iter().filter(|(id, _)| !before.contains_key(*id)) {
                pipe.key_cmd("HSET", &key)
                    .arg(id)
                    .arg(d.to_bytes())
                    .ignore();
            }
            for id in before.keys().filter(|id| !after.contains_key(*id)) {
                pipe.key_cmd("HDEL", &key).arg(id).ignore();
            }
            pipe.exec().ignore();
        }
        if writes > 0 {
            self.run(&pipe).await?;
        }
        Ok(moved)
    }

    /// The packages of `authors` (`author:A`).
    async fn packages_of(
        &self,
        authors: &BTreeSet<AuthorId>,
    ) -> Result<Vec<PackageKey>, IndexError> {
        if authors.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = Batch::new();
        for a in authors {
            pipe.key_cmd("ZRANGE", &self.keys.global(&format!("author:{a}")))
                .arg(0)
                .arg(-1);
        }
        let replies = self.run(&pipe).await?;
        let mut out = Vec::new();
        for (author, reply) in authors.iter().zip(replies) {
            let names: Vec<String> = redis::from_redis_value(reply)?;
            for name in names {
                let package = name
                    .parse()
                    .map_err(|e| IndexError::corrupt(format!("author:{author}"), e))?;
                out.push(PackageKey {
                    author: *author,
                    package,
                });
            }
        }
        Ok(out)
    }

    /// The first part of [`apply`](Self::apply): stores the packages'
    /// new states (steps 1–3 of `docs/redis.md` section 3). The entries
    /// outside their slots are written by [`sync_packages`](Self::sync_packages)
    /// with what this returns; until then the records are in the packages'
    /// keys but not necessarily in search, recent, author and the counters.
    ///
    /// Also derives again the packages `extra` (under a new identity, say),
    /// and returns the identity id each author's packages were derived under.
    async fn write_packages(
        &self,
        records: &[SignedRecord],
        extra: &[PackageKey],
    ) -> Result<(BatchOutcome, Unsynced, BTreeMap<AuthorId, String>), IndexError> {
        let mut groups: BTreeMap<PackageKey, Vec<&SignedRecord>> = BTreeMap::new();
        for r in records {
            groups.entry(r.record().package_key()).or_default().push(r);
        }
        for pk in extra {
            groups.entry(pk.clone()).or_default();
        }
        let identities = self
            .identities(groups.keys().map(|pk| pk.author).collect::<BTreeSet<_>>())
            .await?;
        let used: BTreeMap<AuthorId, String> =
            identities.iter().map(|(a, s)| (*a, head_id(s))).collect();
        let mut authors = AuthorTexts::default();
        // The records read back are checked, each author's key once.
        let mut author_keys = KeyCache::default();
        let mut names: HashMap<PackageKey, Names> = groups
            .keys()
            .map(|pk| {
                let n = self.keys.names(pk, authors.get(&pk.author));
                (pk.clone(), n)
            })
            .collect();
        let mut outcome = BatchOutcome::default();
        let mut to_sync: Vec<Pending> = Vec::new();
        let mut pending: Vec<PackageKey> = groups.keys().cloned().collect();
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            if rounds > self.max_conflicts {
                return Err(IndexError::Contended {
                    package: pending[0].to_string(),
                    attempts: rounds - 1,
                });
            }
            let mut read = Batch::new();
            for pk in &pending {
                push_read(&mut read, &names[pk]);
            }
            let replies = take_exec(self.run(&read).await?);
            let mut write = Batch::new();
            let mut written: Vec<Pending> = Vec::new();
            let mut replies = replies.into_iter();
            for pk in pending.drain(..) {
                let n = names
                    .remove(&pk)
                    .expect("every pending package has its names");
                let (Some(pkg), Some(rel), Some(rec)) =
                    (replies.next(), replies.next(), replies.next())
                else {
                    return Err(IndexError::corrupt(&n.pkg, "short pipeline reply"));
                };
                let pkg: HashMap<String, String> = redis::from_redis_value(pkg)?;
                let rel: HashMap<String, String> = redis::from_redis_value(rel)?;
                let rec: HashMap<String, Vec<u8>> = redis::from_redis_value(rec)?;
                let info = SyncInfo::parse(&n.pkg, pkg)?;
                let identity = &identities[&pk.author];
                let old_authority = authority_of(identity, &info.identity)
                    .ok_or_else(|| IndexError::corrupt(&n.pkg, "identity document not held"))?;
                let mut state = self.rebuild_signers(&pk, rel, &rec, &mut author_keys)?;
                let old = Derived::of(&state, &old_authority, &info.identity, &n);
                if old.hash != info.hash && !info.hash.is_empty() {
                    return Err(IndexError::corrupt(
                        &n.pkg,
                        "hash does not match the releases",
                    ));
                }
                let authority = identity.authority();
                if authority != old_authority {
                    state.restrict(&authority);
                }
                for r in groups.get(&pk).into_iter().flatten() {
                    state
                        .apply((*r).clone(), &authority)
                        .map_err(|e| IndexError::corrupt(&n.pkg, e))?;
                }
                let new = Derived::of(&state, &authority, &used[&pk.author], &n);
                if new.hash == info.hash {
                    outcome.unchanged += 1;
                    if info.synced != info.hash {
                        to_sync.push(Pending {
                            key: pk,
                            names: n,
                            info,
                        });
                    }
                    continue;
                }
                let new_pairs: BTreeSet<(&str, &str)> = new
                    .globals
                    .iter()
                    .map(|(k, m, _)| (k.as_str(), m.as_str()))
                    .collect();
                let stale: BTreeSet<(String, String)> = info
                    .stale
                    .iter()
                    .cloned()
                    .chain(old.globals.iter().map(|(k, m, _)| (k.clone(), m.clone())))
                    .filter(|(k, m)| !new_pairs.contains(&(k.as_str(), m.as_str())))
                    .collect();
                push_apply(
                    &mut write,
                    &self.scripts.apply,
                    &pk,
                    &n,
                    &info.hash,
                    &old,
                    &new,
                    &stale,
                );
                written.push(Pending {
                    key: pk,
                    names: n,
                    info: SyncInfo {
                        identity: new.identity.clone(),
                        hash: new.hash,
                        synced: String::new(),
                        globals: new.globals,
                        stale,
                        counts: new.counts,
                    },
                });
            }
            if written.is_empty() {
                continue;
            }
            let results = self.run(&write).await?;
            for (p, ok) in written.into_iter().zip(results) {
                if redis::from_redis_value::<i64>(ok)? == 1 {
                    outcome.changed += 1;
                    to_sync.push(p);
                } else {
                    outcome.conflicts += 1;
                    debug!(package = %p.key, "write conflict: reading again");
                    names.insert(p.key.clone(), p.names);
                    pending.push(p.key);
                }
            }
        }
        Ok((outcome, Unsynced(to_sync), used))
    }

    /// The second part of [`apply`](Self::apply): the global phase for the
    /// packages [`write_packages`](Self::write_packages) stored. Idempotent;
    /// returns the compare-and-set conflicts met.
    pub(crate) async fn sync_packages(&self, unsynced: &Unsynced) -> Result<u64, IndexError> {
        self.sync_globals(Cow::Borrowed(&unsynced.0)).await
    }

    /// The global phase: writes the entries outside each package's slot for
    /// the state stored, removes stale ones, updates the counters, then marks
    /// the state synced if it is still current (else does it again).
    async fn sync_globals(&self, mut todo: Cow<'_, [Pending]>) -> Result<u64, IndexError> {
        // Per package done again, the entries this writer added in its
        // earlier rounds (to remove those its current state does not have).
        let mut added: HashMap<PackageKey, BTreeSet<(String, String)>> = HashMap::new();
        let mut conflicts = 0;
        let mut rounds = 0;
        while !todo.is_empty() {
            rounds += 1;
            if rounds > self.max_conflicts {
                return Err(IndexError::Contended {
                    package: todo[0].key.to_string(),
                    attempts: rounds - 1,
                });
            }
            // One ZADD / ZREM per key for the whole batch: the members of
            // different packages never overlap.
            let mut adds: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
            let mut rems: BTreeMap<String, Vec<String>> = BTreeMap::new();
            // The counters of every package, for one `counters` call.
            let mut counts: Vec<String> = Vec::with_capacity(todo.len() * 2);
            for p in todo.iter() {
                let info = &p.info;
                for (k, m, s) in &info.globals {
                    adds.entry(k).or_default().push((*s, m));
                }
                let mine = added.get(&p.key);
                if !info.stale.is_empty() || mine.is_some() {
                    let current: BTreeSet<(&str, &str)> = info
                        .globals
                        .iter()
                        .map(|(k, m, _)| (k.as_str(), m.as_str()))
                        .collect();
                    for (k, m) in info.stale.iter().chain(mine.into_iter().flatten()) {
                        if !current.contains(&(k.as_str(), m.as_str())) {
                            rems.entry(k.clone()).or_default().push(m.clone());
                        }
                    }
                }
                counts.push(p.names.member.clone());
                counts.push(to_json(&info.counts));
            }
            let recent = adds.contains_key("recent");
            // Of this batch's recent entries only the newest `recent_cap`
            // can survive the trim below, so only those are added (same
            // order as Redis's: score, then member).
            if let Some(entries) = adds.get_mut("recent")
                && entries.len() > self.recent_cap
            {
                entries.sort_unstable_by(|a, b| b.cmp(a));
                entries.truncate(self.recent_cap);
            }
            // The global entries go first, then (once every one is written)
            // the `finish` marks: two batches, as a cluster orders only the
            // commands of one slot.
            let mut pipe = Batch::new();
            // The search keys through the `word` script (which keeps the
            // word lists), the others with one ZADD / ZREM each.
            let mut words: BTreeMap<&str, WordChange<'_>> = BTreeMap::new();
            for (k, members) in &adds {
                match search_word(k) {
                    Some(_) => words
                        .entry(k)
                        .or_default()
                        .0
                        .extend(members.iter().copied()),
                    None => {
                        pipe.key_cmd("ZADD", &self.keys.global(k))
                            .arg(members)
                            .ignore();
                    }
                }
            }
            for (k, members) in &rems {
                match search_word(k) {
                    Some(_) => words
                        .entry(k.as_str())
                        .or_default()
                        .1
                        .extend(members.iter().map(String::as_str)),
                    None => {
                        pipe.key_cmd("ZREM", &self.keys.global(k))
                            .arg(members)
                            .ignore();
                    }
                }
            }
            for (k, (add, rem)) in &words {
                let word = search_word(k).unwrap_or_default();
                let (_, list) = search_keys(word);
                let mut args: Vec<String> = Vec::with_capacity(2 + add.len() * 2 + rem.len());
                args.push(word.to_owned());
                args.push(add.len().to_string());
                for (score, member) in add {
                    args.push(score.to_string());
                    args.push((*member).to_owned());
                }
                args.extend(rem.iter().map(|m| (*m).to_owned()));
                evalsha(
                    &mut pipe,
                    &self.scripts.word,
                    &[self.keys.global(k), self.keys.global(&list)],
                    &args,
                );
                pipe.ignore();
            }
            evalsha(
                &mut pipe,
                &self.scripts.counters,
                &[self.keys.stats(), self.keys.counted()],
                &counts,
            );
            pipe.ignore();
            if recent {
                let cap = i64::try_from(self.recent_cap).unwrap_or(i64::MAX);
                pipe.key_cmd("ZREMRANGEBYRANK", &self.keys.global("recent"))
                    .arg(0)
                    .arg(-(cap + 1))
                    .ignore();
            }
            self.run(&pipe).await?;
            let mut finish = Batch::new();
            for p in todo.iter() {
                evalsha(
                    &mut finish,
                    &self.scripts.finish,
                    std::slice::from_ref(&p.names.pkg),
                    std::slice::from_ref(&p.info.hash),
                );
            }
            let results = self.run(&finish).await?;
            let mut again = Vec::new();
            for (p, ok) in todo.iter().zip(results) {
                if redis::from_redis_value::<i64>(ok)? != 1 {
                    conflicts += 1;
                    added.entry(p.key.clone()).or_default().extend(
                        p.info
                            .globals
                            .iter()
                            .map(|(k, m, _)| (k.clone(), m.clone())),
                    );
                    again.push((p.key.clone(), p.names.clone()));
                }
            }
            if again.is_empty() {
                break;
            }
            let mut next = Vec::with_capacity(again.len());
            let mut read = Batch::new();
            for (_, n) in &again {
                read.key_cmd("HGETALL", &n.pkg);
            }
            for ((key, names), fields) in again.into_iter().zip(self.run(&read).await?) {
                let fields: HashMap<String, String> = redis::from_redis_value(fields)?;
                let info = SyncInfo::parse(&names.pkg, fields)?;
                if info.synced != info.hash {
                    next.push(Pending { key, names, info });
                }
            }
            todo = Cow::Owned(next);
        }
        Ok(conflicts)
    }
}

// The durable cursors of the nodes' logs (`docs/redis.md`, section 3,
// "Cursor").
impl RedisIndex {
    /// Reads the durable cursor of `node`'s log (0 when none).
    pub async fn cursor(&self, node: &str) -> Result<u64, IndexError> {
        let mut conn = self.conn.clone();
        let v: Option<u64> = redis::cmd("GET")
            .arg(self.keys.cursor(node))
            .query_async(&mut conn)
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// After a batch of `node`'s log from position `from` to `to` was
    /// written: raises the durable cursor to `to` (never lowers it, so
    /// several indexers of one node can share it). Returns `Err(cursor)`
    /// without changing it when it is below `from`: Redis lost data since
    /// the batch was read (e.g. restarted empty), and indexing must go
    /// back to `cursor`.
    pub async fn advance_cursor(
        &self,
        node: &str,
        from: u64,
        to: u64,
    ) -> Result<Result<(), u64>, IndexError> {
        let r = self.cursor_script(node, from, to, false).await?;
        Ok(if r >= 0 {
            Ok(())
        } else {
            Err(u64::try_from(-1 - r).unwrap_or(0))
        })
    }

    /// Sets `node`'s cursor to 0 (its store was replaced).
    pub async fn reset_cursor(&self, node: &str) -> Result<(), IndexError> {
        self.cursor_script(node, 0, 0, true).await.map(|_| ())
    }

    async fn cursor_script(
        &self,
        node: &str,
        from: u64,
        to: u64,
        force: bool,
    ) -> Result<i64, IndexError> {
        let mut pipe = Batch::new();
        evalsha(
            &mut pipe,
            &self.scripts.cursor,
            &[self.keys.cursor(node)],
            &[
                from.to_string(),
                to.to_string(),
                if force { "1" } else { "0" }.into(),
            ],
        );
        let reply = self.run(&pipe).await?.into_iter().next();
        Ok(reply
            .map(redis::from_redis_value::<i64>)
            .transpose()?
            .unwrap_or(1))
    }
}

/// Adds the `apply` script call writing the differences from `old` to
/// `new` if the package's hash is still `expected`.
#[allow(clippy::too_many_arguments)]
fn push_apply(
    pipe: &mut Batch,
    script: &Script,
    pk: &PackageKey,
    names: &Names,
    expected: &str,
    old: &Derived,
    new: &Derived,
    stale: &BTreeSet<(String, String)>,
) {
    /// Fields of `new` that are not in `old` with the same value, and
    /// fields of `old` not in `new`.
    fn set_diff<'a, V: PartialEq>(
        old: &'a BTreeMap<String, V>,
        new: &'a BTreeMap<String, V>,
    ) -> (Vec<(&'a String, &'a V)>, Vec<&'a String>) {
        let set = new.iter().filter(|(k, v)| old.get(*k) != Some(v)).collect();
        let del = old.keys().filter(|k| !new.contains_key(*k)).collect();
        (set, del)
    }
    let keys = [
        &names.pkg,
        &names.rel,
        &names.rec,
        &names.ver,
        &names.yanked,
    ];
    // The arguments go straight into the pipeline's buffer.
    pipe.cmd_in("EVALSHA", &names.pkg)
        .arg(script.get_hash())
        .arg(keys.len())
        .arg(&keys[..])
        .arg(expected)
        .arg(&new.hash);
    let (rel_set, rel_del) = set_diff(&old.rels, &new.rels);
    pipe.arg(rel_set.len()).arg(rel_set);
    pipe.arg(rel_del.len()).arg(rel_del);
    let (rec_set, rec_del) = set_diff(&old.recs, &new.recs);
    pipe.arg(rec_set.len()).arg(rec_set);
    pipe.arg(rec_del.len()).arg(rec_del);
    let (ver_set, ver_del) = set_diff(&old.vers, &new.vers);
    pipe.arg(ver_set.len());
    for (version, code) in ver_set {
        pipe.arg(code).arg(version);
    }
    pipe.arg(ver_del.len()).arg(ver_del);
    let yank: Vec<&String> = new.yanked.difference(&old.yanked).collect();
    pipe.arg(yank.len()).arg(yank);
    let unyank: Vec<&String> = old.yanked.difference(&new.yanked).collect();
    pipe.arg(unyank.len()).arg(unyank);
    let (counts, globals, stale) = (to_json(&new.counts), to_json(&new.globals), to_json(stale));
    let fields: [(&str, &str); 9] = [
        ("author", &names.author),
        ("package", pk.package.as_str()),
        ("title", &new.title),
        ("newest", &new.newest),
        ("counts", &counts),
        ("globals", &globals),
        ("stale", &stale),
        ("identity", &new.identity),
        ("apk_certs", &new.apk_certs),
    ];
    pipe.arg(fields.len()).arg(&fields[..]);
}

/// The identity id of an author's document in force, empty for the
/// implicit one.
fn head_id(state: &IdentityState) -> String {
    state
        .head()
        .map(|d| d.identity_id().to_string())
        .unwrap_or_default()
}

/// The authority of the author's document `id` (empty: the implicit one),
/// if the state holds it.
fn authority_of(state: &IdentityState, id: &str) -> Option<Authority> {
    if id.is_empty() {
        return Some(Identity::implicit(*state.author()).authority());
    }
    state
        .docs()
        .find(|d| d.identity_id().to_string() == id)
        .map(|d| d.identity().authority())
}

/// A value of the package hash as JSON.
fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("sets, maps, strings and numbers serialize")
}
