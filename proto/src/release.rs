//! Releases, yanks and their metadata; validation and conversion from and to
//! the generated protobuf types (the only place that touches them besides
//! `record.rs`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::limits::*;
use crate::text::{self, Text};
use crate::{AuthorId, ContentId, InvalidRecord, PackageName, ParseAuthorIdError, Version, pb};

/// The platform a release targets: `android`, `ios`, `any`, or another
/// lower-case name (`[a-z0-9][a-z0-9_-]*`, at most 32 bytes).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Platform(String);

impl Platform {
    /// Android phones and tablets.
    pub fn android() -> Self {
        Self("android".into())
    }
    /// iOS devices.
    pub fn ios() -> Self {
        Self("ios".into())
    }
    /// Any platform.
    pub fn any() -> Self {
        Self("any".into())
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Platform {
    type Err = InvalidRecord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FIELD: &str = "platform";
        if s.len() > MAX_PLATFORM {
            return Err(InvalidRecord::TooLong {
                field: FIELD,
                len: s.len(),
                max: MAX_PLATFORM,
            });
        }
        let mut chars = s.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !(first_ok && rest_ok) {
            return Err(InvalidRecord::Invalid {
                field: FIELD,
                reason: "must be lower-case letters, digits, _ or -",
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for Platform {
    type Error = InvalidRecord;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Platform> for String {
    fn from(p: Platform) -> Self {
        p.0
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Platform({})", self.0)
    }
}

/// Human-facing description of a release. Every field may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metadata {
    /// Display name, one line.
    pub title: String,
    /// One-line summary.
    pub summary: String,
    /// Long description; newlines allowed.
    pub description: String,
    /// SPDX license expression.
    pub license: String,
    /// Project home page (absolute http(s) URL).
    pub homepage_url: Option<String>,
    /// Source code (absolute http(s) URL).
    pub source_url: Option<String>,
    /// Store categories (`[a-z0-9-]`).
    pub categories: Vec<String>,
    /// Android minSdkVersion; 0 when unknown.
    pub min_sdk: u32,
    /// Android targetSdkVersion; 0 when unknown.
    pub target_sdk: u32,
    /// Requested permissions, e.g. `android.permission.CAMERA`.
    pub permissions: Vec<String>,
    /// SHA-256 of the APK signing certificate.
    #[serde(with = "opt_hex32")]
    pub signing_cert_sha256: Option<[u8; 32]>,
    /// SHA-256 of each certificate of the APK's v3 proof of rotation, oldest
    /// first, ending with `signing_cert_sha256`; empty without one.
    #[serde(
        with = "crate::identity::hex32_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub signing_cert_lineage: Vec<[u8; 32]>,
    /// CID of the icon image.
    pub icon: Option<ContentId>,
    /// CIDs of screenshots.
    pub screenshots: Vec<ContentId>,
    /// What changed in this version, for people; newlines allowed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub changelog: String,
    /// Native ABIs the APK has code for (`arm64-v8a`, `x86_64`, ...);
    /// empty when it has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub native_code: Vec<String>,
}

/// One published version of one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Who signs it.
    pub author: AuthorId,
    /// The application id.
    pub package: PackageName,
    /// The semantic version.
    pub version: Version,
    /// Android-style versionCode: orders the releases of one package.
    pub version_code: u64,
    /// The artifact's root CID.
    pub cid: ContentId,
    /// The artifact's size in bytes.
    pub size: u64,
    /// The file name offered on download (no path separators).
    pub file_name: String,
    /// Target platform.
    pub platform: Platform,
    /// Description for humans.
    pub metadata: Metadata,
    /// Unix time in ms when signed.
    pub created_at: u64,
    /// Per author+package sequence number (see the crate docs).
    pub seq: u64,
    /// SHA-256 of the artifact's bytes, when stated (F-Droid indexes and
    /// download checks use it beside the CID).
    #[serde(default, with = "opt_hex32", skip_serializing_if = "Option::is_none")]
    pub sha256: Option<[u8; 32]>,
}

/// A signed retraction of one release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Yank {
    /// Who signs it; must be the release's author.
    pub author: AuthorId,
    /// The application id.
    pub package: PackageName,
    /// The retracted version.
    pub version: Version,
    /// Why, for humans.
    pub reason: String,
    /// Unix time in ms when signed.
    pub created_at: u64,
    /// Per author+package sequence number.
    pub seq: u64,
}

impl Release {
    /// A release with empty metadata, platform `any`, a file name made of the
    /// package and version, `created_at` now and `seq` equal to `created_at`
    /// (so successive records grow without the author keeping a counter).
    pub fn new(
        author: AuthorId,
        package: PackageName,
        version: Version,
        version_code: u64,
        cid: ContentId,
    ) -> Self {
        let now = crate::now_ms();
        Self {
            file_name: format!("{package}-{version}"),
            author,
            package,
            version,
            version_code,
            cid,
            size: 0,
            platform: Platform::any(),
            metadata: Metadata::default(),
            created_at: now,
            seq: now,
            sha256: None,
        }
    }

    /// Checks every field against the limits of `docs/records.md`.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        let f = &self.file_name;
        check_len("file_name", f, MAX_FILE_NAME)?;
        text::check("file_name", f, Text::Name)?;
        if f.is_empty() || f == "." || f == ".." || f.contains(['/', '\\']) {
            return Err(InvalidRecord::Invalid {
                field: "file_name",
                reason: "must be a plain file name without path separators",
            });
        }
        self.metadata.validate()?;
        check_seq(self.seq, self.created_at)
    }
}

impl Yank {
    /// A yank of `author/package@version`, `created_at` now and `seq` equal to it.
    pub fn new(author: AuthorId, package: PackageName, version: Version, reason: String) -> Self {
        let now = crate::now_ms();
        Self {
            author,
            package,
            version,
            reason,
            created_at: now,
            seq: now,
        }
    }

    /// Checks every field against the limits of `docs/records.md`.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        check_len("reason", &self.reason, MAX_REASON)?;
        text::check("reason", &self.reason, Text::Lines)?;
        check_seq(self.seq, self.created_at)
    }
}

impl Metadata {
    /// Checks every field against the limits of `docs/records.md`.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        check_len("metadata.title", &self.title, MAX_TITLE)?;
        text::check("metadata.title", &self.title, Text::Line)?;
        check_len("metadata.summary", &self.summary, MAX_SUMMARY)?;
        text::check("metadata.summary", &self.summary, Text::Line)?;
        check_len("metadata.description", &self.description, MAX_DESCRIPTION)?;
        text::check("metadata.description", &self.description, Text::Lines)?;
        check_len("metadata.license", &self.license, MAX_LICENSE)?;
        text::check("metadata.license", &self.license, Text::Name)?;
        for (field, url) in [
            ("metadata.homepage_url", &self.homepage_url),
            ("metadata.source_url", &self.source_url),
        ] {
            if let Some(url) = url {
                check_url(field, url)?;
            }
        }
        check_count("metadata.categories", self.categories.len(), MAX_CATEGORIES)?;
        for c in &self.categories {
            check_len("metadata.categories", c, MAX_CATEGORY)?;
            let ok = !c.is_empty()
                && c.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(InvalidRecord::Invalid {
                    field: "metadata.categories",
                    reason: "a category is 1 or more of a-z, 0-9 and -",
                });
            }
        }
        check_count(
            "metadata.permissions",
            self.permissions.len(),
            MAX_PERMISSIONS,
        )?;
        for p in &self.permissions {
            check_len("metadata.permissions", p, MAX_PERMISSION)?;
            let ok = !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
            if !ok {
                return Err(InvalidRecord::Invalid {
                    field: "metadata.permissions",
                    reason: "a permission is 1 or more of A-Z, a-z, 0-9, . and _",
                });
            }
        }
        check_count(
            "metadata.screenshots",
            self.screenshots.len(),
            MAX_SCREENSHOTS,
        )?;
        check_len("metadata.changelog", &self.changelog, MAX_CHANGELOG)?;
        text::check("metadata.changelog", &self.changelog, Text::Lines)?;
        check_count(
            "metadata.native_code",
            self.native_code.len(),
            MAX_NATIVE_CODE,
        )?;
        for abi in &self.native_code {
            check_len("metadata.native_code", abi, MAX_ABI)?;
            let ok = !abi.is_empty()
                && abi
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !ok {
                return Err(InvalidRecord::Invalid {
                    field: "metadata.native_code",
                    reason: "an ABI is 1 or more of a-z, 0-9, - and _",
                });
            }
        }
        self.check_lineage()
    }

