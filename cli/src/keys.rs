//! Author keys on disk: one TOML file per key in
//! `$XDG_CONFIG_HOME/ipsr/keys/NAME.toml` (`~/.config/ipsr/keys` by
//! default), mode 0600, optionally sealed with a passphrase (scrypt, then
//! XChaCha20-Poly1305). The format is in `docs/cli.md`.

use std::fs;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::Aead;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use ipsr_proto::{AuthorId, AuthorKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The key used when none is named.
pub const DEFAULT_NAME: &str = "default";
/// The variable a passphrase is read from before asking on the terminal.
pub const PASSPHRASE_ENV: &str = "IPSR_PASSPHRASE";
/// The key file format's version.
const FORMAT: u32 = 1;
/// scrypt cost (2^15 × 8 × 128 B = 32 MiB, about 0.1 s).
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

/// A key file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: u32,
    /// The author id, in clear so that `key list` needs no passphrase.
    author: String,
    /// The ed25519 seed, hex, when not sealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<String>,
    /// The sealed seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    sealed: Option<Sealed>,
}

/// A seed sealed with a passphrase.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    kdf: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
    cipher: String,
    nonce: String,
    /// The seed's ciphertext and tag, hex; the author id is the associated data.
    ciphertext: String,
}

/// What `key list` and `key show` tell about a key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// The key's name.
    pub name: String,
    /// The author id.
    pub author: String,
    /// The raw ed25519 public key, hex.
    pub public_key: String,
    /// Whether a passphrase protects it.
    pub protected: bool,
    /// The key file.
    pub path: PathBuf,
}

/// The folder of key files.
pub fn dir() -> Result<PathBuf> {
    let config = dirs::config_dir().ok_or_else(|| {
        Error::Other("no configuration folder: set XDG_CONFIG_HOME or HOME".into())
    })?;
    Ok(config.join("ipsr").join("keys"))
}

/// Checks a key name: 1–64 of `A-Z a-z 0-9 _ -`, not starting with `-`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "key name {name:?}: use 1 to 64 letters, digits, _ or -"
        )))
    }
}

fn path_of(name: &str) -> Result<PathBuf> {
    check_name(name)?;
    Ok(dir()?.join(format!("{name}.toml")))
}

/// Stores `key` under `name`, sealed with `passphrase` when given (never
/// empty). Refuses to overwrite an existing key.
pub fn store(name: &str, key: &AuthorKey, passphrase: Option<&str>) -> Result<PathBuf> {
    let path = path_of(name)?;
    if passphrase == Some("") {
        return Err(Error::Usage(
            "an empty passphrase protects nothing; store the key without one instead".into(),
        ));
    }
    let author = key.author_id().to_string();
    let (seed, sealed) = match passphrase {
        None => (Some(hex::encode(key.to_seed())), None),
        Some(pass) => (None, Some(seal(&key.to_seed(), pass, &author)?)),
    };
    let file = KeyFile {
        format: FORMAT,
        author,
        seed,
        sealed,
    };
    let text = format!(
        "# IPSR author key {name:?}. Keep this file secret: whoever has it can publish as this author.\n{}",
        toml::to_string(&file).map_err(|e| Error::Other(format!("encoding the key file: {e}")))?
    );
    let folder = path.parent().expect("a key path has a folder");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
        .map_err(|e| Error::io(folder.display(), e))?;
    match write_new(folder, &path, text.as_bytes()) {
        Ok(()) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Conflict(format!(
            "a key named {name:?} already exists ({}); choose another --name or remove that file first",
            path.display()
        ))),
        Err(e) => Err(Error::io(path.display(), e)),
    }
}

/// Writes `bytes` to `path` in `folder` all at once or not at all: into a
/// temp file of mode 0600 beside it, fsynced, then renamed to `path` (never
/// over an existing file), then the folder fsynced. A crash leaves either
/// no key file or a whole one, never an empty file that takes the name.
fn write_new(folder: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".new-key")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(folder)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    fs::File::open(folder)?.sync_all()
}

fn read(name: &str) -> Result<(PathBuf, KeyFile)> {
    let path = path_of(name)?;
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(format!(
                "no key named {name:?} in {}; create one with `ipsr-cli key generate --name {name}` or import one with `ipsr-cli key import`",
                path.display()
            )));
        }
        Err(e) => return Err(Error::io(path.display(), e)),
    };
    let file: KeyFile = toml::from_str(&text)
        .map_err(|e| Error::Other(format!("{}: not a valid key file: {e}", path.display())))?;
    if file.format != FORMAT {
        return Err(Error::Other(format!(
            "{}: key file format {} is not supported by this ipsr-cli",
            path.display(),
            file.format
        )));
    }
    Ok((path, file))
}

