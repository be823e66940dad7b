//! Checks the CLI does itself rather than trust the node or the gateway:
//! signed records and content bytes against their CID.

use std::io::{Read, Write};

use base64::Engine as _;
use ipsr_content::unixfs::{Importer, Profile};
use ipsr_proto::{
    AuthorId, Authority, ContentId, PackageName, Record, Release, SignedRecord, Version,
};
use sha2::{Digest, Sha256};

use crate::client::ReleaseAnswer;
use crate::error::{Error, Result};

/// A release whose record this CLI verified.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The release record's fields.
    pub(crate) release: Release,
    /// Whether a verified yank record is ordered above it.
    pub(crate) yanked: bool,
    /// The yank's reason when yanked.
    pub(crate) yank_reason: Option<String>,
    /// The release record's id.
    pub(crate) record_id: String,
    /// How many signers of the author's identity signed it, and how many
    /// it needs ("2 of 3 maintainers signed" counts 2, needs 2 of 3).
    pub(crate) signed: usize,
}

fn decode(what: &str, from: &str, b64: &str) -> Result<SignedRecord<ipsr_proto::Verified>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| {
            Error::Verification(format!(
                "{what}: {from} sent a record that is not base64: {e}"
            ))
        })?;
    SignedRecord::from_bytes(&bytes)
        .and_then(SignedRecord::verify)
        .map_err(|e| Error::Verification(format!("{what}: the record does not verify: {e}")))
}

/// Verifies the signed records of `answer`, which came `from` the node or
/// the gateway (for messages): that they are about `author/package@version`
/// and signed by enough signers of the author's identity (`authority`,
/// `docs/records.md` section 9), whatever the server says.
pub(crate) fn release(
    answer: &ReleaseAnswer,
    from: &str,
    author: &AuthorId,
    package: &PackageName,
    version: &Version,
    authority: &Authority,
) -> Result<Checked> {
    let what = format!("{author}/{package}@{version}");
    let signed = decode(&what, from, &answer.record)?;
    let enough = |record: &SignedRecord<ipsr_proto::Verified>, kind: &str| {
        if authority.is_met(record.approvals()) {
            return Ok(());
        }
        Err(Error::Verification(format!(
            "{what}: the {kind} record {from} sent is signed by {} of the author's signers, and the author's identity needs {}",
            authority.count(record.approvals()),
            authority.threshold
        )))
    };
    enough(&signed, "release")?;
    let Record::Release(release) = signed.record() else {
        return Err(Error::Verification(format!(
            "{what}: {from} sent a yank as the release record"
        )));
    };
    if release.author != *author || release.package != *package || release.version != *version {
        return Err(Error::Verification(format!(
            "{what}: {from} sent the record of {}/{}@{}",
            release.author, release.package, release.version
        )));
    }
    let mut yanked = false;
    let mut yank_reason = None;
    if let Some(yank_b64) = &answer.yank_record {
        let (yank, reason) = yank_of(&what, from, yank_b64, &signed)?;
        enough(&yank, "yank")?;
        if let Some(reason) = reason {
            yanked = true;
            yank_reason = Some(reason);
        }
    }
    let record_id = signed.id().to_string();
    if let Some(field) = view_mismatch(answer, release, &record_id, yanked) {
        return Err(Error::Verification(format!(
            "{what}: the {field} {from} shows is not what the signed record says"
        )));
    }
    Ok(Checked {
        release: release.clone(),
        yanked,
        yank_reason,
        record_id,
        signed: authority.count(signed.approvals()),
    })
}

/// The yank record `b64` that `from` sent with the release `release`,
/// verified, and its reason when it is ordered above the release (a yank
/// of an earlier record of the version does not yank this one).
fn yank_of(
    what: &str,
    from: &str,
    b64: &str,
    release: &SignedRecord<ipsr_proto::Verified>,
) -> Result<(SignedRecord<ipsr_proto::Verified>, Option<String>)> {
    let yank = decode(what, from, b64)?;
    let reason = match yank.record() {
        Record::Yank(y) if yank.release_key() == release.release_key() => {
            yank.supersedes(release).then(|| y.reason.clone())
        }
        _ => {
            return Err(Error::Verification(format!(
                "{what}: the yank record {from} sent is not a yank of this release"
            )));
        }
    };
    Ok((yank, reason))
}

