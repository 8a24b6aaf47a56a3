//! JSON-RPC 2.0 messages as text, in one place for the daemon's dispatch, its router and the
//! SDK: telling a frame's kind (one message or a batch), classifying what cannot be served
//! (parse error, invalid request), and writing requests, results and errors. Params, results
//! and error objects that pass through are copied as raw JSON, never re-serialised.

use crate::ErrorCode;
use crate::envelope::Envelope;
use serde_json::value::RawValue;
use std::fmt::Write as _;

/// Default bound on the messages of one batch.
pub const MAX_BATCH: usize = 1000;

/// A frame: one message, or the items of a batch.
#[derive(Debug)]
pub enum Frame<'a> {
    One(&'a str),
    Batch(Vec<&'a RawValue>),
}

/// Splits a frame into its messages. A batch larger than `max_items`, an empty batch and
/// invalid JSON are answered as a whole (the error response is returned), and nothing of
/// them is looked at further.
pub fn split(text: &str, max_items: usize) -> Result<Frame<'_>, String> {
    if !text.trim_start().starts_with('[') {
        return Ok(Frame::One(text));
    }
    let items: Vec<&RawValue> =
        serde_json::from_str(text).map_err(|e| error(None, ErrorCode::ParseError, &format!("invalid JSON: {e}")))?;
    match items.len() {
        0 => Err(error(None, ErrorCode::InvalidRequest, "empty batch")),
        n if n > max_items => Err(error(
            None,
            ErrorCode::InvalidRequest,
            &format!("a batch of {n} messages is over the limit of {max_items}; send smaller batches"),
        )),
        _ => Ok(Frame::Batch(items)),
    }
}

/// Whether a frame is a batch, without parsing it.
pub fn is_batch(text: &str) -> bool {
    text.trim_start().starts_with('[')
}

/// Parses one message. What cannot be served comes back as its error response: -32700 for
/// text that is not JSON, -32600 for JSON that is not a JSON-RPC message or whose id is not a
/// string, a number or null.
pub fn parse(text: &str) -> Result<Envelope<'_>, String> {
    let envelope = Envelope::parse(text).map_err(|e| {
        if serde_json::from_str::<&RawValue>(text).is_err() {
            error(None, ErrorCode::ParseError, &format!("invalid JSON: {e}"))
        } else {
            error(None, ErrorCode::InvalidRequest, &format!("not a JSON-RPC message: {e}"))
        }
    })?;
    if let Some(id) = envelope.id
        && !valid_id(id)
    {
        return Err(error(None, ErrorCode::InvalidRequest, "an id must be a string, a number or null"));
    }
    Ok(envelope)
}

/// JSON-RPC 2.0 §4: an id is a string, a number or null; anything else cannot be echoed back.
fn valid_id(id: &RawValue) -> bool {
    matches!(id.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9' | b'n'))
}

/// A request (with an id, raw JSON) or a notification (without); params pass through as they are.
pub fn request(id: Option<&str>, method: &str, params: Option<&RawValue>, deadline_ms: Option<u64>) -> String {
    let params = params.map(RawValue::get);
    let mut frame = String::with_capacity(64 + method.len() + params.map_or(0, str::len));
    frame.push_str(r#"{"jsonrpc":"2.0","#);
    if let Some(id) = id {
        let _ = write!(frame, r#""id":{id},"#);
    }
    frame.push_str(r#""method":"#);
    frame.push_str(&string(method));
    if let Some(params) = params {
        frame.push_str(r#","params":"#);
        frame.push_str(params);
    }
    if let Some(ms) = deadline_ms {
        let _ = write!(frame, r#","deadline_ms":{ms}"#);
    }
    frame.push('}');
    frame
}

/// A success response; `id` and `result` are raw JSON.
pub fn result(id: &str, result: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
}

/// An error response carrying an error object as it came (raw JSON), e.g. a sidecar's own.
pub fn error_object(id: &str, error: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{error}}}"#)
}

/// An error response; `id` is raw JSON (`null` when unknown).
pub fn error(id: Option<&str>, code: ErrorCode, message: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":{},"message":{}}}}}"#,
        id.unwrap_or("null"),
        code.code(),
        string(message)
    )
}

/// The answers of a batch as one frame; `None` when nothing is to be answered (a batch of
/// notifications gets no answer at all, JSON-RPC 2.0 §6).
pub fn batch(answers: Vec<String>) -> Option<String> {
    (!answers.is_empty()).then(|| format!("[{}]", answers.join(",")))
}

/// A string as a JSON string literal.
pub fn string(s: &str) -> String {
    // Serialising a &str cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn code(answer: &str) -> i64 {
        serde_json::from_str::<Value>(answer).unwrap()["error"]["code"].as_i64().unwrap()
    }

    #[test]
    fn frames_are_told_apart_and_bounded() {
        assert!(matches!(split(r#" {"a":1}"#, 2), Ok(Frame::One(_))));
        assert!(matches!(split("[1, 2]", 2), Ok(Frame::Batch(items)) if items.len() == 2));
        assert_eq!(code(&split("[1, 2, 3]", 2).unwrap_err()), -32600);
        assert_eq!(code(&split("[]", 2).unwrap_err()), -32600);
        assert_eq!(code(&split("[1,", 2).unwrap_err()), -32700);
    }

    #[test]
    fn messages_are_classified() {
        assert_eq!(code(&parse("{nope").unwrap_err()), -32700);
        assert_eq!(code(&parse("1").unwrap_err()), -32600);
        for bad in [r#"{"id":{},"method":"a"}"#, r#"{"id":[1],"method":"a"}"#, r#"{"id":true,"method":"a"}"#] {
            let answer: Value = serde_json::from_str(&parse(bad).unwrap_err()).unwrap();
            assert_eq!((answer["error"]["code"].as_i64(), &answer["id"]), (Some(-32600), &Value::Null), "{bad}");
        }
        for good in [r#"{"id":"x","method":"a"}"#, r#"{"id":-1.5,"method":"a"}"#, r#"{"id":null,"method":"a"}"#] {
            assert!(parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn writes_requests_results_and_errors() {
        let params = RawValue::from_string("[1,2]".into()).unwrap();
        assert_eq!(
            request(Some(r#""pmc-7""#), "b.add", Some(&params), Some(250)),
            r#"{"jsonrpc":"2.0","id":"pmc-7","method":"b.add","params":[1,2],"deadline_ms":250}"#
        );
        assert_eq!(request(None, "b.tick", None, None), r#"{"jsonrpc":"2.0","method":"b.tick"}"#);
        assert_eq!(result("3", "null"), r#"{"jsonrpc":"2.0","id":3,"result":null}"#);
        let e: Value = serde_json::from_str(&error(Some("\"a\""), ErrorCode::InternalError, "x\"y")).unwrap();
        assert_eq!(e, json!({"jsonrpc": "2.0", "id": "a", "error": {"code": -32603, "message": "x\"y"}}));
        assert_eq!(batch(vec![]), None);
        assert_eq!(batch(vec!["1".into(), "2".into()]).as_deref(), Some("[1,2]"));
    }
}
