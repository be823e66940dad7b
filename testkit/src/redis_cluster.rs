//! A real Redis Cluster for tests and benchmarks: `redis-server` processes
//! on loopback, formed into one cluster, that a test may kill and restart.
//!
//! Every `redis-server` runs under a keeper, a small `sh` script whose
//! standard input is a pipe this process holds the write end of: when it
//! closes (the cluster is dropped, or this process ends in any way, even
//! by SIGKILL) the keeper kills its server. A janitor, held the same way,
//! then removes the cluster's directory. A cluster kept in a static
//! ([`shared_cluster`]) never drops but goes with its process all the
//! same.
//!
//! With [`ClusterOptions::tls`] every node serves TLS only, talks TLS to
//! the others on the cluster bus and to its master, and this harness's own
//! `redis-cli` calls trust the test CA.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::redis::tls_args;
use crate::{TestCerts, free_port, output_within, poll};

/// The slots of a Redis Cluster.
const SLOTS: u32 = 16_384;

/// The longest [`RedisCluster::start`] waits for a healthy cluster.
const START_LIMIT: Duration = Duration::from_secs(30);

/// The longest one `redis-cli` call may take.
const CLI_LIMIT: Duration = Duration::from_secs(10);

/// The longest a node's server may take to start or to exit.
const PROCESS_LIMIT: Duration = Duration::from_secs(10);

/// Runs `"$@"` (the server) in the background with its output appended
/// to `$1/redis.log`, prints its pid, and exits when it does. A watcher
/// kills it (SIGKILL) when standard input reaches its end.
const KEEPER: &str = r#"dir=$1; shift
exec 3<&0 </dev/null
"$@" >>"$dir/redis.log" 2>&1 3<&- &
r=$!
echo "$r"
{ read _ <&3; kill -9 "$r"; } >/dev/null 2>&1 &
w=$!
exec 3<&-
wait "$r"
kill "$w" 2>/dev/null
"#;

/// Removes the directory `$1` when standard input reaches its end (a
/// little after the keepers have killed their servers: a server writes
/// nothing into a removed directory).
const JANITOR: &str = r#"read _; sleep 0.2; rm -rf "$1""#;

