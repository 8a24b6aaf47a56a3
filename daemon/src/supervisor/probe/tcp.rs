//! `tcp`: a connection to `host:port` is accepted.

pub async fn check(addr: &str) -> Result<(), String> {
    tokio::net::TcpStream::connect(addr).await.map(drop).map_err(|e| format!("cannot connect to {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn passes_once_something_listens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert!(super::check(&addr).await.is_ok());
        drop(listener);
        let err = super::check(&addr).await.unwrap_err();
        assert!(err.contains(&format!("cannot connect to {addr}")), "{err}");
    }
}
