//! Property tests of the daemon's dispatcher, over real sockets: arbitrary JSON-RPC-shaped
//! messages and batches, from the owner and from an unauthenticated tcp client. Every answer is
//! a well-formed response, nothing is answered twice or lost, and the daemon stays up.

use crate::support::{Pm, Raw, free_port};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// Methods to aim at: daemon methods that change nothing, the session, routed names, junk.
fn method() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            "pm.ping",
            "pm.status",
            "pm.ls",
            "pm.logs",
            "pm.events",
            "pm.unevents",
            "pm.unlogs",
            "pm.connect",
            "pm.auth",
            "pm.register",
            "pm.nope",
            "side.echo",
            "nobody.x",
            "a.b.c",
            "nodot",
            "",
        ])
        .prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("name|token|lines|follow|subscription|methods|.{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One message: each member present or not, each of any shape.
fn message() -> impl Strategy<Value = Value> {
    (
        prop::option::of(json()),
        prop::option::of(method()),
        prop::option::of(json()),
        prop::option::of(json()),
        prop::option::of(scalar()),
    )
        .prop_map(|(id, method, params, result, deadline)| {
            let mut m = serde_json::Map::new();
            m.insert("jsonrpc".into(), "2.0".into());
            for (key, value) in
                [("id", id), ("method", method), ("params", params), ("result", result), ("deadline_ms", deadline)]
            {
                if let Some(value) = value {
                    m.insert(key.into(), value);
                }
            }
            Value::Object(m)
        })
}

fn frame() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => message(),
        1 => prop::collection::vec(message(), 0..6).prop_map(Value::Array),
        1 => json(),
    ]
}

fn well_formed(answer: &Value) -> Result<(), TestCaseError> {
    prop_assert_eq!(&answer["jsonrpc"], "2.0", "{}", answer);
    prop_assert!(answer.get("id").is_some(), "no id: {}", answer);
    let id = &answer["id"];
    prop_assert!(id.is_string() || id.is_number() || id.is_null(), "id echoed as {}", id);
    match (answer.get("result"), answer.get("error")) {
        (Some(_), None) => Ok(()),
        (None, Some(error)) => {
            prop_assert!(error["code"].is_i64() && error["message"].is_string(), "{}", answer);
            Ok(())
        }
        _ => Err(TestCaseError::fail(format!("neither result nor error: {answer}"))),
    }
}

/// Sends a frame, then a ping as a marker; checks everything that comes back before the marker.
fn exchange(raw: &mut Raw, frame: &Value, n: u64) -> Result<(), TestCaseError> {
    raw.send_json(frame);
    let marker = format!("marker-{n}");
    raw.send_json(&json!({"jsonrpc": "2.0", "id": marker, "method": "pm.ping"}));
    loop {
        let line = raw.line();
        if line["id"] == marker.as_str() {
            return Ok(());
        }
        match &line {
            // Notifications of subscriptions a case opened.
            Value::Object(o) if o.contains_key("method") => {}
            Value::Array(items) => {
                prop_assert!(!items.is_empty(), "an empty batch answer");
                for item in items {
                    well_formed(item)?;
                }
            }
            _ => well_formed(&line)?,
        }
    }
}

#[test]
fn arbitrary_messages_get_well_formed_answers_and_the_daemon_stays_up() {
    let pm = Pm::new();
    let addr = format!("127.0.0.1:{}", free_port());
    pm.ok(&["start", "pm", "--listen", &format!("tcp://{addr}")]);
    let mut runner = TestRunner::new(Config { cases: 300, failure_persistence: None, ..Config::default() });
    // The runner takes a `Fn`: the connection and the marker count live in cells.
    let owner = std::cell::RefCell::new(Raw::unix(&pm));
    let n = std::cell::Cell::new(0);
    runner
        .run(&frame(), |frame| {
            n.set(n.get() + 1);
            exchange(&mut owner.borrow_mut(), &frame, n.get())
        })
        .unwrap();
    // Unauthenticated: every frame is answered once (a refusal), three strikes close it.
    let mut runner = TestRunner::new(Config { cases: 100, failure_persistence: None, ..Config::default() });
    runner
        .run(&frame(), |frame| {
            let mut anonymous = Raw::tcp(&addr);
            anonymous.send_json(&frame);
            let answer = anonymous.line();
            match answer.as_array() {
                Some(_) => Err(TestCaseError::fail(format!("a batch was expanded before auth: {answer}"))),
                None => well_formed(&answer),
            }
        })
        .unwrap();
    assert!(pm.ok(&["status", "--json"]).starts_with('['));
}
