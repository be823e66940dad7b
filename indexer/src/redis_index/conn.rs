//! Where the commands go: one Redis server, or a Redis Cluster
//! (`docs/redis.md`, section 6).
//!
//! * [`Target`]: the `--redis` URL parsed: `redis://…` (one server) or
//!   `redis+cluster://h1:p1,h2:p2,…` (seed nodes of a cluster);
//! * [`Conn`]: the connection, a reconnecting multiplexed one or the
//!   cluster client, with the same calls for both;
//! * [`Batch`]: commands sent together. To one server they go as one
//!   pipeline; to a cluster each hash slot's commands go as one pipeline to
//!   the slot's master (a pipeline may not cross slots), all at once.
//!   Commands of different slots are ordered only by running them in
//!   separate batches.
//! * [`Topology`]: a cluster's masters and how many replicas of each are
//!   online, to check after writes that they reached a replica (`WAIT`) and
//!   that no failover happened meanwhile.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, ToRedisArgs, Value};

use tracing::debug;

use crate::IndexError;

/// The URL schemes of a cluster: plain and TLS.
const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// What a `--redis` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server: the URL as given.
    Single(String),
    /// A cluster: one `redis://` (or `rediss://`) URL per seed node, each
    /// with the user and password of the cluster URL.
    Cluster(Vec<String>),
}

impl Target {
    /// Whether the URL asks for TLS (`rediss://`, `rediss+cluster://`).
    fn is_tls(&self) -> bool {
        match self {
            Self::Single(url) => url.starts_with("rediss://"),
            Self::Cluster(nodes) => nodes.iter().any(|n| n.starts_with("rediss://")),
        }
    }

    /// Parses `redis://…`, `rediss://…`, `redis+unix://…`, or
    /// `redis+cluster://[user:password@]host:port[,host:port…][/]` (and
    /// `rediss+cluster://` for TLS).
    pub(crate) fn parse(url: &str) -> Result<Self, IndexError> {
        let Some((scheme, node_scheme)) = CLUSTER_SCHEMES
            .iter()
            .find(|(s, _)| url.starts_with(s))
            .copied()
        else {
            return Ok(Self::Single(url.to_owned()));
        };
        let bad = |reason: &str| IndexError::corrupt("--redis", format!("{reason}: {url}"));
        let rest = url[scheme.len()..].trim_end_matches('/');
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((auth, hosts)) => (format!("{auth}@"), hosts),
            None => (String::new(), rest),
        };
        if hosts.contains(['/', '?', '#']) {
            return Err(bad("a cluster URL has no database, path or query"));
        }
        let nodes: Vec<String> = hosts
            .split(',')
            .map(|h| h.trim())
            .filter(|h| !h.is_empty())
            .map(|h| format!("{node_scheme}{auth}{h}"))
            .collect();
        if nodes.is_empty() {
            return Err(bad("a cluster URL names at least one host:port"));
        }
        Ok(Self::Cluster(nodes))
    }
}

/// How [`Conn::open`] connects.
#[derive(Debug, Clone)]
pub(crate) struct ConnOptions {
    pub(crate) response_timeout: Duration,
    /// A PEM file of the CA certificates to trust for `rediss://`
    /// (instead of the system's).
    pub(crate) ca_cert: Option<PathBuf>,
}

/// A connection to one server or to a cluster. Cheap to clone (one
/// multiplexed connection per server, reconnecting by itself).
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server.
    Single(ConnectionManager),
    /// A cluster: the client keeps a connection per node and the slot map.
    Cluster(ClusterConnection, Arc<Seeds>),
}

/// A cluster's seed nodes, to say why none could be reached, and the
/// masters owning the slots as last read.
#[derive(Debug)]
pub(crate) struct Seeds {
    urls: Vec<String>,
    certs: Option<redis::TlsCertificates>,
    owners: std::sync::RwLock<Option<Arc<Owners>>>,
}

/// Which master (`host:port`) serves each slot: ranges sorted by start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Owners(Vec<(u16, u16, Arc<str>)>);

impl Owners {
    fn of(&self, slot: u16) -> Option<&Arc<str>> {
        let i = self.0.partition_point(|(start, _, _)| *start <= slot);
        let (start, end, addr) = self.0.get(i.checked_sub(1)?)?;
        (*start <= slot && slot <= *end).then_some(addr)
    }
}

