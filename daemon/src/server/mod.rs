//! Listeners. Accept loops only accept; each connection is handshaken, authenticated and served
//! by its own task.

mod connection;
pub mod dispatch;
mod limits;
pub mod peer;
pub mod secure;
pub mod session;

pub use limits::Limits;

use crate::mesh::Mesh;
use crate::outbox::Outbox;
use crate::supervisor::Supervisor;
use jsonrpsee::Methods;
use peer::Identity;
use pm_protocol::ndjson::FrameLimit;
use pm_protocol::{Connection, ErrorCode, wire};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every connection shares.
pub struct Shared {
    pub methods: Methods,
    pub mesh: Mesh,
    pub sup: Supervisor,
    /// Clients on tcp/tls/ws authenticate with this (or a sidecar's own token).
    pub daemon_token: String,
    pub limits: Limits,
    /// Connections over tcp, tls and ws(s) at once. The Unix socket and tasks have a pool of
    /// their own, so remote clients can never lock the owner out.
    remote: Arc<Semaphore>,
    local: Arc<Semaphore>,
}

impl Shared {
    pub fn new(methods: Methods, mesh: Mesh, sup: Supervisor, daemon_token: String, limits: Limits) -> Shared {
        let remote = Arc::new(Semaphore::new(limits.max_connections));
        let local = Arc::new(Semaphore::new(limits.max_connections));
        Shared { methods, mesh, sup, daemon_token, limits, remote, local }
    }

    /// A slot for one more connection from `pool`, or none when it is full.
    fn slot(&self, pool: &Arc<Semaphore>, transport: &str) -> Option<OwnedSemaphorePermit> {
        let slot = pool.clone().try_acquire_owned().ok();
        if slot.is_none() {
            tracing::warn!("refused a {transport} connection: {} are open (the limit)", self.limits.max_connections);
        }
        slot
    }

    /// A connection that starts anonymous is held to small frames until it authenticates.
    fn pre_auth_limit(&self) -> FrameLimit {
        FrameLimit::new(self.limits.pre_auth_frame.min(self.limits.max_frame))
    }
}

/// Serves a connection the daemon opened itself (to a sidecar's direct endpoint) like any
/// other; returns its outbox.
pub fn adopt(conn: Connection, identity: Identity, shared: Arc<Shared>, closed: CancellationToken) -> Arc<Outbox> {
    let (peer, frames, writer) = connection::open(conn, identity, None, &shared);
    let out = peer.out.clone();
    tokio::spawn(connection::read(peer, frames, writer, shared, closed));
    out
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
        let Some(slot) = shared.slot(&shared.local, "unix") else {
            refuse_now(&stream, "too many connections");
            continue;
        };
        let (shared, closed) = (shared.clone(), shutdown.child_token());
        tracker.spawn(async move {
            let _slot = slot;
            match stream.peer_cred().map(|c| c.uid()) {
                Ok(peer) if peer == uid => {
                    let (read, write) = stream.into_split();
                    let conn = Connection::ndjson_halves(read, write, shared.limits.max_frame);
                    connection::serve(conn, Identity::Owner, None, shared, closed).await
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
        let Some(slot) = shared.slot(&shared.remote, "tcp") else {
            refuse_now(&stream, "too many connections");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let limit = shared.pre_auth_limit();
        let conn = Connection::ndjson_limited(read, write, shared.limits.max_frame, limit.clone());
        let serve = connection::serve(conn, Identity::Anonymous, Some(limit), shared.clone(), shutdown.child_token());
        tracker.spawn(async move {
            let _slot = slot;
            serve.await
        });
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
        let Some(slot) = shared.slot(&shared.local, "in-memory") else { continue };
        let conn = Connection::ndjson(stream, shared.limits.max_frame);
        let serve = connection::serve(conn, Identity::Owner, None, shared.clone(), shutdown.child_token());
        tracker.spawn(async move {
            let _slot = slot;
            serve.await
        });
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
    let line = wire::error(None, ErrorCode::Unauthorized, reason) + "\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(line.as_bytes())).await;
    let _ = stream.shutdown().await;
}

/// Tells a client over the limit why, if its socket takes it at once, and closes (on drop).
fn refuse_now<S: TryWrite>(stream: &S, reason: &str) {
    let line = wire::error(None, ErrorCode::Busy, &format!("{reason}; try again later")) + "\n";
    let _ = stream.try_write(line.as_bytes());
}

/// Sockets that can be written without waiting.
trait TryWrite {
    fn try_write(&self, buf: &[u8]) -> std::io::Result<usize>;
}

impl TryWrite for tokio::net::TcpStream {
    fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
        tokio::net::TcpStream::try_write(self, buf)
    }
}

impl TryWrite for tokio::net::UnixStream {
    fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
        tokio::net::UnixStream::try_write(self, buf)
    }
}
