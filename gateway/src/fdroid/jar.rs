//! A signed JAR holding one file, the way F-Droid index files travel
//! (`entry.jar` holds `entry.json`, `index-v1.jar` holds `index-v1.json`):
//! the JAR signature scheme (`META-INF/MANIFEST.MF`, a signature file
//! `META-INF/IPSR.SF` and its signature block `META-INF/IPSR.EC`, a CMS
//! `SignedData` without signed attributes), with SHA-256 digests only and
//! one signer with one certificate, as the F-Droid client's index verifier
//! and `jarsigner -strict -verify` expect (`docs/fdroid.md`, section 3).
//!
//! Sans IO: bytes in, bytes out; the signature itself is the
//! [`RepoKey`]'s.

use std::io::{Cursor, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo,
};
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::spki::AlgorithmIdentifierOwned;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::key::RepoKey;

/// The base name of the signature file and block (`META-INF/IPSR.SF`,
/// `META-INF/IPSR.EC`).
const SIGNER: &str = "IPSR";
/// `Created-By` of the manifest and the signature file.
const CREATED_BY: &str = "ipsr-gateway";
/// Longest manifest line in bytes, without its line break (the JAR
/// specification's limit); longer ones continue on lines that start with a
/// space.
const LINE: usize = 72;

/// Why a JAR could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JarError {
    /// The ZIP writer failed.
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// Writing into memory failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The certificate or the signature block could not be encoded.
    #[error("der: {0}")]
    Der(#[from] der::Error),
    /// The key could not sign.
    #[error("the repository key could not sign")]
    Sign,
}

/// A JAR holding `name` with `data`, signed by `key`. Entries are stored in
/// this order: the manifest, the signature file, the signature block, the
/// data (deflated); every timestamp is the same, so equal inputs give equal
/// bytes but for the signature.
pub(crate) fn signed_jar(name: &str, data: &[u8], key: &RepoKey) -> Result<Vec<u8>, JarError> {
    let manifest_main = main_section(&[("Manifest-Version", "1.0"), ("Created-By", CREATED_BY)]);
    let entry = entry_section(name, &B64.encode(Sha256::digest(data)));
    let manifest = [manifest_main.as_bytes(), entry.as_bytes()].concat();
    let sf = [
        main_section(&[
            ("Signature-Version", "1.0"),
            ("Created-By", CREATED_BY),
            (
                "SHA-256-Digest-Manifest",
                &B64.encode(Sha256::digest(&manifest)),
            ),
            (
                "SHA-256-Digest-Manifest-Main-Attributes",
                &B64.encode(Sha256::digest(manifest_main.as_bytes())),
            ),
        ]),
        entry_section(name, &B64.encode(Sha256::digest(entry.as_bytes()))),
    ]
    .concat();
    let signature = key.sign(sf.as_bytes()).ok_or(JarError::Sign)?;
    let block = signature_block(key.certificate_der(), &signature)?;

    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let at = DateTime::from_date_and_time(2000, 1, 1, 0, 0, 0).unwrap_or_default();
    let stored = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(at);
    let deflated = stored.compression_method(CompressionMethod::Deflated);
    zip.start_file("META-INF/MANIFEST.MF", stored)?;
    zip.write_all(&manifest)?;
    zip.start_file(format!("META-INF/{SIGNER}.SF"), stored)?;
    zip.write_all(sf.as_bytes())?;
    zip.start_file(format!("META-INF/{SIGNER}.EC"), stored)?;
    zip.write_all(&block)?;
    zip.start_file(name, deflated)?;
    zip.write_all(data)?;
    Ok(zip.finish()?.into_inner())
}

/// A main section: its headers, then the empty line that ends it.
fn main_section(headers: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (name, value) in headers {
        out.push_str(&header_line(name, value));
    }
    out.push_str("\r\n");
    out
}

/// The section of one entry: `Name` and its `SHA-256-Digest`.
fn entry_section(name: &str, digest: &str) -> String {
    main_section(&[("Name", name), ("SHA-256-Digest", digest)])
}

