//! WebSocket as a [`Connection`]: one JSON-RPC message per text frame. The handshake runs over
//! any byte stream (TCP, or TLS we set up ourselves), so tungstenite needs no TLS of its own.
//! Clients authenticate in the handshake with `Authorization: Bearer <token>`.

use crate::connection::{Connection, FrameError};
use futures::{SinkExt, StreamExt, future};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsErr};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::{Message, WebSocketConfig};

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("invalid WebSocket URL `{url}`: {why}")]
    Url { url: String, why: String },
    /// The server answered the upgrade with an HTTP error (401 for a missing or wrong token).
    #[error("the server refused the WebSocket upgrade: {status}{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Refused { status: StatusCode, reason: Option<String> },
    /// This server refused a client's upgrade (what [`accept_with`]'s check said).
    #[error("upgrade answered with 401 Unauthorized: {0}")]
    Unauthorized(String),
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
}

impl From<WsError> for std::io::Error {
    fn from(e: WsError) -> Self {
        let kind = match &e {
            WsError::Url { .. } => std::io::ErrorKind::InvalidInput,
            WsError::Refused { status, .. } if *status == StatusCode::UNAUTHORIZED => {
                std::io::ErrorKind::PermissionDenied
            }
            WsError::Unauthorized(_) => std::io::ErrorKind::PermissionDenied,
            WsError::Refused { .. } => std::io::ErrorKind::ConnectionRefused,
            WsError::Handshake(_) => std::io::ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, e)
    }
}

/// Bounds both a message and each of its frames, so an oversized message fails before it is
/// buffered.
fn config(max_frame: usize) -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(max_frame)).max_frame_size(Some(max_frame))
}

/// `host:port` of a ws:// or wss:// URL.
pub fn authority(url: &str) -> Result<&str, WsError> {
    let rest = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    match rest.split(['/', '?', '#']).next() {
        Some(auth) if auth.contains(':') => Ok(auth),
        _ => Err(WsError::Url { url: url.into(), why: "expected host:port".into() }),
    }
}

/// The client handshake over `stream` (already TLS for wss://), then a connection.
pub async fn connect<S>(url: &str, stream: S, token: Option<&str>, max_frame: usize) -> Result<Connection, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut request =
        url.into_client_request().map_err(|e| WsError::Url { url: url.to_string(), why: e.to_string() })?;
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| WsError::Handshake("the token is not a valid HTTP header value".into()))?;
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config(max_frame))).await {
        Ok((ws, _response)) => Ok(adapt(ws, max_frame)),
        Err(WsErr::Http(response)) => {
            let reason = response.body().as_deref().map(|b| String::from_utf8_lossy(b).trim().to_string());
            Err(WsError::Refused { status: response.status(), reason: reason.filter(|r| !r.is_empty()) })
        }
        Err(e) => Err(WsError::Handshake(e.to_string())),
    }
}

/// The server handshake: accepts any client and hands back its bearer token, if any.
pub async fn accept<S>(stream: S, max_frame: usize) -> Result<(Connection, Option<String>), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    accept_with(stream, max_frame, |token| Ok(token.map(str::to_string))).await
}

/// The server handshake, letting `check` decide from the bearer token (if any) before the
/// upgrade: `Err(reason)` answers `401 Unauthorized` with the reason as body, and no
/// WebSocket is opened.
pub async fn accept_with<S, T, F>(stream: S, max_frame: usize, check: F) -> Result<(Connection, T), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(Option<&str>) -> Result<T, String> + Unpin,
{
    let mut decided = None;
    // tungstenite's callback signature, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        match check(bearer(request)) {
            Ok(value) => {
                decided = Some(value);
                Ok(response)
            }
            Err(reason) => {
                let mut refusal = ErrorResponse::new(Some(reason));
                *refusal.status_mut() = StatusCode::UNAUTHORIZED;
                Err(refusal)
            }
        }
    };
    let result = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config(max_frame))).await;
    match (result, decided) {
        (Ok(ws), Some(value)) => Ok((adapt(ws, max_frame), value)),
        (Ok(_), None) => Err(WsError::Handshake("the upgrade was accepted without a decision".into())),
        (Err(WsErr::Http(response)), _) => Err(WsError::Unauthorized(
            response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().into(),
        )),
        (Err(e), _) => Err(WsError::Handshake(e.to_string())),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// What one WebSocket message means for the JSON-RPC stream.
enum Incoming {
    Frame(Result<String, FrameError>),
    Skip,
    End,
}

fn incoming(msg: Result<Message, WsErr>, max_frame: usize) -> Incoming {
    match msg {
        Ok(Message::Text(text)) => Incoming::Frame(Ok(text.as_str().to_owned())),
        Ok(Message::Binary(bytes)) => Incoming::Frame(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| FrameError::Malformed("binary message is not UTF-8 JSON".into())),
        ),
        // tungstenite answers pings itself; pongs and raw frames carry nothing for us.
        Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Incoming::Skip,
        Ok(Message::Close(_)) | Err(WsErr::ConnectionClosed | WsErr::AlreadyClosed) => Incoming::End,
        Err(WsErr::Capacity(CapacityError::MessageTooLong { .. })) => {
            Incoming::Frame(Err(FrameError::TooLarge(max_frame)))
        }
        Err(WsErr::Io(e)) => Incoming::Frame(Err(FrameError::Io(e))),
        Err(e) => Incoming::Frame(Err(FrameError::WebSocket(e.to_string()))),
    }
}

/// A WebSocket as a [`Connection`]: text (or UTF-8 binary) messages in, text messages out; a
/// Close ends the stream.
fn adapt<S>(ws: WebSocketStream<S>, max_frame: usize) -> Connection
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let frames = stream
        .map(move |msg| incoming(msg, max_frame))
        .take_while(|msg| future::ready(!matches!(msg, Incoming::End)))
        .filter_map(|msg| future::ready(if let Incoming::Frame(frame) = msg { Some(frame) } else { None }));
    let sink = sink
        .sink_map_err(|e| match e {
            WsErr::Io(e) => FrameError::Io(e),
            e => FrameError::WebSocket(e.to_string()),
        })
        .with(|text: String| future::ready(Ok::<_, FrameError>(Message::text(text))));
    Connection { frames: frames.boxed(), sink: Box::pin(sink) }
}

#[cfg(test)]
mod tests {
    use super::{authority, bearer};
    use tokio_tungstenite::tungstenite::handshake::server::Request;

    #[test]
    fn finds_the_authority_of_a_url() {
        assert_eq!(authority("ws://h:1/").unwrap(), "h:1");
        assert_eq!(authority("wss://[::1]:7703/rpc?x#y").unwrap(), "[::1]:7703");
        assert_eq!(authority("ws://h:1").unwrap(), "h:1");
        assert!(authority("ws:///path").is_err());
    }

    #[test]
    fn reads_a_bearer_token_in_any_case() {
        let with = |value: &str| Request::builder().header("authorization", value).body(()).unwrap();
        assert_eq!(bearer(&with("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&with("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&with("Basic abc")), None);
        assert_eq!(bearer(&with("Bearer ")), None);
        assert_eq!(bearer(&Request::builder().body(()).unwrap()), None);
    }
}
