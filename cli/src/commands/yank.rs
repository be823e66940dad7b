//! `ipsr-cli yank`: retract a release with a signed yank record.

use ipsr_proto::Yank;
use serde::Serialize;

use crate::check;
use crate::cli::Ctx;
use crate::commands::info::one_line;
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
    /// The key to sign with: the author's own key, or a signer key of the
    /// author's identity.
    #[arg(long, default_value = DEFAULT_NAME, value_name = "NAME")]
    key: String,
    /// Write the signed yank to FILE instead of posting it, for other
    /// signers (`ipsr-cli sign FILE`, then `ipsr-cli post FILE`).
    #[arg(long, value_name = "FILE")]
    out: Option<std::path::PathBuf>,
    /// Sign a new yank when the release is already yanked with another
    /// reason (without it, that is refused with exit 6).
    #[arg(long)]
    replace_reason: bool,
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
    let key_id = crate::identity::key_id(&args.key)?;
    let yank = Yank::new(
        spec.author,
        spec.package.clone(),
        spec.version.clone(),
        args.reason.clone(),
    );
    yank.validate()
        .map_err(|e| Error::Usage(format!("--reason: {e}")))?;
    let client = ctx.client()?;
    let authority = crate::identity::signer_authority(&client, &spec.author, &args.key, &key_id)?;
    // The release must exist (a yank may precede its release on the
    // network, but from the CLI that is almost surely a typo).
    let answer = client.release(
        &spec.author.to_string(),
        spec.package.as_str(),
        &spec.version.to_string(),
    )?;
    // Already yanked (a yank this CLI checked, counted by the identity):
    // the same reason is nothing to do; another one replaces the reason
    // users see, only when asked.
    let current = check::yank_in_force(
        &answer,
        client.the(),
        &spec.author,
        &spec.package,
        &spec.version,
        &authority,
    )?;
    if let Some(current) = current {
        if current.reason == args.reason {
            ctx.out.note(format_args!(
                "note: {spec} is already yanked with this reason; nothing signed or sent"
            ));
            let out = Yanked {
                author: spec.author.to_string(),
                package: spec.package.to_string(),
                version: spec.version.to_string(),
                record_id: current.record_id,
                change: "unchanged".into(),
            };
            return ctx.out.emit(&out, |w| {
                writeln!(w, "yanked {spec}")?;
                writeln!(w, "record: {}", out.record_id)
            });
        }
        if !args.replace_reason {
            return Err(Error::Conflict(format!(
                "{spec} is already yanked with another reason: \"{}\"; pass --replace-reason to sign a yank with the new one",
                one_line(&current.reason)
            )));
        }
    }
    let key = keys::load(&args.key)?;
    let signed = yank.sign(&key).map_err(|e| Error::Usage(format!("{e}")))?;
    if let Some(path) = &args.out {
        std::fs::write(path, signed.to_bytes()).map_err(|e| Error::io(path.display(), e))?;
        return ctx.out.emit(
            &serde_json::json!({ "release": spec.to_string(), "record_id": signed.id().to_string(), "file": path }),
            |w| writeln!(w, "signed the yank of {spec} into {}; add signatures with `ipsr-cli sign`, then `ipsr-cli post`", path.display()),
        );
    }
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
