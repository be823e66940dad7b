//! The flags, `IPSR_*` variables and config file of a running node, shared
//! by `ipsr-node run` and `ipsr-gateway`, turned into a [`Config`] and the
//! API address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use serde::Deserialize;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::api::ApiToken;
use crate::client::Client;
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A TOML file with any of: data_dir, listen, announce, bootstrap (a default list to
    /// ship, e.g. bootstrap = ["/dns4/boot.example.org/tcp/4001/p2p/12D3KooW..."]),
    /// api, api_token_file, mdns, dht_client, max_connections, max_connections_per_peer,
    /// max_pending_incoming_per_ip (default 4), max_incoming_per_ip (default 8),
    /// ip_limits_exempt (default: 127.0.0.1 and ::1), rebootstrap_after_secs
    /// (default 30), max_storage_mib, max_records_per_author_per_sec (default 10;
    /// 0: no limit), author_records_burst (default 200), max_tracked_authors
    /// (default 16384).
    #[arg(long, env = "IPSR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the node keeps its identity and store [default: $XDG_DATA_HOME/ipsr].
    #[arg(long, env = "IPSR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// An address to listen on; repeat for several
    /// [default: /ip4/0.0.0.0/tcp/4001 and /ip4/0.0.0.0/udp/4001/quic-v1].
    #[arg(
        long,
        env = "IPSR_LISTEN",
        value_name = "MULTIADDR",
        value_delimiter = ','
    )]
    pub listen: Vec<Multiaddr>,
    /// An address peers should dial this node at (told them in provider
    /// records and identify), e.g. /dns4/node.example.org/tcp/4001; repeat
    /// for several [default: the addresses it listens on].
    #[arg(
        long,
        env = "IPSR_ANNOUNCE",
        value_name = "MULTIADDR",
        value_delimiter = ','
    )]
    pub announce: Vec<Multiaddr>,
    /// A peer to join through, as /ip4/ADDR/tcp/PORT/p2p/PEER_ID or
    /// /dns4/NAME/tcp/PORT/p2p/PEER_ID; repeat for several (replaces the config
    /// file's list). Dialled until it answers: 1 s, 2 s, 4 s ... up to 60 s apart.
    #[arg(
        long,
        env = "IPSR_BOOTSTRAP",
        value_name = "MULTIADDR",
        value_delimiter = ','
    )]
    pub bootstrap: Vec<Multiaddr>,
    /// Where to serve the local HTTP+JSON control API (docs/node-api.md)
    /// [default: 127.0.0.1:5050]. On loopback it asks no token. On any other
    /// address (0.0.0.0 included) every request must carry the API token,
    /// `Authorization: Bearer TOKEN`: from --api-token-file, else from
    /// DATA_DIR/api-token, created (mode 0600) when missing.
    #[arg(long, env = "IPSR_API", value_name = "ADDR")]
    pub api: Option<SocketAddr>,
    /// A file holding the API token (16 to 256 visible ASCII characters; the
    /// white space around it is ignored). Given, every API request must carry
    /// it, on loopback too. Keep it mode 0600.
    #[arg(long, env = "IPSR_API_TOKEN_FILE", value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Find other nodes on the local network (mDNS), e.g. phones on one
    /// Wi-Fi. Off by default: it sends multicast off this machine.
    #[arg(long, env = "IPSR_MDNS")]
    pub mdns: bool,
    /// Use the DHT without serving it (Kademlia client mode), for nodes that
    /// others cannot reach or that do not stay up.
    #[arg(long, env = "IPSR_DHT_CLIENT")]
    pub dht_client: bool,
    /// Most MiB of package content (blocks) to keep. Past it, blocks no pin
    /// keeps are evicted, least recently used first; a pin that would take
    /// the pinned data past it, or a write when only pinned data is left,
    /// fails with `blockstore_full`. 0: no limit [default: 10240 (10 GiB)].
    #[arg(long, env = "IPSR_MAX_STORAGE_MIB", value_name = "MIB")]
    pub max_storage_mib: Option<u64>,
}

/// The API address when neither a flag, a variable nor the file names one.
pub const DEFAULT_API: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    5050,
));

/// What `run` needs: the node's config, the API address and its token
/// file.
#[derive(Debug)]
pub struct Settings {
    node: Config,
    pub api: SocketAddr,
    /// The API token file given (`--api-token-file`); `None`: the data
    /// dir's, when the API is off loopback.
    pub api_token_file: Option<PathBuf>,
}

