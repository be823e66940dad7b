//! A blocking client of the node's local HTTP API (`docs/node-api.md`), or
//! of a gateway's JSON API (`docs/gateway.md`), which serves the same views
//! of packages and releases under other paths. Neither is trusted: the
//! commands verify records and bytes themselves (`check.rs`).

use std::io::Read;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The node's default API address.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:5050";

/// What a [`Client`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Server {
    /// A node's local API (`--node`).
    Node,
    /// A gateway's JSON API (`--gateway`).
    Gateway,
}

impl Server {
    /// `node` or `gateway`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Server::Node => "node",
            Server::Gateway => "gateway",
        }
    }
}

/// A connection to one node's API, or to a gateway's.
#[derive(Debug, Clone)]
pub struct Client {
    base: url::Url,
    agent: ureq::Agent,
    server: Server,
    /// Whether every request carries an API token ([`Client::with_token`]).
    token: bool,
}

/// `GET /v1/packages/{author}/{package}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Package {
    /// The author id.
    pub author: String,
    /// The package name.
    pub package: String,
    /// The newest non-yanked version, if any.
    pub newest: Option<String>,
    /// Every version held, newest first.
    pub versions: Vec<VersionEntry>,
    /// The newest release's metadata.
    pub metadata: serde_json::Value,
}

/// One version of a [`Package`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionEntry {
    /// The version.
    pub version: String,
    /// Its version code.
    pub version_code: u64,
    /// The content's CID.
    pub cid: String,
    /// The content's size in bytes.
    pub size: u64,
    /// SHA-256 of the content (hex), when the record states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The file name offered on download.
    pub file_name: String,
    /// The platform.
    pub platform: String,
    /// When it was signed (unix ms).
    pub created_at: u64,
    /// The record's sequence number.
    pub seq: u64,
    /// Whether it is yanked.
    pub yanked: bool,
    /// Why, when yanked.
    pub yank_reason: Option<String>,
    /// The CIDs seen for this version when there is more than one.
    pub conflicting_cids: Vec<String>,
    /// Whether two records with one `seq` were seen.
    pub equivocated: bool,
    /// The release record's id.
    pub record_id: String,
    /// The APK signing certificate and its check (`docs/records.md`,
    /// rule 9), when the release names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
}

/// A release's APK certificate as served: `{"sha256", "check", ...}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Certificate {
    /// SHA-256 of the certificate, hex.
    pub sha256: String,
    /// `first`, `same`, `rotated`, `allowed` or `changed`.
    pub check: String,
}

/// `GET /v1/packages/{author}/{package}/{version}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseAnswer {
    /// The author id.
    pub author: String,
    /// The package name.
    pub package: String,
    /// The version's fields as the node sees them.
    #[serde(flatten)]
    pub entry: VersionEntry,
    /// The release's metadata.
    pub metadata: serde_json::Value,
    /// The signed release record, base64.
    pub record: String,
    /// The signed yank record, base64, if any.
    pub yank_record: Option<String>,
}

/// `POST /v1/records`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Posted {
    /// The record id.
    pub id: String,
    /// What the ordering rules decided.
    pub change: String,
    /// Its log position, when appended.
    pub position: Option<u64>,
}

/// `POST /v1/content`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Added {
    /// The root CID.
    pub cid: String,
    /// Bytes imported.
    pub size: u64,
    /// Blocks produced.
    pub blocks: u64,
    /// The import profile.
    pub profile: String,
}

/// `PUT /v1/pins/{cid}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pinned {
    /// The pinned root.
    pub cid: String,
    /// Blocks fetched from the swarm.
    pub fetched: u64,
    /// Blocks found locally.
    pub local: u64,
}

/// `GET /v1/authors/{author}` (a gateway's `GET /api/v1/author/{author}`
/// is read into the same form).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Author {
    /// The author id.
    pub author: String,
    /// The packages the server holds records of.
    pub packages: Vec<String>,
    /// The author's identity in force, with its chain.
    #[serde(default)]
    pub identity: Option<IdentityAnswer>,
}

