//! Redis for tests: the shared server named by `IPSR_TEST_REDIS_URL`, with a
//! key prefix per test, private servers a test may stop and start (plain
//! or TLS), and the test certificates TLS needs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::redis_cluster::{janitored_dir, percent_encode};
use crate::{output_within, poll};

/// The longest one `openssl` call may take.
const OPENSSL_LIMIT: Duration = Duration::from_secs(20);

/// The longest a private server may take to start.
const START_LIMIT: Duration = Duration::from_secs(20);

/// The shared test Redis: `IPSR_TEST_REDIS_URL`, by default
/// `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("IPSR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test (or run) uses in the shared Redis:
/// `ipsr-test:NAME:PID:NANOS:`.
pub fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    format!("ipsr-test:{name}:{}:{nanos}:", std::process::id())
}

/// The `openssl` configuration of [`TestCerts::generate`]: the extensions
/// of the CA and of the server certificate (also a client certificate: a
/// cluster node presents it to the others).
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = IPSR test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Certificates for TLS tests, made by `openssl` in a temporary directory:
/// a CA of its own (named uniquely: another one's certificates are of an
/// unknown issuer to it), and a server certificate for `127.0.0.1` and
/// `localhost` (ECDSA P-256, valid 10 years) that it signed. Clones share
/// the directory; it is removed when the last one drops, or when this
/// process ends in any way (a janitor `sh` holds it, as a
/// [`RedisCluster`](crate::RedisCluster)'s).
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The temporary directory holding the files.
    pub dir: PathBuf,
    /// The CA's certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The server's certificate (PEM), for `IP:127.0.0.1` and
    /// `DNS:localhost`, signed by the CA.
    pub cert: PathBuf,
    /// The server certificate's private key (PEM, unencrypted).
    pub key: PathBuf,
    _dir_guard: Arc<DirGuard>,
}

/// Removes a directory on drop, or (its janitor) when this process ends.
#[derive(Debug)]
struct DirGuard {
    dir: PathBuf,
    janitor: Child,
}

impl TestCerts {
    /// Makes a new CA and a server certificate signed by it. Panics with
    /// `openssl`'s error when it is missing or fails.
    pub fn generate() -> Self {
        let (dir, janitor) = janitored_dir("ipsr-test-certs");
        // The directory's name is unique: so is the CA's.
        let suffix = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _dir_guard = Arc::new(DirGuard {
            dir: dir.clone(),
            janitor,
        });
        std::fs::write(dir.join("openssl.cnf"), OPENSSL_CNF)
            .unwrap_or_else(|e| panic!("cannot write into {}: {e}", dir.display()));
        let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        let ca_name = format!("/CN=IPSR test CA {suffix}");
        openssl(
            &dir,
            &format!("req -config openssl.cnf -x509 -extensions ca {new_key} -days 3650"),
            &["-keyout", "ca.key", "-out", "ca.crt", "-subj", &ca_name],
        );
        openssl(
            &dir,
            &format!("req -config openssl.cnf -new {new_key}"),
            &["-keyout", "server.key", "-out", "server.csr"],
        );
        openssl(
            &dir,
            "x509 -req -in server.csr -days 3650 -CA ca.crt -CAkey ca.key -set_serial 2 \
             -extfile openssl.cnf -extensions server",
            &["-out", "server.crt"],
        );
        Self {
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            dir,
            _dir_guard,
        }
    }
}

/// The same files.
impl PartialEq for TestCerts {
    fn eq(&self, other: &Self) -> bool {
        (&self.dir, &self.ca, &self.cert, &self.key)
            == (&other.dir, &other.ca, &other.cert, &other.key)
    }
}

impl Eq for TestCerts {}

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        // Nothing left for the janitor to do.
        let _ = self.janitor.kill();
        let _ = self.janitor.wait();
    }
}

