//! Isolation between peers and bounded work, tried as hostile and broken peers would: a caller
//! that stops reading, a sidecar that stops reading, clients that never authenticate, huge
//! batches and deadlines, foreign ids and other connections' subscriptions.

use crate::support::{Pm, Raw, free_port, wait_until};
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, Instant};

const SIDECAR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/fixtures/sidecar.py");
const DEAF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/fixtures/deaf.py");

fn start_sidecar(pm: &Pm, name: &str, script: &str) {
    pm.ok(&["map", name, "--ready", "registered", "--stop-timeout", "2s", "--", "python3", script]);
    pm.ok(&["start", name]);
}

fn code(answer: &Value) -> i64 {
    answer["error"]["code"].as_i64().unwrap_or_else(|| panic!("not an error: {answer}"))
}

/// Writes `frames` on a connection in a thread that never reads; returns whether the daemon
/// cut it off (a write failed) before all were written.
fn flood(
    mut stream: std::os::unix::net::UnixStream,
    frames: impl Iterator<Item = String> + Send + 'static,
) -> std::thread::JoinHandle<bool> {
    stream.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    std::thread::spawn(move || {
        for frame in frames {
            if stream.write_all(frame.as_bytes()).is_err() {
                return true;
            }
        }
        false
    })
}

#[test]
fn a_caller_that_stops_reading_is_dropped_and_nobody_else_waits() {
    let pm = Pm::new();
    pm.ok(&["map", "echo", "--runtime", "task", "--ready", "registered", "--", "echo"]);
    pm.ok(&["start", "echo"]);
    start_sidecar(&pm, "side", SIDECAR);
    // Calls whose answers pile up unread on the caller's side.
    let payload = "x".repeat(60 * 1024);
    let frames = (0..4_000)
        .map(move |i| format!("{}\n", json!({"jsonrpc": "2.0", "id": i, "method": "echo.echo", "params": [payload]})));
    let greedy = std::os::unix::net::UnixStream::connect(pm.home.path().join("pm.sock")).unwrap();
    let flooding = flood(greedy, frames);

    // Meanwhile other clients of the same sidecar, and of another, are answered in time.
    let mut polite = Raw::unix(&pm);
    let mut answered = 0;
    while !flooding.is_finished() || answered < 5 {
        let asked = Instant::now();
        let answer = polite.call("echo.add", json!([answered, 1]));
        assert!(asked.elapsed() < Duration::from_secs(5), "call took {:?}: {answer}", asked.elapsed());
        // At the height of the flood the sidecar may be busy: that is an answer too.
        if answer["result"].is_number() {
            answered += 1;
        } else {
            assert_eq!(code(&answer), -32008, "{answer}");
        }
        assert_eq!(polite.call("side.slow", json!([1]))["result"], "slept");
    }
    assert!(flooding.join().unwrap(), "the caller that never reads was not disconnected");
    let log = std::fs::read_to_string(pm.home.path().join("daemon.log")).unwrap();
    assert!(log.contains("it did not read its answers"), "{log}");
    // The sidecar is unaffected, and stopping it does not wait on anyone.
    assert_eq!(pm.ok(&["call", "echo.add", "[1, 2]"]).trim(), "3");
    let asked = Instant::now();
    pm.ok(&["stop", "echo"]);
    assert!(asked.elapsed() < Duration::from_secs(4), "pm stop took {:?}", asked.elapsed());
}

