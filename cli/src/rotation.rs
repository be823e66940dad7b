//! The v3 proof of rotation of an APK (`docs/cli.md`, "APKs"): the chain of
//! signing certificates an APK Signature Scheme v3 (or v3.1) signer carries
//! when its key replaced an older one. `publish` records it as
//! `signing_cert_lineage`, and `download` checks a record's against the
//! bytes it got.
//!
//! [`lineage_in_block`] reads the APK Signing Block's bytes without any I/O;
//! [`read`] finds that block in a file. Only lengths and nesting are
//! checked: Android verifies the signatures of the proof on install.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The APK Signing Block's magic, its last 16 bytes.
const MAGIC: &[u8; 16] = b"APK Sig Block 42";
/// Block ids of APK Signature Scheme v3.1 and v3, in the order looked at.
const V3_BLOCKS: [u32; 2] = [0x1b93ad61, 0xf05368c0];
/// The additional attribute of a v3 signer's signed data that holds the
/// proof of rotation (`SigningCertificateLineage`).
const PROOF_OF_ROTATION: u32 = 0x3ba06f8c;
/// The largest signing block read (Android's come to a few KiB).
const MAX_BLOCK: u64 = 16 * 1024 * 1024;
/// The most bytes after the end of central directory record: its comment.
const MAX_COMMENT: u64 = 0xffff;

/// Why an APK's proof of rotation could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RotationError {
    #[error("{0} is cut short or its lengths disagree")]
    Truncated(&'static str),
    #[error("its proof of rotation does not end with the v3 signer's certificate")]
    Mismatch,
    #[error("cannot read it: {0}")]
    Io(String),
}

/// The SHA-256 of each certificate of the APK's proof of rotation, oldest
/// first; empty when it has none (no signing block, no v3 signer, or a v3
/// signer without the attribute).
pub(crate) fn read(path: &Path) -> Result<Vec<[u8; 32]>, RotationError> {
    let io = |e: std::io::Error| RotationError::Io(e.to_string());
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let Some(cd_offset) = central_directory_offset(&mut file, len)? else {
        return Ok(Vec::new());
    };
    if cd_offset < 24 {
        return Ok(Vec::new());
    }
    let mut footer = [0u8; 24];
    file.seek(SeekFrom::Start(cd_offset - 24)).map_err(io)?;
    file.read_exact(&mut footer).map_err(io)?;
    if &footer[8..] != MAGIC {
        return Ok(Vec::new());
    }
    let size = u64::from_le_bytes(footer[..8].try_into().expect("8 bytes"));
    if !(24..=MAX_BLOCK).contains(&size) || size + 8 > cd_offset {
        return Err(RotationError::Truncated("the APK Signing Block"));
    }
    let mut block = vec![0u8; (size + 8) as usize];
    file.seek(SeekFrom::Start(cd_offset - size - 8))
        .map_err(io)?;
    file.read_exact(&mut block).map_err(io)?;
    lineage_in_block(&block)
}

/// Where the central directory starts, from the end of central directory
/// record; `None` when there is none (not a zip) or it uses ZIP64.
fn central_directory_offset(file: &mut File, len: u64) -> Result<Option<u64>, RotationError> {
    let io = |e: std::io::Error| RotationError::Io(e.to_string());
    let tail_len = len.min(MAX_COMMENT + 22);
    let mut tail = vec![0u8; tail_len as usize];
    file.seek(SeekFrom::Start(len - tail_len)).map_err(io)?;
    file.read_exact(&mut tail).map_err(io)?;
    // The last record whose comment length reaches exactly the file's end.
    let found = (0..tail.len().saturating_sub(21)).rev().find(|&at| {
        tail[at..].starts_with(b"PK\x05\x06")
            && usize::from(u16::from_le_bytes([tail[at + 20], tail[at + 21]]))
                == tail.len() - at - 22
    });
    Ok(found.and_then(|at| {
        let offset = u32::from_le_bytes(tail[at + 16..at + 20].try_into().expect("4 bytes"));
        (offset != u32::MAX).then_some(u64::from(offset))
    }))
}

/// The proof of rotation in an APK Signing Block (`size ‖ pairs ‖ size ‖
/// magic`), as [`read`] gives it.
pub(crate) fn lineage_in_block(block: &[u8]) -> Result<Vec<[u8; 32]>, RotationError> {
    let pairs = block
        .get(8..block.len().saturating_sub(24))
        .ok_or(RotationError::Truncated("the APK Signing Block"))?;
    let mut pairs = Cursor(pairs);
    let mut found: Vec<(u32, &[u8])> = Vec::new();
    while !pairs.0.is_empty() {
        let len = pairs.u64("a signing block pair")?;
        let mut pair = Cursor(pairs.take(len, "a signing block pair")?);
        let id = pair.u32("a signing block pair")?;
        found.push((id, pair.0));
    }
    let Some(v3) = V3_BLOCKS
        .iter()
        .find_map(|want| found.iter().find(|(id, _)| id == want))
    else {
        return Ok(Vec::new());
    };
    v3_lineage(v3.1)
}

