//! Size-based rotation of log files: once `<name>.log` reaches the limit it becomes
//! `<name>.log.1`, `.1` becomes `.2`, and so on; the oldest beyond the kept count is deleted. A
//! log writer rotates between whole blocks of lines, so no line is split across two files and
//! none is lost; `pm log` reads the rotated files too.

use std::io;
use std::path::{Path, PathBuf};

/// At most this many rotated files are kept: each rotation renames all of them.
pub const MAX_KEEP: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// The size at which a file is rotated; 0: never (the file grows without bound).
    pub max_size: u64,
    /// Rotated files kept besides the current one (0: the current one is deleted instead).
    pub keep: u32,
}

impl Default for Rotation {
    /// 10 MiB, and 5 older files: a sidecar's stream takes at most about 60 MiB of disk.
    fn default() -> Self {
        Rotation { max_size: 10 << 20, keep: 5 }
    }
}

impl Rotation {
    /// Whether a file of `size` bytes is due.
    pub fn due(&self, size: u64) -> bool {
        self.max_size > 0 && size >= self.max_size
    }

    /// Moves `path` and its rotated files one step older, deleting the oldest beyond `keep`.
    /// A writer that still holds `path` open must reopen it.
    pub fn rotate(&self, path: &Path) -> io::Result<()> {
        let keep = self.keep.min(MAX_KEEP);
        gone_is_fine(std::fs::remove_file(rotated(path, keep.max(1))))?;
        if keep == 0 {
            return gone_is_fine(std::fs::remove_file(path));
        }
        for k in (1..keep).rev() {
            gone_is_fine(std::fs::rename(rotated(path, k), rotated(path, k + 1)))?;
        }
        std::fs::rename(path, rotated(path, 1))
    }
}

/// The file `k` rotations older than `path` (`path` itself for 0).
pub fn rotated(path: &Path, k: u32) -> PathBuf {
    match k {
        0 => path.to_path_buf(),
        k => {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{k}"));
            PathBuf::from(name)
        }
    }
}

/// Empties the log file `path` (cut to nothing: a writer appending to it goes on) and deletes
/// its rotated files; the files it emptied or deleted.
pub fn flush(path: &Path) -> Result<Vec<PathBuf>, String> {
    let mut flushed = Vec::new();
    let failed = |what: &str, path: &Path, e: io::Error| format!("cannot {what} {}: {e}", path.display());
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(file) => {
            file.set_len(0).map_err(|e| failed("empty", path, e))?;
            flushed.push(path.to_path_buf());
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed("open", path, e)),
    }
    // Up to the first gap, as `pm log` reads them.
    for k in 1..=MAX_KEEP {
        let old = rotated(path, k);
        match std::fs::remove_file(&old) {
            Ok(()) => flushed.push(old),
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(failed("delete", &old, e)),
        }
    }
    Ok(flushed)
}

fn gone_is_fine(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_move_one_older_and_the_oldest_beyond_keep_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.out.log");
        let rotation = Rotation { max_size: 10, keep: 2 };
        for round in 1..=4 {
            std::fs::write(&path, format!("round {round}")).unwrap();
            rotation.rotate(&path).unwrap();
        }
        assert!(!path.exists(), "the writer makes the next one");
        assert_eq!(std::fs::read_to_string(rotated(&path, 1)).unwrap(), "round 4");
        assert_eq!(std::fs::read_to_string(rotated(&path, 2)).unwrap(), "round 3");
        assert!(!rotated(&path, 3).exists(), "only two are kept");
        std::fs::write(&path, "x").unwrap();
        Rotation { max_size: 10, keep: 0 }.rotate(&path).unwrap();
        assert!(!path.exists(), "keep = 0: the file goes");
        assert!(rotation.due(10) && !rotation.due(9) && !Rotation { max_size: 0, keep: 5 }.due(u64::MAX));
    }
}
