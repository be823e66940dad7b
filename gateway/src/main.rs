//! `ipsr-gateway`: an IPSR node, the indexer and the HTTP gateway in one
//! process.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ipsr_gateway::{Cidr, FdroidConfig, Gateway, GatewayConfig, RepoKey, TrustedProxies, Uploads};
use ipsr_indexer::{
    Index, Indexer, IndexerConfig, LocalSource, RedisConfig, RedisIndex, StoreIndex,
};
use ipsr_node::run::{self, RunArgs};
use ipsr_proto::AuthorId;

/// The IPSR gateway: a node that also serves the JSON API, app downloads,
/// IPFS gateway reads and web pages over HTTP.
///
/// Without --redis it answers from the node's embedded store. With --redis
/// it mirrors every record into Redis (the indexer runs in this process)
/// and answers from there; several gateways may share one Redis, or one
/// Redis Cluster (--redis redis+cluster://host:port,host:port,...).
///
/// Example: ipsr-gateway --data-dir ./gw --http 127.0.0.1:8080
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    node: RunArgs,
    /// Where to serve HTTP.
    #[arg(
        long,
        env = "IPSR_HTTP",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    http: SocketAddr,
    /// Mirror records into Redis and serve from there: one server,
    /// redis://[:PASSWORD@]HOST:PORT[/DB] (rediss:// for TLS), or a Redis
    /// Cluster, redis+cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT...] naming
    /// some of its nodes (rediss+cluster:// for TLS).
    #[arg(long, env = "IPSR_REDIS_URL", value_name = "URL")]
    redis: Option<String>,
    /// A PEM file of the CA certificates that signed the Redis servers'
    /// TLS certificates (with rediss:// or rediss+cluster://; default: the
    /// system's).
    #[arg(long, env = "IPSR_REDIS_CA_CERT", value_name = "FILE")]
    redis_ca_cert: Option<PathBuf>,
    /// Prefix of every Redis key, so deployments can share one Redis.
    #[arg(long, env = "IPSR_REDIS_PREFIX", default_value = "ipsr:")]
    redis_prefix: String,
    /// Accept content uploads with records signed by this author id; repeat
    /// for several. Without it (or --uploads-from-anyone) a publish carries
    /// the signed record only.
    #[arg(
        long = "upload-author",
        env = "IPSR_UPLOAD_AUTHORS",
        value_name = "AUTHOR",
        value_delimiter = ','
    )]
    upload_authors: Vec<AuthorId>,
    /// Accept content uploads from any author.
    #[arg(long, env = "IPSR_UPLOADS_FROM_ANYONE")]
    uploads_from_anyone: bool,
    /// The largest content upload, in MiB; also the largest content fetched
    /// for a record published alone.
    #[arg(long, env = "IPSR_MAX_UPLOAD_MIB", default_value_t = 256)]
    max_upload_mib: u64,
    /// The most MiB of content pinned for one author (uploads and records
    /// published alone); past it a publish's content is refused with
    /// `quota_exceeded`. 0: no quota.
    #[arg(long, env = "IPSR_MAX_PINNED_PER_AUTHOR_MIB", default_value_t = 1024)]
    max_pinned_per_author_mib: u64,
    /// Requests per second one client address may make (0: no limit).
    #[arg(long, env = "IPSR_RATE_LIMIT", default_value_t = 100)]
    rate_limit: u32,
    /// Requests served at once; more are answered 503 (GET /healthz and
    /// GET /metrics have slots of their own).
    #[arg(long, env = "IPSR_MAX_CONCURRENT", default_value_t = 1024)]
    max_concurrent: usize,
    /// Requests one client address (IPv6: its /64) may have in progress;
    /// more are answered 429. Behind a proxy not given as --trusted-proxy,
    /// raise it to --max-concurrent.
    #[arg(long, env = "IPSR_MAX_PER_CLIENT", default_value_t = 64)]
    max_per_client: usize,
    /// Connections open at once; more are answered 503 and closed. Keep it
    /// below the limit of open files (ulimit -n).
    #[arg(long, env = "IPSR_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Connections one client address (IPv6: its /64) may hold open; more
    /// are answered 429 and closed. Trusted proxies are not held to it.
    #[arg(long, env = "IPSR_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 256)]
    max_connections_per_client: usize,
    /// A reverse proxy you run, by address or block (192.0.2.1,
    /// 10.0.0.0/8, 2001:db8::/32); repeat for several. A request from one
    /// is attributed to the client its X-Forwarded-For names: the rightmost
    /// entry that is not a trusted proxy (a malformed entry stops the walk
    /// at the last trusted hop). That client's address is what the rate
    /// limit and --max-per-client count; a trusted proxy's connections are
    /// held to --max-connections only. List only proxies that append to or
    /// overwrite X-Forwarded-For: anyone who can reach the gateway from a
    /// listed address can name any client. Without it, the TCP peer is the
    /// client.
    #[arg(
        long = "trusted-proxy",
        env = "IPSR_TRUSTED_PROXIES",
        value_name = "ADDR_OR_CIDR",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<Cidr>,
    /// Seconds a client may take to send a request's headers; also how long
    /// an idle connection waits for its next request.
    #[arg(long, env = "IPSR_HEADER_TIMEOUT_SECS", value_name = "SECS", default_value = "10", value_parser = secs)]
    header_timeout_secs: Duration,
    /// Seconds a request body may pause (no byte) before the request is
    /// answered 408.
    #[arg(long, env = "IPSR_BODY_IDLE_TIMEOUT_SECS", value_name = "SECS", default_value = "10", value_parser = secs)]
    body_idle_timeout_secs: Duration,
    /// Seconds a body without content (a record, or a form before its
    /// content part) may take in all; then 408.
    #[arg(long, env = "IPSR_BODY_TIMEOUT_SECS", value_name = "SECS", default_value = "30", value_parser = secs)]
    body_timeout_secs: Duration,
    /// Seconds a publish may take to send (and import) its content; then 408.
    #[arg(long, env = "IPSR_UPLOAD_TIMEOUT_SECS", value_name = "SECS", default_value = "600", value_parser = secs)]
    upload_timeout_secs: Duration,
    /// How long, in ms, a rendered JSON view may be served again (never
    /// after the node's log changed); 0 turns the cache off.
    #[arg(long, env = "IPSR_VIEW_CACHE_MS", default_value_t = 1000)]
    view_cache_ms: u64,
    /// The most MiB of rendered JSON views (bodies and keys) kept for
    /// --view-cache-ms; the least used go first.
    #[arg(
        long,
        env = "IPSR_VIEW_CACHE_MIB",
        default_value_t = 64,
        value_name = "MIB"
    )]
    view_cache_mib: u64,
    /// The public base URL (for QR codes), e.g. https://apps.example.org.
    /// Without it the QR code holds the --http address, and none when that
    /// is 0.0.0.0 or [::]; it is never taken from a request's Host.
    #[arg(long, env = "IPSR_PUBLIC_URL", value_name = "URL", value_parser = parse_public_url)]
    public_url: Option<String>,
    /// The F-Droid repository's signing key: a PEM file with an ECDSA P-256
    /// PRIVATE KEY and its CERTIFICATE. Without it the gateway makes one in
    /// its data dir on first start (fdroid/repo-key.pem) and keeps it.
    #[arg(long, env = "IPSR_FDROID_KEY", value_name = "FILE")]
    fdroid_key: Option<std::path::PathBuf>,
    /// The F-Droid repository's name, as phones show it.
    #[arg(long, env = "IPSR_FDROID_NAME", default_value = "IPSR")]
    fdroid_name: String,
    /// Serve no F-Droid repository at /fdroid/repo.
    #[arg(long, env = "IPSR_NO_FDROID")]
    no_fdroid: bool,
    /// Log no line per request (the access log, at info, target
    /// ipsr_gateway::access).
    #[arg(long, env = "IPSR_NO_ACCESS_LOG")]
    no_access_log: bool,
}

