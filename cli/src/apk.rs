//! What `publish` reads from an APK's binary `AndroidManifest.xml`, and the
//! checks of the command line against it (`docs/cli.md`, "APKs").
//!
//! The parsing is `apk-info`'s (a zip reader and AXML decoder built to
//! survive hostile archives); this module only turns its answers into
//! [`Manifest`] and compares them with the flags.

use std::path::Path;

use ipsr_proto::{Metadata, PackageName, Version};

use crate::error::{Error, Result};

/// The manifest fields `publish` checks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Manifest {
    /// `<manifest package>`: the application id.
    pub package: String,
    /// `android:versionCode`.
    pub version_code: Option<u64>,
    /// `android:versionName`.
    pub version_name: Option<String>,
    /// `<uses-sdk android:minSdkVersion>`, when a number.
    pub min_sdk: Option<u32>,
    /// `<uses-sdk android:targetSdkVersion>`, when a number.
    pub target_sdk: Option<u32>,
    /// SHA-256 of the APK's signing certificate (hex), when it is signed:
    /// the first signer of the newest scheme present (v3.x, v2, then v1).
    /// Read, not verified: Android checks the signature on install.
    pub signing_cert_sha256: Option<String>,
    /// SHA-256 of each certificate of the APK's v3 proof of rotation (hex),
    /// oldest first, ending with `signing_cert_sha256`; empty without one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signing_cert_lineage: Vec<String>,
}

/// One line for people: `com.example.app, versionCode 7, versionName 1.2.0, SDK 21..34`.
pub(crate) fn summary(m: &Manifest) -> String {
    let mut out = m.package.clone();
    if let Some(code) = m.version_code {
        out += &format!(", versionCode {code}");
    }
    if let Some(name) = &m.version_name {
        out += &format!(", versionName {name}");
    }
    match (m.min_sdk, m.target_sdk) {
        (Some(min), Some(target)) => out += &format!(", SDK {min}..{target}"),
        (Some(min), None) => out += &format!(", min SDK {min}"),
        (None, Some(target)) => out += &format!(", target SDK {target}"),
        (None, None) => {}
    }
    if let Some(cert) = &m.signing_cert_sha256 {
        out += &format!(", signed by certificate {cert}");
    }
    if let [from, .., _] = &m.signing_cert_lineage[..] {
        out += &format!(" (rotated from {from})");
    }
    out
}

/// Whether `publish` reads `file_name` as an APK: its name ends in `.apk`.
pub(crate) fn is_apk(file_name: &str) -> bool {
    file_name.to_ascii_lowercase().ends_with(".apk")
}

/// Reads the manifest of the APK at `path`; a file that is not a readable
/// APK is a usage error.
pub(crate) fn read(path: &Path) -> Result<Manifest> {
    let bad = |why: String| {
        Error::Usage(format!(
            "{}: not a readable APK ({why}); publish a valid APK, or a file not named *.apk",
            path.display()
        ))
    };
    let apk = apk_info::Apk::new(path).map_err(|e| bad(e.to_string()))?;
    let package = apk
        .get_package_name()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("its manifest names no package".into()))?;
    let version_code = match apk.get_version_code() {
        None => None,
        Some(code) => Some(
            code.trim()
                .parse()
                .map_err(|_| bad(format!("versionCode {code:?} is not a number")))?,
        ),
    };
    let number = |v: Option<String>| v.and_then(|s| s.trim().parse().ok());
    // An unsigned APK (or an unreadable signing block) has no certificate.
    let signatures = apk.get_signatures().unwrap_or_default();
    let signing_cert_sha256 = signing_cert(&signatures);
    let signing_cert_lineage: Vec<String> = crate::rotation::read(path)
        .map_err(|e| bad(format!("its v3 proof of rotation: {e}")))?
        .iter()
        .map(hex::encode)
        .collect();
    if !signing_cert_lineage.is_empty()
        && signing_cert_lineage.last() != signing_cert_sha256.as_ref()
    {
        return Err(bad(
            "its v3 proof of rotation does not end with its signing certificate".into(),
        ));
    }
    Ok(Manifest {
        signing_cert_sha256,
        signing_cert_lineage,
        package,
        version_code,
        version_name: apk.get_version_name(),
        min_sdk: number(apk.get_min_sdk_version()),
        target_sdk: number(apk.get_attribute_value("uses-sdk", "targetSdkVersion")),
    })
}

