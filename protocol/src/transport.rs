//! The client side: jsonrpsee's client over any [`Connection`], and connecting to an endpoint.

use crate::connection::{Connection, FrameError, FrameSink, Frames};
use crate::endpoint::Endpoint;
use futures::{SinkExt, StreamExt};
use jsonrpsee::core::client::{Client, ClientBuilder, ReceivedMessage, TransportReceiverT, TransportSenderT};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connection closed by the peer")]
    Closed,
    #[error("connection error: {0}")]
    Frame(#[from] FrameError),
}

pub struct Sender {
    sink: FrameSink,
}

pub struct Receiver {
    frames: Frames,
}

impl TransportSenderT for Sender {
    type Error = TransportError;

    async fn send(&mut self, msg: String) -> Result<(), Self::Error> {
        Ok(self.sink.send(msg).await?)
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        Ok(self.sink.close().await?)
    }
}

impl TransportReceiverT for Receiver {
    type Error = TransportError;

    async fn receive(&mut self) -> Result<ReceivedMessage, Self::Error> {
        match self.frames.next().await {
            Some(Ok(text)) => Ok(ReceivedMessage::Text(text)),
            Some(Err(e)) => Err(e.into()),
            None => Err(TransportError::Closed),
        }
    }
}

/// A jsonrpsee client over a connection.
pub fn client_over(conn: Connection, request_timeout: Duration) -> Client {
    ClientBuilder::default()
        .request_timeout(request_timeout)
        .max_buffer_capacity_per_subscription(4096)
        .build_with_tokio(Sender { sink: conn.sink }, Receiver { frames: conn.frames })
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Longest frame accepted.
    pub max_frame: usize,
    /// Sent as `Authorization: Bearer` in the WebSocket handshake (stream transports
    /// authenticate with a `pm.auth` call instead, after connecting).
    pub token: Option<String>,
    /// PEM certificate(s) to trust for tls:// and wss:// (e.g. the daemon's self-signed one);
    /// none: the system's roots.
    pub tls_ca: Option<std::path::PathBuf>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { max_frame: crate::ndjson::DEFAULT_MAX_FRAME, token: None, tls_ca: None }
    }
}

/// Opens a connection to an endpoint.
pub async fn connect(endpoint: &Endpoint, opts: &ConnectOptions) -> std::io::Result<Connection> {
    let max_frame = opts.max_frame;
    match endpoint {
        Endpoint::Unix(path) => {
            let (read, write) = tokio::net::UnixStream::connect(path).await?.into_split();
            Ok(Connection::ndjson_halves(read, write, max_frame))
        }
        Endpoint::Memory(name) => Ok(Connection::ndjson(crate::memory::connect(name)?, max_frame)),
        Endpoint::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (read, write) = stream.into_split();
            Ok(Connection::ndjson_halves(read, write, max_frame))
        }
        Endpoint::Tls(_) | Endpoint::Ws(_) | Endpoint::Wss(_) => {
            use crate::{tls, ws};
            // Names the endpoint and, for an untrusted certificate, the trust that was used.
            let context = |e: std::io::Error| {
                let trust = match &opts.tls_ca {
                    Some(ca) => format!("this client trusts only {}", ca.display()),
                    None => "this client trusts the system's roots".into(),
                };
                let untrusted =
                    e.get_ref().and_then(|e| e.downcast_ref::<tls::HandshakeFailed>()).is_some_and(|h| h.untrusted());
                let hint = match untrusted {
                    true => format!(" ({trust}: give the server's CA, or its self-signed cert.pem, as the CA file)"),
                    false => String::new(),
                };
                std::io::Error::new(e.kind(), format!("{endpoint}: {e}{hint}"))
            };
            let tls_config = || tls::client_config(opts.tls_ca.as_deref()).map_err(std::io::Error::other);
            let token = opts.token.as_deref();
            match endpoint {
                Endpoint::Tls(addr) => {
                    let stream = tls::connect_tls(addr, tls_config()?).await.map_err(context)?;
                    Ok(Connection::ndjson(stream, max_frame))
                }
                Endpoint::Ws(url) => {
                    let stream = tokio::net::TcpStream::connect(ws::authority(url)?).await.map_err(context)?;
                    stream.set_nodelay(true)?;
                    ws::connect(url, stream, token, max_frame).await.map_err(|e| context(e.into()))
                }
                _ => {
                    // wss://, the only one left.
                    let url = endpoint.to_string();
                    let stream = tls::connect_tls(ws::authority(&url)?, tls_config()?).await.map_err(context)?;
                    ws::connect(&url, stream, token, max_frame).await.map_err(|e| context(e.into()))
                }
            }
        }
    }
}
