//! `ipsr-cli peers` and `ipsr-cli status`.

use crate::cli::Ctx;
use crate::error::Result;

/// Runs `peers`.
pub(crate) fn peers(ctx: &Ctx) -> Result<()> {
    let peers = ctx.client()?.peers()?;
    ctx.out.emit(&peers, |w| {
        let list = peers["peers"].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            writeln!(w, "no connected peers")?;
        }
        for p in list {
            writeln!(w, "{}", p.as_str().unwrap_or_default())?;
        }
        Ok(())
    })
}

/// Runs `status`.
pub(crate) fn status(ctx: &Ctx) -> Result<()> {
    let status = ctx.client()?.status()?;
    ctx.out.emit(&status, |w| {
        writeln!(w, "node:      {}", ctx.node)?;
        writeln!(
            w,
            "peer id:   {}",
            status["peer_id"].as_str().unwrap_or_default()
        )?;
        for a in status["listen_addrs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            writeln!(w, "listening: {}", a.as_str().unwrap_or_default())?;
        }
        for field in ["peers", "records", "releases", "log_head", "conflicts"] {
            writeln!(w, "{:<10} {}", format!("{field}:"), status[field])?;
        }
        Ok(())
    })
}
