//! `ipsr-cli ls AUTHOR`: an author's packages the node (or gateway) knows.

use ipsr_proto::AuthorId;

use crate::cli::Ctx;
use crate::error::Result;

/// `ipsr-cli ls AUTHOR`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The author id (k51qzi5uqu5d…).
    author: AuthorId,
}

/// Runs `ls`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let client = ctx.client()?;
    let author = client.author(&args.author.to_string())?;
    ctx.out.emit(&author, |w| {
        if author.packages.is_empty() {
            writeln!(w, "{} knows no packages of {}", client.the(), author.author)?;
        }
        for p in &author.packages {
            writeln!(w, "{}/{p}", author.author)?;
        }
        Ok(())
    })
}