/// `Name: value` and its line break, split into lines of at most [`LINE`]
/// bytes (never inside a UTF-8 character), each continuation starting
/// with a space.
fn header_line(name: &str, value: &str) -> String {
    let text = format!("{name}: {value}");
    let mut out = String::with_capacity(text.len() + 8);
    let mut room = LINE;
    let mut used = 0;
    for c in text.chars() {
        if used + c.len_utf8() > room {
            out.push_str("\r\n ");
            room = LINE - 1;
            used = 0;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
    out
}

/// The signature block: a CMS `SignedData` (RFC 5652) with no content (the
/// signature file beside it is what was signed), the one certificate, and
/// one `SignerInfo` without signed attributes, so its signature is over the
/// signature file's bytes as they are.
fn signature_block(certificate: &[u8], signature: &[u8]) -> Result<Vec<u8>, JarError> {
    let cert = Certificate::from_der(certificate)?;
    let sha256 = AlgorithmIdentifierOwned {
        oid: rfc5912::ID_SHA_256,
        parameters: None,
    };
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate().issuer().clone(),
            serial_number: cert.tbs_certificate().serial_number().clone(),
        }),
        digest_alg: sha256.clone(),
        signed_attrs: None,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: rfc5912::ECDSA_WITH_SHA_256,
            parameters: None,
        },
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(SetOfVec::try_from(vec![
            CertificateChoices::Certificate(cert),
        ])?)),
        crls: None,
        signer_infos: SetOfVec::try_from(vec![signer])?.into(),
    };
    let info = ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed)?,
    };
    Ok(info.to_der()?)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn entries(jar: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut zip = zip::ZipArchive::new(Cursor::new(jar)).unwrap();
        (0..zip.len())
            .map(|i| {
                let mut f = zip.by_index(i).unwrap();
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                (f.name().unwrap().into_owned(), data)
            })
            .collect()
    }

    #[test]
    fn long_lines_continue_with_a_space() {
        let line = header_line("Name", &"a".repeat(100));
        let lines: Vec<&str> = line.trim_end_matches("\r\n").split("\r\n").collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), LINE);
        assert!(lines[1].starts_with(' '));
        assert_eq!(
            format!("{}{}", lines[0], &lines[1][1..]),
            format!("Name: {}", "a".repeat(100))
        );
        assert_eq!(header_line("A", "b"), "A: b\r\n");
        // A multi-byte character is never split.
        let wide = header_line("Name", &"é".repeat(50));
        for l in wide.split("\r\n") {
            assert!(l.len() <= LINE);
        }
    }

    #[test]
    fn the_jar_holds_manifest_signature_block_and_data_with_sha256_digests() {
        let key = RepoKey::generate().unwrap();
        let data = br#"{"timestamp":1}"#;
        let jar = signed_jar("entry.json", data, &key).unwrap();
        let entries = entries(&jar);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "META-INF/MANIFEST.MF",
                "META-INF/IPSR.SF",
                "META-INF/IPSR.EC",
                "entry.json"
            ]
        );
        assert_eq!(entries[3].1, data);
        let manifest = String::from_utf8(entries[0].1.clone()).unwrap();
        let digest = B64.encode(Sha256::digest(data));
        assert!(manifest.contains(&format!("Name: entry.json\r\nSHA-256-Digest: {digest}\r\n")));
        let sf = String::from_utf8(entries[1].1.clone()).unwrap();
        let of_manifest = B64.encode(Sha256::digest(manifest.as_bytes()));
        assert!(sf.contains(&format!("SHA-256-Digest-Manifest: {of_manifest}\r\n")));
        for text in [&manifest, &sf] {
            assert!(!text.contains("SHA1") && !text.contains("MD5"), "{text}");
        }
        // The block names the certificate and verifies over the .SF bytes.
        let info = ContentInfo::from_der(&entries[2].1).unwrap();
        assert_eq!(info.content_type, rfc5911::ID_SIGNED_DATA);
        let signed: SignedData = info.content.decode_as().unwrap();
        let certs = signed.certificates.unwrap();
        assert_eq!(certs.0.len(), 1);
        let CertificateChoices::Certificate(cert) = certs.0.get(0).unwrap() else {
            panic!("not a certificate")
        };
        assert_eq!(cert.to_der().unwrap(), key.certificate_der());
        let signer = signed.signer_infos.0.get(0).unwrap();
        assert!(signer.signed_attrs.is_none());
        assert!(key.verify(&entries[1].1, signer.signature.as_bytes()));
        assert!(!key.verify(&entries[0].1, signer.signature.as_bytes()));
    }
}
