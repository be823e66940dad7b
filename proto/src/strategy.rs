//! Proptest strategies for IPSR types, shared by the tests of every crate
//! (enable the `test` feature).

use proptest::collection::vec;
use proptest::prelude::*;

use crate::{
    AuthorKey, ContentId, Metadata, PackageName, Platform, Release, SignedRecord, Version, Yank,
};

/// An author key from an arbitrary seed.
pub fn author_key() -> impl Strategy<Value = AuthorKey> {
    any::<[u8; 32]>().prop_map(|seed| AuthorKey::from_seed(&seed))
}

/// A valid package name.
pub fn package_name() -> impl Strategy<Value = PackageName> {
    "[a-zA-Z][a-zA-Z0-9_]{0,8}(\\.[a-zA-Z][a-zA-Z0-9_]{0,8}){1,3}"
        .prop_map(|s| s.parse().expect("the pattern only makes valid names"))
}

/// A valid version, sometimes with a pre-release or build part.
pub fn version() -> impl Strategy<Value = Version> {
    (
        0u64..50,
        0u64..50,
        0u64..50,
        prop::option::of("[a-z]{1,5}(\\.[1-9][0-9]{0,2})?"),
    )
        .prop_map(|(ma, mi, pa, pre)| {
            let text = match pre {
                Some(pre) => format!("{ma}.{mi}.{pa}-{pre}"),
                None => format!("{ma}.{mi}.{pa}"),
            };
            text.parse()
                .expect("the pattern only makes canonical versions")
        })
}

/// A CIDv0 or CIDv1 (raw or dag-pb) with an arbitrary sha2-256 digest.
pub fn content_id() -> impl Strategy<Value = ContentId> {
    (any::<[u8; 32]>(), 0u8..3).prop_map(|(digest, kind)| {
        let mh = multihash::Multihash::<64>::wrap(0x12, &digest).expect("32 bytes fit");
        let cid = match kind {
            0 => cid::Cid::new_v0(mh).expect("sha2-256 is a valid CIDv0"),
            1 => cid::Cid::new_v1(0x55, mh),
            _ => cid::Cid::new_v1(0x70, mh),
        };
        ContentId::new(cid).expect("raw or dag-pb with sha2-256")
    })
}

/// A character a text field may hold anywhere (`docs/records.md`, 5.1):
/// not a control or format character (category C), nor one the display
/// rule refuses among the rest (line separators, fillers, joiners and
/// selectors), as a regex class.
const TEXT_CHAR: &str = "[^\\p{C}\\x{2028}\\x{2029}\\x{115F}\\x{1160}\\x{17B4}\\x{17B5}\\x{3164}\\x{FFA0}\\x{034F}\\x{180B}-\\x{180F}\\x{FE00}-\\x{FE0F}\\x{E0100}-\\x{E01EF}]";

/// A string of `TEXT_CHAR`s; `pattern` holds `T` where such a character goes.
fn text_regex(pattern: &str) -> impl Strategy<Value = String> + use<> {
    proptest::string::string_regex(&pattern.replace('T', TEXT_CHAR)).expect("valid regex")
}

/// Valid metadata, including non-ASCII text and HTML-looking strings.
pub fn metadata() -> impl Strategy<Value = Metadata> {
    let text = |n: usize| text_regex(&format!("T{{0,{n}}}"));
    let url = prop::option::of("https?://[a-z]{1,10}\\.(com|org|dev)(/[a-z0-9]{0,10})?");
    (
        (
            text(20),
            text(40),
            text_regex("T{0,100}(\nT{0,50}){0,3}"),
            "(MIT|Apache-2\\.0|GPL-3\\.0-or-later)?",
        ),
        (url.clone(), url),
        vec("[a-z0-9-]{1,12}", 0..4),
        (any::<u32>(), any::<u32>()),
        vec("android\\.permission\\.[A-Z_]{1,20}", 0..4),
        (
            prop::option::of(any::<[u8; 32]>()),
            vec(any::<[u8; 32]>(), 0..3),
        ),
        prop::option::of(content_id()),
        vec(content_id(), 0..3),
        (
            text_regex("(T{0,40}(\nT{0,40}){0,2})?"),
            vec("(arm64-v8a|armeabi-v7a|x86|x86_64)", 0..3),
        ),
    )
        .prop_map(
            |(
                (title, summary, description, license),
                (homepage_url, source_url),
                categories,
                (min_sdk, target_sdk),
                permissions,
                (signing_cert_sha256, earlier),
                icon,
                screenshots,
                (changelog, native_code),
            )| Metadata {
                title,
                summary,
                description,
                license,
                homepage_url,
                source_url,
                categories,
                min_sdk,
                target_sdk,
                permissions,
                signing_cert_sha256,
                // A proof of rotation from `earlier` to the certificate.
                signing_cert_lineage: match signing_cert_sha256 {
                    Some(cert) if !earlier.is_empty() => {
                        let mut seen = std::collections::BTreeSet::from([cert]);
                        let mut lineage: Vec<[u8; 32]> =
                            earlier.into_iter().filter(|c| seen.insert(*c)).collect();
                        lineage.push(cert);
                        lineage
                    }
                    _ => Vec::new(),
                },
                icon,
                screenshots,
                changelog,
                native_code,
            },
        )
}

/// A valid release by `key`'s author.
pub fn release_by(key: &AuthorKey) -> impl Strategy<Value = Release> + use<> {
    let author = key.author_id();
    (
        package_name(),
        version(),
        any::<u64>(),
        content_id(),
        any::<u64>(),
        "[a-zA-Z0-9_-]{1,20}\\.(apk|ipa|zip)",
        prop_oneof![
            Just(Platform::android()),
            Just(Platform::ios()),
            Just(Platform::any())
        ],
        metadata(),
        0u64..4_000_000_000_000,
        any::<u64>(),
        prop::option::of(any::<[u8; 32]>()),
    )
        .prop_map(
            move |(
                package,
                version,
                version_code,
                cid,
                size,
                file_name,
                platform,
                metadata,
                created_at,
                seq,
                sha256,
            )| {
                Release {
                    author,
                    package,
                    version,
                    version_code,
                    cid,
                    size,
                    file_name,
                    platform,
                    metadata,
                    created_at,
                    // seq never exceeds created_at (docs/records.md, section 5).
                    seq: seq % (created_at + 1),
                    sha256,
                }
            },
        )
}

/// A valid yank by `key`'s author.
pub fn yank_by(key: &AuthorKey) -> impl Strategy<Value = Yank> + use<> {
    let author = key.author_id();
    (
        package_name(),
        version(),
        text_regex("T{0,60}"),
        0u64..4_000_000_000_000,
        any::<u64>(),
    )
        .prop_map(move |(package, version, reason, created_at, seq)| Yank {
            author,
            package,
            version,
            reason,
            created_at,
            seq: seq % (created_at + 1),
        })
}

/// A signed record (release or yank) by an arbitrary author.
pub fn signed_record() -> impl Strategy<Value = SignedRecord> {
    author_key().prop_flat_map(|key| {
        let key = std::sync::Arc::new(key);
        let (k1, k2) = (key.clone(), key.clone());
        prop_oneof![
            release_by(&key).prop_map(move |r| r.sign(&k1).expect("strategy makes valid releases")),
            yank_by(&key).prop_map(move |y| y.sign(&k2).expect("strategy makes valid yanks")),
        ]
    })
}
