//! Direct mode: the sidecar also listens on an endpoint of its own, and the daemon (and, after
//! `pm connect`, other sidecars) connect there to call it. Serves unix:// and tcp://; a tcp://
//! port 0 is resolved to the port the system picked before it is registered.
//!
//! Anyone who can connect may call: bind to a private place (a Unix socket in a private
//! directory, or 127.0.0.1).

use super::responder::Responder;
use crate::error::Error;
use futures::StreamExt;
use jsonrpsee::Methods;
use pm_protocol::{Connection, Endpoint};
use tokio::task::{JoinHandle, JoinSet};

/// The listener; dropping it stops accepting and closes every connection it accepted.
pub(crate) struct Direct {
    /// The URL to register: where it really listens.
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for Direct {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How each accepted connection is served.
#[derive(Clone)]
pub(crate) struct Serving {
    pub methods: Methods,
    pub max_concurrent: usize,
    pub max_frame: usize,
}

pub(crate) async fn listen(endpoint: &Endpoint, serving: Serving) -> Result<Direct, Error> {
    let fail = |why: String| Error::Listen { endpoint: endpoint.to_string(), why };
    let (listener, url) = match endpoint {
        Endpoint::Unix(path) => {
            if path.exists() {
                // A live socket is someone's; a dead one is a leftover of ours.
                if tokio::net::UnixStream::connect(path).await.is_ok() {
                    return Err(fail("something already listens there".into()));
                }
                std::fs::remove_file(path).map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
            }
            let listener = tokio::net::UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
            (Listener::Unix(listener), endpoint.to_string())
        }
        Endpoint::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| fail(e.to_string()))?;
            let url = listener.local_addr().map_or_else(|_| endpoint.to_string(), |local| format!("tcp://{local}"));
            (Listener::Tcp(listener), url)
        }
        _ => return Err(fail("direct calls are served on unix:// or tcp:// endpoints only".into())),
    };
    tracing::info!("serving direct calls on {url}");
    let task = tokio::spawn(accept_loop(listener, url.clone(), serving));
    Ok(Direct { url, task })
}

enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    async fn accept(&self, max_frame: usize) -> std::io::Result<Connection> {
        match self {
            Listener::Unix(l) => Ok(Connection::ndjson(l.accept().await?.0, max_frame)),
            Listener::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                stream.set_nodelay(true)?;
                Ok(Connection::ndjson(stream, max_frame))
            }
        }
    }
}

/// Accepts until dropped; each connection is served by a task of the set, which dies with it.
async fn accept_loop(listener: Listener, url: String, serving: Serving) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(serving.max_frame) => match accepted {
                Ok(conn) => {
                    connections.spawn(serve_connection(conn, serving.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!("accepting on {url} failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Answers one direct connection until its peer closes it.
async fn serve_connection(conn: Connection, serving: Serving) {
    let Connection { mut frames, sink } = conn;
    let responder = Responder::new(sink, serving.methods, serving.max_concurrent, serving.max_frame);
    while let Some(frame) = frames.next().await {
        match frame {
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => responder.handle(text).await,
            Err(e) => {
                tracing::debug!("direct connection: {e}");
                break;
            }
        }
    }
}
