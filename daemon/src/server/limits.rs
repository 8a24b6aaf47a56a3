//! The bounds every connection is held to, so that no peer can make the daemon do or keep
//! unbounded work. Defaults here; `pm daemon --help` sets the main ones.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest frame of an authenticated connection.
    pub max_frame: usize,
    /// Longest frame before `pm.auth` succeeds (tcp and tls).
    pub pre_auth_frame: usize,
    /// How long a tcp/tls client may take to authenticate.
    pub auth_timeout: Duration,
    /// The longest deadline a routed call may ask for (`deadline_ms` above it is capped).
    pub max_deadline: Duration,
    /// Messages in one batch.
    pub max_batch: usize,
    /// Routed calls of one connection waiting for their answers.
    pub max_in_flight: usize,
    /// `pm.*` requests (and batches) of one connection running at once.
    pub max_pm_requests: usize,
    /// Subscriptions (`pm.logs`, `pm.events`) open at once on one connection.
    pub max_subscriptions: usize,
    /// Connections at once over tcp/tls/ws(s), and, separately, over the Unix socket.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: pm_protocol::ndjson::DEFAULT_MAX_FRAME,
            pre_auth_frame: 64 * 1024,
            auth_timeout: Duration::from_secs(10),
            max_deadline: Duration::from_secs(300),
            max_batch: pm_protocol::wire::MAX_BATCH,
            max_in_flight: 4096,
            max_pm_requests: 64,
            max_subscriptions: 64,
            max_connections: 1024,
        }
    }
}