    /// `signing_cert_lineage`: at most [`MAX_CERT_LINEAGE`] distinct
    /// certificates, ending with `signing_cert_sha256`.
    fn check_lineage(&self) -> Result<(), InvalidRecord> {
        let lineage = &self.signing_cert_lineage;
        if lineage.is_empty() {
            return Ok(());
        }
        check_count(
            "metadata.signing_cert_lineage",
            lineage.len(),
            MAX_CERT_LINEAGE,
        )?;
        let invalid = |reason| InvalidRecord::Invalid {
            field: "metadata.signing_cert_lineage",
            reason,
        };
        if lineage.last() != self.signing_cert_sha256.as_ref() {
            return Err(invalid("must end with signing_cert_sha256"));
        }
        let distinct: std::collections::BTreeSet<_> = lineage.iter().collect();
        if distinct.len() != lineage.len() {
            return Err(invalid("must not name a certificate twice"));
        }
        Ok(())
    }
}

/// `seq` may not exceed `created_at` (`docs/records.md`, section 5): with
/// `created_at` at most an hour ahead of every verifier's clock, no record
/// holds a seq its author cannot pass an hour later.
pub(crate) fn check_seq(seq: u64, created_at: u64) -> Result<(), InvalidRecord> {
    if seq > created_at {
        return Err(InvalidRecord::Invalid {
            field: "seq",
            reason: "must not exceed created_at",
        });
    }
    Ok(())
}