fn info_of(name: &str, path: PathBuf, file: &KeyFile) -> Result<KeyInfo> {
    let author: AuthorId = file.author.parse().map_err(|e| {
        Error::Other(format!(
            "{}: the author id in the file is not valid: {e}",
            path.display()
        ))
    })?;
    Ok(KeyInfo {
        name: name.to_owned(),
        author: author.to_string(),
        public_key: hex::encode(author.as_bytes()),
        protected: file.sealed.is_some(),
        path,
    })
}

/// What is known of key `name` without its passphrase.
pub fn info(name: &str) -> Result<KeyInfo> {
    let (path, file) = read(name)?;
    info_of(name, path, &file)
}

/// Every stored key, by name.
pub fn list() -> Result<Vec<KeyInfo>> {
    let folder = dir()?;
    let entries = match fs::read_dir(&folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(folder.display(), e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".toml")?.to_owned();
            check_name(&stem).ok().map(|()| stem)
        })
        .collect();
    names.sort();
    names.iter().map(|n| info(n)).collect()
}

/// Loads key `name`, asking for its passphrase when it is sealed.
pub fn load(name: &str) -> Result<AuthorKey> {
    let (path, file) = read(name)?;
    let seed = match (&file.seed, &file.sealed) {
        (Some(seed), None) => decode_seed(seed).ok_or_else(|| {
            Error::Other(format!("{}: the seed is not 64 hex digits", path.display()))
        })?,
        (None, Some(sealed)) => {
            let pass = passphrase(&format!("key {name:?}"))?;
            unseal(sealed, &pass, &file.author)?
        }
        _ => {
            return Err(Error::Other(format!(
                "{}: a key file holds either seed or [sealed]",
                path.display()
            )));
        }
    };
    let key = AuthorKey::from_seed(&seed);
    if key.author_id().to_string() != file.author {
        return Err(Error::Verification(format!(
            "{}: the secret key does not match the author id in the file; the file is damaged",
            path.display()
        )));
    }
    Ok(key)
}

fn decode_seed(text: &str) -> Option<[u8; 32]> {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).ok()?;
    Some(seed)
}

fn derive(pass: &str, salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32]> {
    let params = scrypt::Params::new(log_n, r, p)
        .map_err(|e| Error::Other(format!("scrypt parameters: {e}")))?;
    let mut out = [0u8; 32];
    scrypt::scrypt(pass.as_bytes(), salt, &params, &mut out)
        .map_err(|e| Error::Other(format!("scrypt: {e}")))?;
    Ok(out)
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| Error::Other(format!("the OS random source: {e}")))?;
    Ok(out)
}

fn seal(seed: &[u8; 32], pass: &str, author: &str) -> Result<Sealed> {
    let salt: [u8; 16] = random()?;
    let nonce: [u8; 24] = random()?;
    let key = derive(pass, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)?;
    let cipher = XChaCha20Poly1305::new(&key.into());
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            chacha20poly1305::aead::Payload {
                msg: seed,
                aad: author.as_bytes(),
            },
        )
        .map_err(|_| Error::Other("sealing the key failed".into()))?;
    Ok(Sealed {
        kdf: "scrypt".into(),
        log_n: SCRYPT_LOG_N,
        r: SCRYPT_R,
        p: SCRYPT_P,
        salt: hex::encode(salt),
        cipher: "xchacha20poly1305".into(),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    })
}

fn unseal(sealed: &Sealed, pass: &str, author: &str) -> Result<[u8; 32]> {
    let bad = || Error::Other("the sealed key is damaged (bad kdf, cipher or hex)".into());
    if sealed.kdf != "scrypt" || sealed.cipher != "xchacha20poly1305" || sealed.log_n > 22 {
        return Err(bad());
    }
    let salt = hex::decode(&sealed.salt).map_err(|_| bad())?;
    let mut nonce = [0u8; 24];
    hex::decode_to_slice(&sealed.nonce, &mut nonce).map_err(|_| bad())?;
    let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| bad())?;
    let key = derive(pass, &salt, sealed.log_n, sealed.r, sealed.p)?;
    let cipher = XChaCha20Poly1305::new(&key.into());
    let seed = cipher
        .decrypt(
            &XNonce::from(nonce),
            chacha20poly1305::aead::Payload {
                msg: &ciphertext,
                aad: author.as_bytes(),
            },
        )
        .map_err(|_| Error::Other("wrong passphrase".into()))?;
    seed.try_into().map_err(|_| bad())
}