impl Settings {
    /// The node's data dir.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.node.data_dir
    }
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub listen: Vec<Multiaddr>,
    #[serde(default)]
    pub bootstrap: Vec<Multiaddr>,
    #[serde(default)]
    pub announce: Vec<Multiaddr>,
    pub api: Option<SocketAddr>,
    api_token_file: Option<PathBuf>,
    #[serde(default)]
    pub mdns: bool,
    #[serde(default)]
    pub dht_client: bool,
    max_connections: Option<u32>,
    max_connections_per_peer: Option<u32>,
    max_pending_incoming_per_ip: Option<u32>,
    max_incoming_per_ip: Option<u32>,
    ip_limits_exempt: Option<Vec<std::net::IpAddr>>,
    rebootstrap_after_secs: Option<u64>,
    pub max_storage_mib: Option<u64>,
    max_records_per_author_per_sec: Option<u32>,
    author_records_burst: Option<u32>,
    max_tracked_authors: Option<usize>,
}

/// Reads the config file `args` names, then applies variables and flags.
pub fn settings(args: RunArgs) -> anyhow::Result<Settings> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("bad config file {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .or_else(|| dirs::data_dir().map(|d| d.join("ipsr")))
        .context("no data dir: pass --data-dir")?;
    let mut config = Config::new(data_dir);
    let listen = if args.listen.is_empty() {
        file.listen
    } else {
        args.listen
    };
    if !listen.is_empty() {
        config.listen = listen;
    }
    config.announce = if args.announce.is_empty() {
        file.announce
    } else {
        args.announce
    };
    config.bootstrap = if args.bootstrap.is_empty() {
        file.bootstrap
    } else {
        args.bootstrap
    };
    if let Some(n) = file.max_connections {
        config.max_connections = n;
    }
    if let Some(n) = file.max_connections_per_peer {
        config.max_connections_per_peer = n;
    }
    if let Some(n) = file.max_pending_incoming_per_ip {
        config.max_pending_incoming_per_ip = n;
    }
    if let Some(n) = file.max_incoming_per_ip {
        config.max_incoming_per_ip = n;
    }
    if let Some(exempt) = file.ip_limits_exempt {
        config.ip_limits_exempt = exempt;
    }
    if let Some(n) = file.max_records_per_author_per_sec {
        config.max_records_per_author_per_sec = n;
    }
    if let Some(n) = file.author_records_burst {
        config.author_records_burst = n.max(1);
    }
    if let Some(n) = file.max_tracked_authors {
        config.max_tracked_authors = n.max(1);
    }
    if let Some(secs) = file.rebootstrap_after_secs {
        config.rebootstrap_after = Duration::from_secs(secs.max(1));
    }
    config.mdns = args.mdns || file.mdns;
    if let Some(mib) = args.max_storage_mib.or(file.max_storage_mib) {
        config.blockstore_limit = (mib > 0).then(|| mib.saturating_mul(1024 * 1024));
    }
    config.dht_server = !(args.dht_client || file.dht_client);
    Ok(Settings {
        node: config,
        api: args.api.or(file.api).unwrap_or(DEFAULT_API),
        api_token_file: args.api_token_file.or(file.api_token_file),
    })
}

/// Logs to stderr at `info` (or as `RUST_LOG` says), in colour only on a
/// terminal. For the daemons' `main`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Most threads of the runtime's blocking pool (tokio's default is 512).
/// Store transactions run there, and writes queue for redb's one writer
/// anyway: under a flood of records a node kept ~170 threads busy waiting,
/// and each spread its allocations over glibc's per-thread arenas, so
/// resident memory kept growing with constant data (`docs/node.md`,
/// "Memory"). With a small pool the waiting is a queue of tasks instead.
pub const MAX_BLOCKING_THREADS: usize = 16;

/// A runtime, then `f`'s future on it: the daemons' `main`.
pub fn block_on<F: Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(f)
}

/// A node started by [`start`]: its client, its API address and the future
/// that serves the API, and the signals that stop it.
#[allow(missing_debug_implementations)]
pub struct Running {
    /// The node.
    pub node: Client,
    /// Where the API listens.
    pub api: SocketAddr,
    /// Serves the API; poll it (e.g. in [`Running::until_stopped`]).
    pub server: Pin<Box<dyn Future<Output = ()> + Send>>,
    interrupt: Signal,
    term: Signal,
}

