//! The pure mapping from a package's state to its keys: every value the
//! keyspace holds for a package ([`Derived`]: release rows, records,
//! versions, yanked set, package document, entries outside its slot and the
//! content hash) follows from its signers' states ([`AuthorizedPackage`])
//! and its author's [`Authority`] alone, with no IO. This is what makes
//! writes converge (see the parent module).

use std::collections::{BTreeMap, BTreeSet};

use ipsr_proto::{
    AuthorId, Authority, AuthorizedPackage, AuthorizedRelease, ReleaseState, SignedRecord,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::{Names, search_keys};
use crate::index::{Counts, recent_entries, title};
use crate::search;

/// The saved form of one release, the value of a field of `rel:{…}`: the
/// state in force (what readers use), and, when the release's author has an
/// identity, each signer key's state (what writers fold records into).
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
    /// Per signer key (text), its state; absent when the only signer state
    /// is the author key's and it is the state in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) signers: Option<Vec<(String, SlotRow)>>,
}

/// One signer key's state of a release: its slots and evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SlotRow {
    pub(super) release: Option<String>,
    pub(super) release_equivocated: bool,
    pub(super) yank: Option<String>,
    pub(super) yank_equivocated: bool,
    pub(super) evidence: Vec<(String, String)>,
}

impl SlotRow {
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
        }
    }
}

impl ReleaseRow {
    /// A row holding one signer's slots (to read them as a release state).
    pub(super) fn from_slots(slots: &SlotRow) -> Self {
        Self {
            release: slots.release.clone(),
            release_equivocated: slots.release_equivocated,
            yank: slots.yank.clone(),
            yank_equivocated: slots.yank_equivocated,
            evidence: slots.evidence.clone(),
            yanked: false,
            conflict: false,
            version_code: None,
            created_at: None,
            signers: None,
        }
    }

    /// The row of `signers`' release, in force under `authority`.
    fn of_signers(signers: &AuthorizedRelease, authority: &Authority, author: &AuthorId) -> Self {
        let resolved = signers.resolve(authority);
        let mut row = Self::of(&resolved);
        let states = signers.signers();
        let plain = matches!(states.iter().next(), Some((k, s)) if states.len() == 1 && k == author && *s == resolved);
        if !plain && !states.is_empty() {
            row.signers = Some(
                states
                    .iter()
                    .map(|(k, s)| (k.to_string(), SlotRow::of(s)))
                    .collect(),
            );
        }
        row
    }

    fn of(state: &ReleaseState) -> Self {
        let slots = SlotRow::of(state);
        Self {
            release: slots.release,
            release_equivocated: slots.release_equivocated,
            yank: slots.yank,
            yank_equivocated: slots.yank_equivocated,
            evidence: slots.evidence,
            yanked: state.is_yanked(),
            conflict: state.conflicting_cids().is_some() || state.is_equivocated(),
            version_code: state
                .release()
                .and_then(|r| r.record().as_release())
                .map(|r| r.version_code),
            created_at: state.current().map(|r| r.record().created_at()),
            signers: None,
        }
    }

    /// The record ids the state in force names (what readers load).
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
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Derived {
    pub(super) rels: BTreeMap<String, String>,
    pub(super) recs: BTreeMap<String, Vec<u8>>,
    pub(super) vers: BTreeMap<String, u64>,
    pub(super) yanked: BTreeSet<String>,
    pub(super) globals: BTreeSet<Global>,
    pub(super) counts: Counts,
    pub(super) title: String,
    pub(super) newest: String,
    /// The identity id of the author's document the state is in force
    /// under, empty for the implicit one.
    pub(super) identity: String,
    /// The APK certificates that document names (rule 9), as a JSON list
    /// of hex strings; empty when it names none.
    pub(super) apk_certs: String,
    pub(super) hash: String,
}

impl Derived {
    /// The keys of a package of an author without identity documents.
    #[cfg(test)]
    pub(super) fn of_plain(state: &ipsr_proto::PackageState, names: &Names) -> Self {
        let mut signers = AuthorizedPackage::new(state.key().clone());
        let authority = ipsr_proto::Identity::implicit(state.key().author).authority();
        for release in state.releases() {
            let one = AuthorizedRelease::from_signers(
                release.key().clone(),
                [(state.key().author, release.clone())],
            )
            .expect("a release of this package");
            signers.insert(one).expect("a release of this package");
        }
        Self::of(&signers, &authority, "", names)
    }

