//! `daemon.pid`, locked for the daemon's lifetime: a second daemon on the same PM_HOME refuses,
//! and a killed daemon's lock goes with it (the kernel drops it), so a stale pid file is harmless.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub struct PidLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another pm daemon is already running (pid {pid}) with PM_HOME {home}; `pm stop pm` stops it")]
    Held { pid: String, home: String },
    #[error("cannot lock {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl PidLock {
    pub fn acquire(path: &Path) -> Result<PidLock, LockError> {
        let io = |source| LockError::Io { path: path.display().to_string(), source };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(path).unwrap_or_default().trim().to_string();
                let home = path.parent().unwrap_or(path).display().to_string();
                return Err(LockError::Held { pid, home });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(PidLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_lock_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.pid");
        let _held = super::PidLock::acquire(&path).unwrap();
        let err = super::PidLock::acquire(&path).err().expect("second lock refused").to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
    }
}
