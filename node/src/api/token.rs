//! The API token: the secret every request must carry, as
//! `Authorization: Bearer TOKEN`, when the API is bound off loopback or was
//! given a token file (`docs/node-api.md`, "Authentication").
//!
//! A token is 16 to 256 visible ASCII characters (no spaces), read from a
//! file of at most 4 KiB whose surrounding white space (a final newline) is
//! ignored. The node's own, `DATA_DIR/api-token`, is 32 random bytes in hex,
//! created on first need with mode 0600 (`private_file`) and kept across
//! restarts. A token file others may read is warned about.
//!
//! Presented tokens are compared by their SHA-256 digests, byte for byte
//! with no early exit, so the time a refusal takes tells nothing of how
//! much of the token was right, nor its length.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::private_file::{self, Existing};

/// The token file the node creates in its data dir.
pub const TOKEN_FILE: &str = "api-token";

/// Fewest characters of a token.
const MIN_LEN: usize = 16;
/// Most characters of a token.
const MAX_LEN: usize = 256;
/// Most bytes of a token file read.
const MAX_FILE: u64 = 4096;

/// The secret that API requests must carry. Its `Debug` form does not show
/// it.
///
/// ```
/// let token = ipsr_node::ApiToken::new("0123456789abcdef0123").unwrap();
/// assert_eq!(token.bearer(), "Bearer 0123456789abcdef0123");
/// assert!(!format!("{token:?}").contains("0123"));
/// ```
#[derive(Clone)]
pub struct ApiToken {
    text: Arc<str>,
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

/// Why a text is not a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadToken {
    /// Nothing but white space.
    #[error("it is empty")]
    Empty,
    /// Fewer than 16 characters.
    #[error("it has {0} characters; a token needs at least {MIN_LEN}")]
    TooShort(usize),
    /// More than 256 characters.
    #[error("it is longer than {MAX_LEN} characters")]
    TooLong,
    /// A character that is not visible ASCII (`!` to `~`).
    #[error("a token may hold only visible ASCII characters, without spaces")]
    BadChar,
}

/// An error reading or creating a token file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Reading or writing the file failed.
    #[error("API token file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a token. It is left as it is.
    #[error("API token file {path} does not hold a token: {reason}")]
    Bad {
        /// The file.
        path: String,
        /// What is wrong with its text.
        reason: BadToken,
    },
}