/// Runs `openssl WORDS… ARGS…` in `dir` (`words` split at spaces);
/// panics with its error output when it fails.
fn openssl(dir: &Path, words: &str, args: &[&str]) {
    let args: Vec<&str> = words
        .split_whitespace()
        .chain(args.iter().copied())
        .collect();
    let output = output_within(
        Command::new("openssl").current_dir(dir).args(&args),
        OPENSSL_LIMIT,
    )
    .unwrap_or_else(|| panic!("openssl {args:?} took more than {OPENSSL_LIMIT:?}"));
    assert!(
        output.status.success(),
        "openssl {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// A private `redis-server` on `port` (no persistence), killed on drop:
/// plain ([`start`](Self::start)) or TLS only, perhaps with a password
/// ([`start_tls`](Self::start_tls)).
#[derive(Debug)]
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    /// The certificates it serves (TLS), kept while it runs.
    certs: Option<TestCerts>,
    password: Option<String>,
}

impl RedisServer {
    /// Starts it and waits until it accepts connections; panics when
    /// `redis-server` is missing or does not start within 20 s.
    pub fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server (is it installed?): {e}"));
        let server = Self {
            port,
            child: Some(child),
            certs: None,
            password: None,
        };
        poll(START_LIMIT, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .unwrap_or_else(|| panic!("redis-server did not start on port {port}"));
        server
    }

    /// Starts one serving TLS only on `port` (`--port 0 --tls-port PORT`)
    /// with `certs`' server certificate, not asking clients for one, and
    /// requiring `password` when given; waits until it accepts
    /// connections. Its output goes to `redis-PORT.log` in `certs.dir`.
    /// Panics, with that output, when it exits or does not accept
    /// connections within 20 s.
    pub fn start_tls(port: u16, certs: &TestCerts, password: Option<&str>) -> Self {
        let log_path = certs.dir.join(format!("redis-{port}.log"));
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let mut command = Command::new("redis-server");
        command
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(tls_args(certs))
            .args(["--save", "", "--appendonly", "no"]);
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdout(
                log.try_clone()
                    .unwrap_or_else(|e| panic!("cannot open {}: {e}", log_path.display())),
            )
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server (is it installed?): {e}"));
        let mut server = Self {
            port,
            child: Some(child),
            certs: Some(certs.clone()),
            password: password.map(str::to_owned),
        };
        let started = poll(START_LIMIT, || {
            let exited = server
                .child
                .as_mut()
                .is_some_and(|c| !matches!(c.try_wait(), Ok(None)));
            if exited {
                return Some(false);
            }
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| true)
        });
        if started != Some(true) {
            server.stop();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("redis-server (TLS) did not start on port {port}; its output:\n{log}");
        }
        server
    }

    /// `redis://127.0.0.1:PORT`; for TLS `rediss://127.0.0.1:PORT`, with
    /// `:PASSWORD@` (percent-encoded) before the host when it has one.
    pub fn url(&self) -> String {
        let scheme = if self.certs.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let userinfo = self
            .password
            .as_deref()
            .map_or_else(String::new, |p| format!(":{}@", percent_encode(p)));
        format!("{scheme}://{userinfo}127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGKILL: it keeps nothing anyway) and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `redis-server`'s options naming `certs`' files, clients not asked for a
/// certificate (the port itself is the caller's).
pub(crate) fn tls_args(certs: &TestCerts) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    for (option, path) in [
        ("--tls-cert-file", &certs.cert),
        ("--tls-key-file", &certs.key),
        ("--tls-ca-cert-file", &certs.ca),
    ] {
        args.push(option.into());
        args.push(path.into());
    }
    args.extend(["--tls-auth-clients".into(), "no".into()]);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_differ() {
        assert_ne!(unique_prefix("a"), unique_prefix("a"));
        assert!(unique_prefix("name").starts_with("ipsr-test:name:"));
    }

    #[test]
    fn a_private_server_serves_until_stopped() {
        let mut server = RedisServer::start(crate::free_port());
        assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port));
        server.stop();
        assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
    }

    fn run(command: &mut Command) -> (bool, String) {
        let output = output_within(command, Duration::from_secs(10)).expect("within 10 s");
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text.trim().to_owned())
    }

    #[test]
    fn test_certs_chain_to_their_ca_name_loopback_and_go_with_the_last_clone() {
        let certs = TestCerts::generate();
        let other = TestCerts::generate();
        assert_ne!(certs, other);
        assert_eq!(certs, certs.clone());
        for file in [&certs.ca, &certs.cert, &certs.key] {
            assert!(file.starts_with(&certs.dir) && file.exists(), "{file:?}");
        }
        let verify = |ca: &Path| {
            run(Command::new("openssl")
                .arg("verify")
                .arg("-CAfile")
                .arg(ca)
                .arg(&certs.cert))
        };
        let (ok, text) = verify(&certs.ca);
        assert!(ok && text.ends_with(": OK"), "{text}");
        let (ok, text) = verify(&other.ca);
        assert!(!ok, "another CA verified it: {text}");
        let (ok, text) = run(Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-ext",
                "subjectAltName,basicConstraints",
                "-in",
            ])
            .arg(&certs.cert));
        assert!(ok, "{text}");
        assert!(text.contains("IP Address:127.0.0.1"), "{text}");
        assert!(text.contains("DNS:localhost"), "{text}");
        assert!(text.contains("CA:FALSE"), "{text}");

        let dir = certs.dir.clone();
        let clone = certs.clone();
        drop(certs);
        assert!(dir.exists(), "a clone still holds it");
        drop(clone);
        assert!(!dir.exists(), "{} is left", dir.display());
    }

    #[test]
    fn a_tls_server_wants_tls_its_ca_and_its_password() {
        let certs = TestCerts::generate();
        let mut server = RedisServer::start_tls(crate::free_port(), &certs, Some("p@ss"));
        let port = server.port.to_string();
        assert_eq!(server.url(), format!("rediss://:p%40ss@127.0.0.1:{port}"));
        let cli = |tls: bool, ca: &Path, password: &str| {
            let mut command = Command::new("redis-cli");
            command.args(["-h", "127.0.0.1", "-p", &port]);
            if tls {
                command.arg("--tls").arg("--cacert").arg(ca);
            }
            run(command.args(["-a", password, "--no-auth-warning", "PING"]))
        };
        assert_eq!(cli(true, &certs.ca, "p@ss").1, "PONG");
        let (_, wrong) = cli(true, &certs.ca, "wrong");
        assert!(wrong.contains("WRONGPASS"), "{wrong}");
        let (_, plain) = cli(false, &certs.ca, "p@ss");
        assert!(!plain.contains("PONG"), "{plain}");
        let other = TestCerts::generate();
        let (_, untrusted) = cli(true, &other.ca, "p@ss");
        assert!(
            untrusted.contains("certificate verify failed"),
            "{untrusted}"
        );
        server.stop();
        assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
    }

    #[test]
    fn a_tls_server_that_cannot_start_says_why() {
        let certs = TestCerts::generate();
        std::fs::write(&certs.key, "not a key").unwrap();
        let start = std::panic::catch_unwind(|| {
            RedisServer::start_tls(crate::free_port(), &certs, None);
        });
        let message = *start.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("did not start"), "{message}");
        assert!(message.contains("Failed to load private key"), "{message}");
    }
}
