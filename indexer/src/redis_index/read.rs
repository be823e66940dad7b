//! The reads: a package's state rebuilt from its keys (also for the
//! writes, which fold new records into it), and the gateway's queries, the
//! [`Index`] implementation of [`RedisIndex`] (`docs/redis.md`, sections 4
//! and 5).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipsr_proto::{
    AuthorId, AuthorizedPackage, AuthorizedRelease, ContentId, IdentityState, KeyCache, PackageKey,
    PackageName, PackageState, ParseRecordIdError, RecordId, ReleaseKey, ReleaseParts,
    ReleaseState, Signed, SignedRecord,
};
use redis::Value;

use super::derive::{ReleaseRow, parse_apk_certs};
use super::keys::{Names, parse_package_member, parse_release_member, search_keys};
use super::{Batch, RedisIndex};
use crate::index::{BoxFuture, Hit, Index, IndexStats, PackageView, ViewToken};
use crate::{IndexError, search};

impl RedisIndex {
    /// Rebuilds a package's state from its `rel` and `rec` hashes (the
    /// authors' keys checked with `keys`).
    pub(super) fn rebuild(
        &self,
        pk: &PackageKey,
        rel: HashMap<String, String>,
        rec: &HashMap<String, Vec<u8>>,
        apk_certs: BTreeSet<[u8; 32]>,
        keys: &mut KeyCache,
    ) -> Result<PackageState, IndexError> {
        let mut state = PackageState::with_apk_certs(pk.clone(), apk_certs);
        for (version, row) in rel {
            let key = self.release_key(pk, &version)?;
            state
                .insert(self.release_state(pk, key, &row, rec, keys)?)
                .map_err(|e| IndexError::corrupt(self.keys.rel(pk), e))?;
        }
        Ok(state)
    }

    /// The release of `pk` a field of its `rel:` hash names.
    fn release_key(&self, pk: &PackageKey, version: &str) -> Result<ReleaseKey, IndexError> {
        Ok(ReleaseKey {
            author: pk.author,
            package: pk.package.clone(),
            version: version
                .parse()
                .map_err(|e| IndexError::corrupt(self.keys.rel(pk), e))?,
        })
    }

    /// Rebuilds each signer key's state of a package's releases from its
    /// `rel` and `rec` hashes, for a writer to fold records into. A row
    /// without `signers` holds the author key's state.
    pub(super) fn rebuild_signers(
        &self,
        pk: &PackageKey,
        rel: HashMap<String, String>,
        rec: &HashMap<String, Vec<u8>>,
        keys: &mut KeyCache,
    ) -> Result<AuthorizedPackage, IndexError> {
        let mut state = AuthorizedPackage::new(pk.clone());
        for (version, text) in rel {
            let key = self.release_key(pk, &version)?;
            let row: ReleaseRow = serde_json::from_str(&text)
                .map_err(|e| IndexError::corrupt(self.keys.rel(pk), e))?;
            let signers = match &row.signers {
                None => vec![(
                    pk.author,
                    self.release_state(pk, key.clone(), &text, rec, keys)?,
                )],
                Some(list) => list
                    .iter()
                    .map(|(signer, slots)| {
                        let signer: AuthorId = signer
                            .parse()
                            .map_err(|e| IndexError::corrupt(self.keys.rel(pk), e))?;
                        let slot_text = serde_json::to_string(&ReleaseRow::from_slots(slots))
                            .expect("a row of strings and bools");
                        Ok((
                            signer,
                            self.release_state(pk, key.clone(), &slot_text, rec, keys)?,
                        ))
                    })
                    .collect::<Result<_, IndexError>>()?,
            };
            let release = AuthorizedRelease::from_signers(key, signers)
                .map_err(|e| IndexError::corrupt(self.keys.rel(pk), e))?;
            state
                .insert(release)
                .map_err(|e| IndexError::corrupt(self.keys.rel(pk), e))?;
        }
        Ok(state)
    }

