//! Authors' identities as the CLI sees them (`docs/records.md`, section 8):
//! the chain a node serves, checked here from the author id alone; key
//! arguments that name a stored key or an author id; and the local copies
//! of releases that a change of signers leaves to re-sign.

use std::path::PathBuf;

use base64::Engine as _;
use ipsr_proto::{AuthorId, AuthorKey, Authority, Identity, IdentityState, Signed, SignedRecord};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::keys;

/// The identity of `author` that `client` (a node or a gateway) serves,
/// checked: every document of the chain must be authorized by the one
/// before, starting from the author key. A server that knows no document
/// of the author gives the implicit identity (the author key alone signs).
pub(crate) fn fetch(client: &Client, author: &AuthorId) -> Result<IdentityState> {
    let answer = client.author(&author.to_string())?;
    let mut state = IdentityState::new(*author);
    let Some(identity) = answer.identity else {
        return Ok(state);
    };
    let from = client.the();
    for (i, b64) in identity.chain.iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| {
                Error::Verification(format!(
                    "{author}: {from} sent an identity document that is not base64: {e}"
                ))
            })?;
        let Ok(Signed::Identity(doc)) =
            SignedRecord::from_bytes(&bytes).and_then(SignedRecord::verify_any)
        else {
            return Err(Error::Verification(format!(
                "{author}: document {} of the identity {from} sent does not verify",
                i + 1
            )));
        };
        let applied = state.apply(doc).map_err(|_| {
            Error::Verification(format!(
                "{author}: {from} sent another author's identity document"
            ))
        })?;
        if !applied.change.is_kept() {
            return Err(Error::Verification(format!(
                "{author}: document {} of the identity {from} sent is not signed by enough admins of the one before ({:?})",
                i + 1,
                applied.change
            )));
        }
    }
    Ok(state)
}

/// A key argument: an author id (`k51...`) as it is, else the name of a
/// stored key, whose id it stands for.
pub(crate) fn key_id(arg: &str) -> Result<AuthorId> {
    if arg.starts_with("k51") {
        return arg.parse().map_err(|e| Error::Usage(format!("{arg}: {e}")));
    }
    keys::info(arg)?
        .author
        .parse()
        .map_err(|e| Error::Other(format!("key {arg:?}: {e}")))
}

/// The folder where `identity update` keeps the records of releases that
/// lose their signers, for `resign`.
fn resign_dir(author: &AuthorId) -> Result<PathBuf> {
    Ok(keys::dir()?
        .parent()
        .map(|p| p.join("resign"))
        .unwrap_or_else(|| PathBuf::from("resign"))
        .join(author.to_string()))
}

/// Keeps a copy of a signed release record for `resign`.
pub(crate) fn keep_for_resign(record: &SignedRecord) -> Result<PathBuf> {
    let r = record.record();
    let dir = resign_dir(r.author())?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display(), e))?;
    let path = dir.join(format!("{}@{}", r.package(), r.version()));
    std::fs::write(&path, record.to_bytes()).map_err(|e| Error::io(path.display(), e))?;
    Ok(path)
}

/// The copy [`keep_for_resign`] kept of `author/package@version`, if any.
pub(crate) fn kept_for_resign(
    author: &AuthorId,
    package: &str,
    version: &str,
) -> Result<Option<SignedRecord>> {
    let path = resign_dir(author)?.join(format!("{package}@{version}"));
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path.display(), e)),
    };
    let record = SignedRecord::from_bytes(&bytes)
        .and_then(SignedRecord::verify)
        .map_err(|e| Error::Verification(format!("{}: {e}", path.display())))?;
    Ok(Some(record))
}

/// Where the first identity document made with key `name` waits to be posted.
fn genesis_path(name: &str) -> Result<PathBuf> {
    keys::check_name(name)?;
    Ok(keys::dir()?.join(format!("{name}.identity")))
}

/// Signs the author's first identity document with the new `key`: it signs
/// releases, and it and `recovery` administer (one of them suffices).
pub(crate) fn write_genesis(name: &str, key: &AuthorKey, recovery: AuthorId) -> Result<PathBuf> {
    let author = key.author_id();
    let mut admins = vec![author, recovery];
    admins.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    admins.dedup();
    let doc = Identity {
        admins,
        ..Identity::implicit(author).next(None)
    };
    let signed = doc
        .sign(&[key])
        .map_err(|e| Error::Other(format!("the first identity document: {e}")))?;
    let path = genesis_path(name)?;
    std::fs::write(&path, signed.to_bytes()).map_err(|e| Error::io(path.display(), e))?;
    Ok(path)
}

/// Posts the first identity document waiting for any of the keys `names`
/// whose author the server still knows without one; whether one was posted.
pub(crate) fn post_waiting(client: &Client, names: &[String]) -> Result<bool> {
    let mut posted = false;
    for name in names {
        let path = genesis_path(name)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(path.display(), e)),
        };
        let Ok(Signed::Identity(doc)) =
            SignedRecord::from_bytes(&bytes).and_then(SignedRecord::verify_any)
        else {
            return Err(Error::Verification(format!(
                "{}: not a valid identity document",
                path.display()
            )));
        };
        let author = doc.identity().author;
        if fetch(client, &author)?.head().is_some() {
            continue;
        }
        let answer = client.post_record(&format!("identity of {author}"), &bytes)?;
        if !matches!(answer.change.as_str(), "new" | "replaced" | "duplicate") {
            return Err(Error::Conflict(format!(
                "{}: {} did not take the first identity document of {author} (change: {})",
                path.display(),
                client.the(),
                answer.change
            )));
        }
        posted = true;
    }
    Ok(posted)
}

/// The authority of `author`'s identity in force, when the key named
/// `key_name` (author id `key`) is one of its signers; else a usage error.
/// Through a node, first posts the first identity document waiting for that
/// key (`key generate`), so a new author's first publish carries it.
pub(crate) fn signer_authority(
    client: &Client,
    author: &AuthorId,
    key_name: &str,
    key: &AuthorId,
) -> Result<Authority> {
    if client.server() == crate::client::Server::Node {
        post_waiting(client, &[key_name.to_owned()])?;
    }
    let authority = fetch(client, author)?.authority();
    if !authority.is_signer(key.as_bytes()) {
        return Err(Error::Usage(format!(
            "key {key_name:?} ({key}) is not a signer of {author}'s identity in force; see `ipsr-cli identity show {author}`, and add it with `ipsr-cli identity update --add-signer {key_name}`"
        )));
    }
    Ok(authority)
}
