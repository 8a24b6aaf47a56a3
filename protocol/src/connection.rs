//! One framed connection, whatever the transport: text messages in, text messages out. Stream
//! transports (unix, tcp, tls) frame with NDJSON; WebSocket carries one message per text frame.

use crate::ndjson;
use futures::stream::BoxStream;
use futures::{Sink, SinkExt, StreamExt, TryStreamExt};
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodecError};

/// Incoming messages.
pub type Frames = BoxStream<'static, Result<String, FrameError>>;
/// Outgoing messages.
pub type FrameSink = Pin<Box<dyn Sink<String, Error = FrameError> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame longer than {0} bytes")]
    TooLarge(usize),
    /// The bytes cannot be a frame at all (not UTF-8); the connection cannot go on.
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    WebSocket(String),
}

pub struct Connection {
    pub frames: Frames,
    pub sink: FrameSink,
}

impl Connection {
    /// NDJSON over a byte stream, each line bounded to `max_frame` bytes. (Sockets have
    /// [`Connection::ndjson_halves`], whose halves need no lock between reader and writer.)
    pub fn ndjson<S>(stream: S, max_frame: usize) -> Connection
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        Connection::ndjson_halves(read, write, max_frame)
    }

    /// NDJSON over separate read and write halves.
    pub fn ndjson_halves<R, W>(read: R, write: W, max_frame: usize) -> Connection
    where
        R: AsyncRead + Send + 'static,
        W: AsyncWrite + Send + 'static,
    {
        Connection::ndjson_limited(read, write, max_frame, ndjson::FrameLimit::new(max_frame))
    }

    /// NDJSON whose incoming lines also obey `limit`, which may change while the connection
    /// runs (below `max_frame`).
    pub fn ndjson_limited<R, W>(read: R, write: W, max_frame: usize, limit: ndjson::FrameLimit) -> Connection
    where
        R: AsyncRead + Send + 'static,
        W: AsyncWrite + Send + 'static,
    {
        let codec = ndjson::LimitedLines::new(max_frame, limit.clone());
        let frames = FramedRead::new(read, codec).map_err(move |e| match e {
            LinesCodecError::MaxLineLengthExceeded => FrameError::TooLarge(limit.get().min(max_frame)),
            // The codec reports bytes that are not UTF-8 as invalid data.
            LinesCodecError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                FrameError::Malformed("frame is not valid UTF-8".into())
            }
            LinesCodecError::Io(e) => FrameError::Io(e),
        });
        let sink =
            SinkExt::<String>::sink_map_err(FramedWrite::new(write, ndjson::codec(max_frame)), move |e| match e {
                LinesCodecError::MaxLineLengthExceeded => FrameError::TooLarge(max_frame),
                LinesCodecError::Io(e) => FrameError::Io(e),
            });
        Connection { frames: frames.boxed(), sink: Box::pin(sink) }
    }
}