/// Starts the node and its API from `settings` and prints the start-up
/// lines (peer id, data dir, listen addresses, the API token file when the
/// API needs a token, API URL) to stdout.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    let Settings {
        node: config,
        api,
        api_token_file,
    } = settings;
    // Take over SIGINT and SIGTERM before announcing anything: whoever reads
    // the start-up lines may signal at once.
    let interrupt = signal(SignalKind::interrupt())?;
    let term = signal(SignalKind::terminate())?;
    let data_dir = config.data_dir.clone();
    // Before the node starts, so that a bad token file stops nothing.
    let token = match api_token_file {
        Some(path) => Some((ApiToken::read(&path).context("--api-token-file")?, path)),
        None if !api.ip().is_loopback() => Some(ApiToken::load_or_create(&data_dir)?),
        None => None,
    };
    let node = crate::spawn(config)
        .await
        .with_context(|| format!("cannot start the node in {}", data_dir.display()))?;
    let (api, server): (_, Pin<Box<dyn Future<Output = ()> + Send>>) = match &token {
        Some((token, _)) => {
            let (addr, server) = crate::serve_api_with_token(node.clone(), api, token.clone())
                .await
                .context("cannot serve the API (--api)")?;
            (addr, Box::pin(server))
        }
        None => {
            let (addr, server) = crate::serve_api(node.clone(), api)
                .await
                .context("cannot serve the API (--api)")?;
            (addr, Box::pin(server))
        }
    };
    if let Some((_, path)) = &token
        && !api.ip().is_loopback()
    {
        eprintln!(
            "WARNING: the API at {api} is reachable from other machines. Every request \
             must carry `Authorization: Bearer TOKEN` with the token in {path}; anyone \
             who has it controls this node (publish, pins, gc). The API is plain HTTP: \
             on a network you do not trust, the token can be read on the way, so put a \
             TLS proxy in front or keep --api on 127.0.0.1.",
            path = path.display()
        );
    }
    println!("peer id: {}", node.peer_id());
    println!("data dir: {}", data_dir.display());
    // Listen addresses arrive as the transports come up.
    let mut addrs = Vec::new();
    for _ in 0..40 {
        addrs = node.listen_addrs().await?;
        if !addrs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for addr in addrs {
        println!("listening on: {}", addr.with(Protocol::P2p(node.peer_id())));
    }
    if let Some((_, path)) = &token {
        println!("api token file: {}", path.display());
    }
    println!("api: http://{api}");
    Ok(Running {
        node,
        api,
        server,
        interrupt,
        term,
    })
}

