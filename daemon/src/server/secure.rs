//! The tls://, ws:// and wss:// listeners. As everywhere, the accept loops only accept: the TLS
//! and WebSocket handshakes run in each connection's own task, bounded by [`HANDSHAKE`], so a
//! slow or silent client never holds up the next one.

use super::peer::Identity;
use super::{Shared, accept, connection};
use crate::home::Home;
use pm_protocol::tls::TlsAcceptor;
use pm_protocol::ws;
use pm_protocol::{Connection, Endpoint};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest a client may take to finish the TLS and/or WebSocket handshake.
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// Where `pm tls-cert` writes, and where the daemon looks by default: `(cert.pem, key.pem)`
/// in PM_HOME/tls.
pub fn default_cert_paths(home: &Home) -> (PathBuf, PathBuf) {
    let dir = home.root().join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// The `host:port` to bind for a tcp://, tls://, ws:// or wss:// endpoint (a WebSocket
/// listener serves any path).
pub fn bind_addr(endpoint: &Endpoint) -> Option<&str> {
    match endpoint {
        Endpoint::Tcp(addr) | Endpoint::Tls(addr) => Some(addr),
        Endpoint::Ws(url) | Endpoint::Wss(url) => ws::authority(url).ok(),
        Endpoint::Unix(_) | Endpoint::Memory(_) => None,
    }
}

/// The host of a `host:port` (without the brackets of an IPv6 literal).
pub fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(host, _)| host).trim_start_matches('[').trim_end_matches(']')
}

/// Whether a host is this machine only: a loopback IP literal, or `localhost`.
pub fn is_loopback(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) || host.eq_ignore_ascii_case("localhost")
}

/// An acceptor from PEM files; errors name the file and what is wrong with it.
pub fn acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor, pm_protocol::tls::TlsError> {
    Ok(TlsAcceptor::from(pm_protocol::tls::server_config(cert, key)?))
}

/// Serves NDJSON over TLS until `shutdown`; clients authenticate with `pm.auth` first, as on tcp.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    while let Some((stream, from)) = accept(|| listener.accept(), &shutdown).await {
        // Over the limit: closed at once (a TLS client could not read a plain reason).
        let Some(slot) = shared.slot(&shared.remote, "tls") else { continue };
        let (acceptor, shared, closed) = (acceptor.clone(), shared.clone(), shutdown.child_token());
        tracker.spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            // A plaintext client (or a port scan) lands here: routine, hence debug.
            let Some(tls) = handshake(acceptor.accept(stream), &closed, "TLS", from).await else { return };
            let (read, write) = tokio::io::split(tls);
            let limit = shared.pre_auth_limit();
            let conn = Connection::ndjson_limited(read, write, shared.limits.max_frame, limit.clone());
            connection::serve(conn, Identity::Anonymous, Some(limit), shared, closed).await
        });
    }
}

/// Serves WebSocket (over TLS when `tls` is given) until `shutdown`. The upgrade request must
/// carry `Authorization: Bearer <token>` (the daemon's token or a sidecar's own); without a valid
/// one the upgrade is refused with `401 Unauthorized` and the reason as body, so no WebSocket is
/// ever opened for an unknown client.
pub async fn serve_ws(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    while let Some((stream, from)) = accept(|| listener.accept(), &shutdown).await {
        let Some(slot) = shared.slot(&shared.remote, "ws") else { continue };
        let (tls, shared, closed) = (tls.clone(), shared.clone(), shutdown.child_token());
        tracker.spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            let upgraded = async {
                match tls {
                    Some(acceptor) => upgrade(acceptor.accept(stream).await?, &shared).await,
                    None => upgrade(stream, &shared).await,
                }
            };
            let Some((conn, identity)) = handshake(upgraded, &closed, "WebSocket", from).await else { return };
            connection::serve(conn, identity, None, shared, closed).await
        });
    }
}

/// The WebSocket handshake over `stream`, deciding the identity from the bearer token.
async fn upgrade<S>(stream: S, shared: &Shared) -> std::io::Result<(Connection, Identity)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let check = |token: Option<&str>| match token {
        None => Err("missing `Authorization: Bearer <token>` (see `pm token`)".to_string()),
        Some(token) => super::session::identify(token, shared).ok_or_else(|| "invalid token".to_string()),
    };
    Ok(ws::accept_with(stream, shared.limits.max_frame, check).await?)
}

/// Runs a handshake under [`HANDSHAKE`], giving up at shutdown; failures are logged at debug.
async fn handshake<T>(
    work: impl Future<Output = std::io::Result<T>>,
    closed: &CancellationToken,
    what: &str,
    from: std::net::SocketAddr,
) -> Option<T> {
    let outcome = tokio::select! {
        _ = closed.cancelled() => return None,
        outcome = tokio::time::timeout(HANDSHAKE, work) => outcome,
    };
    match outcome {
        Ok(Ok(done)) => Some(done),
        // A refused token is worth the owner's attention; a botched handshake is routine.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            tracing::warn!("refused a {what} connection from {from}: {e}");
            None
        }
        Ok(Err(e)) => {
            tracing::debug!("{what} handshake with {from} failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!("{what} handshake with {from} took longer than {HANDSHAKE:?}; dropped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn binds_the_host_and_port_of_each_url() {
        let addr = |url: &str| super::bind_addr(&url.parse().unwrap()).map(str::to_string);
        assert_eq!(addr("tls://0.0.0.0:7701").as_deref(), Some("0.0.0.0:7701"));
        assert_eq!(addr("ws://127.0.0.1:7702/").as_deref(), Some("127.0.0.1:7702"));
        assert_eq!(addr("wss://[::1]:7703/rpc").as_deref(), Some("[::1]:7703"));
        assert_eq!(addr("unix:///tmp/pm.sock"), None);
    }
}
