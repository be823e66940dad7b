//! `ipsr-cli peers` and `ipsr-cli status`.

use crate::cli::Ctx;
use crate::client::Server;
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

/// Runs `status`: the node's `GET /v1/status`, or a gateway's `GET /healthz`.
pub(crate) fn status(ctx: &Ctx) -> Result<()> {
    let client = ctx.client()?;
    let status = client.status()?;
    ctx.out.emit(&status, |w| {
        let text = |field: &str| status[field].as_str().unwrap_or_default().to_owned();
        if client.server() == Server::Gateway {
            writeln!(w, "gateway:   {}", client.base())?;
            writeln!(w, "status:    {}", text("status"))?;
            writeln!(w, "peer id:   {}", text("peer_id"))?;
            return writeln!(w, "peers:     {}", status["peers"]);
        }
        writeln!(w, "node:      {}", client.base())?;
        writeln!(w, "peer id:   {}", text("peer_id"))?;
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
