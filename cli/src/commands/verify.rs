//! `ipsr-cli verify FILE AUTHOR/PACKAGE@VERSION`: a local file against a
//! published release.

use std::path::PathBuf;

use serde::Serialize;

use crate::check;
use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::spec::ReleaseSpec;

/// `ipsr-cli verify FILE AUTHOR/PACKAGE@VERSION`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to check.
    file: PathBuf,
    /// The release it should be.
    spec: ReleaseSpec,
}

#[derive(Debug, Serialize)]
struct Verified {
    file: PathBuf,
    release: String,
    cid: String,
    size: u64,
    sha256: String,
    yanked: bool,
    ok: bool,
}

/// Runs `verify`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let spec = &args.spec;
    let mut file =
        std::fs::File::open(&args.file).map_err(|e| Error::io(args.file.display(), e))?;
    let client = ctx.client()?;
    let answer = client.release(
        &spec.author.to_string(),
        spec.package.as_str(),
        &spec.version.to_string(),
    )?;
    let authority = crate::identity::fetch(&client, &spec.author)?.authority();
    let checked = check::release(
        &answer,
        client.the(),
        &spec.author,
        &spec.package,
        &spec.version,
        &authority,
    )?;
    let release = &checked.release;
    let hashed = check::hash(&mut file, check::profile_of(&release.cid), None, None)
        .map_err(|e| Error::io(args.file.display(), e))?;
    let ok = hashed.root == *release.cid.cid()
        && (release.size == 0 || hashed.size == release.size)
        && release.sha256.is_none_or(|h| h == hashed.sha256);
    if !ok {
        return Err(Error::Verification(format!(
            "{} does not match {spec}: it is {} with CID {}, the release is {} with CID {}",
            args.file.display(),
            crate::output::bytes(hashed.size),
            hashed.root,
            crate::output::bytes(release.size),
            release.cid
        )));
    }
    crate::apk::check_signed(&args.file, release).map_err(|why| {
        Error::Verification(format!(
            "{} does not match {spec}: {why}",
            args.file.display()
        ))
    })?;
    let out = Verified {
        file: args.file.clone(),
        release: spec.to_string(),
        cid: release.cid.to_string(),
        size: hashed.size,
        sha256: hex::encode(hashed.sha256),
        yanked: checked.yanked,
        ok,
    };
    if checked.yanked {
        ctx.out.note(format!(
            "warning: {spec} is yanked: {}",
            checked.yank_reason.as_deref().unwrap_or("")
        ));
    }
    ctx.out.emit(&out, |w| {
        writeln!(w, "ok: {} is {spec}", out.file.display())?;
        writeln!(w, "cid: {} (record signature verified)", out.cid)
    })
}
