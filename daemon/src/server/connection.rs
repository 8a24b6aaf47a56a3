//! One client connection: frames in, answers, notifications and routed requests out. Requests
//! run concurrently; a slow call never blocks the connection.

use super::Shared;
use super::dispatch;
use super::peer::{Identity, Peer};
use futures::{SinkExt, StreamExt};
use pm_protocol::ErrorCode;
use pm_protocol::connection::{Connection, FrameError, Frames};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Serves one connection until the peer closes it, it breaks the framing, or `closed` fires.
pub async fn serve(conn: Connection, identity: Identity, shared: Arc<Shared>, closed: CancellationToken) {
    let (peer, frames, writer) = open(conn, identity, &shared);
    read(peer, frames, writer, shared, closed).await
}

/// Starts a connection's writer; returns its peer and what remains to read.
pub fn open(conn: Connection, identity: Identity, shared: &Shared) -> (Arc<Peer>, Frames, JoinHandle<()>) {
    let Connection { frames, mut sink } = conn;
    let (out, mut queue) = mpsc::channel::<String>(1024);
    let writer = tokio::spawn(async move {
        while let Some(msg) = queue.recv().await {
            // Flush when caught up, so bursts go out in few writes.
            let sent = if queue.is_empty() { sink.send(msg).await } else { sink.feed(msg).await };
            if sent.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    (Arc::new(Peer::new(shared.mesh.next_conn_id(), out, identity)), frames, writer)
}

/// How long a client on tcp/tls may take to authenticate before it is disconnected.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads and dispatches frames until the connection ends, then lets its answers drain.
pub async fn read(
    peer: Arc<Peer>,
    mut frames: Frames,
    writer: JoinHandle<()>,
    shared: Arc<Shared>,
    closed: CancellationToken,
) {
    let auth_deadline = tokio::time::sleep(AUTH_TIMEOUT);
    tokio::pin!(auth_deadline);
    loop {
        let frame = tokio::select! {
            _ = closed.cancelled() => break,
            _ = &mut auth_deadline, if peer.is_anonymous() => {
                let reason = format!("not authenticated within {AUTH_TIMEOUT:?}; closing the connection");
                let _ = peer.out.send(dispatch::error_response(None, ErrorCode::Unauthorized, &reason)).await;
                break;
            }
            frame = frames.next() => frame,
        };
        match frame {
            Some(Ok(text)) if !text.trim().is_empty() => dispatch::frame(text, &peer, &shared, &closed).await,
            Some(Ok(_)) => {}
            Some(Err(FrameError::TooLarge(max))) => {
                let reason = format!("frame longer than {max} bytes; closing the connection");
                let _ = peer.out.send(dispatch::error_response(None, ErrorCode::FrameTooLarge, &reason)).await;
                break;
            }
            Some(Err(FrameError::Malformed(why))) => {
                let reason = format!("{why}; closing the connection");
                let _ = peer.out.send(dispatch::error_response(None, ErrorCode::ParseError, &reason)).await;
                break;
            }
            Some(Err(e)) => {
                tracing::debug!("connection {} read error: {e}", peer.id);
                break;
            }
            None => break,
        }
    }
    shared.mesh.disconnected(peer.id).await;
    closed.cancel();
    // Pending answers still go out: their tasks hold clones of `out` until they are done.
    drop(peer);
    let _ = writer.await;
}