    /// The identity documents of `authors` (`idn:{A}`), each author's chain
    /// and head.
    pub(super) async fn identities(
        &self,
        authors: impl IntoIterator<Item = AuthorId>,
    ) -> Result<HashMap<AuthorId, IdentityState>, IndexError> {
        let authors: Vec<AuthorId> = authors.into_iter().collect();
        if authors.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = Batch::new();
        for a in &authors {
            pipe.key_cmd("HGETALL", &self.keys.idn(a));
        }
        let replies = self.run(&pipe).await?;
        let mut out = HashMap::with_capacity(authors.len());
        for (author, reply) in authors.into_iter().zip(replies) {
            out.insert(author, self.identity_state(author, reply)?);
        }
        Ok(out)
    }

    /// One author's identity (`HGETALL idn:{A}`), and its documents' ids.
    async fn identity_of(
        &self,
        author: AuthorId,
    ) -> Result<(IdentityState, Vec<String>), IndexError> {
        let mut conn = self.conn.clone();
        let reply: Value = redis::cmd("HGETALL")
            .arg(self.keys.idn(&author))
            .query_async(&mut conn)
            .await?;
        self.identity_with_ids(author, reply)
    }

    /// An author's identity from the reply to `HGETALL idn:{A}`.
    fn identity_state(&self, author: AuthorId, reply: Value) -> Result<IdentityState, IndexError> {
        Ok(self.identity_with_ids(author, reply)?.0)
    }

    /// [`identity_state`](Self::identity_state), and the fields of the
    /// reply (the documents' record ids).
    fn identity_with_ids(
        &self,
        author: AuthorId,
        reply: Value,
    ) -> Result<(IdentityState, Vec<String>), IndexError> {
        let docs: HashMap<String, Vec<u8>> = redis::from_redis_value(reply)?;
        let mut list = Vec::with_capacity(docs.len());
        for bytes in docs.values() {
            match SignedRecord::from_trusted_storage_any(bytes) {
                Ok(Signed::Identity(doc)) => list.push(doc),
                _ => {
                    return Err(IndexError::corrupt(
                        self.keys.idn(&author),
                        "not an identity document",
                    ));
                }
            }
        }
        let state = IdentityState::from_docs(author, list)
            .map_err(|e| IndexError::corrupt(self.keys.idn(&author), e))?;
        Ok((state, docs.into_keys().collect()))
    }

    fn release_state(
        &self,
        pk: &PackageKey,
        key: ReleaseKey,
        row: &str,
        rec: &HashMap<String, Vec<u8>>,
        keys: &mut KeyCache,
    ) -> Result<ReleaseState, IndexError> {
        // Only for errors: the text of an author id is costly.
        let where_ = || format!("{} {}", self.keys.rel(pk), key.version);
        let row: ReleaseRow =
            serde_json::from_str(row).map_err(|e| IndexError::corrupt(where_(), e))?;
        let mut load = |id: &str| -> Result<SignedRecord, IndexError> {
            let bytes = rec.get(id).ok_or_else(|| {
                IndexError::corrupt(self.keys.rec(pk), format!("missing record {id}"))
            })?;
            let corrupt = |e| IndexError::corrupt(format!("{} {id}", self.keys.rec(pk)), e);
            let id: RecordId = id
                .parse()
                .map_err(|e: ParseRecordIdError| corrupt(e.to_string()))?;
            ipsr_node::decoded::get_or_decode(id, bytes, |b| {
                SignedRecord::from_trusted_storage_cached(b, keys)
            })
            .map_err(|e| corrupt(e.to_string()))
        };
        let mut evidence = BTreeMap::new();
        for (cid, id) in &row.evidence {
            let cid: ContentId = cid.parse().map_err(|e| IndexError::corrupt(where_(), e))?;
            evidence.insert(cid, load(id)?);
        }
        let parts = ReleaseParts {
            release: row.release.as_deref().map(&mut load).transpose()?,
            release_equivocated: row.release_equivocated,
            yank: row.yank.as_deref().map(&mut load).transpose()?,
            yank_equivocated: row.yank_equivocated,
            evidence,
        };
        ReleaseState::from_parts(key.clone(), parts).map_err(|e| IndexError::corrupt(where_(), e))
    }

