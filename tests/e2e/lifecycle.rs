//! When the daemon runs: looking never starts it, its own log can never kill it, and a state
//! restored from the backup is said to the user.

use crate::support::{Pm, alive, texts, wait_until};
use std::process::Stdio;
use std::time::Duration;

const NOT_RUNNING: &str = "pm: the daemon is not running; `pm start pm` starts it\n";

#[test]
fn read_only_commands_never_start_the_daemon() {
    let pm = Pm::new();
    pm.ok(&["map", "svc", "--", "sleep", "1000"]);
    pm.ok(&["start", "svc"]);
    let token = pm.ok(&["token"]);
    pm.ok(&["stop", "pm"]);
    let looks: [&[&str]; 8] = [
        &["status"],
        &["status", "--json"],
        &["ls"],
        &["log", "svc"],
        &["events"],
        &["connect", "svc"],
        &["stop", "svc"],
        &["stop", "--all"],
    ];
    for args in looks {
        let out = pm.run(args);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(3), "pm {args:?} (3: the daemon cannot be reached): {stdout}");
        assert_eq!(stderr, NOT_RUNNING, "pm {args:?}");
        assert!(!pm.home.path().join("pm.sock").exists(), "pm {args:?} started a daemon");
    }
    // The token outlives the daemon, which keeps it: reading it starts nothing.
    assert_eq!(pm.ok(&["token"]), token);
    assert!(!pm.home.path().join("pm.sock").exists(), "pm token started a daemon");
    assert_eq!(pm.ok(&["stop", "pm"]).trim(), "pm daemon is not running");
}

#[test]
fn token_with_no_daemon_ever_started_says_so() {
    let pm = Pm::new();
    let out = pm.run(&["token"]);
    assert_eq!(out.status.code(), Some(3), "the daemon cannot be reached");
    assert_eq!(texts(&out).1, NOT_RUNNING);
}

#[test]
fn a_daemon_whose_stderr_is_full_keeps_running() {
    let pm = Pm::new();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut daemon = pm.cmd(&["daemon"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(full).spawn().unwrap();
    let pid = daemon.id() as i64;
    wait_until("the daemon answers", Duration::from_secs(10), || {
        assert!(daemon.try_wait().unwrap().is_none(), "the daemon exited");
        pm.run(&["status"]).status.success()
    });
    // Starting and stopping a sidecar logs several lines, each one lost.
    pm.ok(&["map", "svc", "--", "sleep", "1000"]);
    pm.ok(&["start", "svc"]);
    pm.ok(&["stop", "svc"]);
    assert_eq!(pm.instance("svc")["state"], "stopped");
    pm.ok(&["stop", "pm"]);
    wait_until("the daemon exits", Duration::from_secs(10), || daemon.try_wait().unwrap().is_some());
    assert!(daemon.wait().unwrap().success(), "the daemon ended cleanly");
    assert!(!alive(pid));
}

/// `pm map`s two definitions and stops the daemon; returns the names the backup holds.
fn two_definitions_then_stopped(pm: &Pm) -> Vec<String> {
    pm.ok(&["map", "one", "--", "sleep", "1000"]);
    pm.ok(&["map", "two", "--", "sleep", "1000"]);
    pm.ok(&["stop", "pm"]);
    let backup: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pm.home.path().join("state.json.bak")).unwrap()).unwrap();
    let names: Vec<String> = backup["definitions"].as_object().unwrap().keys().cloned().collect();
    assert!(!names.is_empty(), "the backup holds at least the first definition");
    names
}

fn definitions(pm: &Pm) -> Vec<String> {
    let defs: Vec<serde_json::Value> = serde_json::from_str(&pm.ok(&["ls", "--json"])).unwrap();
    defs.iter().map(|d| d["name"].as_str().unwrap().to_string()).collect()
}

/// `pm status` (plain and `--json`) and `pm start pm` say `notice` on stderr only.
fn notice_is_said(pm: &Pm, notice: &str) {
    let out = pm.run(&["start", "pm"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success() && stdout.contains("pm daemon started"), "{stdout}{stderr}");
    assert!(stderr.starts_with("pm: notice: ") && stderr.contains(notice), "{stderr}");
    for args in [&["status"][..], &["status", "--json"]] {
        let out = pm.run(args);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.starts_with("pm: notice: ") && stderr.contains(notice), "pm {args:?}: {stderr}");
        assert!(!stdout.contains("notice"), "pm {args:?}: {stdout}");
    }
    let json: serde_json::Value = serde_json::from_str(&pm.ok(&["status", "--json"])).unwrap();
    assert!(json.is_array(), "{json}");
}

#[test]
fn a_missing_state_file_is_restored_from_the_backup_and_said() {
    let pm = Pm::new();
    let saved = two_definitions_then_stopped(&pm);
    std::fs::remove_file(pm.home.path().join("state.json")).unwrap();
    notice_is_said(&pm, "state.json was missing; restored from ");
    assert_eq!(definitions(&pm), saved);
    let log = std::fs::read_to_string(pm.home.path().join("daemon.log")).unwrap();
    assert!(log.contains("state.json was missing; restored from "), "{log}");
}

#[test]
fn a_corrupt_state_file_is_restored_from_the_backup_and_said() {
    let pm = Pm::new();
    let saved = two_definitions_then_stopped(&pm);
    std::fs::write(pm.home.path().join("state.json"), "{ truncated").unwrap();
    notice_is_said(&pm, "state.json was corrupt (");
    assert_eq!(definitions(&pm), saved);
    // Kept aside, so the next save cannot copy it over the good backup.
    let aside = std::fs::read_to_string(pm.home.path().join("state.json.corrupt")).unwrap();
    assert_eq!(aside, "{ truncated");
    pm.ok(&["map", "three", "--", "sleep", "1000"]);
    let backup = std::fs::read_to_string(pm.home.path().join("state.json.bak")).unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(&backup).is_ok(), "{backup}");
}

#[test]
fn a_fresh_home_has_no_notice() {
    let pm = Pm::new();
    let out = pm.run(&["start", "pm"]);
    assert!(out.status.success());
    assert_eq!(texts(&out).1, "");
    assert_eq!(texts(&pm.run(&["status"])).1, "");
}
