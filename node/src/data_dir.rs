//! One daemon per data dir: `DATA_DIR/lock`, locked for as long as the
//! node runs, names the process holding it, so a second `ipsr-node` or
//! `ipsr-gateway` started on the same folder says which process uses it
//! (instead of the store's "Database already open").

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in the data dir.
pub(crate) const LOCK_FILE: &str = "lock";

/// Most bytes of a lock file read to name its holder.
const MAX_HOLDER: u64 = 256;

/// Why the data dir could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Another process holds the lock.
    #[error(
        "another IPSR process ({holder}) uses the data dir {dir}; stop it, or give this one \
         another data dir (--data-dir)"
    )]
    InUse {
        /// The data dir.
        dir: PathBuf,
        /// What the holder wrote: `pid 1234, ipsr-gateway`.
        holder: String,
    },
    /// The lock file could not be made or locked.
    #[error("cannot lock the data dir {}: {source}", dir.display())]
    Io {
        /// The data dir.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The lock, held until dropped (or the process ends).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Locks `dir` (created if missing) for this process, and writes this
/// process's id and program name into the lock file.
pub(crate) fn lock(dir: &Path) -> Result<DirLock, DataDirError> {
    let io = |source| DataDirError::Io {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            // The holder's name is a courtesy: an unreadable one is
            // "another process" still.
            let _ = (&file).take(MAX_HOLDER).read_to_string(&mut text);
            return Err(DataDirError::InUse {
                dir: dir.to_owned(),
                holder: holder(&text),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    let program = std::env::args_os()
        .next()
        .and_then(|p| {
            Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    writeln!(file, "pid {}, {program}", std::process::id()).map_err(io)?;
    Ok(DirLock { _file: file })
}

/// The holder as the lock file names it, or "a process that gave no name".
fn holder(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let clean = !line.is_empty() && line.chars().all(|c| !c.is_control());
    if clean {
        line.to_owned()
    } else {
        "a process that gave no name".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_first_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(
            text.trim(),
            format!(
                "pid {}, {}",
                std::process::id(),
                std::env::args()
                    .next()
                    .map(|p| Path::new(&p)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned())
                    .unwrap()
            )
        );
        match lock(dir.path()) {
            Err(DataDirError::InUse { holder, .. }) => {
                assert_eq!(holder, text.trim())
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        // Free again, and the new holder's line replaces the old one.
        let _again = lock(dir.path()).unwrap();
        let again = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(again.lines().count(), 1);
    }

    #[test]
    fn a_holder_is_named_by_its_first_clean_line() {
        assert_eq!(holder("pid 7, ipsr-node\n"), "pid 7, ipsr-node");
        assert_eq!(holder(""), "a process that gave no name");
        assert_eq!(holder("\u{1b}[2J\n"), "a process that gave no name");
    }
}