/// A yank in force on a release, as [`yank_in_force`] found it.
#[derive(Debug)]
pub(crate) struct InForce {
    /// The yank record's id.
    pub(crate) record_id: String,
    /// Its reason.
    pub(crate) reason: String,
}

/// The yank in force on `author/package@version` in `answer` (the release
/// view that came `from` the node or the gateway), checked here: the
/// release record and the yank record verify, are about this version, the
/// yank is ordered above the release, and enough signers of the author's
/// identity (`authority`) signed the yank. A yank the identity does not
/// count (signed by a removed key) is not in force: `None`, as for none.
/// The release record's own signers are not counted here: a release may
/// be yanked whoever signed it.
pub(crate) fn yank_in_force(
    answer: &ReleaseAnswer,
    from: &str,
    author: &AuthorId,
    package: &PackageName,
    version: &Version,
    authority: &Authority,
) -> Result<Option<InForce>> {
    let what = format!("{author}/{package}@{version}");
    let Some(yank_b64) = &answer.yank_record else {
        return Ok(None);
    };
    let signed = decode(&what, from, &answer.record)?;
    let record = signed.record();
    if record.as_release().is_none()
        || record.author() != author
        || record.package() != package
        || record.version() != version
    {
        return Err(Error::Verification(format!(
            "{what}: {from} sent another record as the release record"
        )));
    }
    let (yank, reason) = yank_of(&what, from, yank_b64, &signed)?;
    Ok(reason
        .filter(|_| authority.is_met(yank.approvals()))
        .map(|reason| InForce {
            record_id: yank.id().to_string(),
            reason,
        }))
}

/// The first field of the view (the JSON around the signed records) that
/// differs from what the verified records say, so that what is shown or
/// printed as JSON is what the author signed.
fn view_mismatch(
    answer: &ReleaseAnswer,
    release: &Release,
    record_id: &str,
    yanked: bool,
) -> Option<&'static str> {
    let e = &answer.entry;
    let metadata = serde_json::from_value::<ipsr_proto::Metadata>(answer.metadata.clone());
    [
        (answer.author == release.author.to_string(), "author"),
        (answer.package == release.package.as_str(), "package"),
        (e.version == release.version.to_string(), "version"),
        (e.record_id == record_id, "record id"),
        (e.cid == release.cid.to_string(), "CID"),
        (e.size == release.size, "size"),
        (e.version_code == release.version_code, "version code"),
        (e.file_name == release.file_name, "file name"),
        (e.platform == release.platform.to_string(), "platform"),
        (e.created_at == release.created_at, "signing time"),
        (e.seq == release.seq, "sequence number"),
        (e.yanked == yanked, "yanked flag"),
        (metadata.is_ok_and(|m| m == release.metadata), "metadata"),
    ]
    .into_iter()
    .find_map(|(same, field)| (!same).then_some(field))
}

/// The import profile that yields CIDs of this version: CIDv0 comes from
/// `unixfs-v0-2015`, CIDv1 from `unixfs-v1-2025`.
pub(crate) fn profile_of(cid: &ContentId) -> Profile {
    match cid.cid().version() {
        cid::Version::V0 => Profile::V0_2015,
        cid::Version::V1 => Profile::V1_2025,
    }
}

/// What hashing a stream found.
#[derive(Debug)]
pub(crate) struct Hashed {
    /// The UnixFS root under the profile.
    pub(crate) root: cid::Cid,
    /// Bytes read.
    pub(crate) size: u64,
    /// SHA-256 of the bytes.
    pub(crate) sha256: [u8; 32],
}

/// Reads `input` to its end, importing it under `profile` (blocks are
/// dropped: only the root counts) and hashing it, copying every byte to
/// `copy` on the way. `limit` stops a stream that runs past the size the
/// record promises.
pub(crate) fn hash(
    input: &mut dyn Read,
    profile: Profile,
    mut copy: Option<&mut dyn Write>,
    limit: Option<u64>,
) -> std::io::Result<Hashed> {
    let mut importer = Importer::new(profile);
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; importer.chunk_size()];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if limit.is_some_and(|l| size > l) {
            return Err(std::io::Error::other(
                "the content is longer than the record says",
            ));
        }
        let _ = importer.push(&buf[..n]);
        sha.update(&buf[..n]);
        if let Some(out) = copy.as_deref_mut() {
            out.write_all(&buf[..n])?;
        }
    }
    let (imported, _) = importer.finish();
    Ok(Hashed {
        root: imported.root,
        size,
        sha256: sha.finalize().into(),
    })
}
