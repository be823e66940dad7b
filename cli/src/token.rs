//! The node's API token, for a node that requires one (an API bound off
//! loopback, or started with `--api-token-file`; `docs/node-api.md`,
//! "Authentication"): from `--node-token-file FILE`, else the file named by
//! `IPSR_NODE_TOKEN_FILE`, else the token itself in `IPSR_NODE_TOKEN`. It is
//! sent to the node only, as `Authorization: Bearer TOKEN`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Most bytes of a token file read.
const MAX_FILE: u64 = 4096;

/// A token to send the node. Its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct NodeToken(String);

impl std::fmt::Debug for NodeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeToken(..)")
    }
}

impl NodeToken {
    /// `--node-token-file` (`flag`), else `IPSR_NODE_TOKEN_FILE` or
    /// `IPSR_NODE_TOKEN` (`env` reads a variable; empty counts as unset;
    /// both set is a usage error), else none.
    pub(crate) fn resolve(
        flag: Option<PathBuf>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>> {
        if let Some(path) = flag {
            return Self::read(&path, "--node-token-file").map(Some);
        }
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        match (var("IPSR_NODE_TOKEN_FILE"), var("IPSR_NODE_TOKEN")) {
            (Some(_), Some(_)) => Err(Error::Usage(
                "IPSR_NODE_TOKEN_FILE and IPSR_NODE_TOKEN are both set; unset one".into(),
            )),
            (Some(path), None) => Self::read(Path::new(&path), "IPSR_NODE_TOKEN_FILE").map(Some),
            (None, Some(token)) => Self::new(&token, "IPSR_NODE_TOKEN").map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The token in the file at `path`, named by `source`.
    fn read(path: &Path, source: &str) -> Result<Self> {
        let what = format!("{source} {}", path.display());
        let file = std::fs::File::open(path).map_err(|e| Error::io(&what, e))?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&what, e))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(Error::Usage(format!(
                "{what}: over {}; it is not a token file",
                crate::output::bytes(MAX_FILE)
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::Usage(format!("{what}: not text; it is not a token file")))?;
        Self::new(&text, &what)
    }

    /// The token `text` without the white space around it (a final
    /// newline); `what` names where it came from.
    fn new(text: &str, what: &str) -> Result<Self> {
        let token = text.trim_ascii();
        if token.is_empty() {
            return Err(Error::Usage(format!("{what}: the token is empty")));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Usage(format!(
                "{what}: a token holds only visible ASCII characters, without spaces"
            )));
        }
        Ok(Self(token.to_owned()))
    }

    /// The token itself.
    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_flag_wins_then_one_variable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-the-file\n").unwrap();
        let both = env(&[
            ("IPSR_NODE_TOKEN_FILE", "/nonexistent"),
            ("IPSR_NODE_TOKEN", "from-the-variable"),
        ]);
        let flagged = NodeToken::resolve(Some(file.clone()), both)
            .unwrap()
            .unwrap();
        assert_eq!(flagged.secret(), "from-the-file");
        let both = env(&[
            ("IPSR_NODE_TOKEN_FILE", "/nonexistent"),
            ("IPSR_NODE_TOKEN", "from-the-variable"),
        ]);
        assert!(matches!(
            NodeToken::resolve(None, both),
            Err(Error::Usage(_))
        ));
        let value = NodeToken::resolve(None, env(&[("IPSR_NODE_TOKEN", " from-the-variable\n")]));
        assert_eq!(value.unwrap().unwrap().secret(), "from-the-variable");
        let empty = env(&[("IPSR_NODE_TOKEN", ""), ("IPSR_NODE_TOKEN_FILE", "")]);
        assert_eq!(NodeToken::resolve(None, empty).unwrap(), None);
        assert_eq!(NodeToken::resolve(None, env(&[])).unwrap(), None);
    }

    #[test]
    fn a_file_that_holds_no_token_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        for bad in [&b"\n"[..], b"two words", b"\xff\xfe", &[b'x'; 5000]] {
            std::fs::write(&file, bad).unwrap();
            let e = NodeToken::resolve(Some(file.clone()), env(&[])).unwrap_err();
            assert!(
                matches!(&e, Error::Usage(m) if m.contains("--node-token-file")),
                "{e}"
            );
        }
        let missing = NodeToken::resolve(Some(dir.path().join("missing")), env(&[]));
        assert!(matches!(missing, Err(Error::Usage(_))));
        assert_eq!(
            format!("{:?}", NodeToken::new("secret", "x").unwrap()),
            "NodeToken(..)"
        );
    }
}