    async fn get_package(&self, pk: &PackageKey) -> Result<Option<PackageState>, IndexError> {
        // A state read before is answered again while the package's hash
        // is the one it was read under (`states`): one short reply instead
        // of every row and record.
        if let Some(kept) = self.states.get(pk) {
            let hash: Option<String> = redis::cmd("HGET")
                .arg(self.keys.pkg(pk))
                .arg("hash")
                .query_async(&mut self.conn.clone())
                .await?;
            if kept.is_current(&hash) {
                return Ok(Some(kept.value.clone()));
            }
        }
        Ok(self.read_package(pk).await?.0)
    }

    /// A package and its author's identity. With a kept state, its hash
    /// and the identity are asked in one batch (one round trip to one
    /// server), and the package's keys are read only if the hash moved.
    async fn get_package_with_identity(
        &self,
        pk: &PackageKey,
    ) -> Result<(Option<PackageState>, IdentityState), IndexError> {
        let read = self.read_view(pk).await?;
        Ok((read.state, read.identity))
    }

    /// [`Index::package_view`]: with a token, the package's hash and the
    /// ids of its author's identity documents are asked in one batch, and
    /// nothing more is read while they make the same token (the hash names
    /// the package's state, and each id is the hash of a document's bytes,
    /// so the ids name the identity: `docs/redis.md`, section 5).
    async fn get_package_view(
        &self,
        pk: &PackageKey,
        known: Option<&ViewToken>,
    ) -> Result<PackageView, IndexError> {
        if let Some(known) = known {
            let (hash, ids) = self.hash_and_identity(pk, "HKEYS").await?;
            let hash: Option<String> = redis::from_redis_value(hash)?;
            let ids: Vec<String> = redis::from_redis_value(ids)?;
            if let Some(hash) = hash
                && ViewToken::redis(&hash, ids.iter().map(String::as_str)) == *known
            {
                return Ok(PackageView::Unchanged);
            }
        }
        let read = self.read_view(pk).await?;
        let token = read
            .hash
            .as_deref()
            .map(|hash| ViewToken::redis(hash, read.identity_ids.iter().map(String::as_str)));
        Ok(PackageView::Read {
            state: read.state,
            identity: read.identity,
            token,
        })
    }

    /// A package and its author's identity, with what names them: a kept
    /// state's hash is asked with the identity in one batch, and the
    /// package's keys are read only if it moved.
    async fn read_view(&self, pk: &PackageKey) -> Result<ViewRead, IndexError> {
        let Some(kept) = self.states.get(pk) else {
            let ((state, hash), (identity, identity_ids)) =
                tokio::try_join!(self.read_package(pk), self.identity_of(pk.author))?;
            return Ok(ViewRead {
                state,
                hash,
                identity,
                identity_ids,
            });
        };
        let (hash, identity) = self.hash_and_identity(pk, "HGETALL").await?;
        let (identity, identity_ids) = self.identity_with_ids(pk.author, identity)?;
        let hash: Option<String> = redis::from_redis_value(hash)?;
        let (state, hash) = if kept.is_current(&hash) {
            (Some(kept.value.clone()), hash)
        } else {
            self.read_package(pk).await?
        };
        Ok(ViewRead {
            state,
            hash,
            identity,
            identity_ids,
        })
    }

    /// `HGET pkg: hash` and `command` (`HKEYS`, `HGETALL`) of the author's
    /// `idn:{A}`, in one batch: their two replies.
    async fn hash_and_identity(
        &self,
        pk: &PackageKey,
        command: &str,
    ) -> Result<(Value, Value), IndexError> {
        let mut pipe = Batch::new();
        pipe.key_cmd("HGET", &self.keys.pkg(pk)).arg("hash");
        pipe.key_cmd(command, &self.keys.idn(&pk.author));
        let mut replies = self.run(&pipe).await?.into_iter();
        match (replies.next(), replies.next()) {
            (Some(hash), Some(identity)) => Ok((hash, identity)),
            _ => Err(IndexError::corrupt(
                self.keys.pkg(pk),
                "short pipeline reply",
            )),
        }
    }

