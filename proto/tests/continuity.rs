//! Test vectors of rule 9 (APK certificate continuity, `docs/records.md`
//! section 6) in `tests/vectors/continuity.json`: a package's releases
//! (only the fields the rule reads), the identity's `apk_certs`, and the
//! check of each release that names a certificate. Regenerate with
//! `IPSR_BLESS_VECTORS=1 cargo test -p ipsr-proto --test continuity`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ipsr_proto::{AuthorKey, CertCheck, Release, cert_checks};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Case {
    description: String,
    /// The `apk_certs` of the author's identity document in force (hex).
    apk_certs: Vec<String>,
    releases: Vec<ReleaseInput>,
    /// Version → its check, for each release that names a certificate.
    checks: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct ReleaseInput {
    version: String,
    version_code: u64,
    signing_cert_sha256: Option<String>,
    signing_cert_lineage: Vec<String>,
}

fn cert(byte: u8) -> String {
    hex::encode([byte; 32])
}

fn input(version: &str, code: u64, c: Option<u8>, lineage: &[u8]) -> ReleaseInput {
    ReleaseInput {
        version: version.into(),
        version_code: code,
        signing_cert_sha256: c.map(cert),
        signing_cert_lineage: lineage.iter().copied().map(cert).collect(),
    }
}

fn hash(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).unwrap();
    out
}

/// The checks of `releases` under `apk_certs`, as `ipsr-proto` computes them.
fn compute(apk_certs: &[String], releases: &[ReleaseInput]) -> BTreeMap<String, serde_json::Value> {
    let key = AuthorKey::from_seed(&[7; 32]);
    let cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        .parse()
        .unwrap();
    let built: Vec<Release> = releases
        .iter()
        .map(|r| {
            let mut release = Release::new(
                key.author_id(),
                "com.example.app".parse().unwrap(),
                r.version.parse().unwrap(),
                r.version_code,
                cid,
            );
            release.metadata.signing_cert_sha256 = r.signing_cert_sha256.as_deref().map(hash);
            release.metadata.signing_cert_lineage =
                r.signing_cert_lineage.iter().map(|h| hash(h)).collect();
            release.validate().unwrap();
            release
        })
        .collect();
    let allowed: BTreeSet<[u8; 32]> = apk_certs.iter().map(|h| hash(h)).collect();
    cert_checks(&built, &allowed)
        .into_iter()
        .map(|(v, c): (_, CertCheck)| (v.to_string(), serde_json::to_value(c).unwrap()))
        .collect()
}

fn cases() -> Vec<Case> {
    let story = vec![
        input("1.0.0", 1, Some(0xaa), &[]),
        input("1.1.0", 2, Some(0xaa), &[]),
        input("1.2.0", 3, Some(0x77), &[]),
        input("1.3.0", 4, Some(0xaa), &[]),
        input("2.0.0", 5, Some(0xbb), &[0xaa, 0xbb]),
        input("2.1.0", 6, None, &[]),
        input("2.2.0", 7, Some(0xcc), &[]),
    ];
    let mut cases = vec![
        Case {
            description:
                "first, same, a stranger's certificate (changed, the expected one stays), \
                          same again, a rotation, a release naming none (not checked), a new \
                          certificate the identity does not name"
                    .into(),
            apk_certs: vec![],
            releases: story.clone(),
            checks: BTreeMap::new(),
        },
        Case {
            description: "the same releases under an identity that names 0xcc…: 2.2.0 is allowed"
                .into(),
            apk_certs: vec![cert(0xcc)],
            releases: story.clone(),
            checks: BTreeMap::new(),
        },
        Case {
            description: "an identity that names the stranger's 0x77…: 1.2.0 is allowed, so 1.3.0 \
                          (back to 0xaa…) changes and 2.0.0's rotation from 0xaa… no longer follows"
                .into(),
            apk_certs: vec![cert(0x77)],
            releases: story,
            checks: BTreeMap::new(),
        },
        Case {
            description: "given out of order, with one version code twice: the order is \
                          (version_code, version), never the order given"
                .into(),
            apk_certs: vec![],
            releases: vec![
                input("3.0.1", 3, Some(0x22), &[]),
                input("1.0.0", 1, Some(0x11), &[]),
                input("3.0.0", 3, Some(0x22), &[0x11, 0x22]),
            ],
            checks: BTreeMap::new(),
        },
    ];
    for case in &mut cases {
        case.checks = compute(&case.apk_certs, &case.releases);
    }
    cases
}

#[test]
fn continuity_vectors_are_committed_and_read_back() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/continuity.json");
    let cases = cases();
    if std::env::var_os("IPSR_BLESS_VECTORS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&cases).unwrap() + "\n").unwrap();
    }
    let committed: Vec<Case> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(committed, cases);
    // What the committed file says, computed again from its inputs.
    for case in &committed {
        assert_eq!(
            compute(&case.apk_certs, &case.releases),
            case.checks,
            "{}",
            case.description
        );
    }
    // Spot checks against the rule as written, not only against the code.
    let changed = |c: &serde_json::Value| c["check"] == "changed";
    assert!(changed(&committed[0].checks["1.2.0"]));
    assert_eq!(committed[0].checks["2.0.0"]["check"], "rotated");
    assert!(!committed[0].checks.contains_key("2.1.0"));
    assert!(changed(&committed[0].checks["2.2.0"]));
    assert_eq!(committed[1].checks["2.2.0"]["check"], "allowed");
    assert!(changed(&committed[2].checks["1.3.0"]));
    assert!(changed(&committed[2].checks["2.0.0"]));
    assert_eq!(committed[3].checks["3.0.0"]["check"], "rotated");
    assert_eq!(committed[3].checks["3.0.1"]["check"], "same");
}