impl ApiToken {
    /// The token `text`, without the white space around it.
    pub fn new(text: &str) -> Result<Self, BadToken> {
        let text = text.trim_ascii();
        if text.is_empty() {
            return Err(BadToken::Empty);
        }
        if text.len() > MAX_LEN {
            return Err(BadToken::TooLong);
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BadToken::BadChar);
        }
        if text.len() < MIN_LEN {
            return Err(BadToken::TooShort(text.len()));
        }
        Ok(Self {
            text: text.into(),
            digest: Sha256::digest(text.as_bytes()).into(),
        })
    }

    /// The token in the file at `path`. A file others may read is warned
    /// about.
    pub fn read(path: &Path) -> Result<Self, TokenError> {
        let io = |source| TokenError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mode = file.metadata().map_err(io)?.permissions().mode();
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        let bad = |reason| TokenError::Bad {
            path: path.display().to_string(),
            reason,
        };
        if bytes.len() as u64 > MAX_FILE {
            return Err(bad(BadToken::TooLong));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| bad(BadToken::BadChar))?;
        let token = Self::new(text).map_err(bad)?;
        if mode & 0o077 != 0 {
            warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the API token file may be read by other users; chmod 600 it"
            );
        }
        Ok(token)
    }

    /// The node's own token, `DATA_DIR/api-token`, created when missing (or
    /// empty), and its path. A file that holds no token is an error naming
    /// it, and is left as it is.
    pub fn load_or_create(data_dir: &Path) -> Result<(Self, PathBuf), TokenError> {
        let path = data_dir.join(TOKEN_FILE);
        let io = |source| TokenError::Io {
            path: path.display().to_string(),
            source,
        };
        let existing = match Self::read(&path) {
            Ok(token) => return Ok((token, path)),
            Err(TokenError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(io)?;
                Existing::Keep
            }
            Err(TokenError::Bad {
                reason: BadToken::Empty,
                ..
            }) => {
                warn!(path = %path.display(), "the API token file is empty; a new token is written");
                Existing::Replace
            }
            Err(e) => return Err(e),
        };
        let token = Self::generate().map_err(io)?;
        private_file::write(
            data_dir,
            &path,
            ".api-token",
            format!("{}\n", token.text).as_bytes(),
            existing,
        )
        .map_err(io)?;
        info!(path = %path.display(), "created the API token");
        Ok((token, path))
    }

    /// A new token: 32 random bytes in hex.
    fn generate() -> std::io::Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        Ok(Self::new(&hex::encode(bytes)).expect("64 hex digits are a token"))
    }

    /// The token itself, for a client to send.
    pub fn secret(&self) -> &str {
        &self.text
    }

    /// The `Authorization` header's value: `Bearer TOKEN`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.text)
    }

    /// Whether `presented` is this token, in a time that does not depend on
    /// where they differ.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let difference = self
            .digest
            .iter()
            .zip(presented)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_16_to_256_visible_characters() {
        let token = ApiToken::new("  0123456789abcdef\n").unwrap();
        assert_eq!(token.secret(), "0123456789abcdef");
        assert!(token.matches("0123456789abcdef"));
        for wrong in [
            "0123456789abcdeF",
            "0123456789abcde",
            "",
            "0123456789abcdef ",
        ] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
        assert_eq!(ApiToken::new(" \n").unwrap_err(), BadToken::Empty);
        assert_eq!(ApiToken::new("short").unwrap_err(), BadToken::TooShort(5));
        assert_eq!(
            ApiToken::new(&"x".repeat(257)).unwrap_err(),
            BadToken::TooLong
        );
        assert!(ApiToken::new(&"x".repeat(256)).is_ok());
        for bad in ["0123456789 abcdef", "0123456789abcdé", "0123456789abcdef\0"] {
            assert_eq!(
                ApiToken::new(bad).unwrap_err(),
                BadToken::BadChar,
                "{bad:?}"
            );
        }
        assert_eq!(format!("{token:?}"), "ApiToken(..)");
    }

    #[test]
    fn created_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (token, path) = ApiToken::load_or_create(&data).unwrap();
        assert_eq!(path, data.join(TOKEN_FILE));
        assert_eq!(token.secret().len(), 64);
        assert!(token.secret().bytes().all(|b| b.is_ascii_hexdigit()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, _) = ApiToken::load_or_create(&data).unwrap();
        assert_eq!(again.secret(), token.secret(), "kept across restarts");
        assert_eq!(ApiToken::read(&path).unwrap().secret(), token.secret());
        let (other, _) = ApiToken::load_or_create(dir.path()).unwrap();
        assert_ne!(other.secret(), token.secret(), "random");
    }

    #[test]
    fn an_empty_file_is_replaced_and_a_bad_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKEN_FILE);
        std::fs::write(&path, "\n").unwrap();
        let (token, _) = ApiToken::load_or_create(dir.path()).unwrap();
        assert_eq!(ApiToken::read(&path).unwrap().secret(), token.secret());

        std::fs::write(&path, "tooshort\n").unwrap();
        let e = ApiToken::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(
                &e,
                TokenError::Bad {
                    reason: BadToken::TooShort(8),
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"tooshort\n",
            "left as it is"
        );

        std::fs::write(&path, vec![b'x'; 5000]).unwrap();
        assert!(matches!(
            ApiToken::read(&path),
            Err(TokenError::Bad {
                reason: BadToken::TooLong,
                ..
            })
        ));
        let missing = ApiToken::read(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(missing, TokenError::Io { .. }), "{missing}");
    }
}
