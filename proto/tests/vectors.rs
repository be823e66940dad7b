//! Fixed test vectors under `tests/vectors/`, so that other implementations
//! can check their encoding, signing bytes, author ids and verification
//! against ours. Regenerate (only when the format changes on purpose) with
//! `IPSR_BLESS_VECTORS=1 cargo test -p ipsr-proto --test vectors`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use ipsr_proto::noncanonical::{Edit, Level, rewrite, signature_verifies};
use ipsr_proto::{
    AuthorKey, ContentId, KeyCache, Metadata, Platform, Record, Release, SIGNING_PREFIX,
    SignedRecord, VerifyError, Yank,
};
use serde::{Deserialize, Serialize};

/// The verifier's clock for every vector (2025-11-24T16:00:00Z).
const NOW: u64 = 1_764_000_000_000;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Valid {
    description: String,
    /// The 32-byte ed25519 seed (RFC 8032 secret key), hex.
    seed: String,
    public_key: String,
    author_id: String,
    record: Record,
    payload: String,
    signing_input: String,
    signature: String,
    signed_record: String,
    record_id: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Invalid {
    description: String,
    now: u64,
    signed_record: String,
    /// The `VerifyError::reason()` label every implementation must report.
    error: String,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn seed() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

fn release(key: &AuthorKey) -> Release {
    Release {
        author: key.author_id(),
        package: "com.example.hello".parse().unwrap(),
        version: "1.2.0".parse().unwrap(),
        version_code: 120,
        cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
            .parse()
            .unwrap(),
        size: 11,
        file_name: "hello-1.2.0.apk".into(),
        platform: Platform::android(),
        metadata: Metadata {
            title: "Hello <World>".into(),
            summary: "Says hello".into(),
            description: "A tiny app.\nIt says hello — in Unicode too: こんにちは".into(),
            license: "MIT".into(),
            homepage_url: Some("https://example.com/hello".into()),
            source_url: None,
            categories: vec!["tools".into()],
            min_sdk: 24,
            target_sdk: 35,
            permissions: vec!["android.permission.INTERNET".into()],
            signing_cert_sha256: Some([0xab; 32]),
            signing_cert_lineage: vec![],
            icon: Some(
                "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u"
                    .parse::<ContentId>()
                    .unwrap(),
            ),
            screenshots: vec![],
            changelog: String::new(),
            native_code: vec![],
        },
        created_at: 1_763_990_000_000,
        seq: 7,
        sha256: None,
    }
}

/// The next release, its APK signed by a new certificate with a proof of
/// rotation from the old one.
fn rotated(key: &AuthorKey) -> Release {
    let mut r = release(key);
    r.version = "1.3.0".parse().unwrap();
    r.version_code = 130;
    r.metadata.signing_cert_sha256 = Some([0xcd; 32]);
    r.metadata.signing_cert_lineage = vec![[0xab; 32], [0xcd; 32]];
    r.seq = 9;
    // SHA-256 of the 11 bytes "hello world".
    r.sha256 = Some(
        hex::decode("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
            .unwrap()
            .try_into()
            .unwrap(),
    );
    r
}

/// The version after `rotated`, saying what changed and which native ABIs
/// its APK has code for.
fn with_changes(key: &AuthorKey) -> Release {
    let mut r = rotated(key);
    r.version = "1.4.0".parse().unwrap();
    r.version_code = 140;
    r.metadata.changelog = "Says hello faster.\n- new: greets in French".into();
    r.metadata.native_code = vec!["arm64-v8a".into(), "x86_64".into()];
    r.seq = 11;
    r
}

fn yank(key: &AuthorKey) -> Yank {
    Yank {
        author: key.author_id(),
        package: "com.example.hello".parse().unwrap(),
        version: "1.2.0".parse().unwrap(),
        reason: "crashes on start".into(),
        created_at: 1_763_995_000_000,
        seq: 8,
    }
}

fn valid(description: &str, key: &AuthorKey, record: Record) -> Valid {
    let signed = record.clone().sign(key).unwrap();
    let mut signing_input = SIGNING_PREFIX.to_vec();
    signing_input.extend_from_slice(signed.payload());
    Valid {
        description: description.into(),
        seed: hex::encode(key.to_seed()),
        public_key: hex::encode(key.author_id().as_bytes()),
        author_id: key.author_id().to_string(),
        record,
        payload: hex::encode(signed.payload()),
        signing_input: hex::encode(signing_input),
        signature: hex::encode(signed.approvals()[0].signature()),
        signed_record: hex::encode(signed.to_bytes()),
        record_id: signed.id().to_string(),
    }
}

fn invalid_vectors(key: &AuthorKey) -> Vec<Invalid> {
    let good = release(key).sign(key).unwrap().to_bytes();
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01; // the last byte of the signature
    let other = AuthorKey::from_seed(&[0xee; 32]);
    // A record signed by another key, carrying that key, naming the first author.
    let forged = forge(&release(key), &other);
    let mut future = release(key);
    future.created_at = NOW + 3_600_001;
    // Validly signed, but a field breaks the display rule (section 5.1).
    let mut bidi = release(key);
    bidi.file_name = "hello\u{202E}kpa.exe".into();
    // A proof of rotation that does not end with the signing certificate.
    let mut lineage = rotated(key);
    lineage.metadata.signing_cert_lineage = vec![[0xcd; 32], [0xab; 32]];
    let mut zwsp = release(key);
    zwsp.metadata.title = "Hello\u{200B}".into();
    let mut abi = with_changes(key);
    abi.metadata.native_code = vec!["ARM64-v8a".into()];
    let mut vectors = vec![
        Invalid {
            description: "one bit of the signature flipped".into(),
            now: NOW,
            signed_record: hex::encode(&flipped),
            error: "bad_signature".into(),
        },
        Invalid {
            description: "signed by another key than the author named in the payload".into(),
            now: NOW,
            signed_record: hex::encode(forged),
            error: "key_mismatch".into(),
        },
        Invalid {
            description: "created_at more than one hour after now".into(),
            now: NOW,
            signed_record: hex::encode(future.sign(key).unwrap().to_bytes()),
            error: "from_future".into(),
        },
        Invalid {
            description: "file_name holds U+202E RIGHT-TO-LEFT OVERRIDE".into(),
            now: NOW,
            signed_record: hex::encode(envelope(&Record::Release(bidi).encode(), key)),
            error: "invalid".into(),
        },
        Invalid {
            description: "metadata.title holds U+200B ZERO WIDTH SPACE".into(),
            now: NOW,
            signed_record: hex::encode(envelope(&Record::Release(zwsp).encode(), key)),
            error: "invalid".into(),
        },
        Invalid {
            description: "metadata.signing_cert_lineage does not end with signing_cert_sha256"
                .into(),
            now: NOW,
            signed_record: hex::encode(envelope(&Record::Release(lineage).encode(), key)),
            error: "invalid".into(),
        },
        Invalid {
            description: "metadata.native_code holds an upper-case ABI name".into(),
            now: NOW,
            signed_record: hex::encode(envelope(&Record::Release(abi).encode(), key)),
            error: "invalid".into(),
        },
        Invalid {
            description: "10241 bytes: over the size limit".into(),
            now: NOW,
            signed_record: hex::encode(vec![0u8; 10 * 1024 + 1]),
            error: "too_large".into(),
        },
        Invalid {
            description: "not protobuf".into(),
            now: NOW,
            signed_record: "ffffffff".into(),
            error: "malformed".into(),
        },
        Invalid {
            description:
                "empty payload (field 1 left out, as proto3 writes an empty field): no record kind"
                    .into(),
            now: NOW,
            signed_record: hex::encode(envelope(&[], key)),
            error: "unknown_kind".into(),
        },
    ];
    vectors.extend(non_canonical_vectors(key));
    vectors
}

/// The signed release of [`release`] (and one with empty metadata), each
/// written once in a way section 1 of `docs/records.md` forbids, with a
/// valid signature: only the encoding is wrong.
fn non_canonical_vectors(key: &AuthorKey) -> Vec<Invalid> {
    let signed = release(key).sign(key).unwrap();
    let mut bare = release(key);
    bare.metadata = Metadata::default();
    let bare = bare.sign(key).unwrap();
    let cases: [(&str, &SignedRecord, Level, Edit, usize); 12] = [
        (
            "envelope: public_key (2) before payload (1)",
            &signed,
            Level::Envelope,
            Edit::Reorder,
            0,
        ),
        (
            "envelope: an unknown field 20 (varint 1) after the signature",
            &signed,
            Level::Envelope,
            Edit::Unknown,
            3,
        ),
        (
            "envelope: public_key written twice",
            &signed,
            Level::Envelope,
            Edit::Duplicate,
            1,
        ),
        (
            "envelope: the payload's length as a varint one byte too long",
            &signed,
            Level::Envelope,
            Edit::LongVarint,
            1,
        ),
        (
            "payload: the tag of Record.release as a varint one byte too long (8a 00)",
            &signed,
            Level::Record,
            Edit::LongVarint,
            0,
        ),
        (
            "payload: Release.version (3) before Release.package (2)",
            &signed,
            Level::Body,
            Edit::Reorder,
            1,
        ),
        (
            "payload: an unknown field 20 (varint 1) at the end of the Release",
            &signed,
            Level::Body,
            Edit::Unknown,
            11,
        ),
        (
            "payload: Release.created_at written twice",
            &signed,
            Level::Body,
            Edit::Duplicate,
            8,
        ),
        (
            "payload: Release.seq as a varint one byte too long",
            &signed,
            Level::Body,
            Edit::LongVarint,
            21,
        ),
        (
            "payload: Metadata.summary (2) before Metadata.title (1)",
            &signed,
            Level::Metadata,
            Edit::Reorder,
            0,
        ),
        (
            "payload: Metadata.source_url written out empty (a default value)",
            &signed,
            Level::Metadata,
            Edit::ExplicitDefault,
            0,
        ),
        (
            "payload: a release with empty metadata that leaves out Release.metadata (canonical: 4a 00)",
            &bare,
            Level::Body,
            Edit::DropEmptyMetadata,
            0,
        ),
    ];
    cases
        .into_iter()
        .map(|(description, signed, level, edit, pick)| Invalid {
            description: description.into(),
            now: NOW,
            signed_record: hex::encode(rewrite(signed, key, level, edit, pick).unwrap()),
            error: "non_canonical".into(),
        })
        .collect()
}

/// Signs `release`'s payload with `signer` and carries `signer`'s key.
fn forge(release: &Release, signer: &AuthorKey) -> Vec<u8> {
    envelope(&Record::Release(release.clone()).encode(), signer)
}

/// An envelope of `payload`, signed correctly by `key`, built by hand from the
/// documented wire format (fields 1, 2, 3, each length-delimited, an empty
/// one left out).
fn envelope(payload: &[u8], key: &AuthorKey) -> Vec<u8> {
    let mut input = SIGNING_PREFIX.to_vec();
    input.extend_from_slice(payload);
    // The crate signs only valid records, so sign arbitrary payloads with ed25519-dalek.
    let sk = ed25519_dalek::SigningKey::from_bytes(&key.to_seed());
    use ed25519_dalek::Signer;
    let signature = sk.sign(&input).to_bytes();
    let mut out = Vec::new();
    for (tag, field) in [
        (0x0a, payload),
        (0x12, &key.author_id().as_bytes()[..]),
        (0x1a, &signature[..]),
    ] {
        if field.is_empty() {
            continue;
        }
        out.push(tag);
        let mut len = field.len();
        while len >= 0x80 {
            out.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(field);
    }
    out
}

#[test]
fn vectors() {
    let key = AuthorKey::from_seed(&seed());
    let valid = vec![
        valid(
            "a release with full metadata",
            &key,
            Record::Release(release(&key)),
        ),
        valid("a yank of that release", &key, Record::Yank(yank(&key))),
        valid(
            "a release whose APK carries a v3 proof of rotation (metadata field 14) and states its SHA-256 (field 12)",
            &key,
            Record::Release(rotated(&key)),
        ),
        valid(
            "a release with a changelog (metadata field 15) and native code (field 16)",
            &key,
            Record::Release(with_changes(&key)),
        ),
    ];
    let invalid = invalid_vectors(&key);
    let (valid_path, invalid_path) = (dir().join("valid.json"), dir().join("invalid.json"));
    if std::env::var_os("IPSR_BLESS_VECTORS").is_some() {
        std::fs::write(
            &valid_path,
            serde_json::to_string_pretty(&valid).unwrap() + "\n",
        )
        .unwrap();
        std::fs::write(
            &invalid_path,
            serde_json::to_string_pretty(&invalid).unwrap() + "\n",
        )
        .unwrap();
    }
    let committed: Vec<Valid> =
        serde_json::from_str(&std::fs::read_to_string(&valid_path).unwrap()).unwrap();
    assert_eq!(
        committed,
        valid,
        "encoding or signing changed: see {}",
        valid_path.display()
    );
    let committed_invalid: Vec<Invalid> =
        serde_json::from_str(&std::fs::read_to_string(&invalid_path).unwrap()).unwrap();
    assert_eq!(committed_invalid, invalid);

    // Read back the committed vectors as another implementation would.
    for v in &committed {
        let seed: [u8; 32] = hex::decode(&v.seed).unwrap().try_into().unwrap();
        let key = AuthorKey::from_seed(&seed);
        assert_eq!(hex::encode(key.author_id().as_bytes()), v.public_key);
        assert_eq!(key.author_id().to_string(), v.author_id);
        assert_eq!(hex::encode(v.record.encode()), v.payload);
        let bytes = hex::decode(&v.signed_record).unwrap();
        let verified = SignedRecord::from_bytes(&bytes)
            .unwrap()
            .verify_at(NOW)
            .unwrap();
        assert_eq!(verified.record(), &v.record);
        assert_eq!(verified.id().to_string(), v.record_id);
        assert_eq!(
            hex::encode(verified.approvals()[0].signature()),
            v.signature
        );
    }
    for v in &committed_invalid {
        let bytes = hex::decode(&v.signed_record).unwrap();
        let err: VerifyError = SignedRecord::from_bytes(&bytes)
            .and_then(|r| r.verify_at(v.now))
            .unwrap_err();
        assert_eq!(err.reason(), v.error, "{}", v.description);
        if v.error == "non_canonical" {
            // Only the encoding is wrong: the signature is good.
            assert!(signature_verifies(&bytes), "{}", v.description);
        }
    }
}

/// Verifying with a [`KeyCache`] gives every vector the same answer as
/// verifying without one, whatever the cache already holds (one cache is
/// shared by all the vectors, valid and invalid, in both orders).
#[test]
fn vectors_verify_the_same_with_a_key_cache() {
    let read = |name: &str| std::fs::read_to_string(dir().join(name)).unwrap();
    let valid: Vec<Valid> = serde_json::from_str(&read("valid.json")).unwrap();
    let invalid: Vec<Invalid> = serde_json::from_str(&read("invalid.json")).unwrap();
    let cases: Vec<(Vec<u8>, u64)> = valid
        .iter()
        .map(|v| (hex::decode(&v.signed_record).unwrap(), NOW))
        .chain(
            invalid
                .iter()
                .map(|v| (hex::decode(&v.signed_record).unwrap(), v.now)),
        )
        .collect();
    assert!(!valid.is_empty() && !invalid.is_empty());
    let mut keys = KeyCache::default();
    for (bytes, now) in cases.iter().chain(cases.iter().rev()) {
        let plain = SignedRecord::from_bytes(bytes).and_then(|r| r.verify_at(*now));
        let cached =
            SignedRecord::from_bytes(bytes).and_then(|r| r.verify_at_cached(*now, &mut keys));
        match (plain, cached) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b);
                assert_eq!(a.record(), b.record());
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("without a cache {a:?}, with one {b:?}"),
        }
    }
    assert!(!keys.is_empty());
}

#[test]
fn author_id_matches_libp2p_peer_id() {
    // The author id is the libp2p peer id of the same key, in CIDv1 base36 form.
    let key = AuthorKey::from_seed(&seed());
    let kp = libp2p_identity::Keypair::ed25519_from_bytes(seed()).unwrap();
    let peer = kp.public().to_peer_id();
    let cid = cid::Cid::new_v1(
        0x72,
        multihash::Multihash::<64>::from_bytes(&peer.to_bytes()).unwrap(),
    );
    assert_eq!(
        cid.to_string_of_base(cid::multibase::Base::Base36Lower)
            .unwrap(),
        key.author_id().to_string()
    );
    assert_eq!(kp.public().encode_protobuf(), key.author_id().to_protobuf());
}

/// One key of the identity vectors.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct KeyVector {
    name: String,
    seed: String,
    public_key: String,
    author_id: String,
}

/// A signed identity document or record of the identity vectors.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct SignedVector {
    description: String,
    /// The keys (by name) whose signatures the envelope carries.
    signed_by: Vec<String>,
    /// The document or record, as JSON.
    content: serde_json::Value,
    payload: String,
    /// For identity documents: SHA-256 of the payload, which `prev` names.
    identity_id: Option<String>,
    signed_record: String,
    record_id: String,
}

