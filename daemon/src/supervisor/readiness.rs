//! Readiness probes that poll (the log readiness is fed by the log pump instead).

use futures::future::BoxFuture;
use std::time::Duration;

/// Resolves once a TCP connection to `addr` succeeds; the caller bounds it with the ready timeout.
pub fn tcp(addr: String) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let mut pause = Duration::from_millis(10);
        loop {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    })
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn tcp_probe_resolves_once_something_listens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let mut probe = super::tcp(addr.clone());
        let early = tokio::time::timeout(std::time::Duration::from_millis(100), &mut probe).await;
        assert!(early.is_err(), "nothing listens yet");
        let _listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), probe).await.expect("ready once listening");
    }
}
