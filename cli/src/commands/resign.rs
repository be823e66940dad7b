//! `ipsr-cli resign`: sign a release again with a current signer key, after
//! the key that signed it was removed from the author's identity
//! (`docs/records.md`, section 9). The release's payload is unchanged; the
//! new signature makes it count again.

use ipsr_proto::SignedRecord;
use serde::Serialize;

use base64::Engine as _;

use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::identity;
use crate::keys::{self, DEFAULT_NAME};
use crate::spec::ReleaseSpec;

/// `ipsr-cli resign AUTHOR/PACKAGE@VERSION --key NAME`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The release to sign again.
    spec: ReleaseSpec,
    /// A signer key of the author's identity in force.
    #[arg(long, default_value = DEFAULT_NAME, value_name = "NAME")]
    key: String,
}

#[derive(Debug, Serialize)]
struct Resigned {
    release: String,
    record_id: String,
    change: String,
    from: &'static str,
}

/// Runs `resign`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let spec = &args.spec;
    let (author, package, version) = (
        spec.author,
        spec.package.to_string(),
        spec.version.to_string(),
    );
    let client = ctx.client()?;
    let key = keys::load(&args.key)?;
    identity::signer_authority(&client, &author, &args.key, &key.author_id())?;
    // The record: as the server holds it, else the copy `identity update`
    // kept when its signer was removed.
    let held = match client.release(&author.to_string(), &package, &version) {
        Ok(answer) => base64::engine::general_purpose::STANDARD
            .decode(&answer.record)
            .ok()
            .and_then(|b| {
                SignedRecord::from_bytes(&b)
                    .and_then(SignedRecord::verify)
                    .ok()
            }),
        Err(Error::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let (record, from) = match held {
        Some(r) => (r, "server"),
        None => match identity::kept_for_resign(&author, &package, &version)? {
            Some(r) => (r, "local copy"),
            None => {
                return Err(Error::NotFound(format!(
                    "{spec}: neither {} nor this computer holds its record",
                    client.the()
                )));
            }
        },
    };
    let resigned = record
        .cosign(&key)
        .map_err(|e| Error::Usage(format!("{spec}: {e}")))?;
    let posted = client.post_record(&spec.to_string(), &resigned.to_bytes())?;
    if !matches!(posted.change.as_str(), "new" | "replaced" | "duplicate") {
        return Err(Error::Conflict(format!(
            "{spec}: {} kept another record (change: {}): a newer record of this version is in force",
            client.the(),
            posted.change
        )));
    }
    let out = Resigned {
        release: spec.to_string(),
        record_id: posted.id,
        change: posted.change,
        from,
    };
    ctx.out.emit(&out, |w| {
        writeln!(w, "re-signed {} with {}", out.release, args.key)?;
        writeln!(w, "record: {}", out.record_id)
    })
}
