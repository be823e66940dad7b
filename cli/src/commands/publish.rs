//! `ipsr-cli publish`: validate, import the file into the node, sign and
//! post the release record, and wait until the node holds it; or, through a
//! gateway, hash the file here, sign, and upload record and file together.

use std::path::{Path, PathBuf};

use ipsr_content::unixfs::{Importer, Profile};
use ipsr_proto::limits::MAX_RECORD_BYTES;
use ipsr_proto::{ContentId, Metadata, PackageName, Platform, Record, Release, Version};
use serde::{Deserialize, Serialize};

use crate::apk::{self, Manifest};
use crate::check;
use crate::cli::Ctx;
use crate::client::{Client, Package, Server};
use crate::error::{Error, Result};
use crate::keys::{self, DEFAULT_NAME};
use crate::output;

/// `ipsr-cli publish FILE [--package NAME] [--version VERSION]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to publish. An *.apk must be a readable APK whose manifest agrees with
    /// --package, --version, --version-code and the metadata's SDKs and permissions.
    file: PathBuf,
    /// The package name, reverse-DNS style: com.example.app (default for an APK: its
    /// manifest's package; required for other files).
    #[arg(long, value_parser = parse_package)]
    package: Option<PackageName>,
    /// The SemVer version, newer than every published one: 1.2.0 (default for an APK: its
    /// manifest's versionName; required for other files).
    #[arg(long, value_parser = parse_version)]
    version: Option<Version>,
    /// The version code that orders releases (default: an APK's versionCode, else one more
    /// than the highest published).
    #[arg(long, value_name = "N")]
    version_code: Option<u64>,
    /// Metadata in TOML or JSON (.json): title, summary, description, changelog, license,
    /// URLs, categories, SDKs, permissions, icon and screenshots (files, imported too).
    #[arg(long, value_name = "FILE")]
    metadata: Option<PathBuf>,
    /// The target platform (default: android for .apk files, else any).
    #[arg(long, value_parser = parse_platform)]
    platform: Option<Platform>,
    /// The key to sign with: the author's own key, or a signer key of the
    /// author's identity (with --author).
    #[arg(long, default_value = DEFAULT_NAME, value_name = "NAME")]
    key: String,
    /// The author to publish for (default: the author of --key).
    #[arg(long)]
    author: Option<ipsr_proto::AuthorId>,
    /// Write the signed record to FILE instead of posting it (the content
    /// is imported into the node already), for other signers to add
    /// theirs with `ipsr-cli sign FILE` before `ipsr-cli post FILE`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub(crate) fn parse_package(s: &str) -> std::result::Result<PackageName, String> {
    s.parse().map_err(|e| format!("{e}"))
}

pub(crate) fn parse_version(s: &str) -> std::result::Result<Version, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn parse_platform(s: &str) -> std::result::Result<Platform, String> {
    s.parse().map_err(|e| format!("{e}"))
}

/// The metadata file. Paths are relative to the file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MetadataFile {
    title: String,
    summary: String,
    description: String,
    license: String,
    #[serde(alias = "homepage")]
    homepage_url: Option<String>,
    #[serde(alias = "source")]
    source_url: Option<String>,
    categories: Vec<String>,
    min_sdk: u32,
    target_sdk: u32,
    permissions: Vec<String>,
    signing_cert_sha256: Option<String>,
    icon: Option<PathBuf>,
    screenshots: Vec<PathBuf>,
    changelog: String,
    /// Refused with its own message: only the APK says it.
    native_code: Option<serde::de::IgnoredAny>,
}

/// What `publish` prints with `--json`.
#[derive(Debug, Serialize)]
struct Published {
    author: String,
    package: String,
    version: String,
    version_code: u64,
    cid: String,
    size: u64,
    sha256: String,
    record_id: String,
    change: String,
    url: String,
    /// What the APK's manifest says (files named `*.apk` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    apk: Option<Manifest>,
}

/// A placeholder CID (the empty raw leaf) to validate a draft record before
/// anything is uploaded.
const PLACEHOLDER_CID: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

