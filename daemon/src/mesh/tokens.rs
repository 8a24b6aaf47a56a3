//! Secrets: the daemon's token (for tcp/tls/ws clients) and each sidecar's own token, which
//! lives as long as one run of its instance.

use pm_protocol::Definition;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What one run's PM_TOKEN stands for: its instance, and the definition it was started with
/// (whose `depends_on`, `calls` and `pm` say what the token may do).
#[derive(Debug)]
pub struct RunToken {
    pub instance: String,
    pub definition: Arc<Definition>,
    revoked: AtomicBool,
}

impl RunToken {
    pub fn new(instance: String, definition: Arc<Definition>) -> RunToken {
        RunToken { instance, definition, revoked: AtomicBool::new(false) }
    }

    /// Whether the run ended: a connection that authenticated with it can do nothing more.
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }

    pub(super) fn revoke(&self) {
        self.revoked.store(true, Ordering::Relaxed);
    }
}

/// 128 random bits as hex, from the kernel.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    // getrandom(2): no descriptor, so it works even when every one is taken, and one system
    // call per spawn instead of opening /dev/urandom; it never blocks once the system is up.
    getrandom::fill(&mut bytes).expect("the kernel's random source answers");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random value kept in a PM_HOME file (the daemon's token, the daemon's id), created (mode 0600)
/// on first use and the same for every later daemon of that PM_HOME.
pub fn kept_random(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let token = new_token();
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    writeln!(file, "{token}")?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_kept_random_value_is_created_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let first = super::kept_random(&path).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(super::kept_random(&path).unwrap(), first);
        assert_ne!(super::new_token(), super::new_token());
    }
}
