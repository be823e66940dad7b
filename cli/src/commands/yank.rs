//! `ipsr-cli yank`: retract a release with a signed yank record.

use ipsr_proto::Yank;
use serde::Serialize;

use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::keys::{self, DEFAULT_NAME};
use crate::spec::ReleaseSpec;

/// `ipsr-cli yank AUTHOR/PACKAGE@VERSION --reason TEXT`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The release to retract.
    spec: ReleaseSpec,
    /// Why, for users (up to 500 bytes).
    #[arg(long)]
    reason: String,
    /// The author key to sign with.
    #[arg(long, default_value = DEFAULT_NAME, value_name = "NAME")]
    key: String,
}

#[derive(Debug, Serialize)]
struct Yanked {
    author: String,
    package: String,
    version: String,
    record_id: String,
    change: String,
}

/// Runs `yank`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let spec = &args.spec;
    let info = keys::info(&args.key)?;
    if info.author != spec.author.to_string() {
        return Err(Error::Usage(format!(
            "key {:?} is author {}, not {}; pass --key with that author's key",
            args.key, info.author, spec.author
        )));
    }
    let yank = Yank::new(
        spec.author,
        spec.package.clone(),
        spec.version.clone(),
        args.reason.clone(),
    );
    yank.validate()
        .map_err(|e| Error::Usage(format!("--reason: {e}")))?;
    let client = ctx.client()?;
    // The release must exist (a yank may precede its release on the
    // network, but from the CLI that is almost surely a typo).
    client.release(
        &spec.author.to_string(),
        spec.package.as_str(),
        &spec.version.to_string(),
    )?;
    let key = keys::load(&args.key)?;
    let signed = yank.sign(&key).map_err(|e| Error::Usage(format!("{e}")))?;
    let posted = client.post_record(&spec.to_string(), &signed.to_bytes())?;
    if !matches!(posted.change.as_str(), "new" | "replaced" | "duplicate") {
        return Err(Error::Conflict(format!(
            "{spec}: {} kept another record (change: {})",
            client.the(),
            posted.change
        )));
    }
    let out = Yanked {
        author: spec.author.to_string(),
        package: spec.package.to_string(),
        version: spec.version.to_string(),
        record_id: signed.id().to_string(),
        change: posted.change,
    };
    ctx.out.emit(&out, |w| {
        writeln!(w, "yanked {spec}")?;
        writeln!(w, "record: {}", out.record_id)
    })
}