/// What a node holds after applying every document and record above.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct StateVector {
    head: String,
    signers: Vec<String>,
    threshold: u32,
    /// Per version: the record id of the release in force, if any, and
    /// whether it is yanked.
    releases: Vec<(String, Option<String>, bool)>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct IdentityVectors {
    keys: Vec<KeyVector>,
    signed: Vec<SignedVector>,
    invalid: Vec<Invalid>,
    state: StateVector,
}

fn identity_vectors() -> IdentityVectors {
    use ipsr_proto::{AuthorizedRelease, Identity, IdentityState};

    let named: Vec<(&str, AuthorKey)> = vec![
        ("main", AuthorKey::from_seed(&seed())),
        (
            "recovery",
            AuthorKey::from_seed(&std::array::from_fn(|i| 0x20 + i as u8)),
        ),
        (
            "laptop",
            AuthorKey::from_seed(&std::array::from_fn(|i| 0x40 + i as u8)),
        ),
        (
            "phone",
            AuthorKey::from_seed(&std::array::from_fn(|i| 0x60 + i as u8)),
        ),
    ];
    let key = |name: &str| &named.iter().find(|(n, _)| *n == name).unwrap().1;
    let sorted = |names: &[&str]| {
        let mut ids: Vec<_> = names.iter().map(|n| key(n).author_id()).collect();
        ids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        ids
    };
    let main = key("main").author_id();
    let genesis = Identity {
        prev: None,
        signers: sorted(&["laptop"]),
        threshold: 1,
        admins: sorted(&["main", "recovery"]),
        admin_threshold: 1,
        name: "Example Apps".into(),
        urls: vec!["https://example.com".into()],
        created_at: 1_763_900_000_000,
        seq: 1_763_900_000_000,
        ..Identity::implicit(main)
    }
    .sign(&[key("main")])
    .unwrap();
    let second = Identity {
        prev: Some(genesis.identity_id()),
        signers: sorted(&["laptop", "phone"]),
        threshold: 2,
        created_at: 1_763_950_000_000,
        seq: 1_763_950_000_000,
        ..genesis.identity().clone()
    }
    .sign(&[key("recovery")])
    .unwrap();
    let mut one = release(key("main"));
    (one.seq, one.created_at) = (1_763_960_000_000, 1_763_960_000_000);
    let by_laptop = one.clone().sign(key("laptop")).unwrap();
    let by_both = by_laptop.cosign(key("phone")).unwrap();
    let mut y = yank(key("main"));
    (y.seq, y.created_at) = (1_763_970_000_000, 1_763_970_000_000);
    let yank_by_laptop = y.sign(key("laptop")).unwrap();

    let names_of = |approvals: &[ipsr_proto::Approval]| {
        approvals
            .iter()
            .map(|a| {
                named
                    .iter()
                    .find(|(_, k)| k.author_id().as_bytes() == a.key())
                    .unwrap()
                    .0
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    let doc_vector = |description: &str, d: &ipsr_proto::SignedIdentity| SignedVector {
        description: description.into(),
        signed_by: names_of(d.approvals()),
        content: serde_json::to_value(d.identity()).unwrap(),
        payload: hex::encode(d.payload()),
        identity_id: Some(d.identity_id().to_string()),
        signed_record: hex::encode(d.to_bytes()),
        record_id: d.id().to_string(),
    };
    let record_vector = |description: &str, r: &SignedRecord| SignedVector {
        description: description.into(),
        signed_by: names_of(r.approvals()),
        content: serde_json::to_value(r.record()).unwrap(),
        payload: hex::encode(r.payload()),
        identity_id: None,
        signed_record: hex::encode(r.to_bytes()),
        record_id: r.id().to_string(),
    };
    let signed = vec![
        doc_vector(
            "the first identity document: laptop signs, main and recovery administer; signed by the author key (single form)",
            &genesis,
        ),
        doc_vector(
            "the next document: laptop and phone sign, two of them needed; signed by recovery (multi form)",
            &second,
        ),
        record_vector(
            "1.2.0 signed by laptop alone (multi form): one of the two signatures needed",
            &by_laptop,
        ),
        record_vector("the same payload co-signed by phone: complete", &by_both),
        record_vector(
            "a yank of 1.2.0 by laptop alone: incomplete, so not in force",
            &yank_by_laptop,
        ),
    ];

    // The state after all of it, as every implementation must compute it.
    let mut identity = IdentityState::new(main);
    identity.apply(genesis.clone()).unwrap();
    identity.apply(second.clone()).unwrap();
    let authority = identity.authority();
    let mut state = AuthorizedRelease::new(by_laptop.release_key());
    for r in [&by_laptop, &by_both, &yank_by_laptop] {
        state.apply(r.clone(), &authority).unwrap();
    }
    let state = StateVector {
        head: identity.head().unwrap().identity_id().to_string(),
        signers: names_of(
            &identity
                .head()
                .unwrap()
                .identity()
                .signers
                .iter()
                .map(|s| {
                    by_both
                        .approvals()
                        .iter()
                        .find(|a| a.key() == s.as_bytes())
                        .copied()
                        .unwrap()
                })
                .collect::<Vec<_>>(),
        ),
        threshold: authority.threshold,
        releases: vec![(
            "1.2.0".into(),
            state.release(&authority).map(|r| r.id().to_string()),
            state.is_yanked(&authority),
        )],
    };

    // Invalid records of this part of the format.
    let only_author_multi = {
        let single = release(key("main")).sign(key("main")).unwrap();
        let mut out = field(1, single.payload());
        let mut entry = field(1, key("main").author_id().as_bytes());
        entry.extend(field(2, single.approvals()[0].signature()));
        out.extend(field(4, &entry));
        out
    };
    let reversed = {
        let mut out = field(1, by_both.payload());
        for a in by_both.approvals().iter().rev() {
            let mut entry = field(1, a.key());
            entry.extend(field(2, a.signature()));
            out.extend(field(4, &entry));
        }
        out
    };
    let mut ahead = release(key("main"));
    ahead.seq = ahead.created_at + 1;
    let mut bad_threshold = genesis.identity().clone();
    bad_threshold.threshold = 2;
    let invalid = vec![
        Invalid {
            description:
                "multi form holding only the author's own signature (must be the single form)"
                    .into(),
            now: NOW,
            signed_record: hex::encode(only_author_multi),
            error: "non_canonical".into(),
        },
        Invalid {
            description: "multi form with its signatures in decreasing key order".into(),
            now: NOW,
            signed_record: hex::encode(reversed),
            error: "non_canonical".into(),
        },
        Invalid {
            description: "a release whose seq exceeds its created_at".into(),
            now: NOW,
            signed_record: hex::encode(envelope(&Record::Release(ahead).encode(), key("main"))),
            error: "invalid".into(),
        },
        Invalid {
            description: "an identity document with a threshold above its number of signers".into(),
            now: NOW,
            signed_record: hex::encode(envelope(&bad_threshold.encode(), key("main"))),
            error: "invalid".into(),
        },
    ];
    IdentityVectors {
        keys: named
            .iter()
            .map(|(name, k)| KeyVector {
                name: name.to_string(),
                seed: hex::encode(k.to_seed()),
                public_key: hex::encode(k.author_id().as_bytes()),
                author_id: k.author_id().to_string(),
            })
            .collect(),
        signed,
        invalid,
        state,
    }
}

/// A length-delimited protobuf field: key, length, bytes.
fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(number << 3) | 2];
    let mut len = bytes.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
    out
}

#[test]
fn identity_vectors_are_committed_and_read_back() {
    use ipsr_proto::Signed;

    let vectors = identity_vectors();
    let path = dir().join("identity.json");
    if std::env::var_os("IPSR_BLESS_VECTORS").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&vectors).unwrap() + "\n",
        )
        .unwrap();
    }
    let committed: IdentityVectors =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(committed, vectors, "see {}", path.display());
    for v in &committed.signed {
        let bytes = hex::decode(&v.signed_record).unwrap();
        let signed = SignedRecord::from_bytes(&bytes)
            .unwrap()
            .verify_any_at_cached(NOW, &mut KeyCache::default())
            .unwrap();
        assert_eq!(signed.id().to_string(), v.record_id);
        if let Signed::Identity(d) = &signed {
            assert_eq!(Some(d.identity_id().to_string()), v.identity_id);
        }
    }
    for v in &committed.invalid {
        let bytes = hex::decode(&v.signed_record).unwrap();
        let err = SignedRecord::from_bytes(&bytes)
            .and_then(|r| r.verify_any_at_cached(v.now, &mut KeyCache::default()))
            .unwrap_err();
        assert_eq!(err.reason(), v.error, "{}", v.description);
    }
    assert!(committed.state.releases[0].1.is_some());
    assert!(
        !committed.state.releases[0].2,
        "laptop's yank alone is not in force"
    );
}
