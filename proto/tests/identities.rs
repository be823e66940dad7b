//! The ordering rules with identity documents (`docs/records.md`, sections
//! 8 and 9): whatever order records and documents arrive in, once every
//! record has been offered again after the documents it depends on (what
//! sync does), every node holds the same state.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use ipsr_proto::{
    AuthorKey, AuthorizedRelease, ContentId, Identity, IdentityChange, IdentityState, PackageName,
    Release, Signed, SignedIdentity, SignedRecord, Version, Yank, cert_checks, newest_authorized,
};
use proptest::prelude::*;
use proptest::sample::subsequence;

/// Keys 0 (the author's first key) to 4.
fn keys() -> Vec<AuthorKey> {
    (0..5)
        .map(|n| AuthorKey::from_seed(&[40 + n; 32]))
        .collect()
}

fn cid(n: u8) -> ContentId {
    let mh = multihash::Multihash::<64>::wrap(0x12, &[n; 32]).unwrap();
    ContentId::new(cid::Cid::new_v1(0x55, mh)).unwrap()
}

fn package() -> PackageName {
    "com.example.app".parse().unwrap()
}

fn version(n: u8) -> Version {
    format!("1.{n}.0").parse().unwrap()
}

/// What a node holds for one author: the identity chain and, per version,
/// the signers' states. `apply` is what a node does with one record.
#[derive(Clone)]
struct Node {
    identity: IdentityState,
    releases: BTreeMap<Version, AuthorizedRelease>,
}

impl Node {
    fn new(keys: &[AuthorKey]) -> Self {
        Self {
            identity: IdentityState::new(keys[0].author_id()),
            releases: BTreeMap::new(),
        }
    }

    /// Applies one record; whether anything held changed.
    fn apply(&mut self, signed: &Signed) -> bool {
        match signed {
            Signed::Identity(doc) => {
                let applied = self.identity.apply(doc.clone()).unwrap();
                if applied.head_moved {
                    let authority = self.identity.authority();
                    for release in self.releases.values_mut() {
                        release.restrict(&authority);
                    }
                }
                applied.change.is_kept() || applied.head_moved
            }
            Signed::Record(record) => {
                let authority = self.identity.authority();
                let key = record.release_key();
                let delta = self
                    .releases
                    .entry(key.version.clone())
                    .or_insert_with(|| AuthorizedRelease::new(key))
                    .apply(record.clone(), &authority)
                    .unwrap();
                !delta.is_empty()
            }
        }
    }

    /// Offers every record again until nothing changes, as sync does.
    fn settle(&mut self, records: &[Signed]) {
        for _ in 0..64 {
            let mut changed = false;
            for r in records {
                changed |= self.apply(r);
            }
            if !changed {
                return;
            }
        }
        panic!("no fixpoint after 64 rounds");
    }

    /// Everything that must agree between nodes.
    fn summary(&self) -> String {
        let authority = self.identity.authority();
        let docs: BTreeSet<_> = self.identity.docs().map(|d| d.id()).collect();
        let mut out = format!(
            "head {:?} docs {:?} forks {:?}\n",
            self.identity.head().map(|d| d.identity_id()),
            docs,
            self.identity.forks()
        );
        for (v, r) in &self.releases {
            out += &format!(
                "{v}: held {:?} release {:?} yank {:?} yanked {} pending {:?} conflicts {:?}\n",
                r.records().keys().collect::<Vec<_>>(),
                r.release(&authority).map(|r| r.id()),
                r.yank(&authority).map(|r| r.id()),
                r.is_yanked(&authority),
                r.pending(&authority).map(|r| r.id()),
                r.conflicting_cids(&authority),
            );
        }
        let in_force = self
            .releases
            .values()
            .filter_map(|r| r.release(&authority)?.record().as_release());
        let certs = cert_checks(in_force, &authority.apk_certs);
        let newest = newest_authorized(self.releases.values(), &authority).map(|r| r.id());
        out + &format!("certificates {certs:?}\nnewest {newest:?}")
    }
}

