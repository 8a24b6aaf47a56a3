//! The environment: what pm gives each sidecar it spawns (`PM_NAME`, `PM_DAEMON`, `PM_TOKEN`),
//! and, for a developer's shell where those are unset, `PM_HOME`'s socket and token.

use crate::error::Error;
use crate::options::ClientOptions;
use pm_protocol::Endpoint;
use std::path::{Path, PathBuf};

/// The daemon's endpoint URL, set by pm for each sidecar.
pub const PM_DAEMON: &str = "PM_DAEMON";
/// The sidecar's own secret, set by pm for each sidecar.
pub const PM_TOKEN: &str = "PM_TOKEN";
/// The sidecar instance's name, set by pm for each sidecar.
pub const PM_NAME: &str = "PM_NAME";
/// The daemon's state directory (socket, token, state, logs).
pub const PM_HOME: &str = "PM_HOME";
/// A PEM file to trust for tls:// and wss:// daemons (e.g. a self-signed daemon certificate).
pub const PM_TLS_CA: &str = "PM_TLS_CA";

/// Where to reach the daemon and how, as the environment says.
#[derive(Clone)]
#[non_exhaustive]
pub struct DaemonEnv {
    /// `PM_DAEMON`, else `unix://$PM_HOME/pm.sock`.
    pub endpoint: Endpoint,
    /// `PM_TOKEN`, else (for transports that need one) the daemon's token from `PM_HOME/token`.
    pub token: Option<String>,
    /// `PM_TLS_CA`.
    pub tls_ca: Option<PathBuf>,
    /// `PM_NAME`: set when running as a pm sidecar.
    pub name: Option<String>,
}

impl std::fmt::Debug for DaemonEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonEnv")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls_ca", &self.tls_ca)
            .field("name", &self.name)
            .finish()
    }
}

impl DaemonEnv {
    /// Reads the process environment.
    pub fn read() -> Result<DaemonEnv, Error> {
        Self::resolve(None, &|key| std::env::var(key).ok(), &|path| std::fs::read_to_string(path).ok())
    }

    /// The token and TLS trust the environment gives for an endpoint chosen elsewhere.
    pub fn read_for(endpoint: &Endpoint) -> Result<DaemonEnv, Error> {
        Self::resolve(Some(endpoint), &|key| std::env::var(key).ok(), &|path| std::fs::read_to_string(path).ok())
    }

    /// What `read` does, from given variables and files (testable).
    fn resolve(
        endpoint: Option<&Endpoint>,
        var: &dyn Fn(&str) -> Option<String>,
        read: &dyn Fn(&Path) -> Option<String>,
    ) -> Result<DaemonEnv, Error> {
        let var = |key: &str| var(key).filter(|v| !v.trim().is_empty());
        let home = || pm_home_from(&var);
        let endpoint = match (endpoint, var(PM_DAEMON)) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, Some(url)) => {
                url.trim().parse().map_err(|source| Error::Endpoint { origin: format!("{PM_DAEMON}={url}"), source })?
            }
            (None, None) => Endpoint::Unix(home().join("pm.sock")),
        };
        let token = var(PM_TOKEN).map(|t| t.trim().to_string()).or_else(|| {
            needs_token(&endpoint)
                .then(|| read(&home().join("token")))
                .flatten()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        });
        Ok(DaemonEnv { endpoint, token, tls_ca: var(PM_TLS_CA).map(PathBuf::from), name: var(PM_NAME) })
    }

    /// Options carrying this environment's token and TLS trust.
    pub fn options(&self) -> ClientOptions {
        ClientOptions { token: self.token.clone(), tls_ca: self.tls_ca.clone(), ..ClientOptions::default() }
    }
}

/// `PM_HOME` as the daemon resolves it: `$PM_HOME`, else `$XDG_STATE_HOME/pm`, else
/// `~/.local/state/pm`.
pub fn pm_home() -> PathBuf {
    pm_home_from(&|key| std::env::var(key).ok().filter(|v| !v.is_empty()))
}

fn pm_home_from(var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    var(PM_HOME)
        .map(PathBuf::from)
        .or_else(|| var("XDG_STATE_HOME").map(|p| PathBuf::from(p).join("pm")))
        .or_else(|| var("HOME").map(|p| PathBuf::from(p).join(".local/state/pm")))
        .unwrap_or_else(|| PathBuf::from("/tmp/pm"))
}

/// Whether a transport refuses clients without a token (all but the Unix socket, whose peer
/// check identifies the owner).
///
/// ```
/// use pm_client::env::needs_token;
/// assert!(!needs_token(&"unix:///run/pm.sock".parse()?));
/// assert!(needs_token(&"tcp://127.0.0.1:7700".parse()?));
/// # Ok::<(), pm_client::jsonrpsee::core::BoxError>(())
/// ```
pub fn needs_token(endpoint: &Endpoint) -> bool {
    // Unix sockets check the peer's uid; memory:// exists only inside the daemon's process.
    !matches!(endpoint, Endpoint::Unix(_) | Endpoint::Memory(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)], files: &[(&str, &str)]) -> Result<DaemonEnv, Error> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let files: HashMap<PathBuf, String> = files.iter().map(|(k, v)| (PathBuf::from(k), v.to_string())).collect();
        DaemonEnv::resolve(None, &|k| vars.get(k).cloned(), &|p| files.get(p).cloned())
    }

    #[test]
    fn a_sidecar_uses_what_pm_gave_it() {
        let e = env(&[("PM_DAEMON", "unix:///run/pm/pm.sock"), ("PM_TOKEN", "abc"), ("PM_NAME", "b")], &[]).unwrap();
        assert_eq!(e.endpoint, Endpoint::Unix("/run/pm/pm.sock".into()));
        assert_eq!((e.token.as_deref(), e.name.as_deref()), (Some("abc"), Some("b")));
    }

    #[test]
    fn a_shell_falls_back_to_pm_home() {
        let e = env(&[("PM_HOME", "/h")], &[("/h/token", "daemon-token\n")]).unwrap();
        assert_eq!(e.endpoint, Endpoint::Unix("/h/pm.sock".into()));
        assert_eq!(e.token, None, "the Unix socket needs no token; the owner is known by uid");

        let e = env(&[("PM_HOME", "/h"), ("PM_DAEMON", "tcp://127.0.0.1:7700")], &[("/h/token", "t0k\n")]).unwrap();
        assert_eq!(e.token.as_deref(), Some("t0k"), "tcp needs one: the daemon's, from PM_HOME/token");

        let e = env(&[("XDG_STATE_HOME", "/x")], &[]).unwrap();
        assert_eq!(e.endpoint, Endpoint::Unix("/x/pm/pm.sock".into()));
    }

    #[test]
    fn a_bad_pm_daemon_is_named() {
        let err = env(&[("PM_DAEMON", "/tmp/pm.sock")], &[]).unwrap_err().to_string();
        assert!(err.starts_with("PM_DAEMON=/tmp/pm.sock: invalid endpoint"), "{err}");
    }
}