/// The SHA-256 of the signing certificate of the newest scheme present.
fn signing_cert(signatures: &[apk_info::Signature]) -> Option<String> {
    use apk_info::Signature as S;
    fn rank(s: &S) -> Option<(u8, &Vec<apk_info::CertificateInfo>)> {
        match s {
            S::V32(c) | S::V31(c) | S::V3(c) => Some((3, c)),
            S::V2(c) => Some((2, c)),
            S::V1(c) => Some((1, c)),
            _ => None,
        }
    }
    signatures
        .iter()
        .filter_map(rank)
        .filter(|(_, certs)| !certs.is_empty())
        .max_by_key(|(r, _)| *r)
        .and_then(|(_, certs)| certs.first())
        .map(|c| c.sha256_fingerprint.to_ascii_lowercase())
}

/// Checks that the APK at `path` is signed as its signed record says
/// (`signing_cert_sha256`, `signing_cert_lineage`), for a release that names
/// a certificate: the record's check under rule 9 of `docs/records.md`
/// stands on that claim. The answer is why not, for an error message.
pub(crate) fn check_signed(path: &Path, release: &ipsr_proto::Release) -> Result<(), String> {
    let Some(claimed) = release.metadata.signing_cert_sha256 else {
        return Ok(());
    };
    let m = read(path).map_err(|e| e.to_string())?;
    let claimed_hex = hex::encode(claimed);
    if m.signing_cert_sha256.as_deref() != Some(claimed_hex.as_str()) {
        return Err(format!(
            "the signed record says the APK is signed by certificate {claimed_hex}, but it is signed by {}",
            m.signing_cert_sha256.as_deref().unwrap_or("none")
        ));
    }
    let lineage: Vec<String> = release
        .metadata
        .signing_cert_lineage
        .iter()
        .map(hex::encode)
        .collect();
    if lineage != m.signing_cert_lineage {
        return Err(format!(
            "the signed record gives the APK's proof of rotation as [{}], but the APK holds [{}]",
            lineage.join(", "),
            m.signing_cert_lineage.join(", ")
        ));
    }
    Ok(())
}

/// What the manifest adds to the command line: the version code (when no
/// `--version-code` was given) and a note for the user, if any.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Checked {
    /// The version code to publish with, if the flags gave none.
    pub version_code: Option<u64>,
    /// A line for stderr (a versionName that is not SemVer).
    pub note: Option<String>,
}

