//! Listeners. Accept loops only accept; each connection is handshaken, authenticated and served
//! by its own task.

mod connection;
pub mod dispatch;
pub mod peer;
pub mod secure;

use crate::mesh::Mesh;
use crate::supervisor::Supervisor;
use jsonrpsee::Methods;
use peer::Identity;
use pm_protocol::Connection;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every connection shares.
pub struct Shared {
    pub methods: Methods,
    pub mesh: Mesh,
    pub sup: Supervisor,
    /// Clients on tcp/tls/ws authenticate with this (or a sidecar's own token).
    pub daemon_token: String,
    pub max_frame: usize,
}

/// Serves a connection the daemon opened itself (to a sidecar's direct endpoint) like any
/// other; returns its id and the sender of frames to it.
pub fn adopt(
    conn: Connection,
    identity: Identity,
    shared: Arc<Shared>,
    closed: CancellationToken,
) -> (u64, tokio::sync::mpsc::Sender<String>) {
    let (peer, frames, writer) = connection::open(conn, identity, &shared);
    let handle = (peer.id, peer.out.clone());
    tokio::spawn(connection::read(peer, frames, writer, shared, closed));
    handle
}

/// Serves the Unix socket until `shutdown`. Only the daemon's own user may connect.
pub async fn serve_unix(
    listener: UnixListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let uid = nix::unistd::getuid().as_raw();
    loop {
        let (stream, _) = match accept(|| listener.accept(), &shutdown).await {
            Some(accepted) => accepted,
            None => return,
        };
        let (shared, closed) = (shared.clone(), shutdown.child_token());
        tracker.spawn(async move {
            match stream.peer_cred().map(|c| c.uid()) {
                Ok(peer) if peer == uid => {
                    let (read, write) = stream.into_split();
                    let conn = Connection::ndjson_halves(read, write, shared.max_frame);
                    connection::serve(conn, Identity::Owner, shared, closed).await
                }
                Ok(peer) => refuse(stream, &format!("uid {peer} may not use this daemon (owned by uid {uid})")).await,
                Err(e) => tracing::warn!("cannot check the peer of a connection: {e}"),
            }
        });
    }
}

/// Serves plain TCP until `shutdown`; clients authenticate with `pm.auth` first.
pub async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken, tracker: TaskTracker) {
    loop {
        let (stream, _) = match accept(|| listener.accept(), &shutdown).await {
            Some(accepted) => accepted,
            None => return,
        };
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let conn = Connection::ndjson_halves(read, write, shared.max_frame);
        tracker.spawn(connection::serve(conn, Identity::Anonymous, shared.clone(), shutdown.child_token()));
    }
}

/// Serves in-process connections (`memory://`), the way tasks reach the daemon. Only code in the
/// daemon's own process can connect, so, as on the Unix socket, the peer is the owner; a task
/// still calls `pm.auth` with its token to act as its sidecar.
pub async fn serve_memory(
    mut listener: pm_protocol::memory::MemoryListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            stream = listener.accept() => match stream {
                Some(stream) => stream,
                None => return,
            },
        };
        let conn = Connection::ndjson(stream, shared.max_frame);
        tracker.spawn(connection::serve(conn, Identity::Owner, shared.clone(), shutdown.child_token()));
    }
}

/// Waits for the next connection; `None` once shutting down. Accept errors (out of file
/// descriptors and the like) are logged and retried after a pause instead of spinning.
async fn accept<T, F>(mut next: impl FnMut() -> F, shutdown: &CancellationToken) -> Option<T>
where
    F: Future<Output = std::io::Result<T>>,
{
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            accepted = next() => match accepted {
                Ok(accepted) => return Some(accepted),
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Tells a client why it is refused, then closes.
async fn refuse<S: tokio::io::AsyncWrite + Unpin>(mut stream: S, reason: &str) {
    use tokio::io::AsyncWriteExt;
    tracing::warn!("refused a connection: {reason}");
    let line = dispatch::error_response(None, pm_protocol::ErrorCode::Unauthorized, reason) + "\n";
    let _ = stream.write_all(line.as_bytes()).await;
    let _ = stream.shutdown().await;
}