/// One identity document: which earlier document it follows (`None`: the
/// first), its signers, admins and thresholds, and which keys sign it.
#[derive(Debug, Clone)]
struct DocSpec {
    parent: Option<usize>,
    signers: Vec<usize>,
    threshold: u32,
    admins: Vec<usize>,
    admin_threshold: u32,
    signed_by: Vec<usize>,
    later: u64,
    /// APK certificates (numbers 0..3) the document allows (rule 9).
    apk_certs: Vec<u8>,
}

fn key_set() -> impl Strategy<Value = Vec<usize>> {
    subsequence((0..5).collect::<Vec<usize>>(), 1..=3)
}

fn doc_spec() -> impl Strategy<Value = DocSpec> {
    (
        proptest::option::of(0usize..4),
        key_set(),
        1u32..3,
        key_set(),
        1u32..3,
        key_set(),
        0u64..3,
        subsequence(vec![0u8, 1, 2], 0..=2),
    )
        .prop_map(
            |(parent, signers, t, admins, at, signed_by, later, apk_certs)| DocSpec {
                threshold: t.min(signers.len() as u32),
                admin_threshold: at.min(admins.len() as u32),
                parent,
                signers,
                admins,
                signed_by,
                later,
                apk_certs,
            },
        )
}

/// Builds the documents in order; a spec whose parent is not an earlier
/// document follows the implicit one.
fn build_docs(keys: &[AuthorKey], specs: &[DocSpec]) -> Vec<SignedIdentity> {
    let mut docs: Vec<SignedIdentity> = Vec::new();
    for spec in specs {
        let parent = spec.parent.and_then(|p| docs.get(p));
        let base = parent.map_or(1_000, |p| p.identity().seq + 1);
        let ids = |list: &[usize]| {
            let mut ids: Vec<_> = list.iter().map(|&k| keys[k].author_id()).collect();
            ids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            ids
        };
        let seq = base + spec.later;
        let doc = Identity {
            prev: parent.map(|p| p.identity_id()),
            signers: ids(&spec.signers),
            threshold: spec.threshold,
            admins: ids(&spec.admins),
            admin_threshold: spec.admin_threshold,
            apk_certs: spec.apk_certs.iter().map(|&c| [c; 32]).collect(),
            created_at: seq,
            seq,
            ..Identity::implicit(keys[0].author_id())
        };
        let signers: Vec<_> = spec.signed_by.iter().map(|&k| &keys[k]).collect();
        docs.push(doc.sign(&signers).unwrap());
    }
    docs
}

#[derive(Debug, Clone)]
struct RecordSpec {
    yank: bool,
    version: u8,
    seq: u64,
    cid: u8,
    signed_by: Vec<usize>,
    /// The APK certificate (0..3) and the one it rotates from, if any.
    cert: Option<(u8, Option<u8>)>,
}

fn record_spec() -> impl Strategy<Value = RecordSpec> {
    (
        any::<bool>(),
        0u8..3,
        1u64..5,
        0u8..2,
        key_set(),
        proptest::option::of((0u8..3, proptest::option::of(0u8..3))),
    )
        .prop_map(|(yank, version, seq, cid, signed_by, cert)| RecordSpec {
            yank,
            version,
            seq,
            cid,
            signed_by,
            cert,
        })
}

