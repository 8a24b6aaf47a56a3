//! In-memory connections within one process (`memory://NAME`): how in-process tasks reach the
//! daemon that runs them, through the very same dispatch as a socket, with no socket.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

/// Bytes buffered in each direction of a connection.
const BUFFER: usize = 256 * 1024;

type Registry = Mutex<HashMap<String, mpsc::UnboundedSender<DuplexStream>>>;

fn registry() -> &'static Registry {
    static LISTENERS: OnceLock<Registry> = OnceLock::new();
    LISTENERS.get_or_init(Registry::default)
}

/// Accepts in-memory connections to one name, until dropped.
pub struct MemoryListener {
    name: String,
    incoming: mpsc::UnboundedReceiver<DuplexStream>,
}

/// Listens on `name`; fails if something in this process already does.
pub fn bind(name: &str) -> std::io::Result<MemoryListener> {
    let mut listeners = registry().lock().unwrap_or_else(|p| p.into_inner());
    if listeners.get(name).is_some_and(|tx| !tx.is_closed()) {
        return Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, format!("memory://{name} is in use")));
    }
    let (tx, incoming) = mpsc::unbounded_channel();
    listeners.insert(name.to_string(), tx);
    Ok(MemoryListener { name: name.to_string(), incoming })
}

/// Opens a connection to the listener on `name`.
pub fn connect(name: &str) -> std::io::Result<DuplexStream> {
    let listeners = registry().lock().unwrap_or_else(|p| p.into_inner());
    let refused =
        || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, format!("nothing listens on memory://{name}"));
    let tx = listeners.get(name).ok_or_else(refused)?;
    let (ours, theirs) = tokio::io::duplex(BUFFER);
    tx.send(theirs).map_err(|_| refused())?;
    Ok(ours)
}

impl MemoryListener {
    /// The next connection; `None` once nothing can connect any more.
    pub async fn accept(&mut self) -> Option<DuplexStream> {
        self.incoming.recv().await
    }
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        let mut listeners = registry().lock().unwrap_or_else(|p| p.into_inner());
        listeners.remove(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn connects_within_the_process_and_refuses_when_nothing_listens() {
        let mut listener = super::bind("test-a").unwrap();
        assert!(super::bind("test-a").is_err(), "one listener per name");
        let mut client = super::connect("test-a").unwrap();
        let mut server = listener.accept().await.unwrap();
        client.write_all(b"ping\n").await.unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping\n");
        drop(listener);
        let err = super::connect("test-a").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(err.to_string().contains("memory://test-a"));
    }
}