/// Compares the manifest with the flags and the metadata: a mismatch is a
/// usage error naming the field. Fills the metadata's SDKs when it has none.
pub(crate) fn check(
    file: &str,
    manifest: &Manifest,
    package: &PackageName,
    version: &Version,
    version_code: Option<u64>,
    metadata: &mut Metadata,
) -> Result<Checked> {
    let mismatch = |what: &str, theirs: &dyn std::fmt::Display, ours: String| {
        Error::Usage(format!(
            "{file}: the manifest's {what} is {theirs}, but {ours}; make them agree and publish again"
        ))
    };
    if manifest.package != package.as_str() {
        return Err(mismatch(
            "package",
            &manifest.package,
            format!("--package is {package}"),
        ));
    }
    let mut checked = Checked::default();
    if let Some(name) = &manifest.version_name {
        match name.parse::<Version>() {
            Ok(v) if v == *version => {}
            Ok(_) => {
                return Err(mismatch(
                    "versionName",
                    &name,
                    format!("--version is {version}"),
                ));
            }
            Err(_) => {
                checked.note = Some(format!(
                    "note: {file}: the manifest's versionName {name:?} is not a SemVer version, so it was not compared with --version {version}"
                ));
            }
        }
    }
    match (manifest.version_code, version_code) {
        (Some(theirs), Some(ours)) if theirs != ours => {
            return Err(mismatch(
                "versionCode",
                &theirs,
                format!("--version-code is {ours}"),
            ));
        }
        (Some(theirs), None) => checked.version_code = Some(theirs),
        _ => {}
    }
    for (what, key, field, theirs) in [
        (
            "minSdkVersion",
            "min_sdk",
            &mut metadata.min_sdk,
            manifest.min_sdk,
        ),
        (
            "targetSdkVersion",
            "target_sdk",
            &mut metadata.target_sdk,
            manifest.target_sdk,
        ),
    ] {
        let Some(theirs) = theirs else { continue };
        if *field == 0 {
            *field = theirs;
        } else if *field != theirs {
            return Err(mismatch(
                what,
                &theirs,
                format!("the metadata's {key} is {field}"),
            ));
        }
    }
    if let Some(theirs) = &manifest.signing_cert_sha256 {
        match &metadata.signing_cert_sha256 {
            None => {
                let mut digest = [0u8; 32];
                if hex::decode_to_slice(theirs, &mut digest).is_ok() {
                    metadata.signing_cert_sha256 = Some(digest);
                }
            }
            Some(ours) if hex::encode(ours) != *theirs => {
                return Err(mismatch(
                    "signing certificate SHA-256",
                    theirs,
                    format!(
                        "the metadata's signing_cert_sha256 is {}",
                        hex::encode(ours)
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if metadata.signing_cert_lineage.is_empty() {
        metadata.signing_cert_lineage = manifest
            .signing_cert_lineage
            .iter()
            .filter_map(|h| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(h, &mut digest).ok().map(|()| digest)
            })
            .collect();
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/apk")
            .join(name)
    }

    fn manifest() -> Manifest {
        Manifest {
            package: "com.example.app".into(),
            version_code: Some(7),
            version_name: Some("1.2.0".into()),
            min_sdk: Some(21),
            target_sdk: Some(34),
            signing_cert_sha256: None,
            signing_cert_lineage: Vec::new(),
        }
    }

    #[test]
    fn reads_the_fixture_manifests() {
        assert_eq!(read(&fixture("example-1.2.0.apk")).unwrap(), manifest());
        let m = read(&fixture("example-1.3.apk")).unwrap();
        assert_eq!(m.version_name.as_deref(), Some("1.3"));
        assert_eq!(m.version_code, Some(8));
    }

    #[test]
    fn reads_the_signing_certificate_of_a_signed_apk() {
        let signed = read(&fixture("example-signed-1.5.0.apk")).unwrap();
        // What apksigner printed for it (make.sh).
        let expected =
            std::fs::read_to_string(fixture("example-signed-1.5.0.apk.cert-sha256")).unwrap();
        assert_eq!(signed.signing_cert_sha256.as_deref(), Some(expected.trim()));
        assert_eq!(signed.version_code, Some(10));

        let pkg: PackageName = "com.example.app".parse().unwrap();
        let version: Version = "1.5.0".parse().unwrap();
        let mut meta = Metadata::default();
        check("s.apk", &signed, &pkg, &version, None, &mut meta).unwrap();
        assert_eq!(
            meta.signing_cert_sha256.map(hex::encode),
            Some(expected.trim().to_owned())
        );
        let mut meta = Metadata {
            signing_cert_sha256: Some([7; 32]),
            ..Metadata::default()
        };
        let err = check("s.apk", &signed, &pkg, &version, None, &mut meta).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "the manifest's signing certificate SHA-256 is {}, but the metadata's signing_cert_sha256 is {}",
                expected.trim(),
                "07".repeat(32)
            )),
            "{err}"
        );
    }

    /// A fixture's `.cert-sha256` or `.lineage` file (what apksigner printed).
    fn printed(name: &str) -> Vec<String> {
        std::fs::read_to_string(fixture(name))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn reads_the_v3_proof_of_rotation_as_apksigner_prints_it() {
        let rotated = read(&fixture("example-rotated-1.6.0.apk")).unwrap();
        let lineage = printed("example-rotated-1.6.0.apk.lineage");
        assert_eq!(lineage.len(), 2, "make.sh rotates once");
        assert_eq!(rotated.signing_cert_lineage, lineage);
        assert_eq!(
            rotated.signing_cert_sha256,
            Some(printed("example-rotated-1.6.0.apk.cert-sha256")[0].clone())
        );
        // It rotates from the key that signed 1.5.0.
        assert_eq!(
            lineage[0],
            printed("example-signed-1.5.0.apk.cert-sha256")[0]
        );
        assert!(summary(&rotated).ends_with(&format!(
            "signed by certificate {} (rotated from {})",
            lineage[1], lineage[0]
        )));
        let pkg: PackageName = "com.example.app".parse().unwrap();
        let version: Version = "1.6.0".parse().unwrap();
        let mut meta = Metadata::default();
        check("r.apk", &rotated, &pkg, &version, None, &mut meta).unwrap();
        assert_eq!(
            meta.signing_cert_lineage
                .iter()
                .map(hex::encode)
                .collect::<Vec<_>>(),
            lineage
        );
        // A v2/v3 APK without a rotation, and an unsigned one, have none.
        for plain in [
            "example-stranger-1.6.0.apk",
            "example-signed-1.5.0.apk",
            "example-1.2.0.apk",
        ] {
            assert_eq!(
                read(&fixture(plain)).unwrap().signing_cert_lineage,
                Vec::<String>::new()
            );
        }
    }

    #[test]
    fn a_record_must_say_how_its_apk_is_signed() {
        let rotated = fixture("example-rotated-1.6.0.apk");
        let m = read(&rotated).unwrap();
        let hash = |h: &str| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).unwrap();
            out
        };
        let mut release = ipsr_proto::Release::new(
            ipsr_proto::AuthorKey::from_seed(&[1; 32]).author_id(),
            "com.example.app".parse().unwrap(),
            "1.6.0".parse().unwrap(),
            11,
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
                .parse()
                .unwrap(),
        );
        // Naming no certificate claims nothing.
        check_signed(&rotated, &release).unwrap();
        release.metadata.signing_cert_sha256 = m.signing_cert_sha256.as_deref().map(hash);
        release.metadata.signing_cert_lineage =
            m.signing_cert_lineage.iter().map(|h| hash(h)).collect();
        check_signed(&rotated, &release).unwrap();
        // A record that claims a rotation the APK does not hold.
        let stranger = fixture("example-stranger-1.6.0.apk");
        release.metadata.signing_cert_sha256 =
            Some(hash(&printed("example-stranger-1.6.0.apk.cert-sha256")[0]));
        let err = check_signed(&stranger, &release).unwrap_err();
        assert!(err.contains("proof of rotation"), "{err}");
        // A record that names another certificate.
        release.metadata.signing_cert_lineage.clear();
        release.metadata.signing_cert_sha256 = Some([7; 32]);
        let err = check_signed(&stranger, &release).unwrap_err();
        assert!(err.contains(&"07".repeat(32)), "{err}");
    }

    #[test]
    fn garbage_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("empty.apk", &b""[..]),
            ("text.apk", b"not a zip at all"),
            ("zip-prefix.apk", b"PK\x03\x04 and then nothing"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = read(&path).unwrap_err();
            assert_eq!(err.exit_code(), crate::code::USAGE, "{name}: {err}");
            assert!(err.to_string().contains("not a readable APK"), "{err}");
        }
        // A truncated real APK.
        let real = std::fs::read(fixture("example-1.2.0.apk")).unwrap();
        for cut in [10, real.len() / 2, real.len() - 10] {
            let path = dir.path().join("cut.apk");
            std::fs::write(&path, &real[..cut]).unwrap();
            assert!(read(&path).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn flags_are_checked_against_the_manifest() {
        let pkg: PackageName = "com.example.app".parse().unwrap();
        let v = |s: &str| s.parse::<Version>().unwrap();
        let mut meta = Metadata::default();
        let ok = check("a.apk", &manifest(), &pkg, &v("1.2.0"), None, &mut meta).unwrap();
        assert_eq!(ok.version_code, Some(7));
        assert_eq!((meta.min_sdk, meta.target_sdk), (21, 34));

        // Each mismatch, from otherwise agreeing flags and metadata.
        let refused = |package: &str, version: &str, code: Option<u64>, target_sdk: u32| {
            let mut meta = Metadata {
                target_sdk,
                ..Metadata::default()
            };
            let package: PackageName = package.parse().unwrap();
            check("a.apk", &manifest(), &package, &v(version), code, &mut meta)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused("com.example.other", "1.2.0", None, 0),
            "a.apk: the manifest's package is com.example.app, but --package is com.example.other; make them agree and publish again"
        );
        assert!(
            refused("com.example.app", "1.2.1", None, 0)
                .contains("versionName is 1.2.0, but --version is 1.2.1")
        );
        assert!(
            refused("com.example.app", "1.2.0", Some(8), 0)
                .contains("versionCode is 7, but --version-code is 8")
        );
        assert!(
            refused("com.example.app", "1.2.0", None, 33)
                .contains("targetSdkVersion is 34, but the metadata's target_sdk is 33")
        );

        // A versionName that is not SemVer is noted, not compared.
        let loose = Manifest {
            version_name: Some("1.3".into()),
            ..manifest()
        };
        let mut meta = Metadata::default();
        let c = check("a.apk", &loose, &pkg, &v("1.3.0"), Some(7), &mut meta).unwrap();
        assert_eq!(c.version_code, None);
        assert!(c.note.unwrap().contains("\"1.3\" is not a SemVer version"));
    }
}