    /// A package's state rebuilt from all its keys (then kept, `states`),
    /// and the `hash` read with them.
    async fn read_package(
        &self,
        pk: &PackageKey,
    ) -> Result<(Option<PackageState>, Option<String>), IndexError> {
        let mut pipe = Batch::new();
        push_read(&mut pipe, &self.keys.names(pk, &pk.author.to_string()));
        let mut replies = take_exec(self.run(&pipe).await?).into_iter();
        let (Some(pkg), Some(rel), Some(rec)) = (replies.next(), replies.next(), replies.next())
        else {
            return Err(IndexError::corrupt(
                self.keys.rel(pk),
                "short pipeline reply",
            ));
        };
        let rel: HashMap<String, String> = redis::from_redis_value(rel)?;
        if rel.is_empty() {
            return Ok((None, None));
        }
        let mut pkg: HashMap<String, String> = redis::from_redis_value(pkg)?;
        let apk_certs = parse_apk_certs(&pkg.remove("apk_certs").unwrap_or_default())
            .map_err(|e| IndexError::corrupt(self.keys.pkg(pk), e))?;
        let rec: HashMap<String, Vec<u8>> = redis::from_redis_value(rec)?;
        let state = self.rebuild(pk, rel, &rec, apk_certs, &mut KeyCache::default())?;
        let hash = pkg.remove("hash");
        if let Some(hash) = &hash {
            let bytes = rec.values().map(Vec::len).sum();
            let weight = crate::states::estimate(&state, rec.len(), bytes);
            self.states
                .keep(pk.clone(), Some(hash.clone()), state.clone(), weight);
        }
        Ok((Some(state), hash))
    }

    async fn get_release(&self, key: &ReleaseKey) -> Result<Option<ReleaseState>, IndexError> {
        /// Reads of a row whose records a writer replaced in between.
        const ATTEMPTS: usize = 16;
        let pk = key.package_key();
        let mut conn = self.conn.clone();
        for _ in 0..ATTEMPTS {
            let row: Option<String> = redis::cmd("HGET")
                .arg(self.keys.rel(&pk))
                .arg(key.version.to_string())
                .query_async(&mut conn)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let parsed: ReleaseRow = serde_json::from_str(&row)
                .map_err(|e| IndexError::corrupt(self.keys.rel(&pk), e))?;
            let ids: Vec<&str> = parsed.ids().into_iter().collect();
            let rec = self.records(&pk, &ids).await?;
            // The row and its records are two reads: a writer that replaced
            // the release in between removed a record the row names. Read
            // both again (the package's write is one script, so a later
            // read sees a whole state).
            if ids.iter().all(|id| rec.contains_key(*id)) {
                return self
                    .release_state(&pk, key.clone(), &row, &rec, &mut KeyCache::default())
                    .map(Some);
            }
        }
        Err(IndexError::corrupt(
            self.keys.rec(&pk),
            format!("records of {key} missing in {ATTEMPTS} reads"),
        ))
    }