#[test]
fn a_deaf_sidecar_makes_new_calls_fail_fast_and_every_pending_call_is_answered() {
    let pm = Pm::new();
    start_sidecar(&pm, "deaf", DEAF);
    start_sidecar(&pm, "side", SIDECAR);
    // More than the daemon queues for one peer (32 MiB).
    let payload = "y".repeat(16 * 1024);
    let n = 3000;
    // A client piles calls on the deaf sidecar, reading its answers as they come.
    let piler = std::os::unix::net::UnixStream::connect(pm.home.path().join("pm.sock")).unwrap();
    piler.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let reader = std::io::BufReader::new(piler.try_clone().unwrap());
    let answers = std::thread::spawn(move || {
        let mut codes = std::collections::BTreeMap::new();
        for line in std::io::BufRead::lines(reader).take(n) {
            *codes.entry(code(&serde_json::from_str(&line.unwrap()).unwrap())).or_insert(0) += 1;
        }
        codes
    });
    let frames = (0..n).map(move |i| {
        let call = json!({"jsonrpc": "2.0", "id": i, "method": "deaf.x", "params": [payload], "deadline_ms": 2000});
        format!("{call}\n")
    });
    assert!(!flood(piler, frames).join().unwrap(), "the piler, which reads, was disconnected");
    // Another client is not frozen by it: its calls to the deaf sidecar are answered in time
    // (at their deadline while the sidecar may still be catching up, at once when it is known
    // not to take requests), and the rest of its traffic goes on.
    let mut other = Raw::unix(&pm);
    let mut refused = None;
    while refused.is_none() {
        let asked = Instant::now();
        let answer = other.call_with_deadline("deaf.x", json!([]), 300);
        assert!(asked.elapsed() < Duration::from_secs(2), "took {:?}: {answer}", asked.elapsed());
        match code(&answer) {
            -32004 => {}
            -32008 => refused = Some((answer, asked.elapsed())),
            _ => panic!("{answer}"),
        }
        assert_eq!(other.call("side.add", json!([2, 3]))["result"], 5);
    }
    let (answer, took) = refused.unwrap();
    assert!(took < Duration::from_millis(200), "a refusal took {took:?}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("is not taking requests"), "{answer}");
    // Every call of the piler is answered: refused as busy, or at its deadline.
    let codes = answers.join().unwrap();
    assert_eq!(codes.keys().copied().collect::<Vec<_>>(), vec![-32008, -32004], "{codes:?}");
    assert_eq!(codes.values().sum::<usize>(), n);
}

#[test]
fn nothing_is_expanded_or_kept_before_authentication() {
    let pm = Pm::new();
    let addr = format!("127.0.0.1:{}", free_port());
    pm.ok(&["start", "pm", "--listen", &format!("tcp://{addr}")]);
    let before = pm.daemon_rss_kib();
    // A large batch before pm.auth: refused for its size, unread, and the connection closed.
    let big = format!("[{}1]\n", "1,".repeat(200_000));
    let mut raw = Raw::tcp(&addr);
    raw.send(big.as_bytes());
    let answer = raw.line();
    assert_eq!(code(&answer), -32007, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("65536 bytes"), "{answer}");
    assert!(raw.closed_within(Duration::from_secs(5)));
    // A small one is answered once, as a whole, not item by item.
    let mut raw = Raw::tcp(&addr);
    raw.send(format!("[{}1]\n", "1,".repeat(30_000)).as_bytes());
    let answer = raw.line();
    assert_eq!(code(&answer), -32005, "{answer}");
    // Failed attempts close the connection after three.
    let mut raw = Raw::tcp(&addr);
    for attempt in 1..=3 {
        assert_eq!(code(&raw.auth(&format!("guess-{attempt}"))), -32005);
    }
    assert!(raw.closed_within(Duration::from_secs(5)), "still open after three failed attempts");
    // Many clients sending batches cost nothing lasting.
    let clients: Vec<Raw> = (0..20)
        .map(|_| {
            let mut raw = Raw::tcp(&addr);
            for _ in 0..3 {
                raw.send(format!("[{}1]\n", "1,".repeat(30_000)).as_bytes());
            }
            raw
        })
        .collect();
    let owner_status = pm.ok(&["status", "--json"]);
    assert_eq!(owner_status.trim(), "[]");
    drop(clients);
    let after = pm.daemon_rss_kib();
    assert!(after < before + 30 * 1024, "RSS grew from {before} KiB to {after} KiB");
}

#[test]
fn clients_that_never_authenticate_or_read_are_dropped_and_the_owner_keeps_working() {
    let pm = Pm::new();
    let addr = format!("127.0.0.1:{}", free_port());
    let _daemon = pm.daemon(&["--listen", &format!("tcp://{addr}"), "--auth-timeout", "1s", "--max-connections", "60"]);
    let baseline = pm.daemon_fds();
    // Silent clients up to the cap; one more is refused at once, with the reason.
    let mut silent: Vec<Raw> = (0..60).map(|_| Raw::tcp(&addr)).collect();
    let mut extra = Raw::tcp(&addr);
    let answer = extra.line();
    assert_eq!(code(&answer), -32008, "{answer}");
    assert!(extra.closed_within(Duration::from_secs(5)));
    // The owner is never locked out.
    assert_eq!(pm.ok(&["status", "--json"]).trim(), "[]");
    // All are dropped by the auth timeout.
    for raw in &mut silent {
        assert!(raw.closed_within(Duration::from_secs(10)), "a silent client was kept");
    }
    // Clients that send requests without reading the refusals are dropped too.
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "pm.ping"}).to_string() + "\n";
    let chatty: Vec<std::thread::JoinHandle<bool>> = (0..20)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
            let ping = ping.clone();
            std::thread::spawn(move || (0..100_000).any(|_| s.write_all(ping.as_bytes()).is_err()))
        })
        .collect();
    for client in chatty {
        assert!(client.join().unwrap(), "a client that never authenticated was kept");
    }
    wait_until("every connection is closed", Duration::from_secs(10), || pm.daemon_fds() <= baseline);
    // And the listener serves new clients again.
    let token = pm.ok(&["token"]);
    assert_eq!(Raw::tcp(&addr).auth(token.trim())["result"]["identity"], "owner");
}

