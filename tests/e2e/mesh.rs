//! The mesh with a real sidecar written in another language (tests/e2e/fixtures/sidecar.py):
//! routing, batches and notifications, direct mode, concurrency, failures and deadlines.

use crate::support::{Pm, Raw, alive, wait_until};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

const SIDECAR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/fixtures/sidecar.py");

/// Defines and starts the Python sidecar `name`, ready once it registered.
fn start_sidecar(pm: &Pm, name: &str, extra: &[&str]) {
    let mut args = vec!["map", name, "--ready", "registered", "--ready-timeout", "10s"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "python3", SIDECAR]);
    pm.ok(&args);
    pm.ok(&["start", name]);
}

#[test]
fn calls_batches_and_notifications_are_routed_to_the_sidecar() {
    let pm = Pm::new();
    let notes = pm.path("notes.txt");
    start_sidecar(&pm, "side", &["--env", &format!("NOTES={}", notes.display())]);
    let mut raw = Raw::unix(&pm);
    let answer = raw.call("side.add", json!([1, 2, 39]));
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 42}));
    // Params and results pass through untouched, however nested.
    let nested = json!({"a": [1, {"b": null}], "s": "é\n\"q\""});
    assert_eq!(raw.call("side.echo", nested.clone())["result"], nested);

    raw.send_json(&json!([
        {"jsonrpc": "2.0", "id": "e", "method": "side.echo", "params": ["x"]},
        {"jsonrpc": "2.0", "method": "side.note", "params": ["from a batch"]},
        {"jsonrpc": "2.0", "id": 7, "method": "pm.ping"},
        {"jsonrpc": "2.0", "id": 8, "method": "side.nope"},
    ]));
    let batch = raw.line();
    let by_id = |id: serde_json::Value| batch.as_array().unwrap().iter().find(|r| r["id"] == id).cloned().unwrap();
    assert_eq!(batch.as_array().unwrap().len(), 3, "{batch}");
    assert_eq!(by_id(json!("e"))["result"], json!(["x"]));
    assert!(by_id(json!(7))["result"]["pid"].is_number());
    assert_eq!(by_id(json!(8))["error"]["code"], -32601);

    raw.send_json(&json!({"jsonrpc": "2.0", "method": "side.note", "params": ["alone"]}));
    wait_until("both notifications delivered", Duration::from_secs(10), || {
        crate::support::lines(&notes) == ["from a batch", "alone"]
            || crate::support::lines(&notes) == ["alone", "from a batch"]
    });
    assert_eq!(pm.ok(&["call", "side.whoami"]).trim(), "\"side\"");
    let out = pm.run(&["call", "side.add", "[1, \"x\"]"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "an error answer: {err}");
    // The whole error object: code, message and data.
    assert!(err.starts_with("pm: side.add: error -32000: ") && err.contains("unsupported operand"), "{err}");
    assert!(err.contains("data: {") && err.contains("\"type\": \"TypeError\""), "the error's data: {err}");
}

#[test]
fn direct_mode_calls_go_to_the_sidecars_own_endpoint() {
    let pm = Pm::new();
    let socket = pm.path("side.sock");
    start_sidecar(&pm, "side", &["--env", &format!("DIRECT_SOCKET={}", socket.display())]);
    let info: serde_json::Value = serde_json::from_str(&pm.ok(&["connect", "side", "--json"])).unwrap();
    assert_eq!(info["instances"][0]["direct"], format!("unix://{}", socket.display()));
    assert_eq!(info["instances"][0]["registered"], true);
    assert!(info["via_daemon"][0].as_str().unwrap().ends_with("pm.sock"));
    assert_eq!(pm.ok(&["call", "side.add", "[2, 3]"]).trim(), "5");
    let log = std::fs::read_to_string(pm.home.path().join("daemon.log")).unwrap();
    assert!(log.contains("side: registered 6 method(s), direct mode"), "{log}");
}