impl Running {
    /// Serves the API and `more` until SIGINT or SIGTERM (or until either
    /// ends), then stops the node.
    pub async fn until_stopped(mut self, more: impl Future<Output = ()>) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.term.recv() => {}
            () = &mut self.server => {}
            () = more => {}
        }
        tracing::info!("shutting down");
        drop(self.node);
        // Give the event loop a moment to close connections.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    /// The daemons' runtime runs at most [`MAX_BLOCKING_THREADS`] blocking
    /// tasks at once; the others wait their turn, and all finish.
    #[test]
    fn the_blocking_pool_is_capped() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (n, m) = (now.clone(), most.clone());
        block_on(async move {
            let tasks: Vec<_> = (0..4 * MAX_BLOCKING_THREADS)
                .map(|_| {
                    let (n, m) = (n.clone(), m.clone());
                    tokio::task::spawn_blocking(move || {
                        let running = n.fetch_add(1, Ordering::SeqCst) + 1;
                        m.fetch_max(running, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        n.fetch_sub(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for t in tasks {
                t.await?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(now.load(Ordering::SeqCst), 0);
        let most = most.load(Ordering::SeqCst);
        assert!(
            (2..=MAX_BLOCKING_THREADS).contains(&most),
            "{most} blocking tasks ran at once"
        );
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nlisten = [\"/ip4/127.0.0.1/tcp/1\"]\nmax_connections = 7\n\
             api = \"127.0.0.1:6001\"\nannounce = [\"/dns4/node.example.org/tcp/4001\"]\n",
        )
        .unwrap();
        let args = |extra: &[&str]| {
            let mut argv = vec!["ipsr-node", "--config", file.to_str().unwrap()];
            argv.extend_from_slice(extra);
            settings(Cli::try_parse_from(argv).unwrap().run).unwrap()
        };
        let Settings {
            node: from_file,
            api,
            api_token_file,
        } = args(&[]);
        assert_eq!(api_token_file, None, "the data dir's, off loopback only");
        assert_eq!(api, "127.0.0.1:6001".parse().unwrap());
        assert_eq!(from_file.data_dir, PathBuf::from("/from/file"));
        assert_eq!(
            from_file.listen,
            vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()]
        );
        assert_eq!(from_file.max_connections, 7);
        assert_eq!(
            from_file.announce,
            vec!["/dns4/node.example.org/tcp/4001".parse().unwrap()]
        );
        assert_eq!(from_file.max_pending_incoming_per_ip, 4, "the default");
        assert_eq!(from_file.ip_limits_exempt.len(), 2, "loopback, by default");
        assert!(!from_file.mdns, "mDNS is off unless asked for");
        assert!(from_file.dht_server, "daemons serve the DHT by default");
        assert_eq!(
            from_file.blockstore_limit,
            Some(crate::config::DEFAULT_BLOCKSTORE_LIMIT)
        );
        assert_eq!(
            args(&["--max-storage-mib", "0"]).node.blockstore_limit,
            None
        );
        assert_eq!(
            args(&["--max-storage-mib", "3"]).node.blockstore_limit,
            Some(3 * 1024 * 1024)
        );
        let Settings {
            node: flagged, api, ..
        } = args(&[
            "--data-dir",
            "/from/flag",
            "--listen",
            "/ip4/127.0.0.1/tcp/2",
            "--api",
            "127.0.0.1:0",
            "--mdns",
            "--dht-client",
            "--announce",
            "/ip4/192.0.2.1/tcp/4001",
        ]);
        assert_eq!(api, "127.0.0.1:0".parse().unwrap());
        assert!(flagged.mdns);
        assert!(!flagged.dht_server);
        assert_eq!(
            flagged.announce,
            vec!["/ip4/192.0.2.1/tcp/4001".parse().unwrap()],
            "the flag replaces the file's list"
        );
        assert_eq!(flagged.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(
            flagged.listen,
            vec!["/ip4/127.0.0.1/tcp/2".parse().unwrap()]
        );
        std::fs::write(&file, "data_dir = \"/d\"\n").unwrap();
        assert_eq!(args(&[]).api, DEFAULT_API);
        // The API token file: the file's key, replaced by the flag.
        std::fs::write(&file, "api_token_file = \"/etc/ipsr/api-token\"\n").unwrap();
        assert_eq!(
            args(&[]).api_token_file,
            Some(PathBuf::from("/etc/ipsr/api-token"))
        );
        assert_eq!(
            args(&["--api-token-file", "/run/token"]).api_token_file,
            Some(PathBuf::from("/run/token"))
        );
        std::fs::write(&file, "data_dir = \"/d\"\n").unwrap();
        // A shipped bootstrap list (DNS names too) and the join limits.
        std::fs::write(
            &file,
            "data_dir = \"/d\"\nbootstrap = [\"/dns4/boot.example.org/tcp/4001/p2p/\
             12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN\", \"/ip4/192.0.2.1/tcp/4001\"]\n\
             max_pending_incoming_per_ip = 2\nmax_incoming_per_ip = 3\n\
             ip_limits_exempt = [\"10.0.0.1\"]\nrebootstrap_after_secs = 5\n\
             max_records_per_author_per_sec = 2\nauthor_records_burst = 20\n\
             max_tracked_authors = 100\n",
        )
        .unwrap();
        let shipped = args(&[]).node;
        assert_eq!(shipped.bootstrap.len(), 2);
        assert!(
            shipped.bootstrap[0]
                .to_string()
                .starts_with("/dns4/boot.example.org/")
        );
        assert_eq!(shipped.max_pending_incoming_per_ip, 2);
        assert_eq!(shipped.max_incoming_per_ip, 3);
        assert_eq!(
            shipped.ip_limits_exempt,
            vec!["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(shipped.rebootstrap_after, Duration::from_secs(5));
        assert_eq!(
            (
                shipped.max_records_per_author_per_sec,
                shipped.author_records_burst,
                shipped.max_tracked_authors
            ),
            (2, 20, 100)
        );
        // A flag replaces the file's list.
        let flagged = args(&["--bootstrap", "/ip4/192.0.2.2/tcp/1"]).node;
        assert_eq!(
            flagged.bootstrap,
            vec!["/ip4/192.0.2.2/tcp/1".parse().unwrap()]
        );
        std::fs::write(&file, "api = \"not an address\"\n").unwrap();
        let a = Cli::try_parse_from(["ipsr-node", "--config", file.to_str().unwrap()])
            .unwrap()
            .run;
        assert!(settings(a).is_err());
        std::fs::write(&file, "bogus = 1\n").unwrap();
        let a = Cli::try_parse_from(["ipsr-node", "--config", file.to_str().unwrap()])
            .unwrap()
            .run;
        assert!(settings(a).is_err());
    }
}
