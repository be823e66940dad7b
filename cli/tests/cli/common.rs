//! What every transcript starts from: a node, a config dir and a work dir
//! (`Env`), and the fixtures.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipsr_gateway::{Gateway, GatewayConfig, Uploads};
use snapbox::cmd::Command;

/// A node, a config dir and a work dir for one test.
pub(crate) struct Env {
    pub(crate) api: String,
    pub(crate) node: ipsr_node::Client,
    pub(crate) config: tempfile::TempDir,
    pub(crate) work: tempfile::TempDir,
    _data: tempfile::TempDir,
    /// Owns the node, its API server and any gateway; dropping it stops them.
    pub(crate) runtime: tokio::runtime::Runtime,
}

impl Env {
    pub(crate) fn new() -> Self {
        Self::serve(None)
    }

    /// A node whose API requires `token` of every request (as one bound
    /// off loopback does; here on 127.0.0.1).
    pub(crate) fn with_token(token: &str) -> Self {
        Self::serve(Some(ipsr_node::ApiToken::new(token).unwrap()))
    }

    fn serve(token: Option<ipsr_node::ApiToken>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let config = ipsr_node::Config::local(data.path().to_owned());
        let (node, api) = runtime.block_on(async {
            let node = ipsr_node::spawn(config).await.unwrap();
            let loopback = "127.0.0.1:0".parse().unwrap();
            let addr = match token {
                None => {
                    let (addr, server) =
                        ipsr_node::serve_api(node.clone(), loopback).await.unwrap();
                    tokio::spawn(server);
                    addr
                }
                Some(token) => {
                    let (addr, server) =
                        ipsr_node::serve_api_with_token(node.clone(), loopback, token)
                            .await
                            .unwrap();
                    tokio::spawn(server);
                    addr
                }
            };
            (node, format!("http://{addr}"))
        });
        Self {
            api,
            node,
            config: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
            _data: data,
            runtime,
        }
    }

    /// A gateway over this test's node (its embedded store as the index)
    /// taking uploads from `uploads`; returns its URL.
    pub(crate) fn gateway(&self, uploads: Uploads) -> String {
        let mut config = GatewayConfig::default();
        config.uploads = uploads;
        self.gateway_with(config)
    }

    /// A gateway over this test's node with `config`; returns its URL.
    pub(crate) fn gateway_with(&self, config: GatewayConfig) -> String {
        let index = Arc::new(ipsr_indexer::StoreIndex::new(self.node.store().clone()));
        let gateway = Gateway::new(self.node.clone(), index, config);
        self.runtime.block_on(async {
            let (addr, server) = ipsr_gateway::serve(gateway, "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            tokio::spawn(server);
            format!("http://{addr}")
        })
    }

    /// A "gateway" that answers every package and release with `package` and
    /// `release` (JSON) and every download with `bytes`; returns its URL.
    pub(crate) fn liar(&self, package: String, release: String, bytes: Vec<u8>) -> String {
        use warp::Filter;
        let json =
            |body: String| warp::reply::with_header(body, "content-type", "application/json");
        let package = warp::path!("api" / "v1" / "package" / String / String)
            .map(move |_: String, _: String| json(package.clone()));
        let release = warp::path!("api" / "v1" / "package" / String / String / String)
            .map(move |_: String, _: String, _: String| json(release.clone()));
        let download = warp::path!("api" / "v1" / "download" / String / String / String)
            .map(move |_: String, _: String, _: String| bytes.clone());
        let routes = package.or(release).or(download);
        self.runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(warp::serve(routes).incoming(listener).run());
            format!("http://{addr}")
        })
    }

    /// `GET` a JSON document of the node's API.
    pub(crate) fn node_json(&self, path: &str) -> serde_json::Value {
        let text = ureq::get(format!("{}{path}", self.api))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// `ipsr-cli ARGS` as a user in the work dir, with this test's node and keys.
    pub(crate) fn cli(&self, args: &[&str]) -> Command {
        Command::new(env!("CARGO_BIN_EXE_ipsr-cli"))
            .args(args)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("IPSR_NODE", &self.api)
            .env_remove("IPSR_NODE_TOKEN")
            .env_remove("IPSR_NODE_TOKEN_FILE")
            .env_remove("IPSR_PASSPHRASE")
            .current_dir(self.work.path())
            .timeout(std::time::Duration::from_secs(60))
    }

    /// `ipsr-cli publish FILE --package com.example.app --version VERSION EXTRA...`
    pub(crate) fn publish_app(&self, file: &str, version: &str, extra: &[&str]) -> Command {
        let mut args = vec![
            "publish",
            file,
            "--package",
            "com.example.app",
            "--version",
            version,
        ];
        args.extend_from_slice(extra);
        self.cli(&args)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    pub(crate) fn stdout(&self, args: &[&str]) -> String {
        let out = self.cli(args).assert().success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    }
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}