/// The identity part of `GET /v1/authors/{author}` (`docs/node-api.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentityAnswer {
    /// The documents from the author's first to the one in force, base64.
    #[serde(default)]
    pub chain: Vec<String>,
    /// Documents followed by more than one authorized document.
    #[serde(default)]
    pub forks: Vec<Option<String>>,
}

/// A gateway's `GET /api/v1/author/{author}`: package summaries.
#[derive(Debug, Deserialize)]
struct GatewayAuthor {
    author: String,
    packages: Vec<Named>,
    #[serde(default)]
    identity: Option<IdentityAnswer>,
}

/// The name of a package in a gateway's listing.
#[derive(Debug, Deserialize)]
struct Named {
    package: String,
}

/// `POST /api/v1/publish` of a gateway: [`Posted`] and where to see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayPosted {
    /// What the node behind the gateway decided.
    #[serde(flatten)]
    pub posted: Posted,
    /// Whether the content came with the record and was stored.
    #[serde(default)]
    pub content_uploaded: bool,
    /// Paths on the gateway.
    pub links: Option<Links>,
}

/// Paths on a gateway for a release.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Links {
    /// The release's JSON view.
    pub package: String,
    /// The package's web page.
    pub page: String,
    /// The download.
    pub download: String,
}

/// A search: `GET /v1/search` of a node, `GET /api/v1/packages?q=` of a
/// gateway. Both answer `{ "packages": [...] }`; each entry has at least
/// these fields (a gateway's has more, kept in `raw`).
#[derive(Debug, Clone)]
pub struct Found {
    /// The whole answer, as the server sent it.
    pub raw: serde_json::Value,
    /// The results, in rank order.
    pub packages: Vec<FoundPackage>,
}

/// One search result.
#[derive(Debug, Clone, Deserialize)]
pub struct FoundPackage {
    /// The author id.
    pub author: String,
    /// The package name.
    pub package: String,
    /// Its newest non-yanked version.
    pub newest: Option<String>,
    /// Its title.
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Deserialize)]
struct FoundList {
    packages: Vec<FoundPackage>,
}

/// An error answer of the API.
#[derive(Debug, Deserialize)]
struct ApiError {
    code: String,
    message: String,
}