    async fn records(
        &self,
        pk: &PackageKey,
        ids: &[&str],
    ) -> Result<HashMap<String, Vec<u8>>, IndexError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(self.keys.rec(pk))
            .arg(ids)
            .query_async(&mut conn)
            .await?;
        Ok(ids
            .iter()
            .zip(values)
            .filter_map(|(id, v)| v.map(|v| ((*id).to_owned(), v)))
            .collect())
    }

    async fn get_recent(&self, limit: usize) -> Result<Vec<SignedRecord>, IndexError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        // Read a little more than asked: entries of a state being replaced
        // may be skipped below.
        let want = limit.min(self.recent_cap);
        let end = isize::try_from(want * 2).unwrap_or(isize::MAX) - 1;
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.global("recent"))
            .arg(0)
            .arg(end)
            .arg("REV")
            .query_async(&mut conn)
            .await?;
        let mut out = Vec::new();
        for m in members {
            let Some(key) = parse_release_member(&m) else {
                return Err(IndexError::corrupt(
                    self.keys.global("recent"),
                    format!("member {m}"),
                ));
            };
            if let Some(state) = self.get_release(&key).await?
                && !state.is_yanked()
                && let Some(r) = state.release()
            {
                out.push(r.clone());
                if out.len() == want {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn get_search(&self, query: &str, limit: usize) -> Result<Vec<Hit>, IndexError> {
        /// Candidates read per query word.
        const CANDIDATES: usize = 1000;
        /// Words read per query word from the word list.
        const WORDS_PER_QUERY_WORD: usize = 64;
        let words = search::query_words(query);
        if words.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // 1. Per query word, the indexed words it is a prefix of (itself
        // included, when it is a word).
        let mut pipe = Batch::new();
        for w in &words {
            pipe.key_cmd("ZRANGEBYLEX", &self.keys.global(&search_keys(w).1))
                .arg(format!("[{w}"))
                .arg([b"(".as_slice(), w.as_bytes(), &[0xff]].concat())
                .arg("LIMIT")
                .arg(0)
                .arg(WORDS_PER_QUERY_WORD);
        }
        let mut matched: Vec<Vec<String>> = Vec::with_capacity(words.len());
        for (w, reply) in words.iter().zip(self.run(&pipe).await?) {
            let mut found: Vec<String> = redis::from_redis_value(reply)?;
            // The word itself first: its packages weigh the most.
            if let Some(i) = found.iter().position(|f| f == w) {
                let exact = found.remove(i);
                found.insert(0, exact);
            }
            matched.push(found);
        }
        // 2. Their packages, highest weight first, up to CANDIDATES per
        // query word; the candidates are in every query word's set.
        if matched.iter().any(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let mut pipe = Batch::new();
        for found in &matched {
            for word in found {
                pipe.key_cmd("ZRANGE", &self.keys.global(&search_keys(word).0))
                    .arg(0)
                    .arg(CANDIDATES - 1)
                    .arg("REV");
            }
        }
        let mut replies = self.run(&pipe).await?.into_iter();
        let mut candidates: Option<BTreeSet<String>> = None;
        for found in &matched {
            let mut members = BTreeSet::new();
            for _ in found {
                let Some(reply) = replies.next() else {
                    return Err(IndexError::corrupt("s:", "short pipeline reply"));
                };
                let list: Vec<String> = redis::from_redis_value(reply)?;
                for m in list {
                    if members.len() == CANDIDATES {
                        break;
                    }
                    members.insert(m);
                }
            }
            candidates = Some(match candidates {
                None => members,
                Some(c) => c.intersection(&members).cloned().collect(),
            });
        }
        let candidates: Vec<PackageKey> = candidates
            .unwrap_or_default()
            .iter()
            .filter_map(|m| parse_package_member(m))
            .collect();
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = Batch::new();
        for pk in &candidates {
            pipe.key_cmd("HMGET", &self.keys.pkg(pk))
                .arg("title")
                .arg("newest");
        }
        let mut hits = Vec::new();
        for (pk, reply) in candidates.into_iter().zip(self.run(&pipe).await?) {
            let (title, newest): (Option<String>, Option<String>) = redis::from_redis_value(reply)?;
            let title = title.unwrap_or_default();
            // Scored again from the package's current title: an entry of a
            // state being replaced never ranks wrongly.
            let terms = search::terms(pk.package.as_str(), &title);
            if let Some(score) = search::score(&terms, &words) {
                let newest = newest
                    .filter(|n| !n.is_empty())
                    .map(|n| n.parse())
                    .transpose()
                    .map_err(|e| IndexError::corrupt(self.keys.pkg(&pk), e))?;
                hits.push(Hit {
                    package: pk,
                    title,
                    newest,
                    score,
                });
            }
        }
        search::sort(&mut hits);
        hits.truncate(limit);
        Ok(hits)
    }

    async fn get_stats(&self) -> Result<IndexStats, IndexError> {
        let mut conn = self.conn.clone();
        let map: HashMap<String, u64> = redis::cmd("HGETALL")
            .arg(self.keys.stats())
            .query_async(&mut conn)
            .await?;
        let get = |k: &str| map.get(k).copied().unwrap_or(0);
        Ok(IndexStats {
            packages: get("packages"),
            releases: get("releases"),
            records: get("records"),
            yanked: get("yanked"),
            conflicts: get("conflicts"),
        })
    }
}

/// The replies inside the `EXEC` replies of [`push_read`], flattened.
pub(super) fn take_exec(replies: Vec<Value>) -> Vec<Value> {
    replies
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items,
            other => vec![other],
        })
        .collect()
}

/// Reads a package's `pkg`, `rel` and `rec` hashes atomically (one
/// `MULTI`/`EXEC`: the keys share a slot), so no script runs in between.
pub(super) fn push_read(pipe: &mut Batch, names: &Names) {
    pipe.multi().ignore();
    pipe.key_cmd("HGETALL", &names.pkg).ignore();
    pipe.key_cmd("HGETALL", &names.rel).ignore();
    pipe.key_cmd("HGETALL", &names.rec).ignore();
    pipe.exec();
}

/// What a package view is rendered from, as read from Redis.
struct ViewRead {
    state: Option<PackageState>,
    /// `pkg:` `hash`, read with the state's keys or checked against the
    /// kept state's.
    hash: Option<String>,
    identity: IdentityState,
    /// The fields of `idn:{A}` the identity was built from.
    identity_ids: Vec<String>,
}

impl Index for RedisIndex {
    fn package<'a>(
        &'a self,
        key: &'a PackageKey,
    ) -> BoxFuture<'a, Result<Option<PackageState>, IndexError>> {
        Box::pin(self.get_package(key))
    }

    fn release<'a>(
        &'a self,
        key: &'a ReleaseKey,
    ) -> BoxFuture<'a, Result<Option<ReleaseState>, IndexError>> {
        Box::pin(self.get_release(key))
    }

    fn package_with_identity<'a>(
        &'a self,
        key: &'a PackageKey,
    ) -> BoxFuture<'a, Result<(Option<PackageState>, IdentityState), IndexError>> {
        Box::pin(self.get_package_with_identity(key))
    }

    fn package_view<'a>(
        &'a self,
        key: &'a PackageKey,
        known: Option<&'a ViewToken>,
    ) -> BoxFuture<'a, Result<PackageView, IndexError>> {
        Box::pin(self.get_package_view(key, known))
    }

    fn identity<'a>(
        &'a self,
        author: &'a AuthorId,
    ) -> BoxFuture<'a, Result<IdentityState, IndexError>> {
        Box::pin(async move { Ok(self.identity_of(*author).await?.0) })
    }

    fn author<'a>(
        &'a self,
        author: &'a AuthorId,
    ) -> BoxFuture<'a, Result<Vec<PackageName>, IndexError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let key = self.keys.global(&format!("author:{author}"));
            let names: Vec<String> = redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await?;
            let mut out = names
                .iter()
                .map(|n| n.parse().map_err(|e| IndexError::corrupt(&key, e)))
                .collect::<Result<Vec<PackageName>, _>>()?;
            out.sort();
            Ok(out)
        })
    }

    fn packages<'a>(
        &'a self,
        after: Option<&'a PackageKey>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<PackageKey>, IndexError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let key = self.keys.global("packages");
            let start = match after {
                Some(pk) => format!("({}/{}", pk.author, pk.package),
                None => "-".to_owned(),
            };
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(&key)
                .arg(start)
                .arg("+")
                .arg("BYLEX")
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query_async(&mut conn)
                .await?;
            members
                .iter()
                .map(|m| {
                    parse_package_member(m).ok_or_else(|| IndexError::corrupt(&key, "not A/N"))
                })
                .collect()
        })
    }

    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<SignedRecord>, IndexError>> {
        Box::pin(self.get_recent(limit))
    }

    fn search<'a>(
        &'a self,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Hit>, IndexError>> {
        Box::pin(self.get_search(query, limit))
    }

    fn record_bytes<'a>(
        &'a self,
        key: &'a ReleaseKey,
    ) -> BoxFuture<'a, Result<Vec<Vec<u8>>, IndexError>> {
        Box::pin(async move {
            let Some(state) = self.get_release(key).await? else {
                return Ok(Vec::new());
            };
            let ids: BTreeSet<RecordId> = state.records().into_keys().collect();
            let pk = key.package_key();
            let hex: Vec<String> = ids.iter().map(ToString::to_string).collect();
            let refs: Vec<&str> = hex.iter().map(String::as_str).collect();
            let mut map = self.records(&pk, &refs).await?;
            Ok(hex.iter().filter_map(|id| map.remove(id)).collect())
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<IndexStats, IndexError>> {
        Box::pin(self.get_stats())
    }
}
