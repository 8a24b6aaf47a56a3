//! Listeners. Accept loops only accept; each connection is served by its own task.

mod connection;
mod dispatch;

use jsonrpsee::Methods;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Serves the Unix socket until `shutdown`. Only the daemon's own user may connect.
pub async fn serve_unix(
    listener: UnixListener,
    methods: Methods,
    max_frame: usize,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let uid = nix::unistd::getuid().as_raw();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let peer = stream.peer_cred().map(|c| c.uid());
                let methods = methods.clone();
                let closed = shutdown.child_token();
                tracker.spawn(async move {
                    match peer {
                        Ok(peer) if peer == uid => connection::serve(stream, methods, max_frame, closed).await,
                        Ok(peer) => {
                            connection::refuse(
                                stream,
                                &format!("uid {peer} may not use this daemon (owned by uid {uid})"),
                            )
                            .await
                        }
                        Err(e) => tracing::warn!("cannot check the peer of a connection: {e}"),
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