/// Runs `publish`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    // 1. Everything that can be checked locally, before the node or the key.
    let size = regular_file(&args.file, "FILE")?;
    let (mut metadata, media) = match &args.metadata {
        Some(path) => read_metadata(path)?,
        None => (Metadata::default(), Media::default()),
    };
    if ctx.is_gateway() && (media.icon.is_some() || !media.screenshots.is_empty()) {
        return Err(Error::Usage(
            "a gateway takes one file per release, so the metadata's icon and screenshots cannot go through it; publish through your node (--node URL), or leave them out".into(),
        ));
    }
    let file_name = args
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}: the file name is not UTF-8",
                args.file.display()
            ))
        })?;
    let platform = args.platform.clone().unwrap_or_else(|| {
        if file_name.to_ascii_lowercase().ends_with(".apk") {
            Platform::android()
        } else {
            Platform::any()
        }
    });
    // An APK's manifest must agree with the flags and the metadata, and
    // gives what they leave out.
    let mut version_code = args.version_code.map(|c| (c, CodeFrom::Flag));
    let manifest = match apk::is_apk(&file_name) {
        true => Some(apk::read(&args.file)?),
        false => None,
    };
    let (package, version) = match &manifest {
        Some(manifest) => {
            let checked = apk::check(
                &file_name,
                manifest,
                args.package.as_ref(),
                args.version.as_ref(),
                args.version_code,
                &mut metadata,
            )?;
            if let Some(code) = checked.version_code {
                version_code = Some((code, CodeFrom::Apk));
            }
            if let Some(note) = checked.note {
                ctx.out.note(note);
            }
            (checked.package, checked.version)
        }
        None => match (args.package.clone(), args.version.clone()) {
            (Some(package), Some(version)) => (package, version),
            (package, _) => {
                let missing = match package {
                    None => "--package NAME",
                    Some(_) => "--version VERSION",
                };
                return Err(Error::Usage(format!(
                    "{}: {missing} is needed for a file that is not an APK (only an APK's manifest names its package and version)",
                    args.file.display()
                )));
            }
        },
    };
    let key_info = keys::info(&args.key)?;
    let key_id: ipsr_proto::AuthorId = key_info
        .author
        .parse()
        .map_err(|e| Error::Other(format!("key {:?}: {e}", args.key)))?;
    let author = args.author.unwrap_or(key_id);
    if args.out.is_some() && ctx.is_gateway() {
        return Err(Error::Usage(
            "--out keeps the content on your node until the record is posted; publish through your node (--node URL)".into(),
        ));
    }
    let placeholder: ContentId = PLACEHOLDER_CID.parse().expect("a valid CID");
    metadata.icon = media.icon.as_ref().map(|_| placeholder);
    metadata.screenshots = vec![placeholder; media.screenshots.len()];
    let mut release = Release::new(
        author,
        package.clone(),
        version.clone(),
        version_code.map_or(0, |(c, _)| c),
        placeholder,
    );
    release.size = size;
    release.file_name = file_name;
    release.platform = platform;
    release.metadata = metadata;
    release
        .validate()
        .map_err(|e| Error::Usage(format!("{e}; fix it and publish again")))?;
    let encoded = Record::Release(release.clone()).encode().len() + 112;
    if encoded > MAX_RECORD_BYTES {
        return Err(Error::Usage(format!(
            "the record would be {}, over the limit of {}; shorten the metadata (description, permissions)",
            output::bytes(encoded as u64),
            output::bytes(MAX_RECORD_BYTES as u64)
        )));
    }

    // 2. What the node (gateway) holds of the package: the version must be
    // newer, and the key must be a signer of the author's identity.
    let client = ctx.client()?;
    let authority = crate::identity::signer_authority(&client, &author, &args.key, &key_id)?;
    let existing = match client.package(&author.to_string(), package.as_str()) {
        Ok(p) => Some(p),
        Err(Error::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    release.version_code = check_newer(existing.as_ref(), &version, version_code)?;
    if let Some(note) = check_certificate(existing.as_ref(), &release, &authority)? {
        ctx.out.note(note);
    }
    let spec = format!("{author}/{package}@{version}");

    // 3. The key (may ask for its passphrase).
    let key = keys::load(&args.key)?;

    // 4. The content: into the node; through a gateway it goes with the
    // record in step 5, so here it is only hashed.
    let (cid, sha256) = match client.server() {
        Server::Gateway => hash_file(&args.file, size)?,
        _ => upload(&client, &args.file, size, &spec, "")?,
    };
    release.cid = cid;
    release.sha256 = Some(sha256);
    if let Some(icon) = &media.icon {
        let size = regular_file(icon, "metadata.icon")?;
        release.metadata.icon = Some(upload(&client, icon, size, &spec, " icon")?.0);
    }
    for (i, shot) in media.screenshots.iter().enumerate() {
        let size = regular_file(shot, "metadata.screenshots")?;
        release.metadata.screenshots[i] = upload(&client, shot, size, &spec, " screenshot")?.0;
    }

    // 5. Sign, post, and check that the node holds exactly this record.
    let version_code = release.version_code;
    let signed = release
        .sign(&key)
        .map_err(|e| Error::Usage(format!("{e}; fix it and publish again")))?;
    if let Some(path) = &args.out {
        std::fs::write(path, signed.to_bytes()).map_err(|e| Error::io(path.display(), e))?;
        let needs = authority.threshold;
        return ctx.out.emit(
            &serde_json::json!({ "release": spec, "record_id": signed.id().to_string(), "file": path, "signed": 1, "needs": needs }),
            |w| {
                writeln!(w, "signed {spec} into {} (1 of the {needs} signatures it needs)", path.display())?;
                writeln!(w, "add signatures with `ipsr-cli sign {} --key NAME`, then `ipsr-cli post {}`", path.display(), path.display())
            },
        );
    }
    let pending = !authority.is_met(signed.approvals());
    let the = client.the();
    let (posted, page) = match client.server() {
        Server::Gateway => {
            let file =
                std::fs::File::open(&args.file).map_err(|e| Error::io(args.file.display(), e))?;
            let bar = output::progress(Some(size), "uploading");
            let mut reader = bar.wrap_read(file);
            let posted = client.publish_with_content(&spec, &signed.to_bytes(), &mut reader, size);
            bar.finish_and_clear();
            let posted = posted?;
            let page = posted.links.map(|l| l.page);
            (posted.posted, page)
        }
        _ => (client.post_record(&spec, &signed.to_bytes())?, None),
    };
    match posted.change.as_str() {
        "new" | "replaced" | "duplicate" => {}
        other => {
            return Err(Error::Conflict(format!(
                "{spec}: {the} kept another record for this version (change: {other}); publish a new version"
            )));
        }
    }
    if posted.id != signed.id().to_string() {
        return Err(Error::Conflict(format!(
            "{spec}: {the} answered for record {} rather than this one ({}); publish a new version",
            posted.id,
            signed.id()
        )));
    }
    // A node is read back (a gateway may answer from an index that lags);
    // a record short of signatures is held but not in force.
    if pending {
        ctx.out.note(format!(
            "{spec}: 1 of the {} signatures it needs; it is held but served by no one until the others sign (`ipsr-cli publish --out`, `ipsr-cli sign`, `ipsr-cli post`)",
            authority.threshold
        ));
    } else if client.server() == Server::Node {
        let held = client.release(&author.to_string(), package.as_str(), &version.to_string())?;
        if held.entry.record_id != signed.id().to_string() {
            return Err(Error::Conflict(format!(
                "{spec}: the node holds record {} rather than this one ({}); publish a new version",
                held.entry.record_id,
                signed.id()
            )));
        }
    }

    let url = match page {
        Some(page) => client.url(page.trim_start_matches('/'), &[]).to_string(),
        None => client
            .url(&format!("v1/packages/{author}/{package}/{version}"), &[])
            .to_string(),
    };
    let out = Published {
        author: author.to_string(),
        package: package.to_string(),
        version: version.to_string(),
        version_code,
        cid: cid.to_string(),
        size,
        sha256: hex::encode(sha256),
        record_id: signed.id().to_string(),
        change: posted.change,
        url,
        apk: manifest,
    };
    ctx.out.emit(&out, |w| {
        writeln!(w, "{spec}")?;
        writeln!(w, "cid:     {}", out.cid)?;
        writeln!(
            w,
            "size:    {}, sha256 {}",
            output::bytes(out.size),
            out.sha256
        )?;
        writeln!(w, "code:    {}", out.version_code)?;
        if let Some(m) = &out.apk {
            writeln!(w, "apk:     {}", apk::summary(m))?;
            for line in apk::requests(m) {
                writeln!(w, "         {line}")?;
            }
        }
        writeln!(w, "record:  {}", out.record_id)?;
        writeln!(w, "see:     ipsr-cli info {spec}")?;
        writeln!(w, "         {}", out.url)
    })
}

/// The size of a regular file, or a usage error naming `what`.
fn regular_file(path: &Path, what: &str) -> Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(m.len()),
        Ok(_) => Err(Error::Usage(format!(
            "{what} {}: not a regular file",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Usage(format!(
            "{what} {}: no such file",
            path.display()
        ))),
        Err(e) => Err(Error::io(path.display(), e)),
    }
}

/// Files named by the metadata, resolved against its folder.
#[derive(Debug, Default)]
struct Media {
    icon: Option<PathBuf>,
    screenshots: Vec<PathBuf>,
}

fn read_metadata(path: &Path) -> Result<(Metadata, Media)> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Usage(format!("--metadata {}: no such file", path.display()))
        }
        _ => Error::io(path.display(), e),
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let file: MetadataFile = if is_json {
        serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "--metadata {}: not valid metadata JSON: {e}",
                path.display()
            ))
        })?
    } else {
        toml::from_str(&text).map_err(|e| {
            let msg = e.message().trim_end().replace('\n', "; ");
            let at = e.span().map_or(String::new(), |span| {
                let (line, column) = line_column(&text, span.start);
                format!(" at line {line}, column {column}")
            });
            Error::Usage(format!(
                "--metadata {}: not valid metadata TOML{at}: {msg}",
                path.display()
            ))
        })?
    };
    if file.native_code.is_some() {
        return Err(Error::Usage(format!(
            "--metadata {}: native_code is read from the APK (its lib/ABI/ folders), not the metadata; leave it out",
            path.display()
        )));
    }
    let signing_cert_sha256 = match &file.signing_cert_sha256 {
        None => None,
        Some(text) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(text.replace(':', ""), &mut out).map_err(|_| {
                Error::Usage(format!(
                    "--metadata {}: signing_cert_sha256 must be 64 hex digits",
                    path.display()
                ))
            })?;
            Some(out)
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let media = Media {
        icon: file.icon.as_ref().map(|p| base.join(p)),
        screenshots: file.screenshots.iter().map(|p| base.join(p)).collect(),
    };
    if let Some(icon) = &media.icon {
        regular_file(icon, "metadata.icon")?;
    }
    for shot in &media.screenshots {
        regular_file(shot, "metadata.screenshots")?;
    }
    let metadata = Metadata {
        title: file.title,
        summary: file.summary,
        description: file.description,
        license: file.license,
        homepage_url: file.homepage_url.filter(|u| !u.is_empty()),
        source_url: file.source_url.filter(|u| !u.is_empty()),
        categories: file.categories,
        min_sdk: file.min_sdk,
        target_sdk: file.target_sdk,
        permissions: file.permissions,
        signing_cert_sha256,
        // Only the APK's signing block gives it (`apk::check`).
        signing_cert_lineage: Vec::new(),
        icon: None,
        screenshots: Vec::new(),
        changelog: file.changelog,
        // Only the APK's `lib/` folders give it (`apk::check`).
        native_code: Vec::new(),
    };
    Ok((metadata, media))
}

