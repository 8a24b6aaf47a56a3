//! One client connection on a stream transport: NDJSON frames in, responses and subscription
//! notifications out. Requests run concurrently; a slow call never blocks the connection.

use super::dispatch;
use futures::{SinkExt, StreamExt};
use jsonrpsee::Methods;
use pm_protocol::{ErrorCode, ndjson};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodecError};
use tokio_util::sync::CancellationToken;

/// Serves one connection until the peer closes it, it breaks the framing, or `closed` fires.
pub async fn serve<S>(stream: S, methods: Methods, max_frame: usize, closed: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(stream);
    let mut frames = FramedRead::new(read, ndjson::codec(max_frame));
    let (out, mut queue) = mpsc::channel::<String>(1024);
    let writer = tokio::spawn(async move {
        let mut sink = FramedWrite::new(write, ndjson::codec(max_frame));
        while let Some(msg) = queue.recv().await {
            // Flush when caught up, so bursts go out in few writes.
            let sent = if queue.is_empty() { sink.send(msg).await } else { sink.feed(msg).await };
            if sent.is_err() {
                return;
            }
        }
        let _ = SinkExt::<String>::close(&mut sink).await;
    });
    loop {
        let frame = tokio::select! {
            _ = closed.cancelled() => break,
            frame = frames.next() => frame,
        };
        match frame {
            Some(Ok(line)) => dispatch::frame(line, &methods, &out, &closed),
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                let reason = format!("frame longer than {max_frame} bytes; closing the connection");
                let _ = out.send(dispatch::error_response(None, ErrorCode::FrameTooLarge, &reason)).await;
                break;
            }
            Some(Err(LinesCodecError::Io(e))) => {
                tracing::debug!("connection read error: {e}");
                break;
            }
            None => break,
        }
    }
    // Pending calls still answer: their tasks hold `out` until they are done.
    drop(out);
    let _ = writer.await;
    closed.cancel();
}

/// Tells a client why it is refused, then closes.
pub async fn refuse<S: AsyncWrite + Unpin>(mut stream: S, reason: &str) {
    tracing::warn!("refused a connection: {reason}");
    let line = dispatch::error_response(None, ErrorCode::Unauthorized, reason) + "\n";
    let _ = stream.write_all(line.as_bytes()).await;
    let _ = stream.shutdown().await;
}
