//! `http`: a GET of a plain http:// URL answers 2xx–3xx (or the expected status), with the
//! expected text in the first 64 KiB of the body if one is given.

use crate::supervisor::http_client::{self, BODY_LIMIT};
use pm_protocol::HttpProbe;

pub async fn check(probe: &HttpProbe) -> Result<(), String> {
    let url = &probe.url;
    let answer = http_client::request(hyper::Method::GET, url, Vec::new(), probe.body.is_some()).await?;
    let status = answer.status;
    let status_ok = match probe.status {
        Some(want) => status == want,
        None => (200..400).contains(&status),
    };
    if !status_ok {
        let want = probe.status.map_or("2xx or 3xx".to_string(), |s| s.to_string());
        return Err(format!("{url} answered {status} (expected {want})"));
    }
    let Some(text) = &probe.body else { return Ok(()) };
    let Some(body) = answer.body else {
        return Err(format!("{url}: the body is over {} KiB before `{text}` was found", BODY_LIMIT / 1024));
    };
    if String::from_utf8_lossy(&body).contains(text.as_str()) {
        Ok(())
    } else {
        Err(format!("{url} answered {status} without `{text}` in its body"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every request with `response`, for as long as the test runs.
    async fn serve(response: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        format!("http://{addr}/healthz")
    }

    fn probe(url: String, status: Option<u16>, body: Option<&str>) -> HttpProbe {
        HttpProbe::new(url, status, body.map(str::to_string)).unwrap()
    }

    #[tokio::test]
    async fn status_and_body_decide() {
        let ok = serve("HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nall ok\n").await;
        assert_eq!(check(&probe(ok.clone(), None, None)).await, Ok(()));
        assert_eq!(check(&probe(ok.clone(), None, Some("all ok"))).await, Ok(()));
        let err = check(&probe(ok.clone(), None, Some("ready"))).await.unwrap_err();
        assert!(err.contains("without `ready` in its body"), "{err}");
        let err = check(&probe(ok, Some(204), None)).await.unwrap_err();
        assert!(err.contains("answered 200 (expected 204)"), "{err}");

        let failing = serve("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n").await;
        let err = check(&probe(failing, None, None)).await.unwrap_err();
        assert!(err.ends_with("answered 500 (expected 2xx or 3xx)"), "{err}");
        let moved = serve("HTTP/1.1 302 Found\r\nlocation: /x\r\ncontent-length: 0\r\n\r\n").await;
        assert_eq!(check(&probe(moved, None, None)).await, Ok(()));
    }

    #[tokio::test]
    async fn garbage_and_silence_are_failures_not_hangs() {
        let garbage = serve("SSH-2.0-OpenSSH\r\n").await;
        assert!(check(&probe(garbage, None, None)).await.is_err());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let err = check(&probe(closed, None, None)).await.unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
    }
}
