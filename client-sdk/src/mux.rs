//! One connection shared by jsonrpsee's client (the typed `pm.*` API) and the SDK's own calls
//! (`pm.auth`, sidecar calls with their deadlines, notifications), which need members jsonrpsee
//! cannot send (`deadline_ms`) and pass params and results through as raw JSON.
//!
//! Frames go out through one writer task. The SDK's own requests carry string ids `"pmc-N"`;
//! their answers are taken off the incoming stream before jsonrpsee sees it (jsonrpsee's ids
//! are numbers, so the two never collide) and everything else goes on to jsonrpsee.

use futures::{SinkExt, StreamExt};
use pm_protocol::connection::{Connection, FrameSink, Frames};
use pm_protocol::envelope::Envelope;
use pm_protocol::transport::TransportError;
use pm_protocol::wire;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Prefix of the SDK's own request ids.
const ID_PREFIX: &str = "pmc-";

/// Frames queued for the writer before senders wait.
const OUT_QUEUE: usize = 1024;

/// An error answer as it came: code, message, data.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorBody {
    pub code: i32,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub data: Option<Box<RawValue>>,
}

/// What a call got back.
pub(crate) type Answer = Result<Box<RawValue>, ErrorBody>;

/// Why a call got no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The connection closed (with why).
    Closed(String),
    /// The request is longer than the frame limit (its size).
    TooLarge(usize),
}

/// The SDK's side of a shared connection.
pub(crate) struct Mux {
    out: mpsc::Sender<String>,
    calls: Arc<Calls>,
    next_id: AtomicU64,
    pub max_frame: usize,
}

/// Calls waiting for their answer, and why the connection closed once it has.
#[derive(Default)]
struct Calls {
    state: Mutex<CallsState>,
}

#[derive(Default)]
struct CallsState {
    waiting: HashMap<u64, oneshot::Sender<Answer>>,
    closed: Option<String>,
}

impl Calls {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallsState> {
        // Nothing panics while holding it; a poisoned map is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails every waiting call, and every later one, with `why`.
    fn close(&self, why: &str) {
        let mut state = self.lock();
        if state.closed.is_none() {
            state.closed = Some(why.to_string());
        }
        // Dropping the senders wakes the callers, who then read `closed`.
        state.waiting.clear();
    }

    fn closed(&self) -> Option<String> {
        self.lock().closed.clone()
    }
}

/// Removes a call from the waiting table when its caller stops waiting (answered, timed out or
/// dropped).
struct Waiting<'a> {
    calls: &'a Calls,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.calls.lock().waiting.remove(&self.id);
    }
}

/// jsonrpsee's sending half: into the shared writer.
pub(crate) struct Sender {
    out: mpsc::Sender<String>,
}

/// jsonrpsee's receiving half: what the SDK's calls do not claim.
pub(crate) struct Receiver {
    frames: Frames,
    calls: Arc<Calls>,
}

/// Splits a connection between the SDK (the [`Mux`]) and jsonrpsee (the sender and receiver to
/// build its client with). Spawns the writer; must run inside a Tokio runtime.
pub(crate) fn split(conn: Connection, max_frame: usize) -> (Mux, Sender, Receiver) {
    let Connection { frames, sink } = conn;
    let (out, queue) = mpsc::channel(OUT_QUEUE);
    tokio::spawn(write(sink, queue));
    let calls = Arc::new(Calls::default());
    let mux = Mux { out: out.clone(), calls: calls.clone(), next_id: AtomicU64::new(0), max_frame };
    (mux, Sender { out }, Receiver { frames, calls })
}

/// Writes queued frames until every sender is gone or the connection breaks; flushes when
/// caught up, so bursts go out in few writes.
pub(crate) async fn write(mut sink: FrameSink, mut queue: mpsc::Receiver<String>) {
    while let Some(frame) = queue.recv().await {
        let sent = if queue.is_empty() { sink.send(frame).await } else { sink.feed(frame).await };
        if let Err(e) = sent {
            tracing::debug!("writing to the pm daemon failed: {e}");
            return;
        }
    }
    let _ = sink.close().await;
}

