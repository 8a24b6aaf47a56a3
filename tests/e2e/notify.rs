//! Notifications to a real local webhook server and a real command: what they carry, and that
//! a notifier that never answers holds nothing up.

use crate::support::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A webhook server: each request's body (JSON) goes to the returned receiver; it answers 204.
fn webhook() -> (String, mpsc::Receiver<serde_json::Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/pm", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let (mut line, mut length, mut head) = (String::new(), 0, String::new());
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
                line.clear();
            }
            assert!(head.starts_with("POST /pm HTTP/1.1"), "{head}");
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = reader.get_mut().write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
            let _ = tx.send(serde_json::from_slice(&body).unwrap());
        }
    });
    (url, rx)
}

#[test]
fn a_failure_and_a_give_up_are_posted_to_the_webhook_with_the_instance_and_its_last_exit() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let (url, posted) = webhook();
    let project = format!(
        "[sidecars.once]\ncommand = \"sh -c 'exit 3'\"\nrestart = \"never\"\nnotify = {{ webhook = \"{url}\" }}\n\
         [sidecars.loop]\ncommand = \"sh -c 'exit 4'\"\nrestart = \"always\"\nbackoff_initial = \"0s\"\nmax_restarts = 2\n\
         notify = {{ webhook = \"{url}\", on = [\"gave_up\"] }}\n"
    );
    pm.write("pm.toml", &project);
    let _ = pm.run(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
    let mut got: Vec<serde_json::Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 2 && Instant::now() < deadline {
        if let Ok(n) = posted.recv_timeout(Duration::from_millis(100)) {
            got.push(n);
        }
    }
    let of = |name: &str| got.iter().find(|n| n["instance"] == name).cloned().unwrap_or_default();
    let once = of("once");
    assert_eq!(
        (&once["event"], &once["state"], &once["definition"]),
        (&"failed".into(), &"failed".into(), &"once".into())
    );
    assert_eq!(once["last_exit"]["code"], 3, "{once}");
    assert!(once["reason"].as_str().unwrap().contains("exited with code 3"), "{once}");
    assert!(once["at_ms"].as_u64().unwrap() > 0);
    let gave_up = of("loop");
    assert_eq!(gave_up["event"], "gave_up", "{gave_up}");
    assert!(gave_up["reason"].as_str().unwrap().starts_with("gave up after 2 restarts"), "{gave_up}");
    // `loop` asked for give-ups only: its failed starts were not sent (nothing else arrives).
    assert!(posted.recv_timeout(Duration::from_millis(500)).is_err(), "only what was asked for");
}

#[test]
fn an_unhealthy_instance_runs_the_notify_command_with_the_event() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let record = pm.path("record");
    let closed = free_port();
    let project = format!(
        "[sidecars.svc]\ncommand = \"sleep 1000\"\n\
         health = {{ tcp = \"127.0.0.1:{closed}\", interval = \"100ms\", failure_threshold = 2, on_unhealthy = \"report\" }}\n\
         notify = {{ exec = \"sh -c 'echo $PM_EVENT $PM_NAME >> {r}; echo $PM_NOTIFICATION >> {r}.json'\" }}\n",
        r = record.display()
    );
    pm.write("pm.toml", &project);
    pm.ok(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
    wait_until("the notify command ran", Duration::from_secs(10), || lines(&record) == ["unhealthy svc"]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pm.path("record.json")).unwrap()).unwrap();
    assert_eq!(json["event"], "unhealthy");
    assert!(json["reason"].as_str().unwrap().contains("health check failed 2 times in a row"), "{json}");
}

#[test]
fn a_webhook_that_never_answers_holds_up_neither_restarts_nor_status() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    // Accepts connections and never reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let closed = free_port();
    // Unhealthy at every first check, so restarted (and notified) again and again.
    let project = format!(
        "[sidecars.flaky]\ncommand = \"sleep 1000\"\nbackoff_initial = \"0s\"\nmax_restarts = 1000\n\
         health = {{ tcp = \"127.0.0.1:{closed}\", interval = \"100ms\", failure_threshold = 1 }}\n\
         notify = {{ webhook = \"{url}\", on = [\"unhealthy\"] }}\n"
    );
    pm.write("pm.toml", &project);
    pm.ok(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
    wait_until("flaky keeps being restarted", Duration::from_secs(15), || {
        pm.instance("flaky")["restarts"].as_u64() >= Some(10)
    });
    let asked = Instant::now();
    pm.ok(&["status"]);
    assert!(asked.elapsed() < Duration::from_secs(1), "status took {:?}", asked.elapsed());
    drop(listener);
}