/// The line and column (both from 1, the column in characters) of byte
/// `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where a version code asked for comes from.
#[derive(Debug, Clone, Copy)]
enum CodeFrom {
    /// `--version-code`.
    Flag,
    /// The APK's manifest.
    Apk,
}

/// The version code to use; refuses a version that is not newer than every
/// published one, or a version code that would not make it the newest.
/// `code` is the version code asked for and where it comes from.
fn check_newer(
    existing: Option<&Package>,
    version: &Version,
    code: Option<(u64, CodeFrom)>,
) -> Result<u64> {
    let Some(pkg) = existing else {
        return Ok(code.map_or(1, |(c, _)| c));
    };
    let spec = format!("{}/{}@{version}", pkg.author, pkg.package);
    if pkg
        .versions
        .iter()
        .any(|v| v.version == version.to_string())
    {
        return Err(Error::Conflict(format!(
            "{spec} is already published; publish a newer --version"
        )));
    }
    let highest = pkg
        .versions
        .iter()
        .filter_map(|v| v.version.parse::<Version>().ok())
        .max_by(|a, b| a.semver().cmp_precedence(b.semver()));
    if let Some(highest) = highest
        && version.semver().cmp_precedence(highest.semver()) != std::cmp::Ordering::Greater
    {
        return Err(Error::Conflict(format!(
            "--version {version} is not newer than {highest}, the last published version of {}; use a higher version",
            pkg.package
        )));
    }
    let top_code = pkg
        .versions
        .iter()
        .map(|v| v.version_code)
        .max()
        .unwrap_or(0);
    match code {
        None => Ok(top_code.saturating_add(1)),
        Some((c, _)) if c > top_code => Ok(c),
        Some((c, from)) => {
            let (what, fix) = match from {
                CodeFrom::Flag => ("--version-code", "use"),
                CodeFrom::Apk => ("the APK's versionCode", "build the APK with"),
            };
            Err(Error::Conflict(format!(
                "{what} {c} is not higher than {top_code}, the highest published for {}; {fix} {} or more",
                pkg.package,
                top_code.saturating_add(1)
            )))
        }
    }
}

