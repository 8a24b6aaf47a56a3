//! `daemon.pid`, locked for the daemon's lifetime: a second daemon on the same PM_HOME refuses,
//! and a killed daemon's lock goes with it (the kernel drops it), so a stale pid file is harmless.

use nix::sys::signal::kill;
use nix::unistd::Pid;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

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
                // A daemon killed while it was spawning leaves its lock, for a moment, with a
                // child between fork and exec: wait for that, never for a live daemon.
                if alive(&pid) || !released(&file).map_err(io)? {
                    let home = path.parent().unwrap_or(path).display().to_string();
                    return Err(LockError::Held { pid, home });
                }
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(PidLock { _file: file })
    }
}

/// How long a lock whose daemon is dead may stay held before the new daemon gives up.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Takes the lock once it is released, within [`RELEASE_WAIT`]; whether it was.
fn released(file: &File) -> std::io::Result<bool> {
    let deadline = Instant::now() + RELEASE_WAIT;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
    Ok(false)
}

/// Whether `pid` (as written in the pid file) is a live process; a zombie is dead.
fn alive(pid: &str) -> bool {
    let Ok(pid) = pid.parse::<i32>() else { return false };
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rfind(')').map(|at| stat[at + 1..].trim_start().starts_with('Z')))
        .unwrap_or(false);
    pid > 0 && kill(Pid::from_raw(pid), None).is_ok() && !zombie
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

    #[test]
    fn a_lock_left_with_the_child_of_a_dead_daemon_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.pid");
        // A "child" holding the lock after its daemon died: the lock is ours, the pid file names
        // a process that has exited.
        let held = super::PidLock::acquire(&path).unwrap();
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        dead.wait().unwrap();
        std::fs::write(&path, format!("{}\n", dead.id())).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(held);
        });
        let taken = super::PidLock::acquire(&path);
        release.join().unwrap();
        assert!(taken.is_ok(), "{:?}", taken.err().map(|e| e.to_string()));
    }
}