pub(crate) fn check_len(field: &'static str, s: &str, max: usize) -> Result<(), InvalidRecord> {
    if s.len() > max {
        return Err(InvalidRecord::TooLong {
            field,
            len: s.len(),
            max,
        });
    }
    Ok(())
}

pub(crate) fn check_count(
    field: &'static str,
    count: usize,
    max: usize,
) -> Result<(), InvalidRecord> {
    if count > max {
        return Err(InvalidRecord::TooMany { field, count, max });
    }
    Ok(())
}

pub(crate) fn check_url(field: &'static str, s: &str) -> Result<(), InvalidRecord> {
    check_len(field, s, MAX_URL)?;
    text::check(field, s, Text::Name)?;
    let url = url::Url::parse(s).map_err(|_| InvalidRecord::Url { field })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(InvalidRecord::Url { field });
    }
    Ok(())
}

// ---- conversions from and to the generated types ----

/// How a decoder turns the author field into an [`AuthorId`]: normally
/// [`AuthorId::from_bytes`]; verification may answer from a
/// [`KeyCache`](crate::KeyCache) instead, with the same result.
pub(crate) type AuthorCheck<'a> = dyn FnMut(&[u8]) -> Result<AuthorId, ParseAuthorIdError> + 'a;

fn package_from(s: &str) -> Result<PackageName, InvalidRecord> {
    s.parse().map_err(InvalidRecord::Package)
}

fn version_from(s: &str) -> Result<Version, InvalidRecord> {
    s.parse().map_err(InvalidRecord::Version)
}

pub(crate) fn cid_from(field: &'static str, bytes: &[u8]) -> Result<ContentId, InvalidRecord> {
    ContentId::from_bytes(bytes).map_err(|source| InvalidRecord::Cid { field, source })
}