fn build_record(keys: &[AuthorKey], spec: &RecordSpec) -> SignedRecord {
    let author = keys[0].author_id();
    let signers: Vec<_> = spec.signed_by.iter().map(|&k| &keys[k]).collect();
    if spec.yank {
        let mut y = Yank::new(author, package(), version(spec.version), "bad".into());
        (y.seq, y.created_at) = (spec.seq, spec.seq);
        y.sign_with(&signers).unwrap()
    } else {
        // Version codes out of the versions' order, as rule 9 must follow
        // the codes.
        let code = [3, 1, 2][usize::from(spec.version)];
        let mut r = Release::new(
            author,
            package(),
            version(spec.version),
            code,
            cid(spec.cid),
        );
        (r.seq, r.created_at) = (spec.seq, spec.seq);
        if let Some((cert, from)) = spec.cert {
            r.metadata.signing_cert_sha256 = Some([cert; 32]);
            if let Some(from) = from.filter(|f| *f != cert) {
                r.metadata.signing_cert_lineage = vec![[from; 32], [cert; 32]];
            }
        }
        r.sign_with(&signers).unwrap()
    }
}

/// Every record, also as the single-key parts a co-signing flow passes
/// around (so the same payload arrives with several signature sets).
fn all_records(keys: &[AuthorKey], docs: &[DocSpec], records: &[RecordSpec]) -> Vec<Signed> {
    let mut out: Vec<Signed> = build_docs(keys, docs)
        .into_iter()
        .map(Signed::Identity)
        .collect();
    for spec in records {
        let full = build_record(keys, spec);
        for k in &spec.signed_by {
            let part = RecordSpec {
                signed_by: vec![*k],
                ..spec.clone()
            };
            out.push(Signed::Record(build_record(keys, &part)));
        }
        out.push(Signed::Record(full));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_state_depends_on_the_records_not_their_order(
        docs in proptest::collection::vec(doc_spec(), 0..5),
        records in proptest::collection::vec(record_spec(), 1..7),
        shuffles in proptest::collection::vec(any::<u64>(), 2),
    ) {
        let keys = keys();
        let all = all_records(&keys, &docs, &records);
        let mut summaries = Vec::new();
        for seed in shuffles {
            let mut order = all.clone();
            // A deterministic shuffle from the seed.
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut node = Node::new(&keys);
            node.settle(&order);
            summaries.push(node.summary());
        }
        // Documents in seq order, each record once after them: the order
        // a node that never missed anything sees.
        let mut reference = Node::new(&keys);
        let mut sorted = all.clone();
        sorted.sort_by_key(|s| match s {
            Signed::Identity(d) => (0, d.identity().seq),
            Signed::Record(_) => (1, 0),
        });
        for r in &sorted {
            reference.apply(r);
        }
        prop_assert_eq!(&summaries[0], &summaries[1]);
        prop_assert_eq!(&summaries[0], &reference.summary());
    }
}

/// A release of `version` at `seq` with `cid`, signed by `by`.
fn release(keys: &[AuthorKey], v: u8, code: u64, seq: u64, by: &[usize]) -> SignedRecord {
    let mut r = Release::new(keys[0].author_id(), package(), version(v), code, cid(v));
    (r.seq, r.created_at) = (seq, seq);
    r.sign_with(&by.iter().map(|&k| &keys[k]).collect::<Vec<_>>())
        .unwrap()
}

fn yank(keys: &[AuthorKey], v: u8, seq: u64, by: &[usize]) -> SignedRecord {
    let mut y = Yank::new(keys[0].author_id(), package(), version(v), "x".into());
    (y.seq, y.created_at) = (seq, seq);
    y.sign_with(&by.iter().map(|&k| &keys[k]).collect::<Vec<_>>())
        .unwrap()
}

fn doc(
    keys: &[AuthorKey],
    prev: Option<&SignedIdentity>,
    signers: &[usize],
    threshold: u32,
    admins: &[usize],
    seq: u64,
    by: &[usize],
) -> SignedIdentity {
    let ids = |list: &[usize]| {
        let mut ids: Vec<_> = list.iter().map(|&k| keys[k].author_id()).collect();
        ids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        ids
    };
    Identity {
        prev: prev.map(|p| p.identity_id()),
        signers: ids(signers),
        threshold,
        admins: ids(admins),
        admin_threshold: 1,
        created_at: seq,
        seq,
        ..Identity::implicit(keys[0].author_id())
    }
    .sign(&by.iter().map(|&k| &keys[k]).collect::<Vec<_>>())
    .unwrap()
}

/// The story: keys 0 `main`, 1 `recovery` (admins), 2 `laptop`
/// (signer), 3 the new signer; a thief copies `laptop`.
#[test]
fn a_stolen_signer_key_is_revoked_and_the_author_resigns() {
    let keys = keys();
    let (main, recovery, laptop, new) = (0, 1, 2, 3);
    let mut node = Node::new(&keys);
    let genesis = doc(&keys, None, &[laptop], 1, &[main, recovery], 10, &[main]);
    let v1 = release(&keys, 0, 1, 20, &[laptop]);
    let thief_release = release(&keys, 9, u64::MAX, 30, &[laptop]);
    let thief_yank = yank(&keys, 0, 30, &[laptop]);
    for r in [
        Signed::Identity(genesis.clone()),
        Signed::Record(v1.clone()),
        Signed::Record(thief_release.clone()),
        Signed::Record(thief_yank.clone()),
    ] {
        assert!(node.apply(&r));
    }
    let authority = node.identity.authority();
    let newest = |node: &Node| {
        let authority = node.identity.authority();
        newest_authorized(node.releases.values(), &authority).map(|r| r.id())
    };
    assert_eq!(newest(&node), Some(thief_release.id()));
    assert!(node.releases[&version(0)].is_yanked(&authority));

    // `recovery` replaces `laptop` with `new` and re-signs 1.0.0.
    let rotated = doc(
        &keys,
        Some(&genesis),
        &[new],
        1,
        &[main, recovery],
        40,
        &[recovery],
    );
    assert!(node.apply(&Signed::Identity(rotated.clone())));
    assert_eq!(newest(&node), None, "what laptop signed no longer counts");
    let resigned = release(&keys, 0, 1, 50, &[new]);
    assert!(node.apply(&Signed::Record(resigned.clone())));
    let authority = node.identity.authority();
    assert_eq!(newest(&node), Some(resigned.id()));
    assert!(!node.releases[&version(0)].is_yanked(&authority));
    assert!(node.releases[&version(9)].records().is_empty());
    // Whatever laptop signs now, even later, counts for nothing.
    let late = release(&keys, 9, u64::MAX, 60, &[laptop]);
    let delta = node
        .releases
        .get_mut(&version(9))
        .unwrap()
        .apply(late, &authority)
        .unwrap();
    assert!(delta.unauthorized && delta.is_empty());

    // The thief cannot rotate back: laptop was never an admin.
    let coup = doc(
        &keys,
        Some(&rotated),
        &[laptop],
        1,
        &[laptop],
        70,
        &[laptop],
    );
    assert_eq!(
        node.identity.apply(coup).unwrap().change,
        IdentityChange::Unauthorized
    );
}

#[test]
fn two_of_three_needs_two_signatures_and_a_thief_with_one_moves_nothing() {
    let keys = keys();
    let mut node = Node::new(&keys);
    let genesis = doc(&keys, None, &[1, 2, 3], 2, &[0], 10, &[0]);
    node.apply(&Signed::Identity(genesis));
    let authority = node.identity.authority();

    let one = release(&keys, 0, 1, 20, &[1]);
    node.apply(&Signed::Record(one.clone()));
    let state = &node.releases[&version(0)];
    assert_eq!(
        state.release(&authority),
        None,
        "incomplete: served by no one"
    );
    assert_eq!(state.pending(&authority), Some(&one));

    // Key 2's signature alone is another incomplete record (each signer's
    // state holds what that signer's envelopes carried)...
    node.apply(&Signed::Record(release(&keys, 0, 1, 20, &[2])));
    let state = &node.releases[&version(0)];
    assert_eq!(state.release(&authority), None);
    // ...and the co-signed envelope (`ipsr-cli sign`) completes it.
    let two = one.cosign(&keys[2]).unwrap();
    node.apply(&Signed::Record(two));
    let state = &node.releases[&version(0)];
    let current = state.release(&authority).unwrap();
    assert_eq!(current.payload(), one.payload());
    assert_eq!(current.approvals().len(), 2);
    assert_eq!(state.pending(&authority), None);

    // A thief with key 1 signs newer records: they stay pending, and the
    // release key 2 signed stays in force.
    node.apply(&Signed::Record(release(&keys, 0, 1, 90, &[1])));
    node.apply(&Signed::Record(yank(&keys, 0, 90, &[1])));
    let state = &node.releases[&version(0)];
    assert_eq!(state.release(&authority).unwrap().payload(), one.payload());
    assert!(!state.is_yanked(&authority));
    assert!(state.pending(&authority).is_some());
}

#[test]
fn a_fork_goes_to_the_successor_signed_by_more_admins() {
    let keys = keys();
    let genesis = doc(&keys, None, &[0], 1, &[0, 1], 10, &[0]);
    // A thief holding key 0 rotates everything to key 4, at a higher seq.
    let thief = doc(&keys, Some(&genesis), &[4], 1, &[4], 99, &[0]);
    // The author answers with keys 0 and 1: two of the genesis admins.
    let author = doc(&keys, Some(&genesis), &[2], 1, &[0, 1], 20, &[0, 1]);
    for order in [
        [&genesis, &thief, &author],
        [&author, &genesis, &thief],
        [&thief, &author, &genesis],
    ] {
        let mut state = IdentityState::new(keys[0].author_id());
        for _ in 0..2 {
            for d in order {
                state.apply((*d).clone()).unwrap();
            }
        }
        assert_eq!(
            state.head().map(|d| d.identity_id()),
            Some(author.identity_id())
        );
        assert_eq!(state.forks(), vec![Some(genesis.identity_id())]);
    }
    // Signatures by keys that are not admins of the parent do not count,
    // and are dropped from what is held.
    let padded = doc(&keys, Some(&genesis), &[4], 1, &[4], 99, &[0, 3, 4]);
    let mut state = IdentityState::new(keys[0].author_id());
    state.apply(genesis.clone()).unwrap();
    state.apply(padded).unwrap();
    assert_eq!(state.head().unwrap().approvals().len(), 1);
    // A successor must have a higher seq than its parent.
    let backdated = doc(&keys, Some(&genesis), &[2], 1, &[0], 10, &[0, 1]);
    assert_eq!(
        state.apply(backdated).unwrap().change,
        IdentityChange::Unauthorized
    );
    let orphan = doc(&keys, Some(&author), &[2], 1, &[0], 30, &[0]);
    let mut fresh = IdentityState::new(keys[0].author_id());
    assert_eq!(fresh.apply(orphan).unwrap().change, IdentityChange::Orphan);
    assert!(fresh.head().is_none());
}

/// Someone holding an admin key can sign documents without end; a node
/// keeps at most `MAX_IDENTITY_DOCS` per author and refuses the rest.
#[test]
fn documents_per_author_are_bounded() {
    use ipsr_proto::limits::MAX_IDENTITY_DOCS;
    let keys = keys();
    let mut state = IdentityState::new(keys[0].author_id());
    let mut prev: Option<SignedIdentity> = None;
    for n in 0..=MAX_IDENTITY_DOCS as u64 {
        let d = doc(&keys, prev.as_ref(), &[0], 1, &[0], 10 + n, &[0]);
        let change = state.apply(d.clone()).unwrap().change;
        if n < MAX_IDENTITY_DOCS as u64 {
            assert_eq!(change, IdentityChange::New);
        } else {
            assert_eq!(change, IdentityChange::Full);
        }
        prev = Some(d);
    }
    assert_eq!(state.docs().count(), MAX_IDENTITY_DOCS);
}
