//! How to connect: the token, TLS trust, frame limit and timeouts.

use std::path::PathBuf;
use std::time::Duration;

/// How long a call may take by default. `pm.start` waits for readiness, which can be long;
/// sidecar calls end sooner, at the daemon's own deadline (30 s unless the call sets one).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// How long connecting, including the TLS or WebSocket handshake and `pm.auth`, may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of a connection. Build with [`ClientOptions::default`] and the setters:
///
/// ```
/// use std::time::Duration;
/// let opts = pm_client::ClientOptions::default()
///     .token("0123abcd")
///     .connect_timeout(Duration::from_secs(2));
/// assert_eq!(opts.token.as_deref(), Some("0123abcd"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The daemon's token (PM_HOME/token) or a sidecar's own PM_TOKEN. tcp:// and tls:// send
    /// it in a `pm.auth` call right after connecting, ws:// and wss:// in the handshake
    /// (`Authorization: Bearer`); on unix:// it is optional and makes the connection that
    /// sidecar's (the socket's peer check already makes it the owner's).
    pub token: Option<String>,
    /// PEM certificate(s) to trust for tls:// and wss:// (e.g. the daemon's self-signed one);
    /// none: the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// Longest frame sent or accepted, in bytes.
    pub max_frame: usize,
    /// Bound on connecting, handshakes and authentication.
    pub connect_timeout: Duration,
    /// Bound on one call, unless the call sets a deadline of its own.
    pub request_timeout: Duration,
    /// Notifications a subscription buffers before it is dropped, when they arrive faster
    /// than they are read (at most [`MAX_SUBSCRIPTION_BUFFER`]).
    pub subscription_buffer: usize,
}

/// Default of [`ClientOptions::subscription_buffer`].
pub const DEFAULT_SUBSCRIPTION_BUFFER: usize = 4096;
/// The largest subscription buffer (the channel's own bound is far above it).
pub const MAX_SUBSCRIPTION_BUFFER: usize = 1 << 28;

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            token: None,
            tls_ca: None,
            max_frame: pm_protocol::ndjson::DEFAULT_MAX_FRAME,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            subscription_buffer: DEFAULT_SUBSCRIPTION_BUFFER,
        }
    }
}

impl ClientOptions {
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn tls_ca(mut self, pem: impl Into<PathBuf>) -> Self {
        self.tls_ca = Some(pem.into());
        self
    }

    /// Buffers up to `n` notifications per subscription (for a reader that takes a long
    /// history at its own pace); kept within 1 and [`MAX_SUBSCRIPTION_BUFFER`] when connecting.
    pub fn subscription_buffer(mut self, n: usize) -> Self {
        self.subscription_buffer = n;
        self
    }

    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    // Field by field on a default, so that fields the transport gains later keep their defaults.
    #[allow(clippy::field_reassign_with_default)]
    pub(crate) fn transport(&self) -> pm_protocol::transport::ConnectOptions {
        let mut opts = pm_protocol::transport::ConnectOptions::default();
        opts.max_frame = self.max_frame;
        opts.token = self.token.clone();
        opts.tls_ca = self.tls_ca.clone();
        opts
    }
}

/// The token is a secret: never printed.
impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls_ca", &self.tls_ca)
            .field("max_frame", &self.max_frame)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_never_shows_the_token() {
        let text = format!("{:?}", super::ClientOptions::default().token("s3cret"));
        assert!(!text.contains("s3cret") && text.contains("<redacted>"), "{text}");
    }
}
