//! `ipsr-cli search QUERY`: packages whose name or title match, ranked by
//! the rules of `ipsr_node::search`: the node's `GET /v1/search`, or a
//! gateway's `GET /api/v1/packages?q=`.

use crate::cli::Ctx;
use crate::commands::info::one_line;
use crate::error::Result;

/// `ipsr-cli search QUERY [--limit N]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Words to look for in package names and titles (every word must match;
    /// words match whole or as a prefix, from 2 characters).
    query: String,
    /// At most this many results (1 to 100).
    #[arg(long, default_value_t = 20, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=100))]
    limit: u16,
}

/// Runs `search`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let client = ctx.client()?;
    let found = client.search(&args.query, usize::from(args.limit))?;
    ctx.out.emit(&found.raw, |w| {
        if found.packages.is_empty() {
            writeln!(w, "nothing matches {:?}", one_line(&args.query))?;
        }
        for p in &found.packages {
            let name = format!("{}/{}", p.author, p.package);
            let newest = p.newest.as_deref().unwrap_or("(yanked)");
            writeln!(
                w,
                "{}  {}  {}",
                one_line(&name),
                one_line(newest),
                one_line(&p.title)
            )?;
        }
        Ok(())
    })
}