/// A new directory `NAME-PID-N` under the system's temp dir, and its
/// janitor (the `JANITOR` script): it is removed when the janitor's
/// standard input closes, whatever way this process ends.
pub(crate) fn janitored_dir(name: &str) -> (PathBuf, Child) {
    let dir =
        std::env::temp_dir().join(format!("{name}-{}-{}", std::process::id(), unique_suffix()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let janitor = Command::new("sh")
        .args(["-c", JANITOR, "sh"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start sh: {e}"));
    (dir, janitor)
}

/// How [`RedisCluster::start`] builds a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Masters, the slots split evenly between them (at least 1).
    pub masters: usize,
    /// Replicas of each master.
    pub replicas_per_master: usize,
    /// A password every node requires (`requirepass`) and its replicas
    /// give their master (`masterauth`).
    pub password: Option<String>,
    /// `cluster-node-timeout`: how long a node may be unreachable before
    /// it is failed over, in milliseconds.
    pub node_timeout_ms: u64,
    /// TLS with these certificates: every node serves TLS only
    /// (`--port 0 --tls-port P`), with TLS on the cluster bus
    /// (`tls-cluster`) and between replica and master (`tls-replication`),
    /// not asking clients for a certificate. The URLs are then
    /// `rediss+cluster://` and `rediss://`; a client must trust
    /// [`TestCerts::ca`]. The cluster keeps a clone: the files stay while
    /// it runs.
    pub tls: Option<TestCerts>,
}

impl Default for ClusterOptions {
    /// 3 masters, no replicas, no password, a node timeout of 1 s, no TLS.
    fn default() -> Self {
        Self {
            masters: 3,
            replicas_per_master: 0,
            password: None,
            node_timeout_ms: 1000,
            tls: None,
        }
    }
}

/// A Redis Cluster of private `redis-server` processes on 127.0.0.1 (no
/// persistence), all killed on drop, its files removed. Its nodes run with
/// `cluster-require-full-coverage no`, as `docs/redis.md` has operators
/// run theirs: a dead master's slots fail, the others answer.
///
/// Nodes are named by their port. The first [`ClusterOptions::masters`]
/// nodes start as masters, the others as replicas of them (master `i`'s
/// replicas come in order after the masters); which are masters *now* is
/// [`masters`](Self::masters).
#[derive(Debug)]
pub struct RedisCluster {
    options: ClusterOptions,
    /// The cluster's temporary directory, a directory per node in it.
    dir: PathBuf,
    /// Removes `dir` when its standard input closes.
    janitor: Child,
    /// Masters first, then the replicas.
    nodes: Vec<Node>,
}

/// One node: its ports, its directory and, while it runs, its keeper.
#[derive(Debug)]
struct Node {
    port: u16,
    bus_port: u16,
    dir: PathBuf,
    keeper: Option<Keeper>,
}

/// A node's running server: the keeper `sh` (its standard input the pipe
/// that keeps the server alive) and the server's pid.
#[derive(Debug)]
struct Keeper {
    child: Child,
    pid: u32,
}

impl RedisCluster {
    /// Starts `masters * (1 + replicas_per_master)` servers, forms the
    /// cluster (the slots split evenly between the masters, each
    /// master's replicas following it) and waits until every node says
    /// `cluster_state:ok`, all agree on the slots' owners and every
    /// replica is in sync with its master. A cluster takes about 2 s (a
    /// master's state stays `fail` for its first 2 s). Panics with what
    /// failed, and the tail of the servers' logs, when `redis-server`
    /// cannot be started or the cluster is not healthy within 30 s.
    pub fn start(options: ClusterOptions) -> Self {
        assert!(options.masters >= 1, "a cluster needs a master");
        let started = Instant::now();
        let count = options.masters * (1 + options.replicas_per_master);
        let (dir, janitor) = janitored_dir("ipsr-redis-cluster");
        let mut cluster = Self {
            options,
            dir,
            janitor,
            nodes: Vec::with_capacity(count),
        };
        cluster.start_nodes(count);
        cluster.form(started + START_LIMIT);
        cluster
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…`: the ports of the
    /// nodes started as masters (seeds: a client learns the rest from
    /// them), with `:PASSWORD@` after the scheme when a password is set
    /// (percent-encoded where it is not a URL's unreserved character).
    /// `rediss+cluster://…` with TLS.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes[..self.options.masters]
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!(
            "{}+cluster://{}{}",
            self.scheme(),
            self.userinfo(),
            hosts.join(",")
        )
    }

    /// `redis://127.0.0.1:P` (`redis://:PASSWORD@127.0.0.1:P` with a
    /// password; `rediss://…` with TLS) of every node, those started as
    /// masters first.
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "{}://{}127.0.0.1:{}",
                    self.scheme(),
                    self.userinfo(),
                    n.port
                )
            })
            .collect()
    }

    /// The ports of every node, those started as masters first, whether
    /// they run or not.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The ports of the running nodes that are masters now (they say so:
    /// `ROLE`), in the order of [`ports`](Self::ports). A killed master's
    /// replica is among them once it has been promoted.
    pub fn masters(&self) -> Vec<u16> {
        self.live_ports()
            .into_iter()
            .filter(|&port| {
                self.try_cli(port, &["ROLE"])
                    .is_some_and(|r| role(&r) == "master")
            })
            .collect()
    }

    /// The port of the master serving `key`'s slot now: the one running
    /// node that is a master and owns the slot in its own view. Waits up
    /// to 30 s for there to be exactly one (during a failover there is
    /// none for a moment); panics then.
    pub fn master_of_key(&self, key: &str) -> u16 {
        let slot: u32 = poll(START_LIMIT, || {
            self.live_ports().into_iter().find_map(|port| {
                self.try_cli(port, &["CLUSTER", "KEYSLOT", key])?
                    .parse()
                    .ok()
            })
        })
        .unwrap_or_else(|| panic!("no running node of the cluster gives the slot of {key:?}"));
        poll(START_LIMIT, || {
            let owners: Vec<u16> = self
                .live_ports()
                .into_iter()
                .filter(|&port| {
                    self.try_cli(port, &["CLUSTER", "NODES"])
                        .is_some_and(|nodes| {
                            parse_nodes(&nodes).iter().any(|n| {
                                n.has("myself")
                                    && n.has("master")
                                    && n.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
                            })
                        })
                })
                .collect();
            match owners[..] {
                [port] => Some(port),
                _ => None,
            }
        })
        .unwrap_or_else(|| panic!("no one master serves slot {slot} (of {key:?}) within 30 s"))
    }

    /// Kills node `port`'s server (SIGKILL: it keeps nothing anyway) and
    /// waits for its exit. Its directory (`nodes.conf`) is kept for
    /// [`restart`](Self::restart). Panics when there is no such running
    /// node or it does not exit within 10 s.
    pub fn kill(&mut self, port: u16) {
        let node = self.node_mut(port);
        let mut keeper = node
            .keeper
            .take()
            .unwrap_or_else(|| panic!("node {port} of the cluster is not running"));
        let status = Command::new("kill")
            .args(["-9", &keeper.pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(
            status.success(),
            "kill -9 {} (node {port}) failed: {status}",
            keeper.pid
        );
        // The keeper exits once it has reaped the server.
        assert!(
            keeper.wait(PROCESS_LIMIT),
            "node {port}'s server did not exit within {PROCESS_LIMIT:?}"
        );
    }

    /// Starts killed node `port` again, with its port, bus port and
    /// directory: it rejoins the cluster as itself (its `nodes.conf`),
    /// with an empty dataset (there is no persistence). Returns once it
    /// accepts connections; [`wait_until_healthy`](Self::wait_until_healthy)
    /// says when the cluster has taken it back. Panics when the node runs
    /// or does not start.
    pub fn restart(&mut self, port: u16) {
        let index = self.index(port);
        assert!(
            self.nodes[index].keeper.is_none(),
            "node {port} of the cluster is running: kill it first"
        );
        if let Some((_, log)) = self.launch_all(&[index]).pop() {
            panic!("node {port} of the cluster did not start again; its log ends:\n{log}");
        }
    }

    /// Waits up to `limit` until the cluster is healthy: every running
    /// node says `cluster_state:ok`, knows every other running node and
    /// does not take it for failed, and all agree that all 16384 slots
    /// are served by running masters. False when it is not by then.
    pub fn wait_until_healthy(&self, limit: Duration) -> bool {
        poll(limit, || self.health().ok()).is_some()
    }

    /// Runs `redis-cli -h 127.0.0.1 -p PORT [--tls --cacert CA]
    /// [-a PASSWORD --no-auth-warning] ARGS…` and returns its standard
    /// output, trimmed (empty when the node does not run; Redis errors come
    /// as text, e.g. `MOVED …`).
    /// `ARGS` may start with options (`-c` follows redirections). Panics
    /// when `redis-cli` is missing or takes more than 10 s.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        self.try_cli(port, args)
            .unwrap_or_else(|| panic!("redis-cli -p {port} {args:?} took more than {CLI_LIMIT:?}"))
    }

    /// [`cli`](Self::cli), `None` when it takes more than 10 s.
    fn try_cli(&self, port: u16, args: &[&str]) -> Option<String> {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(certs) = &self.options.tls {
            command.arg("--tls").arg("--cacert").arg(&certs.ca);
        }
        if let Some(password) = &self.options.password {
            command.args(["-a", password, "--no-auth-warning"]);
        }
        let output = output_within(command.args(args), CLI_LIMIT)?;
        Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// `rediss` with TLS, else `redis`.
    fn scheme(&self) -> &'static str {
        if self.options.tls.is_some() {
            "rediss"
        } else {
            "redis"
        }
    }

    /// `:PASSWORD@` (percent-encoded) or nothing.
    fn userinfo(&self) -> String {
        self.options
            .password
            .as_deref()
            .map_or_else(String::new, |p| format!(":{}@", percent_encode(p)))
    }

    /// The ports of the running nodes.
    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.keeper.is_some())
            .map(|n| n.port)
            .collect()
    }

    fn index(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node of the cluster has port {port}"))
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        let index = self.index(port);
        &mut self.nodes[index]
    }

    /// Starts `count` nodes on fresh ports, all at once, and waits until
    /// they are ready. A node whose ports were taken meanwhile (by another
    /// test's process) is tried again on other ports, twice.
    fn start_nodes(&mut self, count: usize) {
        let mut taken = HashSet::new();
        for _ in 0..count {
            let node = self.new_node(&mut taken);
            self.nodes.push(node);
        }
        let mut pending: Vec<usize> = (0..count).collect();
        let mut failures = String::new();
        for _ in 0..3 {
            for (index, log) in self.launch_all(&pending) {
                let node = &self.nodes[index];
                let _ = writeln!(
                    failures,
                    "port {}, bus port {}:\n{log}",
                    node.port, node.bus_port
                );
                let _ = std::fs::remove_dir_all(&node.dir);
                self.nodes[index] = self.new_node(&mut taken);
            }
            pending.retain(|&i| self.nodes[i].keeper.is_none());
            if pending.is_empty() {
                return;
            }
        }
        panic!("redis-server did not start as a cluster node (3 tries); the logs end:\n{failures}");
    }

    /// A node on ports free now (and not in `taken`), not started.
    fn new_node(&self, taken: &mut HashSet<u16>) -> Node {
        let mut pick = || loop {
            let port = free_port();
            if taken.insert(port) {
                break port;
            }
        };
        let (port, bus_port) = (pick(), pick());
        let dir = self.dir.join(format!("node-{port}"));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Node {
            port,
            bus_port,
            dir,
            keeper: None,
        }
    }

    /// Starts the servers of nodes `indices` under keepers and waits until
    /// they are ready. Those not ready within 10 s are stopped (not
    /// running then) and returned with the tail of their logs.
    fn launch_all(&mut self, indices: &[usize]) -> Vec<(usize, String)> {
        let mut starting = Vec::new();
        let mut failed = Vec::new();
        for &index in indices {
            let log = self.nodes[index].dir.join("redis.log");
            let log_start = std::fs::metadata(&log).map_or(0, |m| m.len());
            match self.launch(&self.nodes[index]) {
                Ok(keeper) => {
                    self.nodes[index].keeper = Some(keeper);
                    starting.push((index, log, log_start));
                }
                Err(why) => failed.push((index, why)),
            }
        }
        let mut ready = vec![false; starting.len()];
        poll(PROCESS_LIMIT, || {
            for ((index, log, log_start), ready) in starting.iter().zip(&mut ready) {
                let node = &mut self.nodes[*index];
                let Some(keeper) = node.keeper.as_mut() else {
                    continue;
                };
                if !matches!(keeper.child.try_wait(), Ok(None)) {
                    node.keeper = None;
                    continue;
                }
                if !*ready {
                    let text = std::fs::read(log).unwrap_or_default();
                    let text = text.get(*log_start as usize..).unwrap_or_default();
                    *ready = String::from_utf8_lossy(text).contains("Ready to accept connections")
                        && std::net::TcpStream::connect(("127.0.0.1", node.port)).is_ok();
                }
            }
            // Done when every server is ready or has exited.
            starting
                .iter()
                .zip(&ready)
                .all(|((index, ..), ready)| *ready || self.nodes[*index].keeper.is_none())
                .then_some(())
        });
        for ((index, log, _), ready) in starting.iter().zip(ready) {
            if let Some(mut keeper) = self.nodes[*index].keeper.take() {
                if ready {
                    self.nodes[*index].keeper = Some(keeper);
                    continue;
                }
                drop(keeper.child.stdin.take());
                keeper.wait(PROCESS_LIMIT);
            }
            failed.push((*index, log_tail(log, 20)));
        }
        failed
    }

    /// Starts `node`'s server under a keeper (not waiting for it to be
    /// ready); why not when the keeper gives no pid.
    fn launch(&self, node: &Node) -> Result<Keeper, String> {
        let mut command = Command::new("sh");
        command
            .args(["-c", KEEPER, "sh"])
            .arg(&node.dir)
            .arg("redis-server");
        match &self.options.tls {
            None => command.args(["--port", &node.port.to_string()]),
            Some(certs) => command
                .args(["--port", "0", "--tls-port", &node.port.to_string()])
                .args(["--tls-cluster", "yes", "--tls-replication", "yes"])
                .args(tls_args(certs)),
        };
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args([
                "--cluster-node-timeout",
                &self.options.node_timeout_ms.to_string(),
            ])
            .args(["--cluster-port", &node.bus_port.to_string()])
            // Slots of live masters keep answering while another master is
            // down, as docs/redis.md tells operators to configure.
            .args(["--cluster-require-full-coverage", "no"])
            // A replica fails over however long ago it heard from its master.
            .args(["--cluster-replica-validity-factor", "0"])
            .args(["--save", "", "--appendonly", "no"])
            // A replica's first sync starts at once, not after 5 s.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(&node.dir);
        if let Some(password) = &self.options.password {
            command.args(["--requirepass", password, "--masterauth", password]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sh (the keeper of redis-server): {e}"));
        let mut line = String::new();
        let stdout = child
            .stdout
            .take()
            .expect("the keeper's standard output is piped");
        let _ = BufReader::new(stdout).read_line(&mut line);
        match line.trim().parse() {
            Ok(pid) => Ok(Keeper { child, pid }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("the keeper gave no pid: {line:?}"))
            }
        }
    }

    /// Forms the cluster of the started nodes and waits until it is
    /// healthy and the replicas are in sync; panics after `deadline`.
    fn form(&self, deadline: Instant) {
        let masters = self.options.masters;
        let ids: Vec<String> = self
            .nodes
            .iter()
            .map(|n| self.expect(n.port, &["CLUSTER", "MYID"], |id| id.len() == 40))
            .collect();
        // Distinct epochs up front, as `redis-cli --cluster create` does:
        // no collisions for the nodes to resolve.
        for (i, node) in self.nodes.iter().enumerate() {
            let epoch = (i + 1).to_string();
            self.expect(node.port, &["CLUSTER", "SET-CONFIG-EPOCH", &epoch], is_ok);
        }
        for (i, node) in self.nodes[..masters].iter().enumerate() {
            let lo = (i as u32 * SLOTS / masters as u32).to_string();
            let hi = ((i as u32 + 1) * SLOTS / masters as u32 - 1).to_string();
            self.expect(node.port, &["CLUSTER", "ADDSLOTSRANGE", &lo, &hi], is_ok);
        }
        let first = &self.nodes[0];
        let (port, bus_port) = (first.port.to_string(), first.bus_port.to_string());
        for node in &self.nodes[1..] {
            self.expect(
                node.port,
                &["CLUSTER", "MEET", "127.0.0.1", &port, &bus_port],
                is_ok,
            );
        }
        let remaining = || deadline.saturating_duration_since(Instant::now());
        let met = poll(remaining(), || {
            self.nodes
                .iter()
                .all(|n| {
                    self.try_cli(n.port, &["CLUSTER", "NODES"])
                        .is_some_and(|text| {
                            let known = parse_nodes(&text);
                            known.len() == self.nodes.len()
                                && known
                                    .iter()
                                    .all(|k| !k.has("handshake") && !k.has("noaddr"))
                        })
                })
                .then_some(())
        });
        if met.is_none() {
            self.fail("the nodes did not all meet");
        }
        for (i, node) in self.nodes[masters..].iter().enumerate() {
            let master = &ids[i / self.options.replicas_per_master];
            self.expect(node.port, &["CLUSTER", "REPLICATE", master], is_ok);
        }
        let mut reason = String::new();
        let healthy = poll(remaining(), || {
            let check = self.health().and_then(|()| {
                self.nodes[masters..].iter().try_for_each(|n| {
                    let info = self
                        .try_cli(n.port, &["INFO", "replication"])
                        .unwrap_or_default();
                    if info.lines().any(|l| l.trim() == "master_link_status:up") {
                        Ok(())
                    } else {
                        Err(format!("replica {} is not in sync with its master", n.port))
                    }
                })
            });
            check.map_err(|e| reason = e).ok()
        });
        if healthy.is_none() {
            self.fail(&format!(
                "the cluster was not healthy within {START_LIMIT:?}: {reason}"
            ));
        }
    }

    /// Whether the cluster is healthy (see
    /// [`wait_until_healthy`](Self::wait_until_healthy)); why not when not.
    fn health(&self) -> Result<(), String> {
        let live = self.live_ports();
        if live.is_empty() {
            return Err("no node runs".into());
        }
        let mut agreed: Option<(u16, SlotMap)> = None;
        for &port in &live {
            let info = self.try_cli(port, &["CLUSTER", "INFO"]).unwrap_or_default();
            if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                return Err(format!("node {port} does not say cluster_state:ok"));
            }
            let nodes = parse_nodes(
                &self
                    .try_cli(port, &["CLUSTER", "NODES"])
                    .unwrap_or_default(),
            );
            for &other in &live {
                match nodes.iter().find(|n| n.port == other) {
                    None => return Err(format!("node {port} does not know node {other}")),
                    Some(n)
                        if ["fail", "fail?", "handshake", "noaddr"]
                            .iter()
                            .any(|f| n.has(f)) =>
                    {
                        return Err(format!("node {port} takes node {other} for {}", n.flags));
                    }
                    Some(_) => {}
                }
            }
            let map = slot_map(&nodes).map_err(|e| format!("node {port}: {e}"))?;
            if let Some(&(_, owner, _)) = map.iter().find(|(_, owner, _)| !live.contains(owner)) {
                return Err(format!(
                    "node {port} has slots served by node {owner}, which does not run"
                ));
            }
            match &agreed {
                None => agreed = Some((port, map)),
                Some((first, first_map)) if *first_map != map => {
                    return Err(format!(
                        "nodes {first} and {port} disagree on the slots' owners"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Runs `args` on node `port` and checks its answer with `good`;
    /// panics with the answer when it is not.
    fn expect(&self, port: u16, args: &[&str], good: impl Fn(&str) -> bool) -> String {
        let answer = self.cli(port, args);
        if !good(&answer) {
            self.fail(&format!(
                "{} on node {port} answered {answer:?}",
                args.join(" ")
            ));
        }
        answer
    }

    /// Panics with `what` failed and the tail of every node's log.
    fn fail(&self, what: &str) -> ! {
        let mut logs = String::new();
        for node in &self.nodes {
            let _ = writeln!(
                logs,
                "node {} ({}):\n{}",
                node.port,
                if node.keeper.is_some() {
                    "running"
                } else {
                    "killed"
                },
                log_tail(&node.dir.join("redis.log"), 8)
            );
        }
        panic!("Redis Cluster: {what}; the nodes' logs end:\n{logs}");
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let mut keepers: Vec<Keeper> = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.keeper.take())
            .collect();
        // Closing the pipes first lets the keepers kill their servers at once.
        for keeper in &mut keepers {
            drop(keeper.child.stdin.take());
        }
        for keeper in &mut keepers {
            keeper.wait(PROCESS_LIMIT);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // Nothing left for the janitor to do.
        let _ = self.janitor.kill();
        let _ = self.janitor.wait();
    }
}

impl Keeper {
    /// Waits up to `limit` for the keeper to exit (it does once its server
    /// has); true when it did. When it did not, kills both and waits.
    fn wait(&mut self, limit: Duration) -> bool {
        let exited = poll(limit, || {
            matches!(self.child.try_wait(), Ok(Some(_))).then_some(())
        });
        if exited.is_none() {
            let _ = Command::new("kill")
                .args(["-9", &self.pid.to_string()])
                .stderr(Stdio::null())
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        exited.is_some()
    }
}

/// One cluster shared by every test of this test process (3 masters, no
/// replicas, no password), started on first use. Never dropped: its
/// servers die with the process (their keepers see it end). Tests must not
/// kill its nodes; they share its keyspace, so keys need a
/// [`unique_prefix`](crate::unique_prefix) (with `{…}` around it when a
/// command takes several keys that must share a slot).
pub fn shared_cluster() -> &'static RedisCluster {
    static SHARED: OnceLock<RedisCluster> = OnceLock::new();
    SHARED.get_or_init(|| RedisCluster::start(ClusterOptions::default()))
}

/// A line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeLine {
    port: u16,
    /// Comma separated: `myself,master`, `slave`, `master,fail`, …
    flags: String,
    /// The slot ranges it serves (single slots as `(s, s)`).
    slots: Vec<(u32, u32)>,
}

impl NodeLine {
    fn has(&self, flag: &str) -> bool {
        self.flags.split(',').any(|f| f == flag)
    }
}

/// The lines of a `CLUSTER NODES` answer:
/// `ID IP:PORT@BUS[,HOST] FLAGS MASTER PING PONG EPOCH LINK SLOT…` (the
/// slots being migrated, `[…]`, are left out).
fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let address = f[1].split(['@', ',']).next()?;
            let port = address.rsplit_once(':')?.1.parse().ok()?;
            let slots = f[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((lo, hi)) => Some((lo.parse().ok()?, hi.parse().ok()?)),
                    None => s.parse().ok().map(|s| (s, s)),
                })
                .collect();
            Some(NodeLine {
                port,
                flags: f[2].to_owned(),
                slots,
            })
        })
        .collect()
}

