//! The node's libp2p identity, created on first start and kept in the data
//! dir (file mode 0600).
//!
//! The file is written whole or not at all (`private_file`). An empty file
//! (what a crash during the first start left before this was so) never held
//! a key, so it is replaced, with a warning. Any other file that does not
//! decode is an error naming it: a real key is never replaced.

use std::path::Path;

use libp2p::identity::Keypair;
use tracing::warn;

use crate::private_file::{self, Existing};

/// The identity file inside the data dir.
pub(crate) const FILE: &str = "identity.key";

/// An error loading or creating the identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the file failed.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a libp2p key. It is left as it is.
    #[error(
        "identity file {path} ({len} bytes) is not a libp2p private key: it is damaged or \
         not an identity file. It was left as it is; move it away to start with a new \
         identity (a new peer id), or put the node's key back"
    )]
    Decode {
        /// The file.
        path: String,
        /// Its size in bytes.
        len: usize,
    },
}

/// Loads the identity from `dir`, creating it on first use (and when the
/// file is empty).
pub(crate) fn load_or_create(dir: &Path) -> Result<Keypair, IdentityError> {
    let path = dir.join(FILE);
    let io = |source| IdentityError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) if bytes.is_empty() => {
            warn!(
                path = %path.display(),
                "the identity file is empty (a crash during the first start?); it never held \
                 a key, so a new identity is created in its place"
            );
            create(dir, &path, Existing::Replace).map_err(io)
        }
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|_| IdentityError::Decode {
            path: path.display().to_string(),
            len: bytes.len(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io)?;
            create(dir, &path, Existing::Keep).map_err(io)
        }
        Err(e) => Err(io(e)),
    }
}

/// Generates a key and writes it to `path` in `dir` atomically.
fn create(dir: &Path, path: &Path, existing: Existing) -> std::io::Result<Keypair> {
    let key = Keypair::generate_ed25519();
    let bytes = key.to_protobuf_encoding().expect("ed25519 keys encode");
    private_file::write(dir, path, ".identity", &bytes, existing)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Only the identity file is in `dir`: no temp file stays behind.
    fn only_the_identity(dir: &Path) {
        let names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE]);
    }

    #[test]
    fn created_once_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.public(), b.public());
        assert_eq!(mode(&dir.path().join(FILE)), 0o600);
        only_the_identity(dir.path());
    }

    /// What a crash during the first start left: an empty file. It never
    /// held a key, so the node starts with a new one.
    #[test]
    fn an_empty_file_is_replaced_by_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, b"").unwrap();
        let key = load_or_create(dir.path()).unwrap();
        assert_eq!(load_or_create(dir.path()).unwrap().public(), key.public());
        assert_eq!(mode(&path), 0o600);
        only_the_identity(dir.path());
    }

    /// A file that is not empty but does not decode (damaged, truncated, or
    /// something else) is an error naming it, and is left untouched.
    #[test]
    fn a_damaged_file_is_an_error_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let key = load_or_create(dir.path()).unwrap();
        let whole = key.to_protobuf_encoding().unwrap();
        for junk in [&b"junk"[..], &whole[..whole.len() / 2]] {
            std::fs::write(&path, junk).unwrap();
            let e = load_or_create(dir.path()).unwrap_err();
            assert!(
                matches!(&e, IdentityError::Decode { len, .. } if *len == junk.len()),
                "{e}"
            );
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            assert_eq!(std::fs::read(&path).unwrap(), junk);
        }
    }
}