/// The proof of rotation of the first signer of a v3 (or v3.1) block.
fn v3_lineage(value: &[u8]) -> Result<Vec<[u8; 32]>, RotationError> {
    const SIGNER: &str = "the v3 signer";
    let mut signers = Cursor(value).prefixed(SIGNER)?;
    if signers.0.is_empty() {
        return Ok(Vec::new());
    }
    let mut signer = signers.prefixed(SIGNER)?;
    let mut signed = signer.prefixed(SIGNER)?;
    let _digests = signed.prefixed(SIGNER)?;
    let mut certs = signed.prefixed(SIGNER)?;
    let signer_cert = certs.prefixed(SIGNER)?.0;
    let _min_sdk = signed.u32(SIGNER)?;
    let _max_sdk = signed.u32(SIGNER)?;
    let mut attributes = signed.prefixed(SIGNER)?;
    while !attributes.0.is_empty() {
        let mut attribute = attributes.prefixed(SIGNER)?;
        if attribute.u32(SIGNER)? != PROOF_OF_ROTATION {
            continue;
        }
        let lineage = proof_of_rotation(attribute)?;
        if lineage.last() != Some(&sha256(signer_cert)) {
            return Err(RotationError::Mismatch);
        }
        return Ok(lineage);
    }
    Ok(Vec::new())
}

/// `SigningCertificateLineage`: `version (u32)`, then per certificate,
/// oldest first, a length-prefixed node of `signed data (length-prefixed:
/// certificate, signature algorithm) ‖ flags ‖ signature algorithm ‖
/// signature`.
fn proof_of_rotation(mut lineage: Cursor<'_>) -> Result<Vec<[u8; 32]>, RotationError> {
    const WHAT: &str = "the proof of rotation";
    let _version = lineage.u32(WHAT)?;
    let mut out = Vec::new();
    while !lineage.0.is_empty() {
        let mut node = lineage.prefixed(WHAT)?;
        let mut signed = node.prefixed(WHAT)?;
        out.push(sha256(signed.prefixed(WHAT)?.0));
        let _next_algorithm = signed.u32(WHAT)?;
        let _flags = node.u32(WHAT)?;
        let _algorithm = node.u32(WHAT)?;
        let _signature = node.prefixed(WHAT)?;
    }
    Ok(out)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Little-endian reads off the front of a byte slice.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], RotationError> {
        let n = usize::try_from(n).map_err(|_| RotationError::Truncated(what))?;
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or(RotationError::Truncated(what))?;
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, RotationError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, RotationError> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A `u32` length, then that many bytes.
    fn prefixed(&mut self, what: &'static str) -> Result<Cursor<'a>, RotationError> {
        let len = self.u32(what)?;
        Ok(Cursor(self.take(u64::from(len), what)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixed(parts: &[&[u8]]) -> Vec<u8> {
        let body: Vec<u8> = parts.concat();
        let mut out = (body.len() as u32).to_le_bytes().to_vec();
        out.extend(body);
        out
    }

    /// A signing block with one v3 signer whose certificate is `cert` and
    /// whose proof of rotation lists `lineage`.
    fn block(cert: &[u8], lineage: &[&[u8]]) -> Vec<u8> {
        let mut proof = 1u32.to_le_bytes().to_vec();
        for c in lineage {
            let signed = prefixed(&[&prefixed(&[c]), &0x0103u32.to_le_bytes()]);
            proof.extend(prefixed(&[
                &signed,
                &0u32.to_le_bytes(),
                &0x0103u32.to_le_bytes(),
                &prefixed(&[b"sig"]),
            ]));
        }
        let attribute = prefixed(&[&PROOF_OF_ROTATION.to_le_bytes(), &proof]);
        let signed = prefixed(&[
            &prefixed(&[]),
            &prefixed(&[&prefixed(&[cert])]),
            &28u32.to_le_bytes(),
            &u32::MAX.to_le_bytes(),
            &prefixed(&[&attribute]),
        ]);
        let signer = prefixed(&[
            &signed,
            &28u32.to_le_bytes(),
            &u32::MAX.to_le_bytes(),
            &prefixed(&[]),
            &prefixed(&[b"key"]),
        ]);
        let value = [&0xf05368c0u32.to_le_bytes()[..], &prefixed(&[&signer])].concat();
        let mut pairs = (value.len() as u64).to_le_bytes().to_vec();
        pairs.extend(value);
        let size = (pairs.len() + 24) as u64;
        [&size.to_le_bytes()[..], &pairs, &size.to_le_bytes(), MAGIC].concat()
    }

    #[test]
    fn reads_the_certificates_of_a_proof_of_rotation() {
        let got = lineage_in_block(&block(b"new", &[b"old", b"new"])).unwrap();
        assert_eq!(got, vec![sha256(b"old"), sha256(b"new")]);
        assert_eq!(
            lineage_in_block(&block(b"other", &[b"old", b"new"])),
            Err(RotationError::Mismatch)
        );
    }

    #[test]
    fn every_cut_of_a_block_is_an_error_or_no_lineage_never_a_panic() {
        let full = block(b"new", &[b"old", b"new"]);
        for cut in 0..full.len() {
            let mut b = full.clone();
            b.truncate(cut);
            if let Ok(lineage) = lineage_in_block(&b) {
                assert!(lineage.len() < 2, "a cut block gave {lineage:?}");
            }
            let mut b = full.clone();
            b[cut] ^= 0xff;
            let _ = lineage_in_block(&b);
        }
    }
}
