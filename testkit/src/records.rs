//! One builder of signed records for every test: a release or a yank with
//! defaults, changed field by field, then signed.
//!
//! Times: a record given a `seq` is created at [`T0`]` + seq` (unless it is
//! given a `created_at` too), so its bytes are the same on every run; a
//! record given neither has both set to now, as [`Release::new`] does.

use ipsr_proto::{
    AuthorKey, ContentId, Metadata, PackageName, Platform, Record, Release, SignedRecord, Version,
    Yank,
};

/// The package of a record unless the test names another.
pub const PACKAGE: &str = "com.example.app";

/// The content of a release unless the test gives another: a raw CIDv1
/// (sha2-256), the one of `ipsr-proto`'s example.
pub const CID: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

/// The base of `created_at` (ms) of a record given a `seq` and no
/// `created_at`: it is created at `T0 + seq`, so its bytes are the same on
/// every run. 2023-11-14 22:13:20 UTC.
pub const T0: u64 = 1_700_000_000_000;

/// The author key of seed `[seed; 32]`.
pub fn key(seed: u8) -> AuthorKey {
    AuthorKey::from_seed(&[seed; 32])
}

/// A raw sha2-256 CIDv1 whose digest starts with `n` (big-endian), then
/// zeros: distinct numbers, distinct CIDs, of content nobody holds.
pub fn cid(n: u32) -> ContentId {
    let mut bytes = vec![0x01, 0x55, 0x12, 0x20];
    let mut digest = [0u8; 32];
    digest[..4].copy_from_slice(&n.to_be_bytes());
    bytes.extend(digest);
    ContentId::from_bytes(&bytes).expect("a raw sha2-256 CIDv1")
}

fn package(name: &str) -> PackageName {
    name.parse()
        .unwrap_or_else(|e| panic!("package name {name:?}: {e}"))
}

fn version(v: &str) -> Version {
    v.parse().unwrap_or_else(|e| panic!("version {v:?}: {e}"))
}

/// A release of [`PACKAGE`] at `version` by `key`: version code 1, content
/// [`CID`] of size 0, file name `PACKAGE-VERSION`, platform `any`, empty
/// metadata, created now with `seq` now (as [`Release::new`] makes it);
/// [`seq`](ReleaseBuilder::seq) fixes both.
pub fn release<'k>(key: &'k AuthorKey, version: &str) -> ReleaseBuilder<'k> {
    ReleaseBuilder {
        base: Base::new(key, version),
        version_code: 1,
        cid: CID.parse().expect("CID is a CID"),
        size: 0,
        file_name: None,
        platform: Platform::any(),
        metadata: Metadata::default(),
        sha256: None,
    }
}

/// `n` releases by 8 authors (keys 1 to 8), release `i` being version
/// `1.0.i` of `com.example.app{i % 1000}` with content [`cid`]`(i)` and
/// `seq` `i + 1`: distinct releases of distinct content, the same bytes on
/// every run. For tests and benches that need many records.
pub fn releases(n: usize) -> Vec<SignedRecord> {
    let authors: Vec<AuthorKey> = (1..=8).map(key).collect();
    (0..n)
        .map(|i| {
            release(&authors[i % 8], &format!("1.0.{i}"))
                .package(&format!("com.example.app{}", i % 1000))
                .code(i as u64 + 1)
                .seq(i as u64 + 1)
                .cid(cid(u32::try_from(i).expect("fewer than 2^32 records")))
                .sign()
        })
        .collect()
}

/// The envelope of `record` with the last byte of its signature flipped:
/// bytes that parse but never verify.
pub fn tampered(record: &SignedRecord) -> Vec<u8> {
    let mut bytes = record.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    bytes
}

/// A yank of [`PACKAGE`] at `version` by `key`, reason `broken`, created now
/// with `seq` now; [`seq`](YankBuilder::seq) fixes both.
pub fn yank<'k>(key: &'k AuthorKey, version: &str) -> YankBuilder<'k> {
    YankBuilder {
        base: Base::new(key, version),
        reason: "broken".into(),
    }
}

/// What releases and yanks have alike: who, what, when.
#[derive(Debug, Clone)]
struct Base<'k> {
    key: &'k AuthorKey,
    package: PackageName,
    version: Version,
    seq: Option<u64>,
    created_at: Option<u64>,
}

impl<'k> Base<'k> {
    fn new(key: &'k AuthorKey, version: &str) -> Self {
        Self {
            key,
            package: package(PACKAGE),
            version: self::version(version),
            seq: None,
            created_at: None,
        }
    }

    /// Sets `seq` and `created_at` of a record made with both now.
    fn stamp(&self, seq: &mut u64, created_at: &mut u64) {
        if let Some(n) = self.seq {
            *seq = n;
            *created_at = T0 + n;
        }
        if let Some(ms) = self.created_at {
            *created_at = ms;
            // seq may not exceed created_at (docs/records.md, section 5).
            if self.seq.is_none() {
                *seq = ms;
            }
        }
    }

    fn sign(key: &AuthorKey, record: Record) -> SignedRecord {
        record
            .sign(key)
            .unwrap_or_else(|e| panic!("the test's record is invalid: {e}"))
    }
}

/// The setters of [`Base`]'s fields, for both builders.
macro_rules! base_setters {
    ($variant:ident) => {
        /// Of another package.
        pub fn package(mut self, name: &str) -> Self {
            self.base.package = package(name);
            self
        }

        /// The sequence number; created at [`T0`]` + seq` unless
        /// [`created_at`](Self::created_at) says otherwise.
        pub fn seq(mut self, seq: u64) -> Self {
            self.base.seq = Some(seq);
            self
        }

        /// The creation time (Unix ms).
        pub fn created_at(mut self, ms: u64) -> Self {
            self.base.created_at = Some(ms);
            self
        }

        /// The record, signed by its author.
        pub fn sign(self) -> SignedRecord {
            let key = self.base.key;
            Base::sign(key, Record::$variant(self.build()))
        }
    };
}

