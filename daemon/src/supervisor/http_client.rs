//! One plain HTTP/1.1 request to a `http://` URL, for http probes and webhooks: a connection per
//! request, and at most [`BODY_LIMIT`] of the answer's body kept. The caller bounds it in time.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use pm_protocol::health::http_target;

/// How much of an answer's body is read.
pub const BODY_LIMIT: usize = 64 * 1024;

/// An answer: its status, and its body when asked for (`None` past [`BODY_LIMIT`]).
pub struct Answer {
    pub status: u16,
    pub body: Option<Bytes>,
}

/// Sends `method` to `url` with `body` (JSON when not empty); reads the answer's body if
/// `read_body`. Errors name the URL.
pub async fn request(method: hyper::Method, url: &str, body: Vec<u8>, read_body: bool) -> Result<Answer, String> {
    let (host_port, path) = http_target(url)?;
    let stream =
        tokio::net::TcpStream::connect(&host_port).await.map_err(|e| format!("cannot connect to {host_port}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("{url}: {e}"))?;
    // The connection is driven beside the request, and ends with it.
    let _drive = AbortOnDrop(tokio::spawn(conn));
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host_port.as_str())
        .header(hyper::header::USER_AGENT, concat!("pm/", env!("CARGO_PKG_VERSION")));
    if !body.is_empty() {
        request = request.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let request = request.body(Full::new(Bytes::from(body))).map_err(|e| format!("{url}: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    if !read_body {
        return Ok(Answer { status, body: None });
    }
    let body = match Limited::new(response.into_body(), BODY_LIMIT).collect().await {
        Ok(body) => Some(body.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => None,
        Err(e) => return Err(format!("{url}: {e}")),
    };
    Ok(Answer { status, body })
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