/// Sends each group of `batch`'s commands (by index, in order) as one
/// pipeline along its route, all at once; the replies by command index.
async fn send(
    conn: &ClusterConnection,
    batch: &Batch,
    routed: Vec<(SingleNodeRoutingInfo, Vec<usize>)>,
) -> Result<Vec<Value>, RedisError> {
    let sent = routed.into_iter().map(|(route, indices)| {
        let mut conn = conn.clone();
        let mut pipe = Pipeline::with_capacity(indices.len());
        for &i in &indices {
            pipe.add_command(batch.cmds[i].clone());
        }
        async move {
            let n = indices.len();
            conn.route_pipeline(pipe, 0, n, route)
                .await
                .map(|values| (indices, values))
        }
    });
    let mut replies: Vec<Value> = vec![Value::Nil; batch.cmds.len()];
    for result in futures::future::join_all(sent).await {
        let (indices, values) = result?;
        for (i, v) in indices.into_iter().zip(values) {
            replies[i] = v;
        }
    }
    Ok(replies)
}

/// Each slot's commands as one pipeline routed by slot (the client follows
/// redirections).
async fn run_by_slot(
    conn: &ClusterConnection,
    batch: &Batch,
    groups: Vec<(u16, Vec<usize>)>,
) -> Result<Vec<Value>, RedisError> {
    let routed = groups
        .into_iter()
        .map(|(slot, indices)| {
            let route = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
            (route, indices)
        })
        .collect();
    send(conn, batch, routed).await
}

/// The commands of the slots each master owns (by `owners`) as one
/// pipeline to it. Fails on any redirection or cluster error in a reply:
/// `owners` is stale.
async fn run_by_master(
    conn: &ClusterConnection,
    batch: &Batch,
    groups: &[(u16, Vec<usize>)],
    owners: &Owners,
) -> Result<Vec<Value>, RedisError> {
    let stale = || RedisError::from((redis::ErrorKind::Client, "slot map is stale"));
    let mut by_master: HashMap<&Arc<str>, Vec<usize>> = HashMap::new();
    for (slot, indices) in groups {
        let owner = owners.of(*slot).ok_or_else(stale)?;
        by_master.entry(owner).or_default().extend(indices);
    }
    let mut routed = Vec::with_capacity(by_master.len());
    for (addr, mut indices) in by_master {
        // Each slot's commands stay in their order (transactions whole).
        indices.sort_unstable();
        let (host, port) = split_addr(addr)?;
        routed.push((SingleNodeRoutingInfo::ByAddress { host, port }, indices));
    }
    let replies = send(conn, batch, routed).await?;
    let redirected = replies.iter().any(|v| {
        matches!(v, Value::ServerError(e) if matches!(
            e.kind(),
            Some(
                redis::ServerErrorKind::Moved
                    | redis::ServerErrorKind::Ask
                    | redis::ServerErrorKind::TryAgain
                    | redis::ServerErrorKind::ClusterDown
                    | redis::ServerErrorKind::CrossSlot
            )
        ))
    });
    if redirected {
        return Err(stale());
    }
    Ok(replies)
}

/// The hash slot of `key` (Redis Cluster: CRC16/XMODEM of the key, or of
/// its hash tag — the text between the first `{` and the next `}` when
/// not empty — modulo 16384).
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|b| *b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|b| *b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    let mut crc: u16 = 0;
    for byte in tagged.unwrap_or(key) {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16_384
}