impl Mux {
    /// Sends a request and waits for its answer (no timeout here: the caller bounds it).
    pub async fn request(
        &self,
        method: &str,
        params: Option<&RawValue>,
        deadline_ms: Option<u64>,
    ) -> Result<Answer, Failure> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::request(Some(&format!("\"{ID_PREFIX}{id}\"")), method, params, deadline_ms);
        if frame.len() > self.max_frame {
            return Err(Failure::TooLarge(frame.len()));
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.calls.lock();
            if let Some(why) = &state.closed {
                return Err(Failure::Closed(why.clone()));
            }
            state.waiting.insert(id, tx);
        }
        let _waiting = Waiting { calls: &self.calls, id };
        self.out.send(frame).await.map_err(|_| self.closed_failure())?;
        rx.await.map_err(|_| self.closed_failure())
    }

    /// Sends a notification (no answer).
    pub async fn notify(&self, method: &str, params: Option<&RawValue>) -> Result<(), Failure> {
        let frame = wire::request(None, method, params, None);
        if frame.len() > self.max_frame {
            return Err(Failure::TooLarge(frame.len()));
        }
        if let Some(why) = self.calls.closed() {
            return Err(Failure::Closed(why));
        }
        self.out.send(frame).await.map_err(|_| self.closed_failure())
    }

    /// Whether the connection is known to have closed.
    pub fn is_closed(&self) -> bool {
        self.calls.closed().is_some() || self.out.is_closed()
    }

    fn closed_failure(&self) -> Failure {
        Failure::Closed(self.calls.closed().unwrap_or_else(|| "the connection's reader stopped".into()))
    }
}

impl Receiver {
    /// Takes the answer to one of the SDK's calls off the stream; false when `text` is not one.
    fn claim(&self, text: &str) -> bool {
        // Cheap first: most frames are not ours.
        if !text.contains(ID_PREFIX) {
            return false;
        }
        let Some((id, answer)) = parse_answer(text) else { return false };
        let Some(n) = id.strip_prefix(ID_PREFIX).and_then(|n| n.parse::<u64>().ok()) else { return false };
        if let Some(tx) = self.calls.lock().waiting.remove(&n) {
            let _ = tx.send(answer);
        }
        true
    }
}

/// A response's id (when it is a string) and answer; `None` for anything that is not a
/// response with a string id.
pub(crate) fn parse_answer(text: &str) -> Option<(String, Answer)> {
    let response = Envelope::parse(text).ok()?;
    if response.method.is_some() {
        return None;
    }
    // Only string ids are ours; jsonrpsee's own are numbers.
    let id: String = serde_json::from_str(response.id?.get()).ok()?;
    let answer = match (response.result, response.error) {
        (Some(result), _) => Ok(result.to_owned()),
        (None, Some(error)) => Err(serde_json::from_str::<ErrorBody>(error.get()).unwrap_or_else(|e| ErrorBody {
            code: pm_protocol::ErrorCode::InvalidRequest.code(),
            message: format!("the answer's error member is not a JSON-RPC error object ({e}): {}", error.get()),
            data: None,
        })),
        (None, None) => Err(ErrorBody {
            code: pm_protocol::ErrorCode::InvalidRequest.code(),
            message: "an answer with neither result nor error".into(),
            data: None,
        }),
    };
    Some((id, answer))
}

impl jsonrpsee::core::client::TransportSenderT for Sender {
    type Error = TransportError;

    async fn send(&mut self, msg: String) -> Result<(), Self::Error> {
        self.out.send(msg).await.map_err(|_| TransportError::Closed)
    }
}

impl jsonrpsee::core::client::TransportReceiverT for Receiver {
    type Error = TransportError;

    async fn receive(&mut self) -> Result<jsonrpsee::core::client::ReceivedMessage, Self::Error> {
        loop {
            match self.frames.next().await {
                Some(Ok(text)) => {
                    if !self.claim(&text) {
                        return Ok(jsonrpsee::core::client::ReceivedMessage::Text(text));
                    }
                }
                Some(Err(e)) => {
                    self.calls.close(&e.to_string());
                    return Err(e.into());
                }
                None => {
                    self.calls.close("the daemon closed the connection");
                    return Err(TransportError::Closed);
                }
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.calls.close("the connection's reader stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_keep_null_results_and_error_members() {
        let (id, answer) = parse_answer(r#"{"jsonrpc":"2.0","id":"pmc-1","result":null}"#).unwrap();
        assert_eq!((id.as_str(), answer.unwrap().get()), ("pmc-1", "null"));
        let (_, answer) =
            parse_answer(r#"{"jsonrpc":"2.0","id":"pmc-2","error":{"code":-32004,"message":"late","x":1}}"#).unwrap();
        let err = answer.unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (-32004, "late"));
        assert!(parse_answer(r#"{"jsonrpc":"2.0","id":3,"result":1}"#).is_none(), "numeric ids are jsonrpsee's");
        assert!(parse_answer(r#"{"jsonrpc":"2.0","id":"pmc-4","method":"x"}"#).is_none(), "a request");
    }
}