#[test]
fn with_few_open_files_remote_clients_still_cannot_lock_the_owner_out() {
    let pm = Pm::new();
    let addr = format!("127.0.0.1:{}", free_port());
    let _daemon = pm.daemon_with_open_files(256, &["--listen", &format!("tcp://{addr}")]);
    let clients: Vec<std::net::TcpStream> = (0..300).filter_map(|_| std::net::TcpStream::connect(&addr).ok()).collect();
    assert!(!clients.is_empty());
    assert_eq!(pm.ok(&["status", "--json"]).trim(), "[]");
    // Sidecars still start: their pipes find descriptors.
    pm.ok(&["map", "svc", "--", "sleep", "1000"]);
    pm.ok(&["start", "svc"]);
    assert_eq!(pm.instance("svc")["state"], "ready");
    let log = std::fs::read_to_string(pm.path("daemon.out")).unwrap();
    assert!(log.contains("at most 64 connections per pool, not 1024: the open-file limit is 256"), "{log}");
}

#[test]
fn deadlines_are_capped_and_kept_without_polling() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&["--max-deadline", "1s"]);
    start_sidecar(&pm, "side", SIDECAR);
    let mut raw = Raw::unix(&pm);
    let asked = Instant::now();
    raw.send_json(&json!({"jsonrpc": "2.0", "id": 1, "method": "side.hang", "deadline_ms": 1_000_000_000_000_000u64}));
    let answer = raw.line();
    assert_eq!(code(&answer), -32004, "{answer}");
    assert!(asked.elapsed() < Duration::from_secs(5), "took {:?}", asked.elapsed());
    // A later call with an earlier deadline is answered first.
    raw.send_json(&json!({"jsonrpc": "2.0", "id": "late", "method": "side.hang", "deadline_ms": 900}));
    raw.send_json(&json!({"jsonrpc": "2.0", "id": "soon", "method": "side.hang", "deadline_ms": 100}));
    assert_eq!(raw.line()["id"], "soon");
    assert_eq!(raw.line()["id"], "late");
}

#[test]
fn ids_must_be_strings_numbers_or_null() {
    let pm = Pm::new();
    pm.ok(&["start", "pm"]);
    let mut raw = Raw::unix(&pm);
    for id in [json!({"a": 1}), json!([1]), json!(true)] {
        raw.send_json(&json!({"jsonrpc": "2.0", "id": id, "method": "pm.ping"}));
        let answer = raw.line();
        assert_eq!((code(&answer), &answer["id"]), (-32600, &Value::Null), "{answer}");
    }
    raw.send_json(&json!([{"jsonrpc": "2.0", "id": {}, "method": "pm.ping"}, {"jsonrpc": "2.0", "id": -2.5, "method": "pm.ping"}]));
    let batch = raw.line();
    assert_eq!(code(&batch[0]), -32600, "{batch}");
    assert_eq!(batch[1]["id"], -2.5, "{batch}");
}

#[test]
fn only_the_connection_that_subscribed_may_cancel() {
    let pm = Pm::new();
    pm.ok(&["map", "svc", "--", "sleep", "1000"]);
    let mut owner = Raw::unix(&pm);
    let subscribed = owner.call("pm.events", json!({}));
    let id = subscribed["result"].clone();
    assert!(id.is_number() || id.is_string(), "{subscribed}");
    let mut other = Raw::unix(&pm);
    let answer = other.call("pm.unevents", json!([id]));
    assert_eq!(code(&answer), -32602, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("only the connection that opened it"), "{answer}");
    // The subscription goes on.
    pm.ok(&["start", "svc"]);
    let event = owner.line();
    assert_eq!(event["params"]["subscription"], id, "{event}");
    assert_eq!(event["params"]["result"]["change"]["instance"], "svc", "{event}");
    // Its own connection may.
    let mut cancelled = None;
    owner.send_json(&json!({"jsonrpc": "2.0", "id": "un", "method": "pm.unevents", "params": [id]}));
    while cancelled.is_none() {
        let msg = owner.line();
        if msg["id"] == "un" {
            cancelled = Some(msg);
        }
    }
    assert_eq!(cancelled.unwrap()["result"], true);
}

#[test]
fn subscriptions_per_connection_are_capped() {
    let pm = Pm::new();
    pm.ok(&["start", "pm"]);
    let mut raw = Raw::unix(&pm);
    for i in 0..64 {
        assert!(raw.call("pm.events", json!({}))["result"].is_number(), "subscription {i}");
    }
    let answer = raw.call("pm.events", json!({}));
    assert_eq!(code(&answer), -32008, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("64 subscriptions are open"), "{answer}");
    // Another connection has its own.
    assert!(Raw::unix(&pm).call("pm.events", json!({}))["result"].is_number());
}
