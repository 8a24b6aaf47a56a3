//! Property tests of what every peer's bytes go through first: the envelope parser, frame
//! splitting and NDJSON framing. Whatever arrives, nothing panics, every refusal is a
//! well-formed JSON-RPC error, and no line longer than the limit comes out.

use bytes::BytesMut;
use pm_protocol::ndjson::{FrameLimit, LimitedLines};
use pm_protocol::wire::{self, Frame};
use proptest::prelude::*;
use serde_json::Value;
use tokio_util::codec::Decoder;

/// Arbitrary JSON, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("id|method|params|result|error|jsonrpc|deadline_ms|.{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A refusal must be an error response with a stable code and a message.
fn well_formed_error(answer: &str) {
    let v: Value = serde_json::from_str(answer).expect("an answer is JSON");
    assert_eq!(v["jsonrpc"], "2.0", "{answer}");
    assert!(v.get("id").is_some(), "{answer}");
    assert!(v["error"]["code"].as_i64().is_some_and(|c| (-32700..=-32000).contains(&c)), "{answer}");
    assert!(v["error"]["message"].is_string(), "{answer}");
}

fn check_message(text: &str) {
    match wire::parse(text) {
        Err(answer) => well_formed_error(&answer),
        Ok(e) => {
            if let Some(id) = e.id {
                let first = id.get().as_bytes()[0];
                assert!(matches!(first, b'"' | b'-' | b'0'..=b'9' | b'n'), "accepted id {}", id.get());
            }
        }
    }
}

fn check_frame(text: &str) {
    match wire::split(text, 8) {
        Err(answer) => well_formed_error(&answer),
        Ok(Frame::One(one)) => check_message(one),
        Ok(Frame::Batch(items)) => {
            assert!(!items.is_empty() && items.len() <= 8);
            for item in items {
                check_message(item.get());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_gets_a_well_formed_answer_or_a_message(text in ".{0,200}") {
        check_frame(&text);
    }

    #[test]
    fn any_json_gets_a_well_formed_answer_or_a_message(value in json()) {
        check_frame(&value.to_string());
    }

    #[test]
    fn framing_never_yields_a_line_over_the_limit(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16),
        limit in 1usize..48,
        lifted in any::<bool>(),
    ) {
        let frame_limit = FrameLimit::new(limit);
        let mut codec = LimitedLines::new(64, frame_limit.clone());
        let mut buf = BytesMut::new();
        for chunk in chunks {
            buf.extend_from_slice(&chunk);
            if lifted {
                frame_limit.set(64);
            }
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(line)) => {
                        prop_assert!(line.len() <= frame_limit.get(), "{} > {}", line.len(), frame_limit.get());
                        prop_assert!(!line.contains('\n'));
                    }
                    Ok(None) => break,
                    // Too long or not UTF-8: the connection ends here.
                    Err(_) => return Ok(()),
                }
            }
        }
    }
}
