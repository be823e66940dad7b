//! `ipsr-cli add FILE`: import a file into the node, or only compute its CID.

use std::path::PathBuf;

use ipsr_content::unixfs::Profile;
use serde::Serialize;

use crate::check;
use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::output;

/// `ipsr-cli add FILE [--only-hash] [--cid-version 0|1]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file.
    file: PathBuf,
    /// Only compute the CID, locally, without a node.
    #[arg(long)]
    only_hash: bool,
    /// 1: CIDv1, raw leaves, 1 MiB chunks (unixfs-v1-2025); 0: kubo's legacy CIDv0 (unixfs-v0-2015).
    #[arg(long, default_value = "1", value_parser = ["0", "1"])]
    cid_version: String,
}

#[derive(Debug, Serialize)]
struct Added {
    cid: String,
    size: u64,
    profile: &'static str,
    stored: bool,
}

/// Runs `add`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let profile = match args.cid_version.as_str() {
        "0" => Profile::V0_2015,
        _ => Profile::V1_2025,
    };
    let mut file =
        std::fs::File::open(&args.file).map_err(|e| Error::io(args.file.display(), e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(args.file.display(), e))?
        .len();
    let out = if args.only_hash {
        let hashed = check::hash(&mut file, profile, None, None)
            .map_err(|e| Error::io(args.file.display(), e))?;
        Added {
            cid: hashed.root.to_string(),
            size: hashed.size,
            profile: profile.name(),
            stored: false,
        }
    } else {
        if ctx.is_gateway() {
            return Err(Error::Unsupported(
                "add needs a node: a gateway stores only the content of releases published through it; pass --only-hash to compute the CID, or --node URL".into(),
            ));
        }
        let client = ctx.client()?;
        let bar = output::progress(Some(size), "uploading");
        let mut reader = bar.wrap_read(file);
        let added = client.add(
            &args.file.display().to_string(),
            &mut reader,
            profile.name(),
            "",
        );
        bar.finish_and_clear();
        let added = added?;
        Added {
            cid: added.cid,
            size: added.size,
            profile: profile.name(),
            stored: true,
        }
    };
    ctx.out.emit(&out, |w| writeln!(w, "{}", out.cid))
}