#[test]
fn a_thousand_concurrent_calls_are_all_answered() {
    let pm = Pm::new();
    start_sidecar(&pm, "side", &[]);
    let threads: Vec<_> = (0..10)
        .map(|t| {
            let mut raw = Raw::unix(&pm);
            std::thread::spawn(move || {
                for i in 0..100 {
                    let id = t * 1000 + i;
                    raw.send_json(&json!({"jsonrpc": "2.0", "id": id, "method": "side.echo", "params": [id]}));
                }
                (0..100).map(|_| raw.line()).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for (t, thread) in threads.into_iter().enumerate() {
        for answer in thread.join().unwrap() {
            let id = answer["id"].as_i64().unwrap();
            assert_eq!(answer["result"], json!([id]), "each reply carries its own caller's id");
            assert_eq!(id / 1000, t as i64, "replies go to the connection that asked");
            assert!(seen.insert(id), "answered twice: {id}");
        }
    }
    assert_eq!(seen.len(), 1000);
}

#[test]
fn killing_the_sidecar_mid_call_answers_every_pending_call_at_once() {
    let pm = Pm::new();
    start_sidecar(&pm, "side", &["--restart", "never"]);
    let mut raw = Raw::unix(&pm);
    for id in 0..50 {
        raw.send_json(&json!({"jsonrpc": "2.0", "id": id, "method": "side.hang"}));
    }
    // The sidecar has them all once it answers a later call on the same route.
    assert_eq!(raw.call("side.whoami", json!([]))["result"], "side");
    let pid = pm.instance("side")["pid"].as_i64().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let answers: Vec<_> = (0..50).map(|_| raw.line()).collect();
    for a in &answers {
        assert_eq!(a["error"]["code"], -32006, "{a}");
        assert!(a["error"]["message"].as_str().unwrap().contains("sidecar `side` went away"), "{a}");
    }
    let ids: BTreeSet<i64> = answers.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 50);
    wait_until("sidecar dead", Duration::from_secs(5), || !alive(pid));
    // Pending calls fail on the disconnect, which may come before the exit is recorded.
    wait_until("the exit recorded", Duration::from_secs(5), || pm.instance("side")["state"] == "failed");
    // The daemon carries on.
    let err = raw.call("side.echo", json!([1]));
    assert_eq!(err["error"]["code"], -32002, "not running any more: {err}");
}

#[test]
fn a_call_past_its_deadline_is_answered_with_deadline_exceeded() {
    let pm = Pm::new();
    start_sidecar(&pm, "side", &[]);
    let mut raw = Raw::unix(&pm);
    raw.send_json(&json!({"jsonrpc": "2.0", "id": 1, "method": "side.slow", "params": [3000], "deadline_ms": 200}));
    let answer = raw.line();
    assert_eq!(answer["error"]["code"], -32004, "{answer}");
    assert_eq!(raw.call("side.slow", json!([10]))["result"], "slept", "the late reply was dropped, not misdelivered");
}

#[test]
fn unknown_not_ready_and_not_commandable_have_their_own_codes() {
    let pm = Pm::new();
    pm.ok(&["map", "plain", "--", "sleep", "1000"]);
    pm.ok(&["map", "idle", "--", "sleep", "1000"]);
    pm.ok(&["start", "plain"]);
    let mut raw = Raw::unix(&pm);
    let code = |raw: &mut Raw, method: &str| raw.call(method, json!([]))["error"]["code"].as_i64().unwrap();
    assert_eq!(code(&mut raw, "ghost.x"), -32001);
    assert_eq!(code(&mut raw, "idle.x"), -32002);
    assert_eq!(code(&mut raw, "plain.x"), -32003);
    assert_eq!(code(&mut raw, "nodots"), -32601);
    let err = raw.call("pm.register", json!({"methods": ["x"]}));
    assert_eq!(err["error"]["code"], -32005, "only a sidecar may register: {err}");
}

#[test]
fn calls_to_a_stateless_definition_are_balanced_across_its_instances() {
    let pm = Pm::new();
    start_sidecar(&pm, "pool", &["--instances", "3", "--stateless"]);
    let mut raw = Raw::unix(&pm);
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..30 {
        let who = raw.call("pool.whoami", json!([]))["result"].as_str().unwrap().to_string();
        *counts.entry(who).or_insert(0) += 1;
    }
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [("pool-0".into(), 10), ("pool-1".into(), 10), ("pool-2".into(), 10)]
    );
    assert_eq!(raw.call("pool-1.whoami", json!([]))["result"], "pool-1", "an instance by name");
}

#[test]
fn tcp_clients_must_authenticate_with_a_token() {
    let pm = Pm::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("tcp://127.0.0.1:{port}");
    let out = pm.ok(&["start", "pm", "--listen", &url]);
    assert!(out.contains(&url), "{out}");
    let token = pm.ok(&["token"]).trim().to_string();
    assert_eq!(token.len(), 32);

    let addr = format!("127.0.0.1:{port}");
    let mut raw = Raw::tcp(&addr);
    assert_eq!(raw.call("pm.ping", json!([]))["error"]["code"], -32005, "nothing before pm.auth");
    assert_eq!(raw.call("pm.auth", json!({"token": "wrong"}))["error"]["code"], -32005);
    assert_eq!(raw.call("pm.auth", json!({"token": token}))["result"]["identity"], "owner");
    assert!(raw.call("pm.ping", json!([]))["result"]["endpoints"].as_array().unwrap().contains(&json!(url)));
}