/// An absolute http(s) URL with a host and without query or fragment.
fn parse_public_url(s: &str) -> Result<String, String> {
    match url::Url::parse(s) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.has_host()
                && u.query().is_none()
                && u.fragment().is_none() =>
        {
            Ok(s.to_owned())
        }
        _ => Err("expected an absolute http(s) URL such as https://apps.example.org".into()),
    }
}

/// A whole number of seconds, at least 1.
fn secs(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(Duration::from_secs(n)),
        _ => Err("a whole number of seconds, at least 1".into()),
    }
}

/// jemalloc, with background threads that return freed memory within
/// seconds (`.cargo/config.toml`): under glibc's malloc a busy daemon's
/// resident memory kept creeping up at constant data (`docs/node.md`,
/// "Memory").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    run::init_logging();
    run::block_on(serve(cli))
}

fn gateway_config(cli: &Cli) -> GatewayConfig {
    let mut config = GatewayConfig::default();
    config.uploads = if cli.uploads_from_anyone {
        Uploads::Anyone
    } else if cli.upload_authors.is_empty() {
        Uploads::Off
    } else {
        Uploads::Authors(cli.upload_authors.iter().copied().collect::<HashSet<_>>())
    };
    config.max_upload_bytes = cli.max_upload_mib.saturating_mul(1024 * 1024);
    config.max_pinned_per_author = (cli.max_pinned_per_author_mib > 0)
        .then(|| cli.max_pinned_per_author_mib.saturating_mul(1024 * 1024));
    config.access_log = !cli.no_access_log;
    config.rate_limit_per_sec = cli.rate_limit;
    config.rate_limit_burst = cli.rate_limit.saturating_mul(2);
    config.max_concurrent = cli.max_concurrent;
    config.max_per_client = cli.max_per_client;
    config.max_connections = cli.max_connections;
    config.max_connections_per_client = cli.max_connections_per_client;
    config.trusted_proxies = TrustedProxies::new(cli.trusted_proxies.iter().copied());
    config.header_timeout = cli.header_timeout_secs;
    config.body_idle_timeout = cli.body_idle_timeout_secs;
    config.body_timeout = cli.body_timeout_secs;
    config.upload_timeout = cli.upload_timeout_secs;
    config.public_url = cli.public_url.clone();
    config.view_ttl = Duration::from_millis(cli.view_cache_ms);
    config.view_cache_bytes = cli.view_cache_mib.saturating_mul(1024 * 1024);
    config
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let mut config = gateway_config(&cli);
    let settings = run::settings(cli.node)?;
    if !cli.no_fdroid {
        let dir = settings.data_dir().join("fdroid");
        let key = match &cli.fdroid_key {
            Some(path) => RepoKey::load(path).context("bad --fdroid-key")?,
            None => {
                let (key, made) = RepoKey::load_or_create(&dir.join("repo-key.pem"))
                    .context("cannot make or read the F-Droid repository key")?;
                if made {
                    tracing::info!(path = %dir.join("repo-key.pem").display(), "made the F-Droid repository key");
                }
                key
            }
        };
        config.fdroid = Some(FdroidConfig {
            key: Arc::new(key),
            state_dir: dir,
            name: cli.fdroid_name.clone(),
            description:
                "Apps published on IPSR, each signed by its author and checked by this gateway."
                    .into(),
        });
    }
    let running = run::start(settings).await?;
    let node = running.node.clone();
    let mut cluster = false;
    let (index, indexer): (Arc<dyn Index>, _) = match &cli.redis {
        None => (Arc::new(StoreIndex::new(node.store().clone())), None),
        Some(url) => {
            let mut redis = RedisConfig::new(url.clone());
            redis.prefix = cli.redis_prefix.clone();
            redis.ca_cert = cli.redis_ca_cert.clone();
            let index = RedisIndex::open(&redis).context("bad --redis URL or prefix")?;
            let indexer = Indexer::new(
                LocalSource::new(node.clone()),
                index.clone(),
                IndexerConfig::default(),
            );
            cluster = index.is_cluster();
            (Arc::new(index), Some(indexer))
        }
    };
    let backend = if cluster {
        "redis cluster"
    } else if indexer.is_some() {
        "redis"
    } else {
        "embedded"
    };
    let gateway = Gateway::new(node, index, config);
    let (addr, server) = ipsr_gateway::serve(gateway.clone(), cli.http)
        .await
        .context("cannot serve HTTP (--http)")?;
    println!("gateway: http://{addr} (index: {backend})");
    if let Some(fdroid) = &gateway.config().fdroid {
        let fingerprint = fdroid.key.fingerprint();
        let base = match cli.public_url.as_deref() {
            Some(url) => Some(url.trim_end_matches('/').to_owned()),
            None => (!addr.ip().is_unspecified()).then(|| format!("http://{addr}")),
        };
        match base {
            Some(base) => println!("fdroid repo: {base}/fdroid/repo?fingerprint={fingerprint}"),
            None => println!(
                "fdroid repo: fingerprint {fingerprint} (give --public-url so phones can add it)"
            ),
        }
    }
    let indexing = async move {
        match indexer {
            Some(indexer) => {
                if let Err(e) = indexer.run(std::future::pending()).await {
                    tracing::error!(error = %e, "the indexer stopped");
                }
            }
            None => std::future::pending().await,
        }
    };
    running
        .until_stopped(async move {
            tokio::select! {
                () = server => {}
                () = indexing => {}
            }
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn upload_policy_from_flags() {
        let author = ipsr_proto::AuthorKey::from_seed(&[1; 32]).author_id();
        let cli =
            Cli::try_parse_from(["ipsr-gateway", "--upload-author", &author.to_string()]).unwrap();
        let config = gateway_config(&cli);
        assert!(config.uploads.allows(&author));
        let other = ipsr_proto::AuthorKey::from_seed(&[2; 32]).author_id();
        assert!(!config.uploads.allows(&other));
        let cli = Cli::try_parse_from(["ipsr-gateway"]).unwrap();
        assert_eq!(gateway_config(&cli).uploads, Uploads::Off);
        assert_eq!(
            gateway_config(&cli).max_pinned_per_author,
            Some(1024 * 1024 * 1024)
        );
        let cli =
            Cli::try_parse_from(["ipsr-gateway", "--max-pinned-per-author-mib", "0"]).unwrap();
        assert_eq!(gateway_config(&cli).max_pinned_per_author, None);
        assert_eq!(cli.http, "127.0.0.1:8080".parse().unwrap());
    }

    #[test]
    fn trusted_proxies_from_flags() {
        let cli = Cli::try_parse_from([
            "ipsr-gateway",
            "--trusted-proxy",
            "127.0.0.2",
            "--trusted-proxy",
            "10.0.0.0/8,2001:db8::/32",
        ])
        .unwrap();
        let trusted = gateway_config(&cli).trusted_proxies;
        let blocks: Vec<String> = trusted.blocks().iter().map(|b| b.to_string()).collect();
        assert_eq!(blocks, ["127.0.0.2/32", "10.0.0.0/8", "2001:db8::/32"]);
        assert!(trusted.contains("10.9.8.7".parse().unwrap()));
        assert!(!trusted.contains("127.0.0.1".parse().unwrap()));
        let cli = Cli::try_parse_from(["ipsr-gateway"]).unwrap();
        assert!(gateway_config(&cli).trusted_proxies.is_empty());
        for bad in ["nginx", "10.0.0.0/33", "10.0.0.1:80"] {
            assert!(
                Cli::try_parse_from(["ipsr-gateway", "--trusted-proxy", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_public_url_is_an_absolute_web_url() {
        for ok in [
            "https://apps.example.org",
            "http://192.0.2.1:8080/",
            "https://e.org/ipsr",
        ] {
            assert_eq!(parse_public_url(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "apps.example.org",
            "javascript:alert(1)",
            "https://e.org/?q=1",
            "file:///x",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flag_defaults_are_the_library_defaults() {
        let cli = Cli::try_parse_from(["ipsr-gateway"]).unwrap();
        let (flags, library) = (gateway_config(&cli), GatewayConfig::default());
        assert_eq!(flags.max_upload_bytes, library.max_upload_bytes);
        assert_eq!(flags.max_concurrent, library.max_concurrent);
        assert_eq!(flags.max_per_client, library.max_per_client);
        assert_eq!(flags.max_connections, library.max_connections);
        assert_eq!(
            flags.max_connections_per_client,
            library.max_connections_per_client
        );
        assert_eq!(flags.header_timeout, library.header_timeout);
        assert_eq!(flags.body_idle_timeout, library.body_idle_timeout);
        assert_eq!(flags.body_timeout, library.body_timeout);
        assert_eq!(flags.upload_timeout, library.upload_timeout);
        assert_eq!(flags.trusted_proxies, library.trusted_proxies);
        assert!(Cli::try_parse_from(["ipsr-gateway", "--body-idle-timeout-secs", "0"]).is_err());
    }
}
