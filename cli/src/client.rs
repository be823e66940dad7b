//! A blocking client of the node's local HTTP API (`docs/node-api.md`).

use std::io::Read;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The node's default API address.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:5050";

/// A connection to one node's API.
#[derive(Debug, Clone)]
pub struct Client {
    base: url::Url,
    agent: ureq::Agent,
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

/// `GET /v1/authors/{author}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Author {
    /// The author id.
    pub author: String,
    /// The packages the node holds records of.
    pub packages: Vec<String>,
}

/// An error answer of the API.
#[derive(Debug, Deserialize)]
struct ApiError {
    code: String,
    message: String,
}

impl Client {
    /// A client of the node at `base` (`http://HOST:PORT`).
    pub fn new(base: &str) -> Result<Self> {
        let mut url = url::Url::parse(base).map_err(|e| {
            Error::Usage(format!(
                "--node: {base:?} is not a URL ({e}); write it as http://127.0.0.1:5050"
            ))
        })?;
        if url.scheme() != "http" {
            return Err(Error::Usage(format!(
                "--node: {base:?} must be an http:// URL (the node's API is plain HTTP on loopback)"
            )));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        Ok(Self { base: url, agent })
    }

    /// The node's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
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
                Error::Unreachable {
                    node: self.base().to_owned(),
                    reason: io.to_string(),
                }
            }
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound | ureq::Error::Timeout(_) => {
                Error::Unreachable {
                    node: self.base().to_owned(),
                    reason: e.to_string(),
                }
            }
            other => Error::Other(format!("talking to the node at {}: {other}", self.base())),
        }
    }

    /// Turns a non-2xx answer into an error about `what`.
    fn refused(&self, what: &str, mut res: ureq::http::Response<ureq::Body>) -> Error {
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let (code, message) = match serde_json::from_str::<ApiError>(&body) {
            Ok(e) => (e.code, e.message),
            Err(_) => (status.to_string(), body.trim().to_owned()),
        };
        match status {
            404 => Error::NotFound(format!("{what}: not found on the node at {}", self.base())),
            504 => Error::NotFound(format!(
                "{what}: no peer delivered the content ({message}); try again when a provider is online"
            )),
            400 | 413 | 415 => Error::Usage(format!("{what}: the node refused it: {message}")),
            422 => Error::Verification(format!("{what}: the node refused it: {message} ({code})")),
            _ => Error::Other(format!(
                "{what}: the node answered {status}: {message} ({code})"
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
        serde_json::from_str(&body)
            .map_err(|e| Error::Other(format!("{what}: the node's answer is not valid JSON: {e}")))
    }

    /// `GET` a JSON document.
    pub(crate) fn get<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T> {
        self.json(what, self.agent.get(self.url(path, &[]).as_str()).call())
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Result<serde_json::Value> {
        self.get("status", "v1/status")
    }

    /// `GET /v1/peers`.
    pub fn peers(&self) -> Result<serde_json::Value> {
        self.get("peers", "v1/peers")
    }

    /// `GET /v1/packages/{author}/{package}`.
    pub fn package(&self, author: &str, package: &str) -> Result<Package> {
        self.get(
            &format!("{author}/{package}"),
            &format!("v1/packages/{author}/{package}"),
        )
    }

    /// `GET /v1/packages/{author}/{package}/{version}`.
    pub fn release(&self, author: &str, package: &str, version: &str) -> Result<ReleaseAnswer> {
        self.get(
            &format!("{author}/{package}@{version}"),
            &format!("v1/packages/{author}/{package}/{version}"),
        )
    }

    /// `GET /v1/authors/{author}`.
    pub fn author(&self, author: &str) -> Result<Author> {
        self.get(author, &format!("v1/authors/{author}"))
    }

    /// `POST /v1/records`: publishes a signed record.
    pub fn post_record(&self, what: &str, bytes: &[u8]) -> Result<Posted> {
        let res = self
            .agent
            .post(self.url("v1/records", &[]).as_str())
            .header("content-type", "application/octet-stream")
            .send(bytes);
        self.json(what, res)
    }

    /// `POST /v1/content`: streams `body` into the node's blockstore.
    pub fn add(
        &self,
        what: &str,
        body: &mut dyn Read,
        profile: &str,
        label: &str,
    ) -> Result<Added> {
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

    /// `GET /v1/content/{cid}`: the file's bytes as a stream, and its
    /// length when the node sent one.
    pub fn cat(&self, cid: &str) -> Result<(Option<u64>, impl Read + use<>)> {
        let res = self
            .agent
            .get(self.url(&format!("v1/content/{cid}"), &[]).as_str())
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

    /// `PUT /v1/pins/{cid}?label=L`.
    pub fn pin(&self, cid: &str, label: &str) -> Result<Pinned> {
        let res = self
            .agent
            .put(
                self.url(&format!("v1/pins/{cid}"), &[("label", label)])
                    .as_str(),
            )
            .send_empty();
        self.json(&format!("pin {cid}"), res)
    }

    /// Probes `GET /v1/search?q=QUERY`; `None` when the node has no such route.
    pub fn search(&self, query: &str) -> Result<Option<serde_json::Value>> {
        let res = self
            .agent
            .get(self.url("v1/search", &[("q", query)]).as_str())
            .call()
            .map_err(|e| self.transport(e))?;
        if res.status().as_u16() == 404 || res.status().as_u16() == 405 {
            return Ok(None);
        }
        self.json("search", Ok(res)).map(Some)
    }
}