/// Who serves which slots in one node's view: `(first slot, owner's port,
/// last slot)` for every run of slots one master serves, in order.
type SlotMap = Vec<(u32, u16, u32)>;

/// The [`SlotMap`] of one node's view; an error unless every slot is
/// served by one master that is not failed.
fn slot_map(nodes: &[NodeLine]) -> Result<SlotMap, String> {
    let mut ranges: BTreeMap<u32, (u32, &NodeLine)> = BTreeMap::new();
    for node in nodes {
        for &(lo, hi) in &node.slots {
            if !node.has("master") || node.has("fail") {
                return Err(format!("node {} serves slots as {}", node.port, node.flags));
            }
            ranges.insert(lo, (hi, node));
        }
    }
    let mut map = SlotMap::new();
    let mut next = 0;
    for (lo, (hi, node)) in ranges {
        if lo != next || hi < lo {
            return Err(format!("slot {next} has no owner or two"));
        }
        match map.last_mut() {
            Some((_, owner, last)) if *owner == node.port => *last = hi,
            _ => map.push((lo, node.port, hi)),
        }
        next = hi + 1;
    }
    if next != SLOTS {
        return Err(format!("slot {next} has no owner"));
    }
    Ok(map)
}

/// The first line of a `ROLE` answer: `master`, `slave` (or `sentinel`).
fn role(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default().trim()
}

