//! How a gateway runs: [`GatewayConfig`], its limits and policies, and
//! [`Uploads`], who may upload content with a publish.

use std::collections::HashSet;
use std::time::Duration;

use ipsr_proto::AuthorId;

use crate::cache::{VIEW_CACHE_BYTES, VIEW_TTL};
use crate::client_addr::TrustedProxies;

/// Who may upload content through `POST /api/v1/publish`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Uploads {
    /// Nobody: the gateway accepts signed records only; their content must
    /// be in the swarm already.
    #[default]
    Off,
    /// Records signed by these authors may bring their content.
    Authors(HashSet<AuthorId>),
    /// Any author.
    Anyone,
}

impl Uploads {
    /// Whether `author` may upload content.
    pub fn allows(&self, author: &AuthorId) -> bool {
        match self {
            Self::Off => false,
            Self::Authors(set) => set.contains(author),
            Self::Anyone => true,
        }
    }
}

/// How a gateway runs: its limits and policies.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Who may upload content with a publish.
    pub uploads: Uploads,
    /// The largest content upload, in bytes (413 past it); also the
    /// largest content the gateway fetches for a record published alone.
    pub max_upload_bytes: u64,
    /// The most bytes of content pinned for one author (`None`: no quota);
    /// a pin past it is refused, 507 `quota_exceeded`.
    pub max_pinned_per_author: Option<u64>,
    /// Record-only publishes whose content is fetched in the background
    /// at once; past it the content is not fetched (`busy`).
    pub background_pins: usize,
    /// Requests served at once; past it requests are answered 503 at once.
    /// `GET /healthz` and `GET /metrics` have 16 slots of their own (4 per
    /// client), so they are answered when these are all taken.
    pub max_concurrent: usize,
    /// Requests one client address (an IPv6 client: its /64) may have in
    /// progress at once; past it, 429. Behind a proxy not in
    /// `trusted_proxies` every request comes from the proxy's address:
    /// trust the proxy, or raise this to `max_concurrent`.
    pub max_per_client: usize,
    /// Connections open at once; past it a new connection is answered 503
    /// and closed. Keep it below the process's limit of open files.
    pub max_connections: usize,
    /// Connections one client address (an IPv6 client: its /64) may hold
    /// open; past it, 429 and closed. A trusted proxy is not held to it
    /// (it carries many clients), only to `max_connections`.
    pub max_connections_per_client: usize,
    /// The reverse proxies trusted to name their clients in
    /// `X-Forwarded-For` (empty, the default: the TCP peer is the client).
    /// A request from one is attributed to the client the header names
    /// (the rightmost address that is not a trusted proxy) for the rate
    /// limit and the request slots; list only proxies you run, which
    /// append to or overwrite the header.
    pub trusted_proxies: TrustedProxies,
    /// The longest a client may take to send a request's headers, and the
    /// longest an idle connection stays open waiting for the next request.
    pub header_timeout: Duration,
    /// The longest a request body may pause (no byte) before the request
    /// is answered 408.
    pub body_idle_timeout: Duration,
    /// The longest a body without content (a signed record alone, or a
    /// form before its content part) may take in all; past it, 408.
    pub body_timeout: Duration,
    /// The longest a publish with content may take to send its content
    /// (and have it imported); past it, 408.
    pub upload_timeout: Duration,
    /// Requests per second one client address may make (0: no limit);
    /// past it, 429.
    pub rate_limit_per_sec: u32,
    /// Requests one client may make in a burst above the rate.
    pub rate_limit_burst: u32,
    /// The longest a download waits for its first byte from the swarm
    /// before answering 504 (fail fast rather than hang).
    pub first_byte_timeout: Duration,
    /// The longest `GET /ipfs/{cid}` looks for a root it does not hold
    /// before answering 404.
    pub ipfs_timeout: Duration,
    /// The public base URL of the gateway, for the QR codes of its pages
    /// (every other link is relative), e.g. `https://ipsr.example.org`.
    /// `None`: `http://` and the bound address, or no QR code when that is a
    /// wildcard. Never taken from a request's `Host`.
    pub public_url: Option<String>,
    /// How long a rendered JSON view (package, release, author, listing)
    /// may be served again; it is never served after the node's log has
    /// changed. Zero turns the cache off.
    pub view_ttl: Duration,
    /// The most bytes of rendered views (bodies and keys) the cache keeps;
    /// the least used go first.
    pub view_cache_bytes: u64,
    /// The F-Droid repository at `/fdroid/repo` (`docs/fdroid.md`); `None`:
    /// none (its routes answer 404).
    pub fdroid: Option<crate::fdroid::FdroidConfig>,
    /// Whether every answered request is logged at `info` (target
    /// `ipsr_gateway::access`): method, path (never the query), status,
    /// time taken and the client's address.
    pub access_log: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            uploads: Uploads::Off,
            max_upload_bytes: 256 * 1024 * 1024,
            max_pinned_per_author: Some(1024 * 1024 * 1024),
            background_pins: 16,
            max_concurrent: 1024,
            max_per_client: 64,
            max_connections: 4096,
            max_connections_per_client: 256,
            trusted_proxies: TrustedProxies::default(),
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            upload_timeout: Duration::from_secs(600),
            rate_limit_per_sec: 0,
            rate_limit_burst: 200,
            first_byte_timeout: Duration::from_secs(20),
            ipfs_timeout: Duration::from_secs(10),
            public_url: None,
            view_ttl: VIEW_TTL,
            view_cache_bytes: VIEW_CACHE_BYTES,
            fdroid: None,
            access_log: true,
        }
    }
}