/// Rule 9 of `docs/records.md` for the release about to be published (the
/// newest, by [`check_newer`]): its APK certificate must be the one of the
/// latest earlier release that names one (leaving out those of a changed
/// certificate), or the APK's proof of rotation must list that one, or the
/// author's identity must name the new one. Nodes apply the rule to the
/// signed records whatever this says; this only spares the author a
/// release that would never be offered. A note for the user when the
/// certificate is new.
fn check_certificate(
    existing: Option<&Package>,
    release: &Release,
    authority: &ipsr_proto::Authority,
) -> Result<Option<String>> {
    let Some(cert) = release.metadata.signing_cert_sha256 else {
        return Ok(None);
    };
    let earlier = existing
        .into_iter()
        .flat_map(|p| &p.versions)
        .filter(|v| v.version_code < release.version_code)
        .filter_map(|v| Some((v, v.certificate.as_ref()?)))
        .filter(|(_, c)| c.check != "changed")
        .max_by_key(|(v, _)| v.version_code);
    let Some((before, expected)) = earlier else {
        return Ok(None);
    };
    let new = hex::encode(cert);
    if expected.sha256 == new {
        return Ok(None);
    }
    let rotated = release
        .metadata
        .signing_cert_lineage
        .iter()
        .any(|c| hex::encode(c) == expected.sha256);
    if rotated {
        return Ok(Some(format!(
            "note: the APK's proof of rotation moves {} from certificate {} ({}) to {new}",
            release.package, expected.sha256, before.version
        )));
    }
    if authority.apk_certs.contains(&cert) {
        return Ok(Some(format!(
            "note: certificate {new} replaces {} ({}); your identity names it",
            expected.sha256, before.version
        )));
    }
    Err(Error::Conflict(format!(
        "the APK is signed by certificate {new}, but {} {} is signed by {}: Android will not install it over the app, and no node would offer it as an update. Sign it with that certificate, rotate to the new one with a v3 proof of rotation (apksigner rotate, then apksigner sign --lineage), or name it in your identity: ipsr-cli identity update --add-apk-cert {new} --key ADMIN",
        release.package, before.version, expected.sha256
    )))
}

