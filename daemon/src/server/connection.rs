//! One client connection: frames in, answers, notifications and routed requests out through its
//! [`Outbox`]. Requests run concurrently; a slow call never blocks the connection, and a peer
//! that stops reading is dropped rather than waited for.

use super::Shared;
use super::dispatch;
use super::peer::{Identity, Peer};
use crate::outbox::Outbox;
use futures::StreamExt;
use pm_protocol::connection::{Connection, FrameError, Frames};
use pm_protocol::ndjson::FrameLimit;
use pm_protocol::{ErrorCode, wire};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Serves one connection until the peer closes it, it breaks the framing, it is dropped, or
/// `closed` fires. `frame_limit` bounds frames until the peer authenticates.
pub async fn serve(
    conn: Connection,
    identity: Identity,
    frame_limit: Option<FrameLimit>,
    shared: Arc<Shared>,
    closed: CancellationToken,
) {
    let (peer, frames, writer) = open(conn, identity, frame_limit, &shared);
    read(peer, frames, writer, shared, closed).await
}

/// Starts a connection's writer; returns its peer and what remains to read.
pub fn open(
    conn: Connection,
    identity: Identity,
    frame_limit: Option<FrameLimit>,
    shared: &Shared,
) -> (Arc<Peer>, Frames, JoinHandle<()>) {
    let Connection { frames, sink } = conn;
    let (out, writer) = Outbox::open(shared.mesh.next_conn_id(), sink);
    (Arc::new(Peer::new(out, identity, frame_limit, shared.limits.max_pm_requests)), frames, writer)
}

/// Reads and dispatches frames until the connection ends, then lets its answers drain.
pub async fn read(
    peer: Arc<Peer>,
    mut frames: Frames,
    writer: JoinHandle<()>,
    shared: Arc<Shared>,
    closed: CancellationToken,
) {
    dispatch_frames(&peer, &mut frames, &shared, &closed).await;
    shared.mesh.disconnected(peer.id);
    closed.cancel();
    // Pending answers still go out: their tasks hold the outbox until they are done.
    drop(peer);
    let _ = writer.await;
}

/// Dispatches frames until the peer closes, breaks the framing, is dropped, fails to
/// authenticate in time, or `closed` fires.
async fn dispatch_frames(peer: &Arc<Peer>, frames: &mut Frames, shared: &Arc<Shared>, closed: &CancellationToken) {
    let auth_timeout = shared.limits.auth_timeout;
    let auth_deadline = tokio::time::sleep(auth_timeout);
    // Made once, not per frame: each would register and unregister a waker.
    let (closing, dropped) = (closed.cancelled(), peer.out.dropped());
    tokio::pin!(auth_deadline, closing, dropped);
    // Frames first: while they come, the other branches (each a lock to poll) are not polled,
    // so they are checked here instead, the cheap ones on every frame.
    let mut frames_read = 0u32;
    loop {
        let frame = tokio::select! {
            biased;
            frame = frames.next() => frame,
            _ = &mut closing => return,
            _ = &mut dropped => return,
            _ = &mut auth_deadline, if peer.is_anonymous() => return unauthenticated(peer, auth_timeout),
        };
        frames_read = frames_read.wrapping_add(1);
        if peer.out.is_gone() || (frames_read.is_multiple_of(64) && closed.is_cancelled()) {
            return;
        }
        if peer.is_anonymous() && auth_deadline.is_elapsed() {
            return unauthenticated(peer, auth_timeout);
        }
        let why = match frame {
            Some(Ok(text)) if !text.trim().is_empty() => {
                dispatch::frame(text, peer, shared, closed).await;
                continue;
            }
            Some(Ok(_)) => continue,
            Some(Err(FrameError::TooLarge(max))) => {
                (ErrorCode::FrameTooLarge, format!("frame longer than {max} bytes; closing the connection"))
            }
            Some(Err(FrameError::Malformed(why))) => (ErrorCode::ParseError, format!("{why}; closing the connection")),
            Some(Err(e)) => {
                tracing::debug!("connection {} read error: {e}", peer.id);
                return;
            }
            None => return,
        };
        peer.out.answer(wire::error(None, why.0, &why.1));
        return;
    }
}

/// Closes the connection of a client that did not authenticate in time, whatever its queue
/// holds: it is not waited for.
fn unauthenticated(peer: &Peer, auth_timeout: std::time::Duration) {
    let why = format!("not authenticated within {auth_timeout:?}; closing the connection");
    let _ = peer.out.offer(wire::error(None, ErrorCode::Unauthorized, &why));
    peer.out.drop_peer(&why);
}
