//! Running one incoming frame through the sidecar's methods: a request gets its answer, a
//! notification runs and is answered nothing, a batch gets one array of answers.
//!
//! jsonrpsee's `Methods::raw_json_request` runs one request; notifications (no id) and batches
//! are handled here around it. A method that panics is answered with an internal error instead
//! of leaving its caller waiting for the deadline.

use futures::FutureExt;
use jsonrpsee::Methods;
use pm_protocol::ErrorCode;
use pm_protocol::wire::{self, Frame};
use std::panic::AssertUnwindSafe;

/// The answer to a frame, if it gets one.
pub(crate) async fn frame(methods: &Methods, text: &str, max_frame: usize) -> Option<String> {
    let items = match wire::split(text, wire::MAX_BATCH) {
        Ok(Frame::One(text)) => return one(methods, text, max_frame).await,
        Ok(Frame::Batch(items)) => items,
        Err(answer) => return Some(answer),
    };
    let answers = futures::future::join_all(items.iter().map(|item| one(methods, item.get(), max_frame))).await;
    let batch = wire::batch(answers.into_iter().flatten().collect())?;
    if batch.len() > max_frame {
        let why = format!("the batch's answers are {} bytes, over the frame limit of {max_frame} bytes", batch.len());
        return Some(wire::error(None, ErrorCode::InternalError, &why));
    }
    Some(batch)
}

/// One message of a frame.
async fn one(methods: &Methods, text: &str, max_frame: usize) -> Option<String> {
    let envelope = match wire::parse(text) {
        Ok(envelope) => envelope,
        Err(answer) => return Some(answer),
    };
    let Some(method) = envelope.method.as_deref() else {
        // An answer, to a request this side never made (or made on another connection).
        tracing::debug!("ignoring an answer nobody waits for: {}", short(text));
        return None;
    };
    let Some(id) = envelope.id else {
        // A notification: run it under a placeholder id and drop the answer.
        let _ = run(methods, method, &wire::request(Some("0"), method, envelope.params, None)).await;
        return None;
    };
    let answer = match run(methods, method, text).await {
        Ok(answer) => answer,
        Err((code, why)) => return Some(wire::error(Some(id.get()), code, &why)),
    };
    if answer.len() > max_frame {
        let why = format!(
            "the answer of `{method}` is {} bytes, over the connection's frame limit of {max_frame} bytes",
            answer.len()
        );
        return Some(wire::error(Some(id.get()), ErrorCode::InternalError, &why));
    }
    Some(answer)
}

/// Runs a request through the methods: its answer, or why there is none.
async fn run(methods: &Methods, method: &str, request: &str) -> Result<String, (ErrorCode, String)> {
    // The subscription channel is unused (the daemon does not route subscriptions) but must
    // not be empty.
    match AssertUnwindSafe(methods.raw_json_request(request, 1)).catch_unwind().await {
        Ok(Ok((answer, _subscription))) => Ok(answer.get().to_string()),
        Ok(Err(e)) => Err((ErrorCode::InvalidRequest, format!("invalid request: {e}"))),
        Err(_) => {
            tracing::error!("method `{method}` panicked");
            Err((ErrorCode::InternalError, format!("method `{method}` panicked")))
        }
    }
}

/// The start of a frame, for logs.
fn short(text: &str) -> &str {
    match text.char_indices().nth(120) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonrpsee::RpcModule;
    use serde_json::{Value, json};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn methods(seen: Arc<AtomicUsize>) -> Methods {
        let mut module = RpcModule::new(seen);
        module
            .register_method("add", |p, _, _| -> Result<i64, jsonrpsee::types::ErrorObjectOwned> {
                let (a, b): (i64, i64) = p.parse()?;
                Ok(a + b)
            })
            .unwrap();
        module
            .register_method("tick", |_, seen: &Arc<AtomicUsize>, _| {
                seen.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        module.register_method("boom", |_, _, _| -> i64 { panic!("boom") }).unwrap();
        module.register_method("big", |_, _, _| "x".repeat(2000)).unwrap();
        module.into()
    }

    async fn answer(methods: &Methods, text: &str) -> Option<Value> {
        frame(methods, text, 1000).await.map(|a| serde_json::from_str(&a).unwrap())
    }

    #[tokio::test]
    async fn requests_notifications_and_batches() {
        let seen = Arc::new(AtomicUsize::new(0));
        let m = methods(seen.clone());
        let a = answer(&m, r#"{"jsonrpc":"2.0","id":"x","method":"add","params":[1,2]}"#).await.unwrap();
        assert_eq!(a, json!({"jsonrpc": "2.0", "id": "x", "result": 3}));

        assert_eq!(answer(&m, r#"{"jsonrpc":"2.0","method":"tick"}"#).await, None);
        assert_eq!(seen.load(Ordering::SeqCst), 1, "the notification ran");

        let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"add","params":[2,2]},{"jsonrpc":"2.0","method":"tick"},{"jsonrpc":"2.0","id":2,"method":"nope"}]"#;
        let a = answer(&m, batch).await.unwrap();
        assert_eq!(a[0]["result"], 4);
        assert_eq!(a[1]["error"]["code"], -32601);
        assert_eq!(a.as_array().unwrap().len(), 2);
        assert_eq!(seen.load(Ordering::SeqCst), 2);

        assert_eq!(answer(&m, r#"[{"jsonrpc":"2.0","method":"tick"}]"#).await, None, "notifications only");
        assert_eq!(answer(&m, "[]").await.unwrap()["error"]["code"], -32600);
        assert_eq!(answer(&m, "{nope").await.unwrap()["error"]["code"], -32700);
        assert_eq!(answer(&m, r#"{"jsonrpc":"2.0","id":5,"result":1}"#).await, None, "stray answers are dropped");
    }

    #[tokio::test]
    async fn a_panic_or_an_oversized_answer_still_answers() {
        let m = methods(Arc::default());
        let a = answer(&m, r#"{"jsonrpc":"2.0","id":7,"method":"boom"}"#).await.unwrap();
        assert_eq!((a["id"].as_i64(), a["error"]["code"].as_i64()), (Some(7), Some(-32603)), "{a}");
        let a = answer(&m, r#"{"jsonrpc":"2.0","id":8,"method":"big"}"#).await.unwrap();
        assert_eq!(a["error"]["code"], -32603, "{a}");
        assert!(
            a["error"]["message"].as_str().unwrap().contains("over the connection's frame limit of 1000 bytes"),
            "{a}"
        );
    }
}
