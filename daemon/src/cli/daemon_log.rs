//! Rotation of daemon.log. A daemon started by `pm start` writes its log to its stderr (and
//! stdout), which is PM_HOME/daemon.log; once that file reaches the sidecar logs' size it is
//! rotated as theirs are (daemon.log.1, .2, …) and a fresh daemon.log takes the place of both
//! descriptors, so that everything written there later (a panic's message too) goes to it. A
//! daemon whose stderr is something else (a terminal, journald, a pipe) leaves it alone.

use crate::home::Home;
use crate::logs::Rotation;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

pub struct DaemonLog {
    path: PathBuf,
    rotation: Rotation,
    /// The file's size as this daemon has written it.
    size: u64,
}

impl DaemonLog {
    /// The rotation of daemon.log, if the daemon's stderr is that file and it rotates at all.
    pub fn of_stderr(home: &Home, rotation: Rotation) -> Option<DaemonLog> {
        if rotation.max_size == 0 {
            return None;
        }
        let path = home.daemon_log();
        let file = std::fs::metadata(&path).ok()?;
        let stderr = nix::sys::stat::fstat(std::io::stderr()).ok()?;
        let same = file.dev() == stderr.st_dev as u64 && file.ino() == stderr.st_ino as u64;
        same.then_some(DaemonLog { path, rotation, size: file.len() })
    }

    /// Counts a line written; rotates the file once it is due. Called with the log's lock
    /// held, so no line is written while it rotates.
    pub fn wrote(&mut self, bytes: usize) {
        self.size += bytes as u64;
        if !self.rotation.due(self.size) {
            return;
        }
        // A rotation that fails is tried again after as much again, not on every line.
        self.size = 0;
        if let Err(e) = self.rotate() {
            eprintln!("cannot rotate {}: {e}; it grows until it can", self.path.display());
        }
    }

    fn rotate(&self) -> std::io::Result<()> {
        self.rotation.rotate(&self.path)?;
        let fresh = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path)?;
        nix::unistd::dup2_stderr(&fresh)?;
        nix::unistd::dup2_stdout(&fresh)?;
        Ok(())
    }
}
