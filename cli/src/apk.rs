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
    /// `<uses-permission android:name>` then `<uses-permission-sdk-23
    /// android:name>`, in manifest order, each once.
    pub permissions: Vec<String>,
    /// The ABIs whose native code the APK carries: the folders `ABI` of its
    /// `lib/ABI/*.so` entries, in the order the zip lists them, each once.
    pub native_code: Vec<String>,
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

/// The lines `publish` prints after [`summary`] for what the manifest
/// requests: `permissions: A, B` and `native code: arm64-v8a, x86_64`
/// (each only when not empty).
pub(crate) fn requests(m: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    if !m.permissions.is_empty() {
        out.push(format!("permissions: {}", m.permissions.join(", ")));
    }
    if !m.native_code.is_empty() {
        out.push(format!("native code: {}", m.native_code.join(", ")));
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
    let mut permissions: Vec<String> = Vec::new();
    for p in apk.get_permissions().chain(apk.get_permissions_sdk23()) {
        if !permissions.iter().any(|q| q == p) {
            permissions.push(p.to_owned());
        }
    }
    Ok(Manifest {
        signing_cert_sha256,
        signing_cert_lineage,
        permissions,
        native_code: native_code(apk.namelist()),
        package,
        version_code,
        version_name: apk.get_version_name(),
        min_sdk: number(apk.get_min_sdk_version()),
        target_sdk: number(apk.get_attribute_value("uses-sdk", "targetSdkVersion")),
    })
}

/// The ABIs of `lib/ABI/NAME.so` entries among `names`, in order, each
/// once (what Android's package manager extracts native code from).
fn native_code<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let Some((abi, lib)) = name
            .strip_prefix("lib/")
            .and_then(|rest| rest.split_once('/'))
        else {
            continue;
        };
        if !abi.is_empty()
            && !lib.contains('/')
            && lib.ends_with(".so")
            && !out.iter().any(|a| a == abi)
        {
            out.push(abi.to_owned());
        }
    }
    out
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

/// What the manifest adds to the command line: the package and version
/// (from the flags, or the manifest when a flag is left out), the version
/// code (when no `--version-code` was given) and a note for the user, if
/// any.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Checked {
    /// The package to publish.
    pub package: PackageName,
    /// The version to publish.
    pub version: Version,
    /// The version code to publish with, if the flags gave none.
    pub version_code: Option<u64>,
    /// A line for stderr (a versionName that is not SemVer).
    pub note: Option<String>,
}

/// Compares the manifest with the flags and the metadata: a mismatch is a
/// usage error naming the field. `package` and `version` left out (`None`)
/// are the manifest's. Fills the metadata's SDKs and permissions when it
/// has none, and its native code always (the metadata file cannot give
/// it).
pub(crate) fn check(
    file: &str,
    manifest: &Manifest,
    package: Option<&PackageName>,
    version: Option<&Version>,
    version_code: Option<u64>,
    metadata: &mut Metadata,
) -> Result<Checked> {
    let mismatch = |what: &str, theirs: &dyn std::fmt::Display, ours: String| {
        Error::Usage(format!(
            "{file}: the manifest's {what} is {theirs}, but {ours}; make them agree and publish again"
        ))
    };
    let package = match package {
        Some(package) if manifest.package != package.as_str() => {
            return Err(mismatch(
                "package",
                &manifest.package,
                format!("--package is {package}"),
            ));
        }
        Some(package) => package.clone(),
        None => manifest.package.parse().map_err(|e| {
            Error::Usage(format!(
                "{file}: the manifest's package {:?} is not a package name IPSR records hold ({e}); pass --package NAME",
                manifest.package
            ))
        })?,
    };
    let mut note = None;
    let version = match (version, &manifest.version_name) {
        (Some(version), Some(name)) => {
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
                    note = Some(format!(
                        "note: {file}: the manifest's versionName {name:?} is not a SemVer version, so it was not compared with --version {version}"
                    ));
                }
            }
            version.clone()
        }
        (Some(version), None) => version.clone(),
        (None, None) => {
            return Err(Error::Usage(format!(
                "{file}: the manifest has no versionName; pass --version VERSION (SemVer, e.g. 1.0.0)"
            )));
        }
        (None, Some(name)) => name.parse::<Version>().map_err(|_| {
            let fix = match suggest_semver(name) {
                Some(v) => format!("pass --version {v} (or another SemVer version)"),
                None => "pass --version with a SemVer version (MAJOR.MINOR.PATCH, e.g. 1.0.0)".into(),
            };
            Error::Usage(format!(
                "{file}: the manifest's versionName {name:?} is not a SemVer version, which IPSR versions are; {fix}"
            ))
        })?,
    };
    let mut checked = Checked {
        package,
        version,
        version_code: None,
        note,
    };
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
    if metadata.permissions.is_empty() {
        metadata.permissions.clone_from(&manifest.permissions);
    } else {
        let set = |list: &Vec<String>| {
            list.iter()
                .cloned()
                .collect::<std::collections::BTreeSet<String>>()
        };
        if set(&metadata.permissions) != set(&manifest.permissions) {
            let list = |l: &[String]| match l {
                [] => "none".to_owned(),
                l => l.join(", "),
            };
            return Err(Error::Usage(format!(
                "{file}: the manifest requests the permissions {}, but the metadata's permissions are {}; leave permissions out of the metadata (publish reads them from the APK), or make them agree",
                list(&manifest.permissions),
                list(&metadata.permissions)
            )));
        }
        metadata.permissions.clone_from(&manifest.permissions);
    }
    metadata.native_code.clone_from(&manifest.native_code);
    Ok(checked)
}

