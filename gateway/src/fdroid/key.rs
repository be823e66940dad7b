//! [`RepoKey`]: the key that signs the gateway's F-Droid repository, an
//! ECDSA P-256 key with a self-signed X.509 certificate (signatures
//! `SHA256withECDSA`). The repository's fingerprint, which phones pin, is
//! the SHA-256 of the certificate's DER encoding (`docs/fdroid.md`,
//! section 3).
//!
//! Kept as one PEM file: a `PRIVATE KEY` block (PKCS#8) and a
//! `CERTIFICATE` block. The gateway makes one in its data dir on first
//! start ([`RepoKey::load_or_create`]) or reads the one `--fdroid-key`
//! names ([`RepoKey::load`]).

use std::path::{Path, PathBuf};

use der::{Decode, Encode};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use sha2::{Digest, Sha256};

/// The subject and issuer of a certificate the gateway makes.
const SUBJECT: &str = "IPSR gateway F-Droid repository";
/// How long a certificate the gateway makes is valid: about 30 years
/// (F-Droid's own tools make theirs for 10,000 days).
const VALID_DAYS: i64 = 30 * 365;

/// Why the repository key could not be read, made or kept.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The key file is not a P-256 key with its certificate.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A new key or certificate could not be made.
    #[error("cannot make a repository key: {0}")]
    Make(String),
}

/// The repository's signing key and its certificate.
#[derive(Debug)]
pub struct RepoKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    certificate: Vec<u8>,
}

impl RepoKey {
    /// A new key with a new self-signed certificate.
    pub fn generate() -> Result<Self, KeyError> {
        let make = |e: rcgen::Error| KeyError::Make(e.to_string());
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(make)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(make)?;
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CommonName, SUBJECT);
        name.push(rcgen::DnType::OrganizationName, "IPSR");
        params.distinguished_name = name;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(VALID_DAYS);
        let mut serial = [0u8; 16];
        ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut serial)
            .map_err(|_| KeyError::Make("no randomness".into()))?;
        serial[0] &= 0x7f;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let cert = params.self_signed(&pair).map_err(make)?;
        Self::from_parts(pair.serialize_der(), cert.der().to_vec()).map_err(KeyError::Make)
    }

    /// A key from its PKCS#8 encoding and its certificate, which must name
    /// the key's public key.
    fn from_parts(pkcs8: Vec<u8>, certificate: Vec<u8>) -> Result<Self, String> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| format!("not an ECDSA P-256 private key (PKCS#8): {e}"))?;
        let cert = x509_cert::Certificate::from_der(&certificate)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let named = cert
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes();
        if named != pair.public_key().as_ref() {
            return Err("the certificate does not name the private key's public key".into());
        }
        // Re-encoded, so a certificate with trailing bytes is not kept.
        let certificate = cert
            .to_der()
            .map_err(|e| format!("the certificate cannot be encoded: {e}"))?;
        Ok(Self {
            pair,
            pkcs8,
            certificate,
        })
    }

    /// The key in `path` (a PEM file with a `PRIVATE KEY` and a
    /// `CERTIFICATE` block).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&text).map_err(|reason| KeyError::Invalid {
            path: path.to_owned(),
            reason,
        })
    }

    /// The key kept in `path`, or a new one written there (mode 0600,
    /// whole or not at all: `ipsr_node::private_file`) when there is no
    /// file. Also says whether it was made now.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let key = Self::generate()?;
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        ipsr_node::private_file::write(
            dir,
            path,
            ".repo-key",
            key.to_pem().as_bytes(),
            ipsr_node::private_file::Existing::Keep,
        )
        .map_err(io)?;
        Ok((key, true))
    }

    fn from_pem(text: &[u8]) -> Result<Self, String> {
        let blocks = pem::parse_many(text).map_err(|e| format!("not PEM: {e}"))?;
        let one = |tag: &str| -> Result<Vec<u8>, String> {
            let mut found = blocks.iter().filter(|b| b.tag() == tag);
            match (found.next(), found.next()) {
                (Some(b), None) => Ok(b.contents().to_vec()),
                (None, _) => Err(format!("no {tag} block")),
                (Some(_), Some(_)) => Err(format!("more than one {tag} block")),
            }
        };
        Self::from_parts(one("PRIVATE KEY")?, one("CERTIFICATE")?)
    }

    /// The key and its certificate as one PEM file.
    pub fn to_pem(&self) -> String {
        pem::encode_many(&[
            pem::Pem::new("PRIVATE KEY", self.pkcs8.clone()),
            pem::Pem::new("CERTIFICATE", self.certificate.clone()),
        ])
    }

    /// The certificate, DER-encoded.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate
    }

    /// The repository fingerprint: SHA-256 of the certificate, lowercase
    /// hex (the form F-Droid clients compare).
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.certificate))
    }

    /// An ECDSA P-256 signature of `message` with SHA-256, DER-encoded.
    pub fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .ok()
            .map(|s| s.as_ref().to_vec())
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_ASN1,
            self.pair.public_key().as_ref(),
        )
        .verify(message, signature)
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdroid/repo-key.pem");
        let (made, created) = RepoKey::load_or_create(&path).unwrap();
        assert!(created);
        let (read, created) = RepoKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(made.fingerprint(), read.fingerprint());
        assert_eq!(made.fingerprint().len(), 64);
        let sig = read.sign(b"x").unwrap();
        assert!(made.verify(b"x", &sig));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The F-Droid client refuses certificates under 256 bytes.
        assert!(
            made.certificate_der().len() >= 256,
            "{}",
            made.certificate_der().len()
        );
    }

    #[test]
    fn a_bad_key_file_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, b"").unwrap();
        let err = RepoKey::load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("no PRIVATE KEY block"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        // A certificate of another key.
        let (a, b) = (RepoKey::generate().unwrap(), RepoKey::generate().unwrap());
        let mixed = pem::encode_many(&[
            pem::Pem::new("PRIVATE KEY", a.pkcs8.clone()),
            pem::Pem::new("CERTIFICATE", b.certificate.clone()),
        ]);
        std::fs::write(&path, mixed).unwrap();
        let err = RepoKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("does not name"), "{err}");
        std::fs::write(&path, a.to_pem()).unwrap();
        assert_eq!(RepoKey::load(&path).unwrap().fingerprint(), a.fingerprint());
    }
}
