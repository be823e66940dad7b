//! `ipsr-indexer`: tails an IPSR node's log into Redis.
//!
//! Exit codes: 0 after Ctrl-C, 1 on a configuration error or damaged data
//! in Redis.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use ipsr_indexer::{HttpSource, Indexer, IndexerConfig, Metrics, RedisConfig, RedisIndex};
use ipsr_node::ApiToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

/// Mirror an IPSR node's records into Redis (keyspace: docs/redis.md).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The node's API.
    #[arg(long, env = "IPSR_NODE", default_value = "http://127.0.0.1:5050")]
    node: String,
    /// A file holding the node's API token, sent as `Authorization: Bearer`:
    /// needed when the node's API is off loopback (the token is then in the
    /// node's DATA_DIR/api-token) or was started with --api-token-file.
    #[arg(long, env = "IPSR_NODE_TOKEN_FILE", value_name = "FILE")]
    node_token_file: Option<PathBuf>,
    /// Redis: one server, redis://[:PASSWORD@]HOST:PORT[/DB] (rediss:// for
    /// TLS), or a Redis Cluster, redis+cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT...]
    /// naming some of its nodes (rediss+cluster:// for TLS).
    #[arg(long, env = "IPSR_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// A PEM file of the CA certificates that signed the Redis servers'
    /// TLS certificates (default: the system's).
    #[arg(long, env = "IPSR_REDIS_CA_CERT", value_name = "FILE")]
    redis_ca_cert: Option<PathBuf>,
    /// Prefix of every key (no `{` or `}`).
    #[arg(long, env = "IPSR_REDIS_PREFIX", default_value = "ipsr:")]
    prefix: String,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "IPSR_INDEXER_METRICS")]
    metrics: Option<SocketAddr>,
    /// Log entries per batch (1..=1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    batch: u16,
    /// Entries kept in the `recent` index.
    #[arg(long, default_value_t = 10_000)]
    recent_cap: usize,
}

/// jemalloc, as `ipsr-node` and `ipsr-gateway` (`docs/node.md`, "Memory"):
/// the indexer allocates and frees a batch's records, rows and commands
/// every second; with glibc's malloc that was about an eighth of its CPU
/// (`docs/dev/perf-indexer.md`).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut redis = RedisConfig::new(cli.redis.clone());
    redis.prefix = cli.prefix.clone();
    redis.recent_cap = cli.recent_cap;
    redis.ca_cert = cli.redis_ca_cert.clone();
    let index = RedisIndex::open(&redis).context("redis configuration")?;
    let config = IndexerConfig {
        batch: usize::from(cli.batch),
        ..IndexerConfig::default()
    };
    let mut source = HttpSource::new(&cli.node);
    if let Some(path) = &cli.node_token_file {
        source = source.with_token(ApiToken::read(path).context("--node-token-file")?);
    }
    let indexer = Indexer::new(source, index, config);
    if let Some(addr) = cli.metrics {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics address {addr}"))?;
        info!(addr = %listener.local_addr()?, "serving metrics");
        tokio::spawn(serve_metrics(listener, indexer.metrics()));
    }
    info!(node = %cli.node, redis = %redis.redacted_url(), prefix = %cli.prefix, "starting");
    indexer
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// A minimal HTTP server: every request gets the metrics text.
async fn serve_metrics(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            // Out of file descriptors or similar: do not spin.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let body = metrics.encode();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf));
            if !matches!(read.await, Ok(Ok(_))) {
                return;
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if let Err(e) = stream.write_all(response.as_bytes()).await {
                warn!(error = %e, "metrics response");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