/// The passphrase of a sealed key or an encrypted key file: from
/// `IPSR_PASSPHRASE` when set, else asked on the terminal. `what` names
/// what it opens, for the prompt and the errors.
pub fn passphrase(what: &str) -> Result<String> {
    if let Ok(pass) = std::env::var(PASSPHRASE_ENV) {
        return Ok(pass);
    }
    prompt(what, &format!("Passphrase of {what}: "))
}

/// A passphrase to seal a key with: from `IPSR_PASSPHRASE` when set, else
/// asked twice on the terminal. Never empty: an empty passphrase would
/// protect nothing while the key is shown as protected.
pub fn new_passphrase() -> Result<String> {
    let pass = match std::env::var(PASSPHRASE_ENV) {
        Ok(pass) if pass.is_empty() => {
            return Err(Error::Usage(format!(
                "{PASSPHRASE_ENV} is set but empty, and an empty passphrase protects nothing; \
                 set it to the passphrase, or unset it and leave out --passphrase to store the key without one"
            )));
        }
        Ok(pass) => pass,
        Err(_) => {
            let pass = prompt("the new key", "New passphrase: ")?;
            let again = prompt("the new key", "Same passphrase again: ")?;
            if again != pass {
                return Err(Error::Usage("the passphrases differ; try again".into()));
            }
            pass
        }
    };
    if pass.is_empty() {
        return Err(Error::Usage(
            "an empty passphrase protects nothing; leave out --passphrase to store the key without one".into(),
        ));
    }
    Ok(pass)
}

/// Asks for a passphrase on the terminal.
fn prompt(what: &str, prompt: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "the passphrase of {what} is needed but there is no terminal to ask on; set {PASSPHRASE_ENV}"
        )));
    }
    rpassword::prompt_password(prompt)
        .map_err(|e| Error::Other(format!("reading the passphrase: {e}")))
}

/// A key read by [`read_foreign`].
#[derive(Debug)]
pub struct Foreign {
    /// The key.
    pub key: AuthorKey,
    /// The passphrase that opened it, when the file was encrypted.
    pub passphrase: Option<String>,
}

/// Reads an existing ed25519 secret key from `path`: an OpenSSH private key
/// (`ssh-keygen -t ed25519`; asks for its passphrase when it has one), or
/// a 32-byte seed as 64 hex digits.
pub fn read_foreign(path: &Path) -> Result<Foreign> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))?;
    if text.contains("BEGIN OPENSSH PRIVATE KEY") {
        let mut key = ssh_key::PrivateKey::from_openssh(text.trim()).map_err(|e| {
            Error::Usage(format!(
                "{}: not a valid OpenSSH private key: {e}",
                path.display()
            ))
        })?;
        let mut passphrase = None;
        if key.is_encrypted() {
            let pass = self::passphrase(&path.display().to_string())?;
            key = key
                .decrypt(pass.as_bytes())
                .map_err(|_| Error::Other(format!("{}: wrong passphrase", path.display())))?;
            passphrase = Some(pass);
        }
        let pair = key.key_data().ed25519().ok_or_else(|| {
            Error::Usage(format!(
                "{}: a {} key, but author keys are ed25519 (make one with ssh-keygen -t ed25519)",
                path.display(),
                key.algorithm()
            ))
        })?;
        return Ok(Foreign {
            key: AuthorKey::from_seed(&pair.private.to_bytes()),
            passphrase,
        });
    }
    if let Some(seed) = decode_seed(&text) {
        return Ok(Foreign {
            key: AuthorKey::from_seed(&seed),
            passphrase: None,
        });
    }
    Err(Error::Usage(format!(
        "{}: not an OpenSSH ed25519 private key nor a 64-hex-digit ed25519 seed",
        path.display()
    )))
}

/// The OpenSSH public key line of an author (`ssh-ed25519 AAAA… comment`).
pub fn openssh_public(author: &AuthorId, comment: &str) -> Result<String> {
    let data =
        ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(*author.as_bytes()));
    ssh_key::PublicKey::new(data, comment)
        .to_openssh()
        .map_err(|e| Error::Other(format!("encoding the public key: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_the_author() {
        let seed = [9u8; 32];
        let sealed = seal(&seed, "correct horse", "k51author").unwrap();
        assert_eq!(unseal(&sealed, "correct horse", "k51author").unwrap(), seed);
        assert!(unseal(&sealed, "wrong", "k51author").is_err());
        assert!(unseal(&sealed, "correct horse", "k51other").is_err());
    }

    /// A key file appears whole or not at all, mode 0600, never over
    /// another; no temp file stays behind.
    #[test]
    fn key_files_are_written_at_once_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        write_new(dir.path(), &path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = write_new(dir.path(), &path, b"second").unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["k.toml"]);
    }

    #[test]
    fn names() {
        for ok in ["default", "work-2", "A_b"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
