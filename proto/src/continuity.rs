//! APK signing-certificate continuity (`docs/records.md`, section 6, rule 9): a
//! release whose APK is signed by a certificate the package did not use
//! before is not offered as an update, unless the APK's v3 proof of rotation
//! links the two or the author's identity document names the new one.
//!
//! Android installs an update only when it is signed by the installed app's
//! certificate (or one its proof of rotation leads to), so a release that
//! breaks the chain would fail on every phone that has the app, and on a
//! phone that does not it would be a stranger's app under the author's name.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::{Release, Version};

/// How a release's APK certificate follows the package's earlier releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "check")]
pub enum CertCheck {
    /// The package's first release that names a certificate.
    First,
    /// The certificate of the release before it.
    Same,
    /// A new certificate; the APK's proof of rotation lists the one before.
    Rotated {
        /// The certificate it rotates from.
        #[serde(with = "hex32")]
        from: [u8; 32],
    },
    /// A new certificate that the author's identity document names.
    Allowed {
        /// The certificate before it.
        #[serde(with = "hex32")]
        from: [u8; 32],
    },
    /// A new certificate with neither: never the newest release.
    Changed {
        /// The certificate the package was signed with before.
        #[serde(with = "hex32")]
        expected: [u8; 32],
    },
}

impl CertCheck {
    /// Whether the release may be offered as an update (anything but
    /// [`CertCheck::Changed`]).
    pub fn is_continuous(&self) -> bool {
        !matches!(self, Self::Changed { .. })
    }
}

/// Rule 9 over the releases of one package: each release that names a
/// certificate, taken in `(version_code, version)` order, is checked against
/// the certificate expected at that point (the last one that was not
/// [`CertCheck::Changed`]); `apk_certs` are the identity document's. Releases
/// without a certificate are left out and do not move the expectation.
///
/// The answer depends only on the set of releases, never on the order they
/// are given in.
pub fn cert_checks<'a>(
    releases: impl IntoIterator<Item = &'a Release>,
    apk_certs: &BTreeSet<[u8; 32]>,
) -> BTreeMap<Version, CertCheck> {
    let mut signed: Vec<(&Release, [u8; 32])> = releases
        .into_iter()
        .filter_map(|r| r.metadata.signing_cert_sha256.map(|c| (r, c)))
        .collect();
    signed
        .sort_by(|(a, _), (b, _)| (a.version_code, &a.version).cmp(&(b.version_code, &b.version)));
    let mut expected: Option<[u8; 32]> = None;
    let mut out = BTreeMap::new();
    for (release, cert) in signed {
        let check = match expected {
            None => CertCheck::First,
            Some(e) if e == cert => CertCheck::Same,
            Some(e) if release.metadata.signing_cert_lineage.contains(&e) => {
                CertCheck::Rotated { from: e }
            }
            Some(e) if apk_certs.contains(&cert) => CertCheck::Allowed { from: e },
            Some(e) => CertCheck::Changed { expected: e },
        };
        if check.is_continuous() {
            expected = Some(cert);
        }
        out.insert(release.version.clone(), check);
    }
    out
}

/// Serde helper: a 32-byte hash as lower-case hex.
mod hex32 {
    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthorKey, ContentId};

    fn cid() -> ContentId {
        let mh = multihash::Multihash::<64>::wrap(0x12, &[1; 32]).unwrap();
        ContentId::new(cid::Cid::new_v1(0x55, mh)).unwrap()
    }

    fn release(version: &str, code: u64, cert: Option<u8>, lineage: &[u8]) -> Release {
        let mut r = Release::new(
            AuthorKey::from_seed(&[3; 32]).author_id(),
            "com.example.app".parse().unwrap(),
            version.parse().unwrap(),
            code,
            cid(),
        );
        r.metadata.signing_cert_sha256 = cert.map(|c| [c; 32]);
        r.metadata.signing_cert_lineage = lineage.iter().map(|c| [*c; 32]).collect();
        r
    }

    fn checks(releases: &[Release], allowed: &[u8]) -> Vec<(String, CertCheck)> {
        let allowed = allowed.iter().map(|c| [*c; 32]).collect();
        cert_checks(releases, &allowed)
            .into_iter()
            .map(|(v, c)| (v.to_string(), c))
            .collect()
    }

    #[test]
    fn a_new_certificate_needs_a_rotation_or_the_identity() {
        let rs = [
            release("1.0.0", 1, Some(1), &[]),
            release("1.1.0", 2, Some(1), &[]),
            release("1.2.0", 3, Some(2), &[]), // a stranger's certificate
            release("1.3.0", 4, Some(1), &[]), // back to the package's own
            release("2.0.0", 5, Some(3), &[1, 3]), // rotated 1 -> 3
            release("2.1.0", 6, None, &[]),    // names none: not checked
            release("2.2.0", 7, Some(4), &[]), // named by the identity
        ];
        assert_eq!(
            checks(&rs, &[4]),
            vec![
                ("1.0.0".into(), CertCheck::First),
                ("1.1.0".into(), CertCheck::Same),
                ("1.2.0".into(), CertCheck::Changed { expected: [1; 32] }),
                ("1.3.0".into(), CertCheck::Same),
                ("2.0.0".into(), CertCheck::Rotated { from: [1; 32] }),
                ("2.2.0".into(), CertCheck::Allowed { from: [3; 32] }),
            ]
        );
        // Without the identity's word, 2.2.0 is a changed certificate.
        assert_eq!(
            checks(&rs, &[])[5],
            ("2.2.0".into(), CertCheck::Changed { expected: [3; 32] })
        );
        // A lineage that does not reach back to the expected one is no rotation.
        let stranger = [
            release("1.0.0", 1, Some(1), &[]),
            release("2.0.0", 2, Some(3), &[2, 3]),
        ];
        assert_eq!(
            checks(&stranger, &[])[1].1,
            CertCheck::Changed { expected: [1; 32] }
        );
    }

    #[test]
    fn the_order_given_does_not_matter() {
        let mut rs = vec![
            release("1.0.0", 1, Some(1), &[]),
            release("1.1.0", 2, Some(2), &[]),
            release("1.2.0", 3, Some(2), &[1, 2]),
            release("1.2.1", 3, Some(5), &[]),
        ];
        let first = checks(&rs, &[]);
        rs.reverse();
        assert_eq!(checks(&rs, &[]), first);
        rs.swap(0, 2);
        assert_eq!(checks(&rs, &[]), first);
        assert_eq!(first[1].1, CertCheck::Changed { expected: [1; 32] });
        assert_eq!(first[2].1, CertCheck::Rotated { from: [1; 32] });
        assert_eq!(first[3].1, CertCheck::Changed { expected: [2; 32] });
    }
}
