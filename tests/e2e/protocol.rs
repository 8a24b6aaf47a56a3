//! The wire as any client sees it: raw NDJSON on the Unix socket, including bad input.

use crate::support::{Pm, Raw};
use std::io::BufRead;
use std::time::Duration;

#[test]
fn requests_batches_notifications_and_errors() {
    let pm = Pm::new();
    pm.ok(&["start", "pm"]);
    let mut raw = Raw::unix(&pm);

    raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pm.ping\"}\n");
    let pong = raw.line();
    assert_eq!(pong["id"], 1);
    assert_eq!(pong["result"]["pid"], pm.daemon_pid().unwrap());

    raw.send(b"{this is not json\n");
    let err = raw.line();
    assert_eq!(err["error"]["code"], -32700, "{err}");
    assert!(err["id"].is_null());

    raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"pm.nope\"}\n");
    let err = raw.line();
    assert_eq!((err["id"].as_str(), err["error"]["code"].as_i64()), (Some("x"), Some(-32601)), "{err}");

    raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"pm.status\",\"params\":{\"name\":\"ghost\"}}\n");
    let err = raw.line();
    assert_eq!(err["error"]["code"], -32001, "{err}");
    assert_eq!(err["error"]["message"], "no sidecar named `ghost` (`pm ls` lists them)");

    // A notification gets no answer; the batch's answer is the next line.
    raw.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"pm.ping\"}\n");
    raw.send(b"[{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"pm.ping\"},{\"jsonrpc\":\"2.0\",\"method\":\"pm.ping\"},{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"pm.ls\"}]\n");
    let batch = raw.line();
    let ids: Vec<i64> = batch.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [10, 11], "{batch}");

    raw.send(b"[]\n");
    assert_eq!(raw.line()["error"]["code"], -32600);
}

#[test]
fn an_oversized_frame_closes_that_connection_with_a_reason_and_others_carry_on() {
    let pm = Pm::new();
    pm.ok(&["stop", "pm"]);
    // A daemon with a small frame limit, so the test sends little.
    let mut daemon = pm.cmd(&["daemon", "--max-frame", "1024"]).stderr(std::process::Stdio::null()).spawn().unwrap();
    crate::support::wait_until("daemon up", Duration::from_secs(10), || pm.home.path().join("pm.sock").exists());
    let mut raw = Raw::unix(&pm);
    // One write: the daemon refuses the frame as soon as it passes the limit, newline or not.
    raw.send(&[vec![b'x'; 4096], b"\n".to_vec()].concat());
    let err = raw.line();
    assert_eq!(err["error"]["code"], -32007, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("longer than 1024 bytes"));
    let mut rest = String::new();
    assert_eq!(raw.reader.read_line(&mut rest).unwrap(), 0, "then the connection is closed");
    pm.ok(&["status"]);
    pm.ok(&["stop", "pm"]);
    let _ = daemon.wait();
}

#[test]
fn bytes_that_are_not_utf8_close_that_connection_with_a_reason_and_others_carry_on() {
    let pm = Pm::new();
    pm.ok(&["start", "pm"]);
    let mut raw = Raw::unix(&pm);
    raw.send(b"\xff\xfe\x00garbage\n");
    let err = raw.line();
    assert_eq!(err["error"]["code"], -32700, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("not valid UTF-8"), "{err}");
    let mut rest = String::new();
    assert_eq!(raw.reader.read_line(&mut rest).unwrap(), 0, "then the connection is closed");
    assert_eq!(Raw::unix(&pm).call("pm.ping", serde_json::json!([]))["result"]["pid"], pm.daemon_pid().unwrap());
}

#[test]
fn rpc_discover_describes_the_api_and_rpc_is_reserved() {
    let pm = Pm::new();
    pm.ok(&["start", "pm"]);
    let mut raw = Raw::unix(&pm);
    let answer = raw.call("rpc.discover", serde_json::json!([]));
    let doc = &answer["result"];
    assert_eq!(doc["openrpc"], "1.3.2", "{answer}");
    let start = doc["methods"].as_array().unwrap().iter().find(|m| m["name"] == "pm.start").expect("pm.start listed");
    assert_eq!(start["params"][0]["schema"]["$ref"], "#/components/schemas/StartParams");
    assert!(doc["components"]["schemas"]["StartParams"]["properties"].is_object());
    // The same document, from the CLI.
    let printed: serde_json::Value = serde_json::from_str(&pm.ok(&["schema", "--api"])).unwrap();
    assert_eq!(&printed, doc);
    // Nothing under `rpc.` is routed, and no sidecar may take the name.
    assert_eq!(raw.call("rpc.nope", serde_json::json!([]))["error"]["code"], -32601);
    let err = pm.fails(&["map", "rpc", "--", "true"]);
    assert!(err.contains("JSON-RPC reserves `rpc.*`"), "{err}");
}
