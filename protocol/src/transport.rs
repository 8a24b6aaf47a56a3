//! The client side of a stream connection: jsonrpsee's client over NDJSON on any byte stream
//! (Unix socket today; TCP and TLS streams plug in the same way).

use crate::ndjson;
use futures::{SinkExt, StreamExt};
use jsonrpsee::core::client::{Client, ClientBuilder, ReceivedMessage, TransportReceiverT, TransportSenderT};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec, LinesCodecError};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connection closed by the daemon")]
    Closed,
    #[error("connection error: {0}")]
    Codec(#[from] LinesCodecError),
}

pub struct Sender<W> {
    inner: FramedWrite<W, LinesCodec>,
}

pub struct Receiver<R> {
    inner: FramedRead<R, LinesCodec>,
}

impl<W: AsyncWrite + Unpin + Send + 'static> TransportSenderT for Sender<W> {
    type Error = TransportError;

    async fn send(&mut self, msg: String) -> Result<(), Self::Error> {
        Ok(self.inner.send(msg).await?)
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        Ok(SinkExt::<String>::close(&mut self.inner).await?)
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> TransportReceiverT for Receiver<R> {
    type Error = TransportError;

    async fn receive(&mut self) -> Result<ReceivedMessage, Self::Error> {
        match self.inner.next().await {
            Some(Ok(line)) => Ok(ReceivedMessage::Text(line)),
            Some(Err(e)) => Err(e.into()),
            None => Err(TransportError::Closed),
        }
    }
}

/// Splits a byte stream into a jsonrpsee transport pair with NDJSON framing.
pub fn ndjson_pair<S>(stream: S, max_frame: usize) -> (Sender<WriteHalf<S>>, Receiver<ReadHalf<S>>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(stream);
    (
        Sender { inner: FramedWrite::new(write, ndjson::codec(max_frame)) },
        Receiver { inner: FramedRead::new(read, ndjson::codec(max_frame)) },
    )
}

/// A jsonrpsee client over an already connected byte stream.
pub fn client_over<S>(stream: S, request_timeout: Duration) -> Client
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (tx, rx) = ndjson_pair(stream, ndjson::DEFAULT_MAX_FRAME);
    ClientBuilder::default()
        .request_timeout(request_timeout)
        .max_buffer_capacity_per_subscription(4096)
        .build_with_tokio(tx, rx)
}

/// Connects to a Unix socket and returns a jsonrpsee client on it.
pub async fn connect_unix(path: &Path, request_timeout: Duration) -> std::io::Result<Client> {
    let stream = tokio::net::UnixStream::connect(path).await?;
    Ok(client_over(stream, request_timeout))
}
