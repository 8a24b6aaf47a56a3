//! JSON-RPC dispatch for one connection. jsonrpsee's `raw_json_request` serves the `pm.*`
//! methods but knows neither batches, notifications nor who is calling, so those, `pm.auth`,
//! `pm.register`, routing of `<sidecar>.<method>` and replies from sidecars are handled here.

use super::Shared;
use super::peer::Peer;
use crate::mesh::{Call, DEFAULT_DEADLINE, Reply, RouteError};
use pm_protocol::ErrorCode;
use pm_protocol::envelope::Envelope;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long a closing connection still forwards a subscription's last notifications.
const FINAL_GRACE: Duration = Duration::from_millis(500);

/// Notifications a subscription may queue before the connection catches up.
const SUBSCRIPTION_BUFFER: usize = 4096;

/// What handling one message gave.
enum Handled {
    Answer(String),
    /// A `pm.*` subscription: its answer, then its notifications.
    Subscribed(String, mpsc::Receiver<Box<RawValue>>),
    /// Answered later through the `Reply` (a routed call), or never (a notification).
    Nothing,
}

/// Handles one frame: a message or a batch. Answers go to the peer.
pub async fn frame(text: String, peer: &Arc<Peer>, shared: &Arc<Shared>, closed: &CancellationToken) {
    if text.trim_start().starts_with('[') {
        let (peer, shared) = (peer.clone(), shared.clone());
        tokio::spawn(async move { batch(&text, &peer, &shared).await });
        return;
    }
    let envelope: Envelope = match parse(&text) {
        Ok(e) => e,
        Err(answer) => return send(peer, answer).await,
    };
    // Routed calls, replies and auth are handled in order, on the reader: they never wait on a
    // sidecar. Daemon methods may take long (a start waits for readiness): they get a task.
    if envelope.method.as_deref().is_some_and(|m| m.starts_with("pm.") && m != "pm.auth" && m != "pm.register") {
        let (peer, shared, closed) = (peer.clone(), shared.clone(), closed.clone());
        tokio::spawn(async move {
            let Ok(envelope) = parse(&text) else { return };
            let handled = message(&text, envelope, &peer, &shared, || Reply::Conn(peer.out.clone())).await;
            deliver(handled, &peer, &closed).await;
        });
        return;
    }
    let handled = message(&text, envelope, peer, shared, || Reply::Conn(peer.out.clone())).await;
    deliver(handled, peer, closed).await;
}

async fn send(peer: &Peer, msg: String) {
    let _ = peer.out.send(msg).await;
}

async fn deliver(handled: Handled, peer: &Peer, closed: &CancellationToken) {
    match handled {
        Handled::Answer(msg) => send(peer, msg).await,
        Handled::Subscribed(answer, mut rx) => {
            // The subscription's answer goes out before any of its notifications.
            send(peer, answer).await;
            loop {
                let n = tokio::select! {
                    n = rx.recv() => n,
                    // Closing (daemon stopping or peer gone): pass on what the subscription still
                    // sends, such as its final `End`, for a moment; then drop it, which ends it.
                    _ = closed.cancelled() => match tokio::time::timeout(FINAL_GRACE, rx.recv()).await {
                        Ok(n) => n,
                        Err(_) => return,
                    },
                };
                match n {
                    Some(n) if peer.out.send(n.get().to_string()).await.is_ok() => {}
                    _ => return,
                }
            }
        }
        Handled::Nothing => {}
    }
}

fn parse(text: &str) -> Result<Envelope<'_>, String> {
    Envelope::parse(text).map_err(|e| {
        if serde_json::from_str::<&RawValue>(text).is_err() {
            error_response(None, ErrorCode::ParseError, &format!("invalid JSON: {e}"))
        } else {
            error_response(None, ErrorCode::InvalidRequest, &format!("not a JSON-RPC message: {e}"))
        }
    })
}