/// Hashes a file as the node would import it (`unixfs-v1-2025`); returns
/// its CID and SHA-256. For a gateway, which checks the uploaded bytes
/// against the signed CID.
fn hash_file(path: &Path, size: u64) -> Result<(ContentId, [u8; 32])> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
    let bar = output::progress(Some(size), "hashing");
    let mut reader = bar.wrap_read(file);
    let hashed = check::hash(&mut reader, Profile::V1_2025, None, None);
    bar.finish_and_clear();
    let hashed = hashed.map_err(|e| Error::io(path.display(), e))?;
    if hashed.size != size {
        return Err(Error::Other(format!(
            "{}: read {} but the file has {}; was it changed while hashing?",
            path.display(),
            output::bytes(hashed.size),
            output::bytes(size)
        )));
    }
    let cid = ContentId::try_from(hashed.root)
        .map_err(|e| Error::Other(format!("{}: no CID for it: {e}", path.display())))?;
    Ok((cid, hashed.sha256))
}

/// Streams a file into the node; returns its CID and SHA-256.
fn upload(
    client: &Client,
    path: &Path,
    size: u64,
    spec: &str,
    what: &str,
) -> Result<(ContentId, [u8; 32])> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
    let bar = output::progress(Some(size), &format!("uploading{what}"));
    // Hash and import locally while streaming (the bytes are read once), so
    // the CID signed is one this CLI computed, not only what the node said.
    let mut hashing = HashingReader {
        inner: bar.wrap_read(file),
        sha: <sha2::Sha256 as sha2::Digest>::new(),
        importer: Importer::new(Profile::V1_2025),
    };
    let label = format!("{spec}{what}");
    let added = client.add(
        &format!("{}", path.display()),
        &mut hashing,
        "unixfs-v1-2025",
        &label,
    );
    bar.finish_and_clear();
    let added = added?;
    if added.size != size {
        return Err(Error::Other(format!(
            "{}: the node imported {} but the file has {}; was it changed while uploading?",
            path.display(),
            output::bytes(added.size),
            output::bytes(size)
        )));
    }
    let cid: ContentId = added
        .cid
        .parse()
        .map_err(|e| Error::Other(format!("the node returned a bad CID {:?}: {e}", added.cid)))?;
    let (local, _) = hashing.importer.finish();
    if local.root != *cid.cid() {
        return Err(Error::Verification(format!(
            "{}: the node says its CID is {cid} but it is {}; is the node sound?",
            path.display(),
            local.root
        )));
    }
    Ok((cid, sha2::Digest::finalize(hashing.sha).into()))
}

struct HashingReader<R> {
    inner: R,
    sha: sha2::Sha256,
    importer: Importer,
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.sha, &buf[..n]);
        let _ = self.importer.push(&buf[..n]);
        Ok(n)
    }
}
