//! PM_HOME and the files in it (DESIGN §3).

use std::path::{Path, PathBuf};

/// The daemon's state directory: socket, state file, logs, pid file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    /// `$PM_HOME`, else `$XDG_STATE_HOME/pm`, else `~/.local/state/pm`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = var("PM_HOME")
            .or_else(|| var("XDG_STATE_HOME").map(|p| p.join("pm")))
            .or_else(|| var("HOME").map(|p| p.join(".local/state/pm")))
            .unwrap_or_else(|| PathBuf::from("/tmp/pm"));
        Home::new(root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn socket(&self) -> PathBuf {
        self.root.join("pm.sock")
    }
    pub fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }
    pub fn state_backup(&self) -> PathBuf {
        self.root.join("state.json.bak")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn log_file(&self, instance: &str, stream: pm_protocol::LogStream) -> PathBuf {
        self.logs().join(format!("{instance}.{}.log", stream.file_suffix()))
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }
    pub fn token(&self) -> PathBuf {
        self.root.join("token")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("daemon.pid")
    }
    /// The daemon's identity: a random id, the same for every daemon of this PM_HOME, that marks
    /// what it spawns (processes, containers) so a later daemon finds what an earlier one left.
    pub fn id_file(&self) -> PathBuf {
        self.root.join("id")
    }

    /// Creates the directories, private to the user.
    pub fn create(&self) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(self.logs())
    }

    /// Makes the files in it private (0600): state, backups, logs and daemon.log hold sidecars'
    /// env and output, and older versions or other tools may have left them readable. Returns a
    /// warning when the directory itself is open to the group or others.
    pub fn secure(&self) -> std::io::Result<Option<String>> {
        use std::os::unix::fs::PermissionsExt;
        for dir in [self.root.clone(), self.logs()] {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let meta = entry.metadata()?;
                if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
                }
            }
        }
        let mode = std::fs::metadata(&self.root)?.permissions().mode() & 0o777;
        Ok((mode & 0o077 != 0).then(|| {
            format!(
                "PM_HOME {} is accessible to other users (mode {mode:o}): `chmod 700 {}` to keep sockets and state private",
                self.root.display(),
                self.root.display()
            )
        }))
    }
}