/// A SemVer version for an Android `versionName` that is not one, when one
/// reads naturally: up to three numbers (missing ones are 0, leading zeros
/// dropped), then what follows as a pre-release (`1.3` is `1.3.0`,
/// `2024.05 beta` is `2024.5.0-beta`, `1.4-rc1` is `1.4.0-rc1`). `None`
/// when the name does not start with a number or has more than three.
pub(crate) fn suggest_semver(name: &str) -> Option<Version> {
    let name = name.trim().trim_start_matches(['v', 'V']);
    let end = name
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(name.len());
    let (numbers, rest) = name.split_at(end);
    let numbers: Vec<u64> = numbers
        .trim_end_matches('.')
        .split('.')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    if numbers.len() > 3 {
        return None;
    }
    let mut text = format!(
        "{}.{}.{}",
        numbers[0],
        numbers.get(1).copied().unwrap_or(0),
        numbers.get(2).copied().unwrap_or(0)
    );
    let pre: Vec<String> = rest
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| match w.parse::<u64>() {
            Ok(n) => n.to_string(),
            Err(_) => w.to_owned(),
        })
        .collect();
    if !pre.is_empty() {
        text = format!("{text}-{}", pre.join("."));
    }
    text.parse().ok()
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
            permissions: Vec::new(),
            native_code: Vec::new(),
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
        check(
            "s.apk",
            &signed,
            Some(&pkg),
            Some(&version),
            None,
            &mut meta,
        )
        .unwrap();
        assert_eq!(
            meta.signing_cert_sha256.map(hex::encode),
            Some(expected.trim().to_owned())
        );
        let mut meta = Metadata {
            signing_cert_sha256: Some([7; 32]),
            ..Metadata::default()
        };
        let err = check(
            "s.apk",
            &signed,
            Some(&pkg),
            Some(&version),
            None,
            &mut meta,
        )
        .unwrap_err();
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
        check(
            "r.apk",
            &rotated,
            Some(&pkg),
            Some(&version),
            None,
            &mut meta,
        )
        .unwrap();
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
    fn reads_permissions_and_native_code_in_manifest_and_zip_order() {
        let m = read(&fixture("example-native-1.7.0.apk")).unwrap();
        assert_eq!(
            m.permissions,
            [
                "android.permission.INTERNET",
                "android.permission.CAMERA",
                "android.permission.READ_CONTACTS"
            ]
        );
        // The zip lists lib/x86_64/ first (make.sh).
        assert_eq!(m.native_code, ["x86_64", "arm64-v8a"]);
        assert!(
            read(&fixture("example-1.2.0.apk"))
                .unwrap()
                .permissions
                .is_empty()
        );
        let names = [
            "lib/armeabi-v7a/liba.so",
            "lib/armeabi-v7a/libb.so",
            "lib/x86/sub/libc.so",
            "lib/mips/readme.txt",
            "lib/libtop.so",
            "assets/lib/x86/libd.so",
            "lib/x86/libd.so",
        ];
        assert_eq!(native_code(names.into_iter()), ["armeabi-v7a", "x86"]);
    }

    #[test]
    fn the_manifest_gives_package_version_and_permissions_left_out() {
        let m = Manifest {
            permissions: vec![
                "android.permission.INTERNET".into(),
                "android.permission.CAMERA".into(),
            ],
            native_code: vec!["arm64-v8a".into()],
            ..manifest()
        };
        let mut meta = Metadata::default();
        let c = check("a.apk", &m, None, None, None, &mut meta).unwrap();
        assert_eq!(
            (c.package.as_str(), c.version.to_string().as_str()),
            ("com.example.app", "1.2.0")
        );
        assert_eq!(meta.permissions, m.permissions);
        assert_eq!(meta.native_code, ["arm64-v8a"]);
        // The same set in another order is the manifest's order.
        let mut meta = Metadata {
            permissions: vec![
                "android.permission.CAMERA".into(),
                "android.permission.INTERNET".into(),
            ],
            ..Metadata::default()
        };
        check("a.apk", &m, None, None, None, &mut meta).unwrap();
        assert_eq!(meta.permissions, m.permissions);
        // Another set contradicts the APK.
        let mut meta = Metadata {
            permissions: vec!["android.permission.INTERNET".into()],
            ..Metadata::default()
        };
        let err = check("a.apk", &m, None, None, None, &mut meta).unwrap_err();
        assert_eq!(err.exit_code(), crate::code::USAGE);
        assert!(err.to_string().contains("the manifest requests the permissions android.permission.INTERNET, android.permission.CAMERA, but the metadata's permissions are android.permission.INTERNET;"), "{err}");
        // A versionName that is not SemVer needs --version, with a suggestion.
        let loose = Manifest {
            version_name: Some("2024.05 beta".into()),
            ..manifest()
        };
        let err = check("a.apk", &loose, None, None, None, &mut Metadata::default()).unwrap_err();
        assert!(
            err.to_string().contains("pass --version 2024.5.0-beta"),
            "{err}"
        );
    }

    #[test]
    fn suggests_semver_for_common_version_names() {
        let s = |n: &str| suggest_semver(n).map(|v| v.to_string());
        assert_eq!(s("1.3").as_deref(), Some("1.3.0"));
        assert_eq!(s("v2").as_deref(), Some("2.0.0"));
        assert_eq!(s("1.04-rc1").as_deref(), Some("1.4.0-rc1"));
        assert_eq!(s("2024.05 beta 2").as_deref(), Some("2024.5.0-beta.2"));
        assert_eq!(s("1.2.3.4"), None);
        assert_eq!(s("beta"), None);
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
        let ok = check(
            "a.apk",
            &manifest(),
            Some(&pkg),
            Some(&v("1.2.0")),
            None,
            &mut meta,
        )
        .unwrap();
        assert_eq!(ok.version_code, Some(7));
        assert_eq!((meta.min_sdk, meta.target_sdk), (21, 34));

        // Each mismatch, from otherwise agreeing flags and metadata.
        let refused = |package: &str, version: &str, code: Option<u64>, target_sdk: u32| {
            let mut meta = Metadata {
                target_sdk,
                ..Metadata::default()
            };
            let package: PackageName = package.parse().unwrap();
            check(
                "a.apk",
                &manifest(),
                Some(&package),
                Some(&v(version)),
                code,
                &mut meta,
            )
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
        let c = check(
            "a.apk",
            &loose,
            Some(&pkg),
            Some(&v("1.3.0")),
            Some(7),
            &mut meta,
        )
        .unwrap();
        assert_eq!(c.version_code, None);
        assert!(c.note.unwrap().contains("\"1.3\" is not a SemVer version"));
    }
}