impl Client {
    /// A client of the node at `base` (`http://HOST:PORT`, or `https://`
    /// for a node behind a TLS proxy).
    pub fn new(base: &str) -> Result<Self> {
        if !base.contains("://") {
            return Err(Error::Usage(format!(
                "--node: {base:?} is not a URL; write it with its scheme: http://{}",
                base.trim_start_matches('/')
            )));
        }
        let url = url::Url::parse(base).map_err(|e| {
            Error::Usage(format!(
                "--node: {base:?} is not a URL ({e}); write it as http://HOST:PORT, e.g. http://127.0.0.1:5050"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::Usage(format!(
                "--node: {base:?} must be an http:// URL (or https:// for a node behind a TLS proxy)"
            )));
        }
        Ok(Self::with(url, Server::Node))
    }

    /// This client, sending `token` with every request as
    /// `Authorization: Bearer TOKEN` (a node whose API requires its token:
    /// `docs/node-api.md`, "Authentication"). Redirects do not carry it on.
    pub fn with_token(mut self, token: &str) -> Result<Self> {
        let mut value = ureq::http::HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Error::Usage("the API token is not valid in an HTTP header".into()))?;
        value.set_sensitive(true);
        self.agent = agent(Some(value));
        self.token = true;
        Ok(self)
    }

    /// A client of the gateway at `base` (`https://HOST` or `http://HOST:PORT`,
    /// possibly with a path prefix).
    pub fn gateway(base: &str) -> Result<Self> {
        if !base.contains("://") {
            let rest = base.trim_start_matches('/');
            let local = rest.starts_with("localhost")
                || rest.starts_with('[')
                || rest.starts_with(|c: char| c.is_ascii_digit());
            let scheme = if local { "http" } else { "https" };
            return Err(Error::Usage(format!(
                "--gateway: {base:?} is not a URL; write it with its scheme: {scheme}://{rest}"
            )));
        }
        let url = url::Url::parse(base).map_err(|e| {
            Error::Usage(format!(
                "--gateway: {base:?} is not a URL ({e}); write it as https://gateway.example.org"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::Usage(format!(
                "--gateway: {base:?} must be an http:// or https:// URL"
            )));
        }
        Ok(Self::with(url, Server::Gateway))
    }

    fn with(mut url: url::Url, server: Server) -> Self {
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        url.set_query(None);
        url.set_fragment(None);
        Self {
            base: url,
            agent: agent(None),
            server,
            token: false,
        }
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// What this client talks to.
    pub fn server(&self) -> Server {
        self.server
    }

    /// `the node` or `the gateway`, for messages.
    pub(crate) fn the(&self) -> &'static str {
        match self.server {
            Server::Node => "the node",
            Server::Gateway => "the gateway",
        }
    }

    /// The URL of an API path (`v1/...`, no leading slash) with a query.
    pub(crate) fn url(&self, path: &str, query: &[(&str, &str)]) -> url::Url {
        let mut url = self.base.join(path).expect("API paths are relative URLs");
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    fn transport(&self, e: ureq::Error) -> Error {
        match e {
            ureq::Error::Io(ref io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::TimedOut
                ) =>
            {
                self.unreachable(io.to_string())
            }
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound | ureq::Error::Timeout(_) => {
                self.unreachable(e.to_string())
            }
            // Something answered and then failed: it may be the other kind
            // of server (a gateway closes an upload to a node's route).
            other => self.misdirected().unwrap_or_else(|| {
                Error::Other(format!(
                    "talking to {} at {}: {other}",
                    self.the(),
                    self.base()
                ))
            }),
        }
    }

    /// When what answers at the base URL is the other kind of IPSR server
    /// (a gateway given as `--node`, a node's API given as `--gateway`),
    /// the usage error that says so. Asked after a route was not found or
    /// the exchange broke off: a node answers `GET /v1/status` with its
    /// `log_head` (or a `401` challenging for realm `ipsr-node`), a gateway
    /// answers `GET /healthz` with its `status` and no `log_head`.
    fn misdirected(&self) -> Option<Error> {
        let base = self.base();
        let probe = |path: &str| {
            let mut res = self
                .agent
                .get(self.url(path, &[]).as_str())
                .config()
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .call()
                .ok()?;
            let status = res.status().as_u16();
            let challenge = res
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let json = serde_json::from_str::<serde_json::Value>(&small_body(&mut res))
                .unwrap_or_default();
            Some((status, challenge, json))
        };
        match self.server {
            Server::Node => {
                let (status, _, json) = probe("healthz")?;
                let gateway = status == 200
                    && json.get("status").is_some()
                    && json.get("peer_id").is_some()
                    && json.get("log_head").is_none();
                gateway.then(|| {
                    Error::Usage(format!(
                        "{base} is an IPSR gateway, not a node's API; use --gateway {base} (or IPSR_GATEWAY), or give --node the node's API address (`ipsr-node run` prints it as `api: http://...`)"
                    ))
                })
            }
            Server::Gateway => {
                let (status, challenge, json) = probe("v1/status")?;
                let node = (status == 200
                    && json.get("peer_id").is_some()
                    && json.get("log_head").is_some())
                    || (status == 401 && challenge.contains("realm=\"ipsr-node\""));
                node.then(|| {
                    Error::Usage(format!(
                        "{base} is an IPSR node's API, not a gateway; use --node {base} (or IPSR_NODE), or give --gateway the gateway's URL (`ipsr-gateway` prints it as `gateway: http://...`)"
                    ))
                })
            }
        }
    }

    fn unreachable(&self, reason: String) -> Error {
        match self.server {
            Server::Node => Error::Unreachable {
                node: self.base().to_owned(),
                reason,
            },
            Server::Gateway => Error::GatewayUnreachable {
                gateway: self.base().to_owned(),
                reason,
            },
        }
    }

    /// Turns a non-2xx answer into an error about `what`.
    fn refused(&self, what: &str, res: ureq::http::Response<ureq::Body>) -> Error {
        let (status, code, message) = error_answer(res);
        self.refusal(what, status, &code, &message)
    }

    /// The error for a non-2xx answer `status` with its `{code, message}`.
    fn refusal(&self, what: &str, status: u16, code: &str, message: &str) -> Error {
        let (the, base) = (self.the(), self.base());
        // A route the server lacks, or (a node that wants its token) a
        // gateway route a node's API challenges.
        let lacking =
            matches!(status, 404 | 405) || (status == 401 && self.server == Server::Gateway);
        if lacking && let Some(misdirected) = self.misdirected() {
            return misdirected;
        }
        match status {
            404 => Error::NotFound(format!("{what}: not found on {the} at {base}")),
            504 => Error::NotFound(format!(
                "{what}: no peer delivered the content ({message}); try again when a provider is online"
            )),
            403 if code == "uploads_forbidden" => Error::Unsupported(format!(
                "{what}: the gateway at {base} takes no uploads from this author; publish through your own node (--node) or ask the gateway's operator to allow your author id"
            )),
            413 if self.server == Server::Gateway => Error::Usage(format!(
                "{what}: the gateway at {base} refused it as too large: {}; publish through your own node (--node)",
                crate::output::limits_for_people(message)
            )),
            401 if self.server == Server::Node && self.token => Error::Other(format!(
                "{what}: the node at {base} refused the API token ({message}); check the token file (the node's is DATA_DIR/api-token)"
            )),
            401 if self.server == Server::Node => Error::Usage(format!(
                "{what}: the node at {base} requires its API token ({message}); pass --node-token-file FILE, or set IPSR_NODE_TOKEN_FILE or IPSR_NODE_TOKEN"
            )),
            413 => Error::Usage(format!(
                "{what}: {the} refused it: {}",
                crate::output::limits_for_people(message)
            )),
            400 | 415 => Error::Usage(format!("{what}: {the} refused it: {message}")),
            422 => Error::Verification(format!("{what}: {the} refused it: {message} ({code})")),
            429 | 503 => Error::Other(format!(
                "{what}: {the} at {base} is busy ({message}); try again in a moment"
            )),
            _ => Error::Other(format!(
                "{what}: {the} answered {status}: {message} ({code})"
            )),
        }
    }

    fn json<T: DeserializeOwned>(
        &self,
        what: &str,
        res: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T> {
        let mut res = res.map_err(|e| self.transport(e))?;
        if !res.status().is_success() {
            return Err(self.refused(what, res));
        }
        let body = res
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| self.transport(e))?;
        serde_json::from_str(&body).map_err(|e| {
            Error::Other(format!(
                "{what}: the answer of {} is not valid JSON: {e}",
                self.the()
            ))
        })
    }

    /// The path of an API route on this server: `node` is the node's path,
    /// `gateway` the gateway's.
    fn route(&self, node: String, gateway: String) -> String {
        match self.server {
            Server::Node => node,
            Server::Gateway => gateway,
        }
    }

    /// An error for a route only a node has.
    fn node_only(&self, what: &str) -> Result<()> {
        match self.server {
            Server::Node => Ok(()),
            Server::Gateway => Err(Error::Unsupported(format!(
                "{what} needs a node: a gateway does not offer it; run one with `ipsr-node run` and pass --node URL instead of --gateway"
            ))),
        }
    }

    /// `GET` a JSON document.
    pub(crate) fn get<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T> {
        self.json(what, self.agent.get(self.url(path, &[]).as_str()).call())
    }

    /// The node's `GET /v1/status`, or the gateway's `GET /healthz`.
    pub fn status(&self) -> Result<serde_json::Value> {
        self.get("status", &self.route("v1/status".into(), "healthz".into()))
    }

    /// `GET /v1/peers` (a node only).
    pub fn peers(&self) -> Result<serde_json::Value> {
        self.node_only("peers")?;
        self.get("peers", "v1/peers")
    }

    /// `GET /v1/packages/{author}/{package}` (a gateway's
    /// `/api/v1/package/{author}/{package}`).
    pub fn package(&self, author: &str, package: &str) -> Result<Package> {
        self.get(
            &format!("{author}/{package}"),
            &self.route(
                format!("v1/packages/{author}/{package}"),
                format!("api/v1/package/{author}/{package}"),
            ),
        )
    }

    /// `GET /v1/packages/{author}/{package}/{version}` (a gateway's
    /// `/api/v1/package/{author}/{package}/{version}`).
    pub fn release(&self, author: &str, package: &str, version: &str) -> Result<ReleaseAnswer> {
        self.get(
            &format!("{author}/{package}@{version}"),
            &self.route(
                format!("v1/packages/{author}/{package}/{version}"),
                format!("api/v1/package/{author}/{package}/{version}"),
            ),
        )
    }

    /// `GET /v1/authors/{author}`, or a gateway's `GET /api/v1/author/{author}`
    /// (which answers 404 for an author it knows nothing of: read as none).
    pub fn author(&self, author: &str) -> Result<Author> {
        match self.server {
            Server::Node => self.get(author, &format!("v1/authors/{author}")),
            Server::Gateway => {
                match self.get::<GatewayAuthor>(author, &format!("api/v1/author/{author}")) {
                    Ok(a) => Ok(Author {
                        author: a.author,
                        packages: a.packages.into_iter().map(|p| p.package).collect(),
                        identity: a.identity,
                    }),
                    Err(Error::NotFound(_)) => Ok(Author {
                        author: author.to_owned(),
                        packages: Vec::new(),
                        identity: None,
                    }),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// `POST /v1/records`, or a gateway's `POST /api/v1/publish` with the
    /// record alone (`application/octet-stream`): publishes a signed record.
    pub fn post_record(&self, what: &str, bytes: &[u8]) -> Result<Posted> {
        let path = self.route("v1/records".into(), "api/v1/publish".into());
        let res = self
            .agent
            .post(self.url(&path, &[]).as_str())
            .header("content-type", "application/octet-stream")
            .send(bytes);
        self.json(what, res)
    }

    /// A gateway's `POST /api/v1/publish` with the signed record and the
    /// release's content (`size` bytes read from `content`), streamed as
    /// `multipart/form-data` (built by `form` below).
    pub fn publish_with_content(
        &self,
        what: &str,
        record: &[u8],
        content: &mut dyn Read,
        size: u64,
    ) -> Result<GatewayPosted> {
        let res = self.post_form(form(record, content, size)?);
        match res {
            Err(ureq::Error::Io(e)) if size > 0 => {
                // A gateway that refuses the upload (no uploads from this
                // author, a file over its limit) answers once it has read
                // the record and closes the connection; writing the rest,
                // ureq sees only a broken pipe.
                match self.why_refused(what, record)? {
                    Some(refusal) => Err(refusal),
                    None => Err(self.transport(ureq::Error::Io(e))),
                }
            }
            Ok(res) if size > 0 && res.status() == 413 => {
                // Refused by its `Content-Length` alone, before the record
                // was read: the gateway's bound on any form. Whether the
                // file is over this author's limit says more.
                let early = self.refused(what, res);
                Err(self.why_refused(what, record)?.unwrap_or(early))
            }
            res => self.json(what, res),
        }
    }

    /// Why a gateway refuses a form with this record and content: asks
    /// again with an empty content part, which is refused for the same
    /// reason (403 no uploads from this author, 413 over its upload
    /// limit), or, when the gateway would take the file, as not matching
    /// the record (422 `content_mismatch`, storing nothing): `None` then.
    fn why_refused(&self, what: &str, record: &[u8]) -> Result<Option<Error>> {
        let mut empty: &[u8] = &[];
        match self.post_form(form(record, &mut empty, 0)?) {
            Ok(probe) if !probe.status().is_success() => {
                let (status, code, message) = error_answer(probe);
                Ok((code != "content_mismatch")
                    .then(|| self.refusal(what, status, &code, &message)))
            }
            _ => Ok(None),
        }
    }

    fn post_form(
        &self,
        form: Form<'_>,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        self.agent
            .post(self.url("api/v1/publish", &[]).as_str())
            .header("content-type", &form.content_type)
            .header("content-length", &form.length.to_string())
            .send(ureq::SendBody::from_reader(&mut form.into_reader()))
    }

    /// `POST /v1/content` (a node only): streams `body` into the node's blockstore.
    pub fn add(
        &self,
        what: &str,
        body: &mut dyn Read,
        profile: &str,
        label: &str,
    ) -> Result<Added> {
        self.node_only("storing a file")?;
        let mut query = vec![("profile", profile)];
        if !label.is_empty() {
            query.push(("label", label));
        }
        let res = self
            .agent
            .post(self.url("v1/content", &query).as_str())
            .header("content-type", "application/octet-stream")
            .send(ureq::SendBody::from_reader(body));
        self.json(what, res)
    }

    /// The bytes of a release as a stream, and their length when the server
    /// sent one: a node's `GET /v1/content/{cid}`, a gateway's
    /// `GET /api/v1/download/{author}/{package}/{version}`. Not trusted:
    /// the caller checks them against the signed CID.
    pub fn content(
        &self,
        release: &ipsr_proto::Release,
    ) -> Result<(Option<u64>, impl Read + use<>)> {
        let cid = release.cid.to_string();
        let path = self.route(
            format!("v1/content/{cid}"),
            format!(
                "api/v1/download/{}/{}/{}",
                release.author, release.package, release.version
            ),
        );
        let res = self
            .agent
            .get(self.url(&path, &[]).as_str())
            .call()
            .map_err(|e| self.transport(e))?;
        if !res.status().is_success() {
            return Err(self.refused(&format!("content {cid}"), res));
        }
        let len = res
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok((len, res.into_body().into_reader()))
    }

    /// `PUT /v1/pins/{cid}?label=L` (a node only).
    pub fn pin(&self, cid: &str, label: &str) -> Result<Pinned> {
        self.node_only("pinning")?;
        let res = self
            .agent
            .put(
                self.url(&format!("v1/pins/{cid}"), &[("label", label)])
                    .as_str(),
            )
            .send_empty();
        self.json(&format!("pin {cid}"), res)
    }

    /// A node's `GET /v1/search?q=QUERY&limit=N`, or a gateway's
    /// `GET /api/v1/packages?q=QUERY&limit=N`. A node without the route
    /// (an older one) is not supported.
    pub fn search(&self, query: &str, limit: usize) -> Result<Found> {
        let limit = limit.to_string();
        let query = [("q", query), ("limit", limit.as_str())];
        let path = self.route("v1/search".into(), "api/v1/packages".into());
        let res = self
            .agent
            .get(self.url(&path, &query).as_str())
            .call()
            .map_err(|e| self.transport(e))?;
        let status = res.status().as_u16();
        if self.server == Server::Node && (status == 404 || status == 405) {
            if let Some(misdirected) = self.misdirected() {
                return Err(misdirected);
            }
            return Err(Error::Unsupported(format!(
                "the node at {} has no search (an older ipsr-node); upgrade it, or search a gateway with --gateway URL",
                self.base()
            )));
        }
        let raw: serde_json::Value = self.json("search", Ok(res))?;
        let list: FoundList = serde_json::from_value(raw.clone()).map_err(|e| {
            Error::Other(format!(
                "search: the answer of {} is not a list of packages: {e}",
                self.the()
            ))
        })?;
        Ok(Found {
            raw,
            packages: list.packages,
        })
    }
}

/// An HTTP client that reports statuses as values, sending `authorization`
/// (an `Authorization` value) with every request when given. ureq drops it
/// on a redirect (its default `RedirectAuthHeaders::Never`).
fn agent(authorization: Option<ureq::http::HeaderValue>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(5)));
    if let Some(value) = authorization {
        config = config.middleware(
            move |mut request: ureq::http::Request<ureq::SendBody<'_>>,
                  next: ureq::middleware::MiddlewareNext<'_>| {
                request
                    .headers_mut()
                    .insert(ureq::http::header::AUTHORIZATION, value.clone());
                next.handle(request)
            },
        );
    }
    config.build().into()
}

/// The body of a short answer (an error, a probe), at most 64 KiB; empty
/// when it cannot be read.
fn small_body(res: &mut ureq::http::Response<ureq::Body>) -> String {
    res.body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default()
}

/// The status, `code` and `message` of an error answer (the status as the
/// code and the body as the message when it is not the API's JSON).
fn error_answer(mut res: ureq::http::Response<ureq::Body>) -> (u16, String, String) {
    let status = res.status().as_u16();
    let body = small_body(&mut res);
    match serde_json::from_str::<ApiError>(&body) {
        Ok(e) => (status, e.code, e.message),
        Err(_) => (status, status.to_string(), body.trim().to_owned()),
    }
}

/// A `multipart/form-data` body: its `Content-Type` (with the boundary),
/// its exact length, and its parts.
struct Form<'a> {
    content_type: String,
    length: u64,
    head: Vec<u8>,
    content: &'a mut dyn Read,
    tail: Vec<u8>,
}

impl<'a> Form<'a> {
    /// The body as one reader: the head, then the content as it is read
    /// (never held in memory), then the tail.
    fn into_reader(self) -> impl Read + 'a {
        std::io::Cursor::new(self.head)
            .chain(self.content)
            .chain(std::io::Cursor::new(self.tail))
    }
}

/// Builds the publish form of a gateway (`docs/gateway.md`): a `record`
/// part with the signed record's bytes, then a `content` part with `size`
/// bytes streamed from `content`.
///
/// ureq 3 offers a multipart form only under `ureq::unversioned`, outside
/// its semver promise, and no maintained multipart crate writes to ureq 3's
/// body; the format is small (RFC 7578), so it is written here: a random
/// boundary (128 bits, so it cannot occur in the content by chance; the
/// record is checked), each part's headers, the bytes, the closing line.
fn form<'a>(record: &[u8], content: &'a mut dyn Read, size: u64) -> Result<Form<'a>> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random)
        .map_err(|e| Error::Other(format!("no randomness for a form boundary: {e}")))?;
    let boundary = format!("ipsr-{}", hex::encode(random));
    if record
        .windows(boundary.len())
        .any(|w| w == boundary.as_bytes())
    {
        return Err(Error::Other(
            "the record contains the form boundary; publish again".into(),
        ));
    }
    let part = |name: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
    };
    let mut head = part("record").into_bytes();
    head.extend_from_slice(record);
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(part("content").as_bytes());
    let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
    Ok(Form {
        content_type: format!("multipart/form-data; boundary={boundary}"),
        length: head.len() as u64 + size + tail.len() as u64,
        head,
        content,
        tail,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_form_has_both_parts_and_its_stated_length() {
        let mut content: &[u8] = b"file bytes";
        let form = form(b"record\x00bytes", &mut content, 10).unwrap();
        let boundary = form
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap()
            .to_owned();
        let length = form.length;
        let mut body = Vec::new();
        form.into_reader().read_to_end(&mut body).unwrap();
        assert_eq!(body.len() as u64, length);
        let expected = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"record\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nrecord\x00bytes\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"content\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nfile bytes\r\n--{boundary}--\r\n"
        );
        assert_eq!(String::from_utf8(body).unwrap(), expected);
    }
}