    /// The keys of a package whose signers' states are `signers`, in force
    /// under `authority`, the author's document `identity` (identity id,
    /// empty for the implicit one).
    pub(super) fn of(
        signers: &AuthorizedPackage,
        authority: &Authority,
        identity: &str,
        names: &Names,
    ) -> Self {
        let mut d = Self {
            identity: identity.to_owned(),
            apk_certs: apk_certs_field(&authority.apk_certs),
            ..Self::default()
        };
        let state = &signers.resolve(authority);
        let pk = state.key();
        let member = &names.member;
        for r in signers.releases() {
            let version = r.key().version.to_string();
            let row = ReleaseRow::of_signers(r, authority, &pk.author);
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
            // Every record of every signer's state: writers rebuild them.
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
        if !d.identity.is_empty() {
            hasher.update(b"identity\0");
            hasher.update(d.identity.as_bytes());
            hasher.update(b"\n");
        }
        d.hash = hex::encode(hasher.finalize());
        d
    }
}

/// The `apk_certs` field of a package hash: a JSON list of hex strings, or
/// empty for none.
fn apk_certs_field(certs: &BTreeSet<[u8; 32]>) -> String {
    if certs.is_empty() {
        return String::new();
    }
    let list: Vec<String> = certs.iter().map(hex::encode).collect();
    serde_json::to_string(&list).expect("a list of strings")
}

/// Reads the `apk_certs` field of a package hash back.
pub(super) fn parse_apk_certs(field: &str) -> Result<BTreeSet<[u8; 32]>, String> {
    if field.is_empty() {
        return Ok(BTreeSet::new());
    }
    let list: Vec<String> = serde_json::from_str(field).map_err(|e| e.to_string())?;
    list.iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).map_err(|e| e.to_string())?;
            Ok(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! `Derived::of` without Redis: each test folds signed records into a
    //! `PackageState` and checks every key the state derives.

    use ipsr_proto::{AuthorKey, ContentId, PackageKey, PackageState};
    use ipsr_testkit::{T0, cid, key, release, yank};
    use proptest::prelude::*;

    use super::super::keys::Keys;
    use super::*;

    fn names(pk: &PackageKey) -> Names {
        let keys = Keys {
            prefix: "ipsr:".into(),
        };
        keys.names(pk, &pk.author.to_string())
    }

    /// The keys of the package of `records[0]` after folding `records` in
    /// this order.
    fn derive(records: &[SignedRecord]) -> Derived {
        let pk = records[0].record().package_key();
        let mut state = PackageState::new(pk.clone());
        for r in records {
            state.apply(r.clone()).expect("a record of this package");
        }
        Derived::of_plain(&state, &names(&pk))
    }

    fn global(key: &str, member: &str, score: u64) -> Global {
        (key.to_owned(), member.to_owned(), score)
    }

    /// `docs/redis.md` section 1: SHA-256 over `V ‖ 0x00 ‖ row ‖ "\n"` for
    /// each row, in the byte order of `V`.
    fn hash_of(rows: &[(&str, &str)]) -> String {
        let mut bytes = Vec::new();
        for (version, row) in rows {
            bytes.extend_from_slice(version.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(row.as_bytes());
            bytes.push(b'\n');
        }
        hex::encode(Sha256::digest(&bytes))
    }

    #[test]
    fn one_release_derives_its_row_record_version_words_and_recent_entry() {
        let k = key(1);
        let r = release(&k, "1.0.0")
            .package("com.example.chat")
            .code(3)
            .seq(5)
            .cid(cid(1))
            .title("Chat Pro")
            .sign();
        let d = derive(std::slice::from_ref(&r));
        let (id, author) = (r.id().to_string(), k.author_id().to_string());
        let member = format!("{author}/com.example.chat");

        // The row is the documented JSON, field for field.
        let row = format!(
            "{{\"release\":\"{id}\",\"release_equivocated\":false,\"yank\":null,\
             \"yank_equivocated\":false,\"evidence\":[[\"{}\",\"{id}\"]],\"yanked\":false,\
             \"conflict\":false,\"version_code\":3,\"created_at\":{}}}",
            cid(1),
            T0 + 5
        );
        assert_eq!(d.rels, BTreeMap::from([("1.0.0".to_owned(), row.clone())]));
        assert_eq!(d.recs, BTreeMap::from([(id.clone(), r.to_bytes())]));
        assert_eq!(d.vers, BTreeMap::from([("1.0.0".to_owned(), 3)]));
        assert!(d.yanked.is_empty());
        assert_eq!(d.title, "Chat Pro");
        assert_eq!(d.newest, "1.0.0");
        assert_eq!(
            d.counts,
            Counts {
                releases: 1,
                records: 1,
                yanked: 0,
                conflicts: 0
            }
        );
        // Whole words of the name and the title, each in its bucket, with
        // the weight of its best use ("chat" is the name's last segment).
        let expected: BTreeSet<Global> = [
            global("packages", &member, 0),
            global(&format!("author:{author}"), "com.example.chat", 0),
            global("s:{co}com", &member, u64::from(search::W_NAME)),
            global("s:{ex}example", &member, u64::from(search::W_NAME)),
            global("s:{ch}chat", &member, u64::from(search::W_NAME_LAST)),
            global("s:{pr}pro", &member, u64::from(search::W_TITLE)),
            global("recent", &format!("{member}@1.0.0"), T0 + 5),
        ]
        .into();
        assert_eq!(d.globals, expected);
        assert_eq!(d.hash, hash_of(&[("1.0.0", &row)]));
    }

    #[test]
    fn a_higher_seq_replaces_the_record_of_its_version() {
        let k = key(1);
        let notes = release(&k, "1.0.0")
            .package("com.example.notes")
            .cid(cid(7));
        let old = notes.clone().seq(1).title("Old Notes").sign();
        let fix = notes.seq(2).title("Notes Fixed").sign();
        let before = derive(std::slice::from_ref(&old));
        let d = derive(&[old.clone(), fix.clone()]);
        let member = format!("{}/com.example.notes", k.author_id());

        let row: ReleaseRow = serde_json::from_str(&d.rels["1.0.0"]).expect("a row");
        assert_eq!(row.release, Some(fix.id().to_string()));
        // The old record is gone: same CID, so the fix is its evidence too.
        assert_eq!(row.evidence, [(cid(7).to_string(), fix.id().to_string())]);
        assert_eq!(d.recs.keys().collect::<Vec<_>>(), [&fix.id().to_string()]);
        assert_eq!(d.title, "Notes Fixed");
        let words: BTreeSet<&str> = d
            .globals
            .iter()
            .filter_map(|(k, _, _)| k.strip_prefix("s:"))
            .collect();
        assert!(words.contains("{fi}fixed"), "{words:?}");
        assert!(!words.contains("{ol}old"), "{words:?}");
        let recent: Vec<&Global> = d.globals.iter().filter(|g| g.0 == "recent").collect();
        assert_eq!(
            recent,
            [&global("recent", &format!("{member}@1.0.0"), T0 + 2)]
        );
        assert_ne!(d.hash, before.hash);
    }

    #[test]
    fn a_newer_version_becomes_the_newest_and_gives_the_title() {
        let k = key(2);
        let v1 = release(&k, "1.0.0")
            .package("org.demo.notes")
            .code(10)
            .seq(1)
            .cid(cid(1))
            .title("Old Notes")
            .sign();
        let v2 = release(&k, "1.1.0")
            .package("org.demo.notes")
            .code(11)
            .seq(2)
            .cid(cid(2))
            .title("Notes Plus")
            .sign();
        let d = derive(&[v1.clone(), v2.clone()]);
        let member = format!("{}/org.demo.notes", k.author_id());

        assert_eq!(d.newest, "1.1.0");
        assert_eq!(d.title, "Notes Plus");
        assert_eq!(
            d.vers,
            BTreeMap::from([("1.0.0".to_owned(), 10), ("1.1.0".to_owned(), 11)])
        );
        assert_eq!(
            d.rels.keys().collect::<Vec<_>>(),
            [&"1.0.0".to_owned(), &"1.1.0".to_owned()]
        );
        assert_eq!(
            d.recs.keys().cloned().collect::<BTreeSet<_>>(),
            BTreeSet::from([v1.id().to_string(), v2.id().to_string()])
        );
        assert_eq!((d.counts.releases, d.counts.records), (2, 2));
        // Search follows the newest title only; recent lists both.
        assert!(
            d.globals
                .contains(&global("s:{pl}plus", &member, u64::from(search::W_TITLE)))
        );
        assert!(!d.globals.iter().any(|g| g.0 == "s:{ol}old"));
        assert!(
            d.globals
                .contains(&global("recent", &format!("{member}@1.0.0"), T0 + 1))
        );
        assert!(
            d.globals
                .contains(&global("recent", &format!("{member}@1.1.0"), T0 + 2))
        );
        let rows: Vec<(&str, &str)> = d
            .rels
            .iter()
            .map(|(v, r)| (v.as_str(), r.as_str()))
            .collect();
        assert_eq!(d.hash, hash_of(&rows));
    }

    #[test]
    fn a_yanked_release_leaves_recent_search_title_and_newest() {
        let k = key(3);
        let chat = release(&k, "1.0.0")
            .package("com.example.chat")
            .code(3)
            .cid(cid(1))
            .title("Chat Pro");
        let r = chat.clone().seq(1).sign();
        let y = yank(&k, "1.0.0").package("com.example.chat").seq(2).sign();
        let d = derive(&[r.clone(), y.clone()]);
        let author = k.author_id().to_string();
        let member = format!("{author}/com.example.chat");

        assert_eq!(d.yanked, BTreeSet::from(["1.0.0".to_owned()]));
        // The release slot still holds its record and version code.
        assert_eq!(d.vers, BTreeMap::from([("1.0.0".to_owned(), 3)]));
        let row: ReleaseRow = serde_json::from_str(&d.rels["1.0.0"]).expect("a row");
        assert_eq!(row.release, Some(r.id().to_string()));
        assert_eq!(row.yank, Some(y.id().to_string()));
        assert!(row.yanked);
        assert_eq!(row.created_at, Some(T0 + 2), "the yank decides the state");
        assert_eq!(d.recs.len(), 2);
        assert_eq!(
            d.counts,
            Counts {
                releases: 1,
                records: 2,
                yanked: 1,
                conflicts: 0
            }
        );
        assert_eq!(d.title, "");
        assert_eq!(d.newest, "");
        // Still listed and found by name; no longer recent, nor by title.
        let expected: BTreeSet<Global> = [
            global("packages", &member, 0),
            global(&format!("author:{author}"), "com.example.chat", 0),
            global("s:{co}com", &member, u64::from(search::W_NAME)),
            global("s:{ex}example", &member, u64::from(search::W_NAME)),
            global("s:{ch}chat", &member, u64::from(search::W_NAME_LAST)),
        ]
        .into();
        assert_eq!(d.globals, expected);
        // A later release restores it.
        let back = chat.seq(3).sign();
        let d = derive(&[r, y, back]);
        assert!(d.yanked.is_empty());
        assert_eq!(d.newest, "1.0.0");
        assert!(
            d.globals
                .contains(&global("recent", &format!("{member}@1.0.0"), T0 + 3))
        );
    }

    #[test]
    fn two_packages_of_one_author_share_the_author_key_not_members() {
        let k = key(4);
        let chat = |key: &AuthorKey| {
            release(key, "1.0.0")
                .package("com.example.chat")
                .seq(1)
                .cid(cid(1))
                .title("Chat")
                .sign()
        };
        let a = derive(&[chat(&k)]);
        let notes = release(&k, "2.0.0")
            .package("org.demo.notes")
            .seq(1)
            .cid(cid(2))
            .title("Notes")
            .sign();
        let b = derive(&[notes]);
        let author = k.author_id().to_string();
        let key_of = |d: &Derived, suffix: &str| -> Vec<(String, u64)> {
            d.globals
                .iter()
                .filter(|(k, _, _)| k == suffix)
                .map(|(_, m, s)| (m.clone(), *s))
                .collect()
        };
        let author_key = format!("author:{author}");
        assert_eq!(
            key_of(&a, &author_key),
            [("com.example.chat".to_owned(), 0)]
        );
        assert_eq!(key_of(&b, &author_key), [("org.demo.notes".to_owned(), 0)]);
        assert_eq!(
            key_of(&a, "packages"),
            [(format!("{author}/com.example.chat"), 0)]
        );
        assert_eq!(
            key_of(&b, "packages"),
            [(format!("{author}/org.demo.notes"), 0)]
        );
        // The writer batches the global entries of many packages into one
        // ZADD per key: two packages never share a (key, member) pair.
        let pairs = |d: &Derived| -> BTreeSet<(String, String)> {
            d.globals
                .iter()
                .map(|(k, m, _)| (k.clone(), m.clone()))
                .collect()
        };
        assert!(pairs(&a).is_disjoint(&pairs(&b)));
        // Another author's package of the same name is another member.
        let other = key(5);
        let c = derive(&[chat(&other)]);
        assert!(pairs(&a).is_disjoint(&pairs(&c)));
        assert_eq!(
            key_of(&c, &format!("author:{}", other.author_id())),
            [("com.example.chat".to_owned(), 0)]
        );
    }

    #[test]
    fn a_cid_conflict_keeps_both_records_and_is_counted() {
        let k = key(6);
        let app = release(&k, "1.0.0").title("App");
        let first = app.clone().seq(1).cid(cid(1)).sign();
        let other = app.seq(2).cid(cid(2)).sign();
        let d = derive(&[first.clone(), other.clone()]);
        let row: ReleaseRow = serde_json::from_str(&d.rels["1.0.0"]).expect("a row");
        assert_eq!(row.release, Some(other.id().to_string()));
        let mut evidence = vec![
            (cid(1).to_string(), first.id().to_string()),
            (cid(2).to_string(), other.id().to_string()),
        ];
        evidence.sort_by_key(|(c, _)| c.parse::<ContentId>().expect("cid"));
        assert_eq!(row.evidence, evidence);
        assert!(row.conflict);
        assert_eq!(d.recs.len(), 2);
        assert_eq!((d.counts.records, d.counts.conflicts), (2, 1));
    }

    /// Every order of `0..n`.
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        let Some(last) = n.checked_sub(1) else {
            return vec![Vec::new()];
        };
        let mut out = Vec::new();
        for p in permutations(last) {
            for at in 0..=p.len() {
                let mut q = p.clone();
                q.insert(at, last);
                out.push(q);
            }
        }
        out
    }

    #[test]
    fn the_same_records_in_any_order_derive_the_same_keys() {
        let k = key(7);
        let p = "com.example.chat";
        let v100 = release(&k, "1.0.0").package(p).cid(cid(1));
        let v110 = release(&k, "1.1.0").package(p).code(2).seq(4).cid(cid(2));
        let records = [
            v100.clone().seq(1).title("Chat").sign(),
            // A metadata fix, then a CID conflict of the same version.
            v100.clone().seq(2).title("Chat Fixed").sign(),
            v100.seq(3).cid(cid(9)).title("Chat Other").sign(),
            // A newer version, and an equivocation of it (same seq).
            v110.clone().title("Chat Two").sign(),
            v110.title("Chat Deux").sign(),
            yank(&k, "1.0.0").package(p).seq(5).sign(),
        ];
        let orders = permutations(records.len());
        assert_eq!(orders.iter().collect::<BTreeSet<_>>().len(), 720);
        let expected = derive(&records);
        assert_eq!(expected.rels.len(), 2);
        assert_eq!(expected.yanked, BTreeSet::from(["1.0.0".to_owned()]));
        assert_eq!(expected.counts.conflicts, 2);
        let equivocated: ReleaseRow = serde_json::from_str(&expected.rels["1.1.0"]).expect("a row");
        assert!(equivocated.release_equivocated && equivocated.conflict);
        for order in &orders {
            let shuffled: Vec<SignedRecord> = order.iter().map(|&i| records[i].clone()).collect();
            assert_eq!(
                derive(&shuffled),
                expected,
                "records in the order {order:?}"
            );
        }
        // Replays change nothing either.
        let twice: Vec<SignedRecord> = records
            .iter()
            .chain(records.iter().rev())
            .cloned()
            .collect();
        assert_eq!(derive(&twice), expected);
    }

    /// One record of `com.example.app` by one author: (version 1.0.0, 1.1.0
    /// or 2.0.0, seq, CID, title, a yank or a release). A small universe, so
    /// that replacements, conflicts, equivocations and yanks are common.
    type Spec = (usize, u64, u32, usize, bool);

    fn sign(k: &AuthorKey, (v, seq, cid_n, title, is_yank): Spec) -> SignedRecord {
        let version = ["1.0.0", "1.1.0", "2.0.0"][v];
        if is_yank {
            yank(k, version).seq(seq).sign()
        } else {
            let title = ["Chat", "Chat Pro", "Notes"][title];
            release(k, version)
                .code(v as u64 + 1)
                .seq(seq)
                .cid(cid(cid_n))
                .title(title)
                .sign()
        }
    }

    /// Up to eight records and an order of them.
    fn records_and_order() -> impl Strategy<Value = (Vec<Spec>, Vec<usize>)> {
        let spec = (0..3usize, 1..5u64, 1..4u32, 0..3usize, any::<bool>());
        proptest::collection::vec(spec, 1..=8).prop_flat_map(|specs| {
            let order: Vec<usize> = (0..specs.len()).collect();
            (Just(specs), Just(order).prop_shuffle())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn any_records_in_any_order_derive_the_same_keys(
            (specs, order) in records_and_order()
        ) {
            let k = key(8);
            let records: Vec<SignedRecord> = specs.iter().map(|s| sign(&k, *s)).collect();
            let shuffled: Vec<SignedRecord> = order.iter().map(|&i| records[i].clone()).collect();
            prop_assert_eq!(derive(&records), derive(&shuffled));
        }
    }
}
