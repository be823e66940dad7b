//! Sizes on disk.

use std::path::Path;

/// Bytes of the files under `dir` (every level; symbolic links are not
/// followed); 0 when it does not exist.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&entry.path()),
            Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_at_every_level() {
        let dir = std::env::temp_dir().join(format!("ipsr-dir-bytes-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a"), [0u8; 10]).unwrap();
        std::fs::write(dir.join("sub/b"), [0u8; 5]).unwrap();
        let (bytes, missing) = (dir_bytes(&dir), dir_bytes(&dir.join("missing")));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((bytes, missing), (15, 0));
    }
}
