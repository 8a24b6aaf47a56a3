//! Least privilege, tried as a hostile sidecar would: what its own PM_TOKEN may and may not do,
//! what grants in its definition open, where it may aim the daemon, and how long a token lives.

use crate::support::{Pm, Raw, TOKEN_PRINTER, free_port, lines, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

const SIDECAR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/fixtures/sidecar.py");

/// A daemon on tcp with the Python `victim` (registered) and `spy`, which prints its token.
fn with_victim_and_spy(pm: &Pm, spy: &str) -> (String, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let project = format!(
        "[daemon]\nlisten = [\"tcp://{addr}\"]\n\n\
         [sidecars.victim]\ncommand = [\"python3\", \"{SIDECAR}\"]\nready = \"registered\"\n\n\
         [sidecars.spy]\ncommand = [\"sh\", \"-c\", \"{TOKEN_PRINTER}\"]\n{spy}\n"
    );
    pm.write("pm.toml", &project);
    pm.ok(&["start"]);
    let token = pm.printed_token("spy");
    (addr, token)
}

fn code(answer: &Value) -> i64 {
    answer["error"]["code"].as_i64().unwrap_or_else(|| panic!("not an error: {answer}"))
}

#[test]
fn a_sidecar_token_has_none_of_the_owners_powers() {
    let pm = Pm::new();
    let (addr, token) = with_victim_and_spy(&pm, "");
    let victim_pid = pm.instance("victim")["pid"].clone();
    let mut spy = Raw::tcp(&addr);
    assert_eq!(spy.auth(&token)["result"], json!({"identity": "sidecar", "name": "spy"}));
    let marker = pm.path("pwned");
    let evil = json!({"command": ["touch", marker.display().to_string()]});
    let attempts = [
        ("pm.map", json!({"name": "evil", "definition": evil, "replace": false})),
        ("pm.map", json!({"name": "victim", "definition": evil, "replace": true})),
        ("pm.apply", json!({"definitions": {"evil": evil}, "start": true})),
        ("pm.start", json!([{"name": "victim", "new": true}])),
        ("pm.stop", json!([{"name": "victim"}])),
        ("pm.restart", json!({"name": "victim"})),
        ("pm.delete", json!({"name": "victim"})),
        ("pm.ls", json!([])),
        ("pm.status", json!({})),
        ("pm.connect", json!({"name": "victim"})),
        ("pm.logs", json!({"name": "victim", "lines": 10, "follow": false})),
        ("pm.events", json!({})),
        ("pm.shutdown", json!([])),
    ];
    for (method, params) in attempts {
        let answer = spy.call(method, params);
        assert_eq!(code(&answer), -32005, "{method}: {answer}");
        let why = answer["error"]["message"].as_str().unwrap();
        assert!(why.contains("sidecar `spy` may") && why.contains("pm = ["), "{method}: {why}");
    }
    // Calling a sidecar it does not depend on is refused too, naming the grant that is missing.
    let answer = spy.call("victim.whoami", json!([]));
    assert_eq!(code(&answer), -32005, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("calls = [\"victim.whoami\"]"), "{answer}");
    // What it may do: ping, and follow its own logs and events.
    assert!(spy.call("pm.ping", json!([]))["result"]["pid"].is_number());
    let own = spy.call("pm.logs", json!({"name": "spy", "lines": 1, "follow": false}));
    assert!(own["result"].is_number() || own["result"].is_string(), "{own}");
    // Nothing happened: no file, no new definition, the victim untouched, the daemon up.
    assert!(!marker.exists());
    let names: Vec<Value> = serde_json::from_str(&pm.ok(&["ls", "--json"])).unwrap();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(pm.instance("victim")["pid"], victim_pid);
    assert_eq!(pm.ok(&["call", "victim.whoami"]).trim(), "\"victim\"");
}

#[test]
fn grants_open_exactly_what_they_name() {
    let pm = Pm::new();
    let grants = "calls = [\"victim.whoami\"]\npm = [\"status\"]\n\n\
                  [sidecars.friend]\ncommand = [\"sh\", \"-c\", \"echo token=$PM_TOKEN; exec sleep 1000\"]\n\
                  depends_on = [\"victim\"]";
    let (addr, token) = with_victim_and_spy(&pm, grants);
    let mut spy = Raw::tcp(&addr);
    spy.auth(&token);
    assert!(spy.call("pm.status", json!({}))["result"].is_array());
    assert_eq!(code(&spy.call("pm.stop", json!([{"name": "victim"}]))), -32005);
    assert_eq!(spy.call("victim.whoami", json!([]))["result"], "victim");
    assert_eq!(code(&spy.call("victim.add", json!([1, 2]))), -32005);
    // A dependency's methods need no grant.
    let mut friend = Raw::tcp(&addr);
    friend.auth(&pm.printed_token("friend"));
    assert_eq!(friend.call("victim.add", json!([1, 2]))["result"], 3);
    assert_eq!(code(&friend.call("pm.status", json!({}))), -32005);
    // Grants are checked when defined.
    pm.write("bad.toml", "[sidecars.x]\ncommand = \"true\"\npm = [\"everything\"]\n");
    let err = pm.fails(&["start", "-f", "bad.toml"]);
    assert!(err.contains("pm: unknown daemon method `everything`"), "{err}");
}

#[test]
fn a_sidecar_cannot_aim_the_daemon_at_anything_but_its_own_local_endpoint() {
    let pm = Pm::new();
    let (addr, token) = with_victim_and_spy(&pm, "");
    // Something listening that a successful redirection would reach.
    let bait = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    bait.set_nonblocking(true).unwrap();
    let port = bait.local_addr().unwrap().port();
    let mut spy = Raw::tcp(&addr);
    spy.auth(&token);
    for endpoint in [format!("tcp://0.0.0.0:{port}"), "tcp://192.0.2.1:9".to_string(), "ws://example.com:80/".into()] {
        let answer = spy.call("pm.register", json!({"methods": [], "endpoint": endpoint, "direct": true}));
        assert_eq!(code(&answer), -32005, "{endpoint}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("not a loopback address"), "{answer}");
    }
    assert!(bait.accept().is_err(), "the daemon dialled the bait");
    // A Unix socket is fine only if it is the daemon's user's.
    if nix::unistd::getuid().is_root() {
        let path = pm.path("foreign.sock");
        let _foreign = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let answer = spy.call("pm.register", json!({"endpoint": format!("unix://{}", path.display()), "direct": true}));
        assert!(answer["error"]["message"].as_str().unwrap().contains("belongs to uid 65534"), "{answer}");
    } else {
        eprintln!("*** SKIPPED the foreign-socket case: chown needs root ***");
    }
}

#[test]
fn a_token_dies_with_its_run() {
    let pm = Pm::new();
    let (addr, first) = with_victim_and_spy(&pm, "");
    let mut held = Raw::tcp(&addr);
    held.auth(&first);
    assert!(held.call("pm.ping", json!([]))["result"].is_object());

    pm.ok(&["restart", "spy"]);
    let second = pm.printed_token("spy");
    assert_ne!(first, second, "a restart issues a new token");
    // The connection that authenticated with the old token can do nothing more...
    let answer = held.call("pm.ping", json!([]));
    assert_eq!(code(&answer), -32005, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("revoked"), "{answer}");
    // ...and the old token no longer authenticates.
    assert_eq!(code(&Raw::tcp(&addr).auth(&first)), -32005);
    assert_eq!(Raw::tcp(&addr).auth(&second)["result"]["name"], "spy");

    pm.ok(&["stop", "spy"]);
    assert_eq!(code(&Raw::tcp(&addr).auth(&second)), -32005, "a stop revokes the token");
    pm.ok(&["start", "spy"]);
    let third = pm.printed_token("spy");
    assert_ne!(third, second);
    pm.ok(&["delete", "spy"]);
    assert_eq!(code(&Raw::tcp(&addr).auth(&third)), -32005, "a delete revokes the token");
}

#[test]
fn files_in_pm_home_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let pm = Pm::new();
    std::fs::set_permissions(pm.home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A file a careless tool left readable is made private at start.
    std::fs::write(pm.home.path().join("daemon.log"), "").unwrap();
    std::fs::set_permissions(pm.home.path().join("daemon.log"), std::fs::Permissions::from_mode(0o644)).unwrap();
    pm.ok(&["map", "talker", "--env", "SECRET=s3cr3t", "--", "sh", "-c", "echo out; echo err >&2; exec sleep 1000"]);
    pm.ok(&["start", "talker"]);
    pm.ok(&["map", "other", "--", "sleep", "1000"]);
    wait_until("both logs written", Duration::from_secs(10), || {
        !lines(&pm.log_file("talker", "out")).is_empty() && !lines(&pm.log_file("talker", "err")).is_empty()
    });
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for file in ["state.json", "state.json.bak", "daemon.log", "token", "daemon.pid"] {
        assert_eq!(mode(&pm.home.path().join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&pm.log_file("talker", "out")), 0o600);
    assert_eq!(mode(&pm.log_file("talker", "err")), 0o600);
    let log = std::fs::read_to_string(pm.home.path().join("daemon.log")).unwrap();
    assert!(log.contains("is accessible to other users (mode 755)"), "{log}");

    // A listener beyond loopback without TLS is worth a warning.
    pm.ok(&["stop", "pm"]);
    pm.ok(&["start", "pm", "--listen", &format!("tcp://0.0.0.0:{}", free_port())]);
    let log = std::fs::read_to_string(pm.home.path().join("daemon.log")).unwrap();
    assert!(log.contains("listens beyond this host without TLS"), "{log}");
}
