//! JSON-RPC dispatch on top of jsonrpsee's `Methods`. jsonrpsee's `raw_json_request` takes one
//! request with an id, so batches and notifications are handled here.

use jsonrpsee::Methods;
use pm_protocol::ErrorCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Notifications a subscription may queue before the connection catches up.
const SUBSCRIPTION_BUFFER: usize = 4096;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: &'a RawValue,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// Handles one frame: a request, a notification or a batch. Answers go to `out`.
pub fn frame(line: String, methods: &Methods, out: &mpsc::Sender<String>, closed: &CancellationToken) {
    let text = line.trim();
    if text.is_empty() {
        return;
    }
    let (methods, out, closed) = (methods.clone(), out.clone(), closed.clone());
    if text.starts_with('[') {
        tokio::spawn(async move { batch(&line, &methods, &out).await });
    } else {
        tokio::spawn(async move {
            let (response, notifications) = call(line.trim(), &methods).await;
            if let Some(response) = response {
                // The response goes out before any of its subscription's notifications.
                if out.send(response).await.is_err() {
                    return;
                }
            }
            if let Some(mut rx) = notifications {
                loop {
                    let n = tokio::select! {
                        _ = closed.cancelled() => return,
                        n = rx.recv() => n,
                    };
                    match n {
                        Some(n) if out.send(n.get().to_string()).await.is_ok() => {}
                        _ => return,
                    }
                }
            }
        });
    }
}

async fn batch(line: &str, methods: &Methods, out: &mpsc::Sender<String>) {
    let calls: Vec<&RawValue> = match serde_json::from_str(line) {
        Ok(calls) => calls,
        Err(e) => {
            let _ = out.send(error_response(None, ErrorCode::ParseError, &format!("invalid JSON: {e}"))).await;
            return;
        }
    };
    if calls.is_empty() {
        let _ = out.send(error_response(None, ErrorCode::InvalidRequest, "empty batch")).await;
        return;
    }
    let answers = futures::future::join_all(calls.iter().map(|c| call(c.get(), methods))).await;
    let responses: Vec<String> = answers.into_iter().filter_map(|(r, _)| r).collect();
    // A batch of only notifications gets no answer at all (JSON-RPC 2.0 §6).
    if !responses.is_empty() {
        let _ = out.send(format!("[{}]", responses.join(","))).await;
    }
}

/// Runs one call. Returns its response (none for a notification) and, for a subscription, the
/// stream of its notifications.
async fn call(text: &str, methods: &Methods) -> (Option<String>, Option<mpsc::Receiver<Box<RawValue>>>) {
    let envelope: Envelope = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(e) if serde_json::from_str::<&RawValue>(text).is_err() => {
            return (Some(error_response(None, ErrorCode::ParseError, &format!("invalid JSON: {e}"))), None);
        }
        Err(e) => {
            let id =
                serde_json::from_str::<serde_json::Value>(text).ok().and_then(|v| v.get("id").map(|i| i.to_string()));
            return (
                Some(error_response(id.as_deref(), ErrorCode::InvalidRequest, &format!("not a JSON-RPC request: {e}"))),
                None,
            );
        }
    };
    let Some(id) = envelope.id else {
        // A notification: run it with a placeholder id and drop the answer.
        let params = envelope.params.map_or("null", RawValue::get);
        let request = format!(r#"{{"jsonrpc":"2.0","id":0,"method":{},"params":{params}}}"#, envelope.method.get());
        let _ = methods.raw_json_request(&request, 1).await;
        return (None, None);
    };
    match methods.raw_json_request(text, SUBSCRIPTION_BUFFER).await {
        Ok((response, rx)) => (Some(response.get().to_string()), Some(rx)),
        Err(e) => {
            (Some(error_response(Some(id.get()), ErrorCode::InvalidRequest, &format!("invalid request: {e}"))), None)
        }
    }
}

/// A JSON-RPC error response; `id` is raw JSON (`null` when unknown).
pub fn error_response(id: Option<&str>, code: ErrorCode, message: &str) -> String {
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".into());
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":{},"message":{message}}}}}"#,
        id.unwrap_or("null"),
        code.code()
    )
}