fn is_ok(answer: &str) -> bool {
    answer == "OK"
}

/// `text` with every byte but a URL's unreserved characters as `%XX`.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The last `lines` lines of the file at `path` (a note when unreadable).
fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A suffix no other cluster (or set of test certificates) of this
/// process (or an earlier run) uses.
pub(crate) fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos}-{}", COUNT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master,fail - 0 1426238318243 3 connected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 10923-16382 16383 [93->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
";

    #[test]
    fn parses_cluster_nodes_and_maps_the_slots() {
        let nodes = parse_nodes(NODES);
        assert_eq!(nodes.len(), 4);
        assert_eq!(nodes[0].port, 30004);
        assert!(nodes[0].has("slave") && !nodes[0].has("master"));
        assert!(nodes[2].has("fail") && !nodes[2].has("fail?"));
        assert_eq!(nodes[3].slots, [(0, 5460), (10923, 16382), (16383, 16383)]);
        assert!(nodes[3].has("myself"));
        assert_eq!(
            slot_map(&nodes),
            Ok(vec![
                (0, 30001, 5460),
                (5461, 30002, 10922),
                (10923, 30001, 16383)
            ])
        );
        // A slot without an owner, and slots served by a failed master.
        assert!(slot_map(&nodes[..3]).is_err());
        let mut failed = nodes.clone();
        failed[1].flags = "master,fail".into();
        assert!(slot_map(&failed).is_err());
    }

    #[test]
    fn small_helpers() {
        assert_eq!(percent_encode("Pass-1_2.3~"), "Pass-1_2.3~");
        assert_eq!(percent_encode("p@ss word/é"), "p%40ss%20word%2F%C3%A9");
        assert_eq!(role("slave\n127.0.0.1\n7001\nconnected\n14"), "slave");
        assert_eq!(ClusterOptions::default().masters, 3);
    }

    fn refuses(port: u16) -> bool {
        TcpStream::connect(("127.0.0.1", port)).is_err()
    }

    fn gone(pid: u32) -> bool {
        // Gone, or a zombie not reaped yet (it holds no port any more).
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, r)| r.starts_with('Z'))
        })
    }

    #[test]
    fn three_masters_serve_every_key_and_go_on_drop() {
        let started = Instant::now();
        let cluster = RedisCluster::start(ClusterOptions::default());
        eprintln!("3 masters healthy in {:?}", started.elapsed());
        let ports = cluster.ports();
        assert_eq!(ports.len(), 3);
        assert_eq!(cluster.masters(), ports);
        assert!(cluster.wait_until_healthy(Duration::from_secs(1)));
        assert_eq!(
            cluster.url(),
            format!(
                "redis+cluster://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
                ports[0], ports[1], ports[2]
            )
        );
        let urls = cluster.node_urls();
        assert_eq!(
            urls,
            ports
                .iter()
                .map(|p| format!("redis://127.0.0.1:{p}"))
                .collect::<Vec<_>>()
        );

        let mut owners = HashSet::new();
        for key in ["alpha", "beta", "gamma", "delta", "{app}:1", "{app}:2"] {
            let owner = cluster.master_of_key(key);
            owners.insert(owner);
            // Set through another node's URL, following the redirection.
            let via = ports.iter().position(|&p| p != owner).unwrap();
            let set = output_within(
                Command::new("redis-cli").args(["-u", &urls[via], "-c", "SET", key, "v"]),
                CLI_LIMIT,
            )
            .unwrap();
            assert_eq!(String::from_utf8_lossy(&set.stdout).trim(), "OK");
            assert_eq!(cluster.cli(owner, &["GET", key]), "v");
            let moved = cluster.cli(ports[via], &["GET", key]);
            assert!(moved.starts_with("MOVED "), "{moved}");
        }
        assert!(owners.len() > 1, "{owners:?}");
        assert_eq!(
            cluster.master_of_key("{app}:1"),
            cluster.master_of_key("{app}:2")
        );

        let pids: Vec<u32> = cluster
            .nodes
            .iter()
            .map(|n| n.keeper.as_ref().unwrap().pid)
            .collect();
        let dir = cluster.dir.clone();
        assert!(dir.join(format!("node-{}/nodes.conf", ports[0])).exists());
        drop(cluster);
        for (&port, &pid) in ports.iter().zip(&pids) {
            assert!(refuses(port), "node {port} still serves");
            assert!(gone(pid), "redis-server {pid} still runs");
        }
        assert!(!dir.exists(), "{} is left", dir.display());
    }

    #[test]
    fn a_replica_takes_over_a_killed_master_which_rejoins_as_a_replica() {
        let started = Instant::now();
        let mut cluster = RedisCluster::start(ClusterOptions {
            replicas_per_master: 1,
            ..ClusterOptions::default()
        });
        eprintln!("3 masters + 3 replicas healthy in {:?}", started.elapsed());
        let ports = cluster.ports();
        assert_eq!(ports.len(), 6);
        assert_eq!(cluster.masters(), ports[..3]);
        assert_eq!(cluster.url().matches(',').count(), 2);
        assert_eq!(cluster.node_urls().len(), 6);

        let key = "failover";
        let owner = cluster.master_of_key(key);
        let replica = ports[3 + ports.iter().position(|&p| p == owner).unwrap()];
        assert_eq!(role(&cluster.cli(replica, &["ROLE"])), "slave");
        assert_eq!(cluster.cli(owner, &["SET", key, "kept"]), "OK");
        assert_eq!(cluster.cli(owner, &["WAIT", "1", "5000"]), "1");

        let pid = cluster.nodes[cluster.index(owner)]
            .keeper
            .as_ref()
            .unwrap()
            .pid;
        let killed = Instant::now();
        cluster.kill(owner);
        assert!(refuses(owner) && gone(pid));
        let masters = poll(Duration::from_secs(15), || {
            let masters = cluster.masters();
            masters.contains(&replica).then_some(masters)
        })
        .expect("the replica is promoted within 15 s");
        assert!(cluster.wait_until_healthy(Duration::from_secs(15)));
        eprintln!("failed over and healthy in {:?}", killed.elapsed());
        assert_eq!(masters.len(), 3);
        assert!(!masters.contains(&owner));
        assert_eq!(cluster.master_of_key(key), replica);
        assert_eq!(cluster.cli(replica, &["GET", key]), "kept");

        cluster.restart(owner);
        let rejoined = poll(Duration::from_secs(15), || {
            (role(&cluster.cli(owner, &["ROLE"])) == "slave").then_some(())
        });
        assert!(
            rejoined.is_some(),
            "{}",
            cluster.cli(owner, &["CLUSTER", "NODES"])
        );
        assert!(cluster.wait_until_healthy(Duration::from_secs(15)));
        assert_eq!(cluster.masters(), masters);
        assert!(
            cluster.cli(owner, &["CLUSTER", "NODES"]).lines().count() == 6,
            "it rejoined as itself, not as a seventh node"
        );
    }

    #[test]
    fn a_node_that_cannot_start_again_says_why() {
        let mut cluster = RedisCluster::start(ClusterOptions {
            masters: 2,
            ..ClusterOptions::default()
        });
        let ports = cluster.ports();
        let port = ports[1];
        cluster.kill(port);
        assert_eq!(cluster.masters(), [ports[0]]);
        // Its slots have no master.
        assert!(!cluster.wait_until_healthy(Duration::from_millis(500)));
        let _squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let restart = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cluster.restart(port);
        }));
        let message = *restart.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("did not start again"), "{message}");
        assert!(message.contains("Address already in use"), "{message}");
        assert_eq!(cluster.masters(), [ports[0]]);
    }

    #[test]
    fn a_password_is_required() {
        let password = "p@ss word";
        let cluster = RedisCluster::start(ClusterOptions {
            password: Some(password.into()),
            ..ClusterOptions::default()
        });
        let port = cluster.ports()[0];
        assert!(
            cluster
                .url()
                .starts_with("redis+cluster://:p%40ss%20word@127.0.0.1:")
        );
        assert_eq!(
            cluster.node_urls()[0],
            format!("redis://:p%40ss%20word@127.0.0.1:{port}")
        );
        let anonymous = output_within(
            Command::new("redis-cli").args(["-p", &port.to_string(), "PING"]),
            CLI_LIMIT,
        )
        .unwrap();
        let refused = String::from_utf8_lossy(&anonymous.stdout);
        assert!(refused.contains("NOAUTH"), "{refused}");
        assert_eq!(cluster.cli(port, &["PING"]), "PONG");
        let key = "secret";
        assert_eq!(cluster.cli(port, &["-c", "SET", key, "v"]), "OK");
        assert_eq!(cluster.cli(cluster.master_of_key(key), &["GET", key]), "v");
    }

    #[test]
    fn a_tls_cluster_speaks_tls_to_clients_on_the_bus_and_to_replicas() {
        let certs = TestCerts::generate();
        let started = Instant::now();
        let cluster = RedisCluster::start(ClusterOptions {
            masters: 2,
            replicas_per_master: 1,
            password: Some("pw".into()),
            tls: Some(certs.clone()),
            ..ClusterOptions::default()
        });
        eprintln!(
            "TLS: 2 masters + 2 replicas healthy in {:?}",
            started.elapsed()
        );
        let ports = cluster.ports();
        assert_eq!(
            cluster.url(),
            format!(
                "rediss+cluster://:pw@127.0.0.1:{},127.0.0.1:{}",
                ports[0], ports[1]
            )
        );
        assert_eq!(
            cluster.node_urls()[3],
            format!("rediss://:pw@127.0.0.1:{}", ports[3])
        );
        for (option, value) in [
            ("port", "0"),
            ("tls-cluster", "yes"),
            ("tls-replication", "yes"),
        ] {
            assert_eq!(
                cluster.cli(ports[0], &["CONFIG", "GET", option]),
                format!("{option}\n{value}")
            );
        }
        // Without TLS a node does not answer.
        let plain = output_within(
            Command::new("redis-cli").args(["-p", &ports[0].to_string(), "-a", "pw", "PING"]),
            CLI_LIMIT,
        )
        .unwrap();
        assert!(!String::from_utf8_lossy(&plain.stdout).contains("PONG"));
        // The cluster bus is TLS, with the test CA's certificate.
        let bus = output_within(
            Command::new("openssl")
                .args(["s_client", "-connect"])
                .arg(format!("127.0.0.1:{}", cluster.nodes[1].bus_port))
                .arg("-CAfile")
                .arg(&certs.ca),
            CLI_LIMIT,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&bus.stdout);
        assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
        // Redirections are followed over TLS; the replica has the write.
        let key = "tls";
        assert_eq!(cluster.cli(ports[0], &["-c", "SET", key, "v"]), "OK");
        let owner = cluster.master_of_key(key);
        assert_eq!(cluster.cli(owner, &["GET", key]), "v");
        assert_eq!(cluster.cli(owner, &["WAIT", "1", "5000"]), "1");
        let replica = ports[2 + ports.iter().position(|&p| p == owner).unwrap()];
        assert_eq!(cluster.cli(replica, &["DBSIZE"]), "1");

        let dir = certs.dir.clone();
        drop(certs);
        assert!(dir.exists(), "the cluster keeps the certificates");
        drop(cluster);
        for port in ports {
            assert!(refuses(port), "node {port} still serves");
        }
        assert!(!dir.exists(), "{} is left", dir.display());
    }

    #[test]
    fn the_shared_cluster_is_one() {
        let cluster = shared_cluster();
        assert!(std::ptr::eq(cluster, shared_cluster()));
        assert!(cluster.wait_until_healthy(Duration::from_secs(5)));
        assert_eq!(cluster.masters().len(), 3);
        assert!(cluster.url().starts_with("redis+cluster://127.0.0.1:"));
    }
}