fn opt_url(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl TryFrom<pb::Metadata> for Metadata {
    type Error = InvalidRecord;

    fn try_from(m: pb::Metadata) -> Result<Self, Self::Error> {
        let signing_cert_sha256 = match m.signing_cert_sha256.len() {
            0 => None,
            32 => Some(
                m.signing_cert_sha256[..]
                    .try_into()
                    .expect("length checked"),
            ),
            _ => {
                return Err(InvalidRecord::Invalid {
                    field: "metadata.signing_cert_sha256",
                    reason: "must be empty or 32 bytes",
                });
            }
        };
        let signing_cert_lineage = m
            .signing_cert_lineage
            .iter()
            .map(|c| {
                <[u8; 32]>::try_from(&c[..]).map_err(|_| InvalidRecord::Invalid {
                    field: "metadata.signing_cert_lineage",
                    reason: "must hold 32-byte hashes",
                })
            })
            .collect::<Result<_, _>>()?;
        let icon = match m.icon.is_empty() {
            true => None,
            false => Some(cid_from("metadata.icon", &m.icon)?),
        };
        check_count("metadata.screenshots", m.screenshots.len(), MAX_SCREENSHOTS)?;
        let screenshots = m
            .screenshots
            .iter()
            .map(|c| cid_from("metadata.screenshots", c))
            .collect::<Result<_, _>>()?;
        let meta = Self {
            title: m.title,
            summary: m.summary,
            description: m.description,
            license: m.license,
            homepage_url: opt_url(m.homepage_url),
            source_url: opt_url(m.source_url),
            categories: m.categories,
            min_sdk: m.min_sdk,
            target_sdk: m.target_sdk,
            permissions: m.permissions,
            signing_cert_sha256,
            signing_cert_lineage,
            icon,
            screenshots,
            changelog: m.changelog,
            native_code: m.native_code,
        };
        meta.validate()?;
        Ok(meta)
    }
}

impl From<&Metadata> for pb::Metadata {
    fn from(m: &Metadata) -> Self {
        Self {
            title: m.title.clone(),
            summary: m.summary.clone(),
            description: m.description.clone(),
            license: m.license.clone(),
            homepage_url: m.homepage_url.clone().unwrap_or_default(),
            source_url: m.source_url.clone().unwrap_or_default(),
            categories: m.categories.clone(),
            min_sdk: m.min_sdk,
            target_sdk: m.target_sdk,
            permissions: m.permissions.clone(),
            signing_cert_sha256: m
                .signing_cert_sha256
                .map(|c| c.to_vec())
                .unwrap_or_default()
                .into(),
            signing_cert_lineage: m
                .signing_cert_lineage
                .iter()
                .map(|c| c.to_vec().into())
                .collect(),
            icon: m.icon.map(|c| c.to_bytes()).unwrap_or_default().into(),
            screenshots: m.screenshots.iter().map(|c| c.to_bytes().into()).collect(),
            changelog: m.changelog.clone(),
            native_code: m.native_code.clone(),
        }
    }
}

impl TryFrom<pb::Release> for Release {
    type Error = InvalidRecord;

    fn try_from(r: pb::Release) -> Result<Self, Self::Error> {
        Self::from_pb(r, &mut AuthorId::from_bytes)
    }
}

impl Release {
    /// From the generated type, checking the author's key with `author`
    /// (which must check as [`AuthorId::from_bytes`] does).
    pub(crate) fn from_pb(
        r: pb::Release,
        author: &mut AuthorCheck<'_>,
    ) -> Result<Self, InvalidRecord> {
        let release = Self {
            author: author(&r.author).map_err(InvalidRecord::Author)?,
            package: package_from(&r.package)?,
            version: version_from(&r.version)?,
            version_code: r.version_code,
            cid: cid_from("cid", &r.cid)?,
            size: r.size,
            file_name: r.file_name,
            platform: r.platform.parse()?,
            metadata: r.metadata.unwrap_or_default().try_into()?,
            created_at: r.created_at,
            seq: r.seq,
            sha256: match r.sha256.len() {
                0 => None,
                32 => Some(r.sha256[..].try_into().expect("length checked")),
                _ => {
                    return Err(InvalidRecord::Invalid {
                        field: "sha256",
                        reason: "must be empty or 32 bytes",
                    });
                }
            },
        };
        release.validate()?;
        Ok(release)
    }
}

impl From<&Release> for pb::Release {
    fn from(r: &Release) -> Self {
        Self {
            author: r.author.as_bytes().to_vec().into(),
            package: r.package.to_string(),
            version: r.version.to_string(),
            version_code: r.version_code,
            cid: r.cid.to_bytes().into(),
            size: r.size,
            file_name: r.file_name.clone(),
            platform: r.platform.to_string(),
            metadata: Some((&r.metadata).into()),
            created_at: r.created_at,
            seq: r.seq,
            sha256: r.sha256.map(|h| h.to_vec()).unwrap_or_default().into(),
        }
    }
}

impl TryFrom<pb::Yank> for Yank {
    type Error = InvalidRecord;

    fn try_from(y: pb::Yank) -> Result<Self, Self::Error> {
        Self::from_pb(y, &mut AuthorId::from_bytes)
    }
}

impl Yank {
    /// From the generated type, checking the author's key with `author`
    /// (which must check as [`AuthorId::from_bytes`] does).
    pub(crate) fn from_pb(
        y: pb::Yank,
        author: &mut AuthorCheck<'_>,
    ) -> Result<Self, InvalidRecord> {
        let yank = Self {
            author: author(&y.author).map_err(InvalidRecord::Author)?,
            package: package_from(&y.package)?,
            version: version_from(&y.version)?,
            reason: y.reason,
            created_at: y.created_at,
            seq: y.seq,
        };
        yank.validate()?;
        Ok(yank)
    }
}

impl From<&Yank> for pb::Yank {
    fn from(y: &Yank) -> Self {
        Self {
            author: y.author.as_bytes().to_vec().into(),
            package: y.package.to_string(),
            version: y.version.to_string(),
            reason: y.reason.clone(),
            created_at: y.created_at,
            seq: y.seq,
        }
    }
}

/// Serde helper: `Option<[u8; 32]>` as a lower-case hex string.
mod opt_hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_some(&hex::encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_names() {
        for ok in ["android", "ios", "any", "linux-arm64", "wear_os", "1"] {
            assert!(ok.parse::<Platform>().is_ok(), "{ok}");
        }
        for bad in ["", "Android", "-x", "a b", "ios/", "x".repeat(33).as_str()] {
            assert!(bad.parse::<Platform>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_limits_name_the_field() {
        let mut m = Metadata {
            title: "x".repeat(MAX_TITLE + 1),
            ..Metadata::default()
        };
        assert_eq!(m.validate().unwrap_err().field(), "metadata.title");
        m.title = "Title\u{7}".into();
        assert_eq!(
            m.validate().unwrap_err(),
            InvalidRecord::ControlChar {
                field: "metadata.title"
            }
        );
        m.title = "<script>alert(1)</script>".into(); // HTML is data: escaped by whoever renders it
        assert_eq!(m.validate(), Ok(()));
        m.description = "line one\nline two\ttabbed".into();
        assert_eq!(m.validate(), Ok(()));
        m.homepage_url = Some("javascript:alert(1)".into());
        assert_eq!(
            m.validate().unwrap_err(),
            InvalidRecord::Url {
                field: "metadata.homepage_url"
            }
        );
        m.homepage_url = Some("https://example.com/app".into());
        m.categories = vec!["Games".into()];
        assert_eq!(m.validate().unwrap_err().field(), "metadata.categories");
        m.categories = vec!["games".into(); MAX_CATEGORIES + 1];
        assert!(matches!(m.validate(), Err(InvalidRecord::TooMany { .. })));
        m.categories = vec!["games".into()];
        m.permissions = vec!["android.permission.CAMERA".into(), "bad perm".into()];
        assert_eq!(m.validate().unwrap_err().field(), "metadata.permissions");
    }

    /// Every text field a page or client shows applies the display rule,
    /// and the error names the field and the code point.
    #[test]
    fn display_fields_refuse_bidi_and_invisible_characters() {
        let key = crate::AuthorKey::from_seed(&[1; 32]);
        let release = Release::new(
            key.author_id(),
            "com.example.app".parse().unwrap(),
            "1.0.0".parse().unwrap(),
            1,
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
                .parse()
                .unwrap(),
        );
        for (field, text, ch) in [
            ("file_name", "Safe\u{202E}kpa.exe", '\u{202E}'),
            ("file_name", "app.apk\u{200B}", '\u{200B}'),
            // A joiner is prose, not part of a name.
            ("file_name", "a\u{200D}b.apk", '\u{200D}'),
            ("metadata.title", "Notes\u{2067}", '\u{2067}'),
            ("metadata.summary", "\u{FEFF}Fast", '\u{FEFF}'),
            ("metadata.description", "line\n\u{E0041}", '\u{E0041}'),
            ("metadata.license", "MIT\u{200C}", '\u{200C}'),
            (
                "metadata.homepage_url",
                "https://e.org/\u{202E}",
                '\u{202E}',
            ),
            ("metadata.source_url", "https://e.org/\u{2028}", '\u{2028}'),
        ] {
            let mut r = release.clone();
            let text = text.to_owned();
            match field {
                "file_name" => r.file_name = text,
                "metadata.title" => r.metadata.title = text,
                "metadata.summary" => r.metadata.summary = text,
                "metadata.description" => r.metadata.description = text,
                "metadata.license" => r.metadata.license = text,
                "metadata.homepage_url" => r.metadata.homepage_url = Some(text),
                _ => r.metadata.source_url = Some(text),
            }
            assert_eq!(
                r.validate(),
                Err(InvalidRecord::FormatChar { field, ch }),
                "{field}"
            );
        }
        let mut ok = release.clone();
        ok.metadata.title = "\u{1F469}\u{200D}\u{1F4BB} \u{645}\u{6CC}\u{200C}\u{62E}".into();
        assert_eq!(ok.validate(), Ok(()));

        let mut yank = Yank::new(
            key.author_id(),
            release.package.clone(),
            release.version.clone(),
            "broken\u{202D}".into(),
        );
        assert_eq!(
            yank.validate().unwrap_err().to_string(),
            "reason contains U+202D, an invisible or bidirectional formatting character"
        );
        yank.reason = "broken on Android 14\n\u{5E9}\u{5DC}\u{5D5}\u{5DD}".into();
        assert_eq!(yank.validate(), Ok(()));
    }
}