impl Conn {
    /// Connects lazily: this does not fail when Redis is down; commands do,
    /// until it is back.
    pub(crate) fn open(target: &Target, options: &ConnOptions) -> Result<Self, IndexError> {
        if target.is_tls() {
            // rustls picks no crypto by itself when its build has two
            // (ring and aws-lc-rs, both in this workspace): give it ring's.
            // An error means one is installed already, which is as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let certs = match &options.ca_cert {
            Some(path) => Some(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(path).map_err(|e| {
                    IndexError::corrupt(path.display().to_string(), format!("CA certificate: {e}"))
                })?),
            }),
            None => None,
        };
        match target {
            Target::Single(url) => {
                let client = match certs {
                    Some(certs) => redis::Client::build_with_tls(url.as_str(), certs)?,
                    None => redis::Client::open(url.as_str())?,
                };
                let manager = ConnectionManagerConfig::new()
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(1))
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(options.response_timeout));
                Ok(Self::Single(ConnectionManager::new_lazy_with_config(
                    client, manager,
                )?))
            }
            Target::Cluster(nodes) => {
                let mut builder = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                    // A redirection (MOVED, ASK) or a lost node is retried a
                    // few times after reading the slot map again; longer
                    // outages are the caller's to retry.
                    .retries(3)
                    .min_retry_wait(50)
                    .max_retry_wait(500)
                    .connection_timeout(Duration::from_secs(2))
                    .response_timeout(options.response_timeout)
                    .overall_response_timeout(Some(options.response_timeout));
                if let Some(certs) = certs.clone() {
                    builder = builder.certs(certs);
                }
                let client = builder.build()?;
                Ok(Self::Cluster(
                    client.get_pending_async_connection_with_config(
                        redis::cluster::ClusterConfig::new(),
                    ),
                    Arc::new(Seeds {
                        urls: nodes.clone(),
                        certs,
                        owners: std::sync::RwLock::new(None),
                    }),
                ))
            }
        }
    }

    /// Whether this is a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(..))
    }

    /// Runs `batch`; the replies of the commands not ignored, in order.
    /// A command Redis refused fails the whole call (after every command
    /// ran: pipelines are not transactions).
    pub(crate) async fn run(&self, batch: &Batch) -> Result<Vec<Value>, RedisError> {
        if batch.cmds.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Self::Single(conn) => {
                let mut pipe = Pipeline::with_capacity(batch.cmds.len());
                for (cmd, ignored) in batch.cmds.iter().zip(&batch.ignored) {
                    pipe.add_command(cmd.clone());
                    if *ignored {
                        pipe.ignore();
                    }
                }
                pipe.query_async(&mut conn.clone()).await
            }
            Self::Cluster(conn, seeds) => {
                let groups = batch.by_slot()?;
                // Known owners: one pipeline per master. A stale map shows
                // as a redirection (or a lost node): then per slot, which
                // the client routes and redirects itself. Running a batch
                // again is harmless (its writes are idempotent).
                let owners = seeds.owners.read().map(|o| o.clone()).unwrap_or(None);
                if let Some(owners) = owners {
                    match run_by_master(conn, batch, &groups, &owners).await {
                        Ok(replies) => return batch.replies(replies),
                        Err(e) => {
                            debug!(error = %e, "by master failed: slot map dropped, by slot");
                            if let Ok(mut o) = seeds.owners.write() {
                                *o = None;
                            }
                        }
                    }
                }
                let replies = run_by_slot(conn, batch, groups).await?;
                // Reading the topology stores the slot map for next time.
                let _ = self.topology().await;
                batch.replies(replies)
            }
        }
    }

    /// Loads `sources` into the script cache of the server, or of every
    /// node of the cluster (replicas included: a promoted one then has
    /// them).
    pub(crate) async fn load_scripts(&self, sources: &[&str]) -> Result<(), RedisError> {
        match self {
            Self::Single(conn) => {
                let mut pipe = redis::pipe();
                for code in sources {
                    pipe.cmd("SCRIPT").arg("LOAD").arg(*code);
                }
                pipe.query_async::<Vec<String>>(&mut conn.clone()).await?;
            }
            Self::Cluster(conn, _) => {
                for code in sources {
                    let mut load = redis::cmd("SCRIPT");
                    load.arg("LOAD").arg(*code);
                    conn.clone()
                        .route_command(
                            load,
                            RoutingInfo::MultiNode((
                                MultipleNodeRoutingInfo::AllNodes,
                                Some(ResponsePolicy::AllSucceeded),
                            )),
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Checks that Redis answers `PING` (every node of a cluster). When no
    /// node of a cluster can be reached, the error says why for each seed
    /// (refused, wrong password, TLS), not only that none answered.
    pub(crate) async fn ping(&self) -> Result<(), RedisError> {
        let result = redis::cmd("PING")
            .query_async::<String>(&mut self.clone())
            .await
            .map(drop);
        let (Err(e), Self::Cluster(_, seeds)) = (&result, self) else {
            return result;
        };
        let mut why = Vec::new();
        for url in &seeds.urls {
            let client = match &seeds.certs {
                Some(certs) => redis::Client::build_with_tls(url.as_str(), certs.clone()),
                None => redis::Client::open(url.as_str()),
            };
            let answer = async {
                let mut conn = client?.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            match tokio::time::timeout(Duration::from_secs(2), answer).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => why.push(format!("{}: {err}", host_of(url))),
                Err(_) => why.push(format!("{}: no answer in 2 s", host_of(url))),
            }
        }
        if why.is_empty() {
            return result;
        }
        Err(RedisError::from((
            e.kind(),
            "the cluster's seed nodes",
            why.join("; "),
        )))
    }

    /// Runs `cmd` on every master that serves slots, as the cluster says
    /// now (`CLUSTER NODES`; on the server, for one server); each one's
    /// reply, by address.
    pub(crate) async fn on_masters(&self, cmd: Cmd) -> Result<Vec<(String, Value)>, RedisError> {
        let Some(topology) = self.topology().await? else {
            return Ok(vec![(String::new(), self.on_node("", cmd).await?)]);
        };
        let replies = topology.masters.iter().map(|(addr, _)| {
            let cmd = cmd.clone();
            async move { Ok::<_, RedisError>((addr.clone(), self.on_node(addr, cmd).await?)) }
        });
        futures::future::join_all(replies)
            .await
            .into_iter()
            .collect()
    }

    /// Runs `cmd` on the node at `addr` (`host:port`, as
    /// [`on_masters`](Self::on_masters) names it; any for one server).
    pub(crate) async fn on_node(&self, addr: &str, cmd: Cmd) -> Result<Value, RedisError> {
        match self {
            Self::Single(conn) => cmd.query_async(&mut conn.clone()).await,
            Self::Cluster(conn, _) => {
                let (host, port) = split_addr(addr)?;
                conn.clone()
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port }),
                    )
                    .await
            }
        }
    }

    /// The cluster's masters that serve slots (`CLUSTER NODES`) and how
    /// many replicas each one says are online (its `INFO replication`);
    /// `None` for one server. Also keeps the slot map for [`run`](Self::run).
    pub(crate) async fn topology(&self) -> Result<Option<Topology>, RedisError> {
        let Self::Cluster(conn, seeds) = self else {
            return Ok(None);
        };
        let mut nodes = redis::cmd("CLUSTER");
        nodes.arg("NODES");
        let reply = conn
            .clone()
            .route_command(
                nodes,
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
            )
            .await?;
        let mut topology = Topology::parse(reply)?;
        // The slot map `run` sends batches by, as the cluster says now.
        if let Ok(mut owners) = seeds.owners.write() {
            *owners = Some(Arc::new(topology.owners.clone()));
        }
        // Other nodes learn of replicas by gossip, late: each master's own
        // word counts.
        let counts = topology.masters.iter().map(|(addr, _)| async move {
            let mut info = redis::cmd("INFO");
            info.arg("replication");
            let text: String = redis::from_redis_value(self.on_node(addr, info).await?)?;
            Ok::<_, RedisError>(online_replicas(&text))
        });
        let counts = futures::future::join_all(counts).await;
        for ((_, replicas), count) in topology.masters.iter_mut().zip(counts) {
            *replicas = count?;
        }
        Ok(Some(topology))
    }

    /// Waits until the writes this client made on each master of `topology`
    /// reached one of its online replicas (`WAIT`), within `limit`; then
    /// checks that the masters are still those of `topology`. An error
    /// means writes since `topology` was read may be lost: do them again.
    pub(crate) async fn confirm(
        &self,
        topology: &Topology,
        limit: Duration,
    ) -> Result<(), IndexError> {
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
        let waits = topology
            .masters
            .iter()
            .filter(|(_, replicas)| *replicas > 0)
            .map(|(addr, _)| async move {
                let mut wait = redis::cmd("WAIT");
                wait.arg(1).arg(ms);
                let acked: i64 = redis::from_redis_value(self.on_node(addr, wait).await?)?;
                Ok::<_, IndexError>((addr, acked))
            });
        for result in futures::future::join_all(waits).await {
            let (addr, acked) = result?;
            if acked < 1 {
                return Err(IndexError::NotReplicated {
                    master: addr.clone(),
                });
            }
        }
        let now = self.topology().await?;
        if now.as_ref().map(Topology::master_addrs) != Some(topology.master_addrs()) {
            return Err(IndexError::Failover);
        }
        Ok(())
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c, _) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c, _) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c, _) => c.get_db(),
        }
    }
}

