//! `ipsr-cli download`: choose a release, verify its record, fetch its
//! bytes (from the node, or a gateway), verify them against the CID, write
//! them atomically, pin them on the node.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use ipsr_proto::Version;
use serde::Serialize;

use crate::check;
use crate::cli::Ctx;
use crate::client::{Client, Package, Server};
use crate::error::{Error, Result};
use crate::output;
use crate::spec::{PackageSpec, VersionSel};

/// `ipsr-cli download AUTHOR/PACKAGE[@VERSION] [-o FILE]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to download: AUTHOR/PACKAGE (the newest release), AUTHOR/PACKAGE@1.2.0,
    /// or AUTHOR/PACKAGE@^1.2 (the newest matching release).
    spec: PackageSpec,
    /// Where to write the file (default: the release's file name in the current folder).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Downloaded {
    author: String,
    package: String,
    version: String,
    cid: String,
    size: u64,
    sha256: String,
    path: PathBuf,
    yanked: bool,
    pinned: bool,
}

/// Picks the version `sel` names among the package's versions, as listed by
/// `the` node or gateway (for messages).
pub(crate) fn choose(pkg: &Package, sel: &VersionSel, the: &str) -> Result<Version> {
    let name = format!("{}/{}", pkg.author, pkg.package);
    let chosen = match sel {
        VersionSel::Newest => pkg.newest.clone().ok_or_else(|| {
            Error::NotFound(format!(
                "every version of {name} is yanked; name one with @VERSION to get it anyway"
            ))
        })?,
        VersionSel::Exact(v) => {
            let v = v.to_string();
            if !pkg.versions.iter().any(|e| e.version == v) {
                return Err(Error::NotFound(format!(
                    "{name}@{v}: no such version ({the} has {})",
                    listing(pkg)
                )));
            }
            v
        }
        VersionSel::Req(req) => pkg
            .versions
            .iter()
            .filter(|e| !e.yanked)
            .find(|e| {
                e.version
                    .parse::<semver::Version>()
                    .is_ok_and(|v| req.matches(&v))
            })
            .map(|e| e.version.clone())
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "{name}: no non-yanked version matches {req} ({the} has {})",
                    listing(pkg)
                ))
            })?,
    };
    chosen
        .parse()
        .map_err(|e| Error::Verification(format!("{name}: {the} lists a bad version: {e}")))
}

fn listing(pkg: &Package) -> String {
    if pkg.versions.is_empty() {
        return "none".into();
    }
    pkg.versions
        .iter()
        .map(|e| match e.yanked {
            true => format!("{} (yanked)", e.version),
            false => e.version.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `download`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let client = ctx.client()?;
    let PackageSpec {
        author,
        package,
        version: sel,
    } = &args.spec;
    let pkg = client.package(&author.to_string(), package.as_str())?;
    let version = choose(&pkg, sel, client.the())?;
    let spec = format!("{author}/{package}@{version}");
    let answer = client.release(&author.to_string(), package.as_str(), &version.to_string())?;
    let authority = crate::identity::fetch(&client, author)?.authority();
    let checked = check::release(&answer, client.the(), author, package, &version, &authority)?;
    if checked.yanked {
        if !matches!(sel, VersionSel::Exact(_)) {
            return Err(Error::Verification(format!(
                "{spec}: {} offered it as not yanked, but its signed yank record says it is",
                client.the()
            )));
        }
        ctx.out.note(format!(
            "warning: {spec} is yanked: {}",
            checked.yank_reason.as_deref().unwrap_or("")
        ));
    }
    let release = &checked.release;
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(&release.file_name));
    let hashed = fetch_to(&client, release, &path)?;

    // A gateway keeps what it serves; only a node of one's own is pinned.
    let pinned = client.server() == Server::Node
        && match client.pin(&release.cid.to_string(), &spec) {
            Ok(_) => true,
            Err(e) => {
                ctx.out
                    .note(format!("warning: could not pin {}: {e}", release.cid));
                false
            }
        };
    let out = Downloaded {
        author: author.to_string(),
        package: package.to_string(),
        version: version.to_string(),
        cid: release.cid.to_string(),
        size: hashed.size,
        sha256: hex::encode(hashed.sha256),
        path: path.clone(),
        yanked: checked.yanked,
        pinned,
    };
    ctx.out.emit(&out, |w| {
        writeln!(w, "{spec}")?;
        writeln!(w, "cid:     {} (verified)", out.cid)?;
        writeln!(
            w,
            "size:    {}, sha256 {}",
            output::bytes(out.size),
            out.sha256
        )?;
        writeln!(w, "saved:   {}", out.path.display())
    })
}

/// Streams the release's content into a temporary file next to `path`,
/// checks size and CID, then renames it to `path`. On any failure the
/// temporary file is removed and `path` is untouched.
fn fetch_to(
    client: &Client,
    release: &ipsr_proto::Release,
    path: &PathBuf,
) -> Result<check::Hashed> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".ipsr-download-")
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(dir.display(), e))?;
    let cid = release.cid.to_string();
    let (len, body) = client.content(release)?;
    // A size of 0 in a record means "not stated" (Release::new's default).
    let stated = (release.size > 0).then_some(release.size);
    let bar = output::progress(len.or(stated), "downloading");
    let mut reader = bar.wrap_read(body);
    let mut writer = BufWriter::new(tmp.as_file());
    let hashed = check::hash(
        &mut reader,
        check::profile_of(&release.cid),
        Some(&mut writer),
        stated,
    );
    bar.finish_and_clear();
    let hashed = hashed.map_err(|e| {
        Error::Verification(format!(
            "content {cid}: {e}; nothing was written to {}",
            path.display()
        ))
    })?;
    writer
        .flush()
        .map_err(|e| Error::io(tmp.path().display(), e))?;
    drop(writer);
    if hashed.root != *release.cid.cid() || stated.is_some_and(|s| s != hashed.size) {
        return Err(Error::Verification(format!(
            "content {cid}: the bytes received, {}, hash to {}, not to the signed CID; nothing was written to {}",
            output::bytes(hashed.size),
            hashed.root,
            path.display()
        )));
    }
    if let Some(signed) = release.sha256.filter(|h| *h != hashed.sha256) {
        return Err(Error::Verification(format!(
            "content {cid}: the bytes received have SHA-256 {}, not the signed {}; nothing was written to {}",
            hex::encode(hashed.sha256),
            hex::encode(signed),
            path.display()
        )));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path().display(), e))?;
    crate::apk::check_signed(tmp.path(), release).map_err(|why| {
        Error::Verification(format!(
            "content {cid}: {why}; nothing was written to {}",
            path.display()
        ))
    })?;
    tmp.persist(path)
        .map_err(|e| Error::io(path.display(), e.error))?;
    Ok(hashed)
}
