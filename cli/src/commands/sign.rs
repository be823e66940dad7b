//! `ipsr-cli sign` and `ipsr-cli post`: the offline flow for records that
//! need more than one signature (`docs/records.md`, sections 1.2 and 9).
//! One maintainer writes a signed record or identity document to a file
//! (`identity update --out`, `publish --out`, `yank --out`), each other
//! signer adds a signature with `sign`, and anyone posts it with `post`.

use std::path::PathBuf;

use ipsr_proto::{Signed, SignedRecord};
use serde::Serialize;

use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::keys::{self, DEFAULT_NAME};

/// `ipsr-cli sign FILE --key NAME`
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The signed record or identity document (its bytes, as written by `--out`).
    file: PathBuf,
    /// The key to add a signature with.
    #[arg(long, default_value = DEFAULT_NAME, value_name = "NAME")]
    key: String,
}

/// `ipsr-cli post FILE`
#[derive(Debug, clap::Args)]
pub struct PostArgs {
    /// The signed record or identity document to publish.
    file: PathBuf,
}

#[derive(Debug, Serialize)]
struct Signatures {
    file: PathBuf,
    record_id: String,
    signed_by: Vec<String>,
    change: Option<String>,
}

/// Reads and verifies a file of signed bytes.
fn read(path: &PathBuf) -> Result<Signed> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
    SignedRecord::from_bytes(&bytes)
        .and_then(SignedRecord::verify_any)
        .map_err(|e| Error::Verification(format!("{}: {e}", path.display())))
}

fn approvals(signed: &Signed) -> Vec<String> {
    let list = match signed {
        Signed::Record(r) => r.approvals(),
        Signed::Identity(d) => d.approvals(),
    };
    list.iter().map(|a| a.key_id().to_string()).collect()
}

/// Runs `sign`: adds `--key`'s signature to the file, in place.
pub(crate) fn sign(ctx: &Ctx, args: SignArgs) -> Result<()> {
    let signed = read(&args.file)?;
    let key = keys::load(&args.key)?;
    let bad = |e: ipsr_proto::InvalidRecord| Error::Usage(format!("{}: {e}", args.file.display()));
    let signed = match signed {
        Signed::Record(r) => Signed::Record(r.cosign(&key).map_err(bad)?),
        Signed::Identity(d) => Signed::Identity(d.cosign(&key).map_err(bad)?),
    };
    std::fs::write(&args.file, signed.to_bytes()).map_err(|e| Error::io(args.file.display(), e))?;
    let out = Signatures {
        file: args.file.clone(),
        record_id: signed.id().to_string(),
        signed_by: approvals(&signed),
        change: None,
    };
    ctx.out.emit(&out, |w| {
        writeln!(
            w,
            "{}: now signed by {} key(s)",
            out.file.display(),
            out.signed_by.len()
        )?;
        for k in &out.signed_by {
            writeln!(w, "  {k}")?;
        }
        Ok(())
    })
}

/// Runs `post`: publishes the file's record or document.
pub(crate) fn post(ctx: &Ctx, args: PostArgs) -> Result<()> {
    let signed = read(&args.file)?;
    let client = ctx.client()?;
    let posted = client.post_record(&args.file.display().to_string(), &signed.to_bytes())?;
    if !matches!(posted.change.as_str(), "new" | "replaced" | "duplicate") {
        return Err(Error::Conflict(format!(
            "{}: {} did not take it (change: {}): not signed by enough keys of the identity in force, or older than what it holds",
            args.file.display(),
            client.the(),
            posted.change
        )));
    }
    let out = Signatures {
        file: args.file.clone(),
        record_id: signed.id().to_string(),
        signed_by: approvals(&signed),
        change: Some(posted.change),
    };
    ctx.out.emit(&out, |w| {
        writeln!(w, "posted {} ({})", out.file.display(), out.record_id)
    })
}