/// The replicas an `INFO replication` text lists as `state=online`.
fn online_replicas(info: &str) -> usize {
    info.lines()
        .filter(|l| l.starts_with("slave") && l.contains("state=online"))
        .count()
}

/// The `host:port` of a node URL (without its password).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.rsplit_once('@').map_or(rest, |(_, h)| h)
}

/// `host:port` split (an IPv6 host in brackets or not).
fn split_addr(addr: &str) -> Result<(String, u16), RedisError> {
    let bad = || {
        RedisError::from((
            redis::ErrorKind::Client,
            "bad node address",
            addr.to_owned(),
        ))
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    Ok((host.trim_matches(['[', ']']).to_owned(), port))
}

/// A cluster's masters, by address (`host:port`), with how many replicas
/// of each were online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Topology {
    pub(crate) masters: Vec<(String, usize)>,
    /// The slots each master serves.
    pub(crate) owners: Owners,
}

impl Topology {
    /// From a `CLUSTER NODES` reply: a line per node, `id ip:port@bus[,host]
    /// flags master-id ping pong epoch link slot…`. Masters are the nodes
    /// flagged `master`, not `fail`/`fail?`, that serve slots; a master's
    /// replicas here are the nodes flagged `slave` of its id, not failing,
    /// whose link is `connected` (a first guess: [`Conn::topology`] asks
    /// the masters); its slots are the `start-end` (or single) entries (the
    /// `[…]` entries of slots on the move are skipped).
    fn parse(reply: Value) -> Result<Self, RedisError> {
        let text: String = redis::from_redis_value(reply)?;
        let mut masters: Vec<(String, String)> = Vec::new();
        let mut replicas_of: HashMap<String, usize> = HashMap::new();
        let mut ranges: Vec<(u16, u16, String)> = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [
                id,
                addr,
                flags,
                master_id,
                _ping,
                _pong,
                _epoch,
                link,
                slots @ ..,
            ] = fields.as_slice()
            else {
                continue;
            };
            let flags: Vec<&str> = flags.split(',').collect();
            if flags
                .iter()
                .any(|f| matches!(*f, "fail" | "fail?" | "handshake" | "noaddr"))
            {
                continue;
            }
            // `ip:port@bus` (then `,hostname` since Redis 7).
            let endpoint = addr.split(['@', ',']).next().unwrap_or_default();
            if flags.contains(&"master") && !slots.is_empty() {
                masters.push(((*id).to_owned(), endpoint.to_owned()));
                for slot in slots {
                    let (start, end) = slot.split_once('-').unwrap_or((slot, slot));
                    if let (Ok(start), Ok(end)) = (start.parse(), end.parse()) {
                        ranges.push((start, end, (*id).to_owned()));
                    }
                }
            } else if flags.contains(&"slave") && *link == "connected" {
                *replicas_of.entry((*master_id).to_owned()).or_default() += 1;
            }
        }
        let addr_of: HashMap<&str, Arc<str>> = masters
            .iter()
            .map(|(id, addr)| (id.as_str(), Arc::from(addr.as_str())))
            .collect();
        let mut owners: Vec<(u16, u16, Arc<str>)> = ranges
            .iter()
            .filter_map(|(start, end, id)| Some((*start, *end, addr_of.get(id.as_str())?.clone())))
            .collect();
        owners.sort();
        let mut masters: Vec<(String, usize)> = masters
            .iter()
            .map(|(id, addr)| (addr.clone(), replicas_of.get(id).copied().unwrap_or(0)))
            .collect();
        masters.sort();
        Ok(Self {
            masters,
            owners: Owners(owners),
        })
    }

    fn master_addrs(&self) -> Vec<&str> {
        self.masters.iter().map(|(m, _)| m.as_str()).collect()
    }
}

