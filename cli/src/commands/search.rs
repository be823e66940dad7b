//! `ipsr-cli search QUERY`: needs a search index, which nodes do not offer
//! yet; answers "not supported" (exit 7) unless the node has the route.

use crate::cli::Ctx;
use crate::error::{Error, Result};

/// `ipsr-cli search QUERY`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Words to look for.
    query: String,
}

/// Runs `search`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match ctx.client()?.search(&args.query)? {
        Some(results) => ctx.out.emit(&results, |w| {
            writeln!(
                w,
                "{}",
                serde_json::to_string_pretty(&results).unwrap_or_default()
            )
        }),
        None => Err(Error::Unsupported(format!(
            "search is not supported by the node at {} yet (it needs a search index); use `ipsr-cli ls AUTHOR` or `ipsr-cli info AUTHOR/PACKAGE`",
            ctx.node
        ))),
    }
}
