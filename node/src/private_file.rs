//! Files only the node's user may read (the identity key, the API token),
//! written whole or not at all: into a temp file of mode 0600 in the same
//! dir, fsynced, renamed to its name, and the dir fsynced. A crash leaves
//! either no file or the whole one, never a part.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What [`write()`] does when the file exists by the time it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Fail (`AlreadyExists`): it may hold a secret written meanwhile.
    Keep,
    /// Replace it (the caller found it empty: it never held one).
    Replace,
}

/// Writes `bytes` to `path`, a file in `dir`, with mode 0600, atomically.
/// `prefix` names the temp file (`.identity`, `.api-token`).
pub fn write(
    dir: &Path,
    path: &Path,
    prefix: &str,
    bytes: &[u8],
    existing: Existing,
) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    match existing {
        Existing::Keep => tmp.persist_noclobber(path),
        Existing::Replace => tmp.persist(path),
    }
    .map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_private_whole_and_kept_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write(dir.path(), &path, ".secret", b"one", Existing::Keep).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = write(dir.path(), &path, ".secret", b"two", Existing::Keep).unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write(dir.path(), &path, ".secret", b"two", Existing::Replace).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"], "no temp file stays behind");
    }
}