/// Where a command of a [`Batch`] goes in a cluster.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// The slot of this key.
    Slot(u16),
    /// With the command after it (`MULTI`).
    Next,
    /// With the command before it (`EXEC`).
    Previous,
}

/// Commands sent together, built like a [`redis::Pipeline`] but knowing
/// each command's hash slot (see the module's doc).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    cmds: Vec<Cmd>,
    places: Vec<Place>,
    ignored: Vec<bool>,
}

impl Batch {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, name: &str, place: Place) -> &mut Self {
        self.cmds.push(redis::cmd(name));
        self.places.push(place);
        self.ignored.push(false);
        self
    }

    /// A command in `key`'s slot; its arguments follow with
    /// [`arg`](Self::arg) (the key among them where the command wants it).
    pub(crate) fn cmd_in(&mut self, name: &str, key: &str) -> &mut Self {
        self.push(name, Place::Slot(key_slot(key.as_bytes())))
    }

    /// `name key`, in `key`'s slot.
    pub(crate) fn key_cmd(&mut self, name: &str, key: &str) -> &mut Self {
        self.cmd_in(name, key).arg(key)
    }

    /// `MULTI`: a transaction of the commands up to [`exec`](Self::exec),
    /// which must share a slot.
    pub(crate) fn multi(&mut self) -> &mut Self {
        self.push("MULTI", Place::Next)
    }

    /// `EXEC`, ending a [`multi`](Self::multi); its reply is an array of
    /// the transaction's replies.
    pub(crate) fn exec(&mut self) -> &mut Self {
        self.push("EXEC", Place::Previous)
    }

    /// Appends an argument to the last command.
    pub(crate) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        if let Some(cmd) = self.cmds.last_mut() {
            cmd.arg(arg);
        }
        self
    }

    /// Leaves the last command's reply out of [`Conn::run`]'s.
    pub(crate) fn ignore(&mut self) -> &mut Self {
        if let Some(i) = self.ignored.last_mut() {
            *i = true;
        }
        self
    }

    /// The replies of the commands not ignored, from the replies of all;
    /// the first error of any command.
    fn replies(&self, all: Vec<Value>) -> Result<Vec<Value>, RedisError> {
        let mut out = Vec::with_capacity(all.len());
        for (reply, ignored) in all.into_iter().zip(&self.ignored) {
            if let Value::ServerError(e) = reply {
                return Err(e.into());
            }
            if !*ignored {
                out.push(reply);
            }
        }
        Ok(out)
    }

    /// The commands' indices grouped by slot, each group in order.
    fn by_slot(&self) -> Result<Vec<(u16, Vec<usize>)>, RedisError> {
        let n = self.cmds.len();
        let mut slots: Vec<Option<u16>> = self
            .places
            .iter()
            .map(|p| match p {
                Place::Slot(s) => Some(*s),
                _ => None,
            })
            .collect();
        for i in 0..n {
            if let Place::Previous = self.places[i] {
                slots[i] = i.checked_sub(1).and_then(|j| slots[j]);
            }
        }
        for i in (0..n).rev() {
            if let Place::Next = self.places[i] {
                slots[i] = slots.get(i + 1).copied().flatten();
            }
        }
        let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
        let mut index: HashMap<u16, usize> = HashMap::new();
        for (i, slot) in slots.into_iter().enumerate() {
            let slot = slot.ok_or_else(|| {
                RedisError::from((
                    redis::ErrorKind::Client,
                    "a command of a cluster batch has no slot",
                ))
            })?;
            let g = *index.entry(slot).or_insert_with(|| {
                groups.push((slot, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::Slot;

    #[test]
    fn urls_of_one_server_and_of_a_cluster() {
        assert_eq!(
            Target::parse("redis://127.0.0.1:6379/2").unwrap(),
            Target::Single("redis://127.0.0.1:6379/2".into())
        );
        assert_eq!(
            Target::parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001/").unwrap(),
            Target::Cluster(vec![
                "redis://:pw@10.0.0.1:7000".into(),
                "redis://:pw@10.0.0.2:7001".into()
            ])
        );
        assert_eq!(
            Target::parse("rediss+cluster://user:pw@h:7000").unwrap(),
            Target::Cluster(vec!["rediss://user:pw@h:7000".into()])
        );
        assert!(Target::parse("redis+cluster://").is_err());
        assert!(Target::parse("redis+cluster://h:1/0").is_err());
    }

    #[test]
    fn a_batch_is_grouped_by_slot_keeping_order_and_transactions_together() {
        let mut b = Batch::new();
        b.key_cmd("GET", "a{x}");
        b.multi().ignore();
        b.key_cmd("HGETALL", "p{y}").ignore();
        b.key_cmd("HGETALL", "q{y}").ignore();
        b.exec();
        b.key_cmd("GET", "b{x}");
        b.cmd_in("EVALSHA", "z{y}").arg("sha").arg(1).arg("z{y}");
        let groups = b.by_slot().unwrap();
        assert_eq!(
            groups,
            vec![
                (key_slot(b"x"), vec![0, 5]),
                (key_slot(b"y"), vec![1, 2, 3, 4, 6]),
            ]
        );
        let mut keyless = Batch::new();
        keyless.push("PING", Place::Previous);
        assert!(keyless.by_slot().is_err());
    }

    #[test]
    fn online_replicas_are_counted_from_info_replication() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
            slave0:ip=127.0.0.1,port=7004,state=online,offset=1234,lag=0\r\n\
            slave1:ip=127.0.0.1,port=7005,state=wait_bgsave,offset=0,lag=0\r\n\
            master_replid:abc\r\n";
        assert_eq!(online_replicas(info), 1);
        assert_eq!(online_replicas("role:master\r\nconnected_slaves:0\r\n"), 0);
    }

    #[test]
    fn key_slots_are_those_of_redis_cluster() {
        // From the Redis Cluster specification and `CLUSTER KEYSLOT`.
        // CRC16/XMODEM of "123456789" is 0x31c3 (below 16384).
        assert_eq!(key_slot(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}".as_slice()));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        for key in ["ipsr:pkg:{k51/com.x}", "a{b}c", "{}", "{", "x}{y}", "plain"] {
            assert_eq!(
                Slot::new(key_slot(key.as_bytes())),
                Some(Slot::for_key(key)),
                "{key}"
            );
        }
    }

    #[test]
    fn cluster_nodes_replies_give_masters_online_replicas_and_slots() {
        // As Redis 7 prints it: the replica of b is failing, c is failed,
        // d is a replica whose link is down, e a master without slots.
        let reply = Value::BulkString(
            "\
a1 127.0.0.1:7000@17000,host-a master - 0 0 1 connected 0-5460 10923-12000
b2 127.0.0.1:7001@17001 myself,master - 0 0 2 connected 5461-10922 [5461->-a1]
r1 127.0.0.1:7004@17004 slave a1 0 0 2 connected
r2 127.0.0.1:7005@17005 slave,fail? b2 0 0 2 connected
c3 127.0.0.1:7002@17002 master,fail - 0 0 3 disconnected 12001-16383
d4 127.0.0.1:7006@17006 slave b2 0 0 2 disconnected
e5 127.0.0.1:7003@17003 master - 0 0 0 connected
"
            .as_bytes()
            .to_vec(),
        );
        let topology = Topology::parse(reply).unwrap();
        assert_eq!(
            topology.masters,
            vec![("127.0.0.1:7000".into(), 1), ("127.0.0.1:7001".into(), 0)]
        );
        let owner = |slot| topology.owners.of(slot).map(|a| a.to_string());
        assert_eq!(owner(0).as_deref(), Some("127.0.0.1:7000"));
        assert_eq!(owner(5460).as_deref(), Some("127.0.0.1:7000"));
        assert_eq!(owner(5461).as_deref(), Some("127.0.0.1:7001"));
        assert_eq!(owner(10922).as_deref(), Some("127.0.0.1:7001"));
        assert_eq!(owner(11000).as_deref(), Some("127.0.0.1:7000"));
        // The failed master's slots have no owner: sent by slot instead.
        assert_eq!(owner(12001), None);
        assert_eq!(owner(16383), None);
    }
}