async fn batch(text: &str, peer: &Arc<Peer>, shared: &Arc<Shared>) {
    let items: Vec<&RawValue> = match serde_json::from_str(text) {
        Ok(items) => items,
        Err(e) => return send(peer, error_response(None, ErrorCode::ParseError, &format!("invalid JSON: {e}"))).await,
    };
    if items.is_empty() {
        return send(peer, error_response(None, ErrorCode::InvalidRequest, "empty batch")).await;
    }
    let answers = futures::future::join_all(items.iter().map(|item| async move {
        let envelope = match parse(item.get()) {
            Ok(e) => e,
            Err(answer) => return Some(answer),
        };
        let (tx, rx) = oneshot::channel();
        match message(item.get(), envelope, peer, shared, || Reply::Once(tx)).await {
            Handled::Answer(a) | Handled::Subscribed(a, _) => Some(a),
            // A routed request answers through its slot; a notification never does.
            Handled::Nothing => rx.await.ok(),
        }
    }))
    .await;
    let answers: Vec<String> = answers.into_iter().flatten().collect();
    // A batch of notifications gets no answer at all (JSON-RPC 2.0 §6).
    if !answers.is_empty() {
        send(peer, format!("[{}]", answers.join(","))).await;
    }
}

/// Handles one message (not a batch).
async fn message(
    text: &str,
    e: Envelope<'_>,
    peer: &Peer,
    shared: &Arc<Shared>,
    reply: impl FnOnce() -> Reply,
) -> Handled {
    let id = e.id;
    let answer = |code: ErrorCode, msg: &str| match id {
        Some(id) => Handled::Answer(error_response(Some(id.get()), code, msg)),
        None => Handled::Nothing,
    };
    let Some(method) = e.method.as_deref() else {
        // A reply to a call the daemon routed to this peer.
        return match (id, e.result.is_some() || e.error.is_some()) {
            (Some(id), true) => {
                shared.mesh.complete(peer.id, id, e.result, e.error).await;
                Handled::Nothing
            }
            _ => Handled::Answer(error_response(None, ErrorCode::InvalidRequest, "a message with no method")),
        };
    };

    if method == "pm.auth" {
        return match crate::api::auth::auth(peer, shared, e.params) {
            Ok(result) => success(id, &result),
            Err((code, msg)) => answer(code, &msg),
        };
    }
    if peer.is_anonymous() {
        return answer(
            ErrorCode::Unauthorized,
            "not authenticated: call pm.auth with the daemon's token (`pm token`) or your PM_TOKEN first",
        );
    }
    if method == "pm.register" {
        return match crate::api::register::register(peer, shared, e.params).await {
            Ok(result) => success(id, &result),
            Err((code, msg)) => answer(code, &msg),
        };
    }
    if method.starts_with("pm.") {
        let Some(_) = id else {
            // A notification to the daemon: run it with a placeholder id, drop the answer.
            let params = e.params.map_or("null", RawValue::get);
            let request = format!(r#"{{"jsonrpc":"2.0","id":0,"method":{},"params":{params}}}"#, json_string(method));
            let _ = shared.methods.raw_json_request(&request, 1).await;
            return Handled::Nothing;
        };
        return match shared.methods.raw_json_request(text, SUBSCRIPTION_BUFFER).await {
            Ok((response, rx)) => Handled::Subscribed(response.get().to_string(), rx),
            Err(err) => answer(ErrorCode::InvalidRequest, &format!("invalid request: {err}")),
        };
    }
    let Some((target, sidecar_method)) = method.split_once('.') else {
        return answer(
            ErrorCode::MethodNotFound,
            &format!("unknown method `{method}`: daemon methods are `pm.*`, sidecar methods `<sidecar>.<method>`"),
        );
    };
    let deadline = e.deadline_ms.map_or(DEFAULT_DEADLINE, Duration::from_millis);
    let call = Call { target, method: sidecar_method, id, params: e.params, deadline };
    match shared.mesh.forward(call, id.map(|_| reply())).await {
        Ok(()) => Handled::Nothing,
        Err(RouteError::Refused(code, msg)) => answer(code, &msg),
        Err(RouteError::NotRegistered) => {
            let (code, msg) = crate::api::register::not_registered(&shared.sup, target);
            answer(code, &msg)
        }
    }
}

/// The answer to a request the dispatcher served itself (none for a notification).
fn success(id: Option<&RawValue>, result: &impl serde::Serialize) -> Handled {
    match (id, serde_json::to_string(result)) {
        (Some(id), Ok(result)) => {
            Handled::Answer(format!(r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#, id.get()))
        }
        _ => Handled::Nothing,
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A JSON-RPC error response; `id` is raw JSON (`null` when unknown).
pub fn error_response(id: Option<&str>, code: ErrorCode, message: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":{},"message":{}}}}}"#,
        id.unwrap_or("null"),
        code.code(),
        json_string(message)
    )
}