/// A release being built: see [`release`].
#[derive(Debug, Clone)]
#[must_use = "a builder makes nothing until it is signed or built"]
pub struct ReleaseBuilder<'k> {
    base: Base<'k>,
    version_code: u64,
    cid: ContentId,
    size: u64,
    file_name: Option<String>,
    platform: Platform,
    metadata: Metadata,
    sha256: Option<[u8; 32]>,
}

impl ReleaseBuilder<'_> {
    base_setters!(Release);

    /// The version code.
    pub fn code(mut self, version_code: u64) -> Self {
        self.version_code = version_code;
        self
    }

    /// The content.
    pub fn cid(mut self, cid: ContentId) -> Self {
        self.cid = cid;
        self
    }

    /// The content's size in bytes.
    pub fn size(mut self, size: u64) -> Self {
        self.size = size;
        self
    }

    /// The SHA-256 the record states for the content.
    pub fn sha256(mut self, sha256: [u8; 32]) -> Self {
        self.sha256 = Some(sha256);
        self
    }

    /// The file name offered on download.
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = Some(name.into());
        self
    }

    /// The target platform.
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    /// The title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.metadata.title = title.into();
        self
    }

    /// The one-line summary.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.metadata.summary = summary.into();
        self
    }

    /// Any other metadata, changed in place.
    pub fn metadata(mut self, edit: impl FnOnce(&mut Metadata)) -> Self {
        edit(&mut self.metadata);
        self
    }

    /// The unsigned release.
    pub fn build(self) -> Release {
        let b = self.base;
        let mut r = Release::new(
            b.key.author_id(),
            b.package.clone(),
            b.version.clone(),
            self.version_code,
            self.cid,
        );
        b.stamp(&mut r.seq, &mut r.created_at);
        if let Some(name) = self.file_name {
            r.file_name = name;
        }
        r.size = self.size;
        r.platform = self.platform;
        r.metadata = self.metadata;
        r.sha256 = self.sha256;
        r
    }
}

/// A yank being built: see [`yank`].
#[derive(Debug, Clone)]
#[must_use = "a builder makes nothing until it is signed or built"]
pub struct YankBuilder<'k> {
    base: Base<'k>,
    reason: String,
}

impl YankBuilder<'_> {
    base_setters!(Yank);

    /// Why, for humans.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// The unsigned yank.
    pub fn build(self) -> Yank {
        let b = self.base;
        let mut y = Yank::new(
            b.key.author_id(),
            b.package.clone(),
            b.version.clone(),
            self.reason,
        );
        b.stamp(&mut y.seq, &mut y.created_at);
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_those_of_release_new() {
        let k = key(1);
        let before = ipsr_proto::now_ms();
        let r = release(&k, "1.0.0").build();
        assert_eq!(r.author, k.author_id());
        assert_eq!(r.package.as_str(), PACKAGE);
        assert_eq!((r.version.to_string(), r.version_code), ("1.0.0".into(), 1));
        assert_eq!(r.cid.to_string(), CID);
        assert_eq!((r.size, r.file_name.as_str()), (0, "com.example.app-1.0.0"));
        assert_eq!(r.platform, Platform::any());
        assert_eq!(r.metadata, Metadata::default());
        assert!(r.created_at >= before && r.seq == r.created_at);
    }

    #[test]
    fn a_seq_fixes_the_time_and_every_field_can_change() {
        let k = key(2);
        let r = release(&k, "2.0.0")
            .package("org.example.notes")
            .code(7)
            .seq(5)
            .cid(cid(3))
            .size(1536)
            .title("Notes")
            .summary("In one line")
            .metadata(|m| m.categories = vec!["tools".into()])
            .platform(Platform::android())
            .sign();
        let Record::Release(rel) = r.record() else {
            panic!("a release")
        };
        assert_eq!((rel.seq, rel.created_at), (5, T0 + 5));
        assert_eq!(rel.file_name, "org.example.notes-2.0.0");
        assert_eq!((rel.version_code, rel.size), (7, 1536));
        assert_eq!(rel.cid, cid(3));
        assert_eq!(rel.metadata.title, "Notes");
        assert_eq!(rel.metadata.categories, ["tools"]);
        let fixed = release(&k, "1.0.0").seq(5).created_at(9).file_name("x.apk");
        let fixed = fixed.build();
        assert_eq!((fixed.seq, fixed.created_at), (5, 9));
        assert_eq!(fixed.file_name, "x.apk");
        assert_eq!(
            release(&k, "1.0.0").seq(1).sign(),
            release(&k, "1.0.0").seq(1).sign()
        );
    }

    #[test]
    fn yanks() {
        let k = key(3);
        let y = yank(&k, "1.0.0").seq(4).reason("crashes").build();
        assert_eq!((y.seq, y.created_at), (4, T0 + 4));
        assert_eq!(
            (y.package.as_str(), y.reason.as_str()),
            (PACKAGE, "crashes")
        );
        let y = yank(&k, "1.0.0").package("org.x.y").created_at(3).build();
        assert_eq!(y.reason, "broken");
        assert_eq!((y.package.as_str(), y.created_at), ("org.x.y", 3));
        assert!(matches!(yank(&k, "1.0.0").sign().record(), Record::Yank(_)));
    }

    #[test]
    fn cids_differ_by_number() {
        assert_ne!(cid(1), cid(2));
        assert_eq!(cid(0).to_bytes()[4..], [0; 32]);
    }
}
