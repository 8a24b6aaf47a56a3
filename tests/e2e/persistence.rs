//! The daemon's own life: persistence across kill -9, stale sockets, corrupt state, one daemon
//! per PM_HOME.

use crate::support::{Pm, alive, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;

#[test]
fn after_kill_9_a_new_daemon_replaces_the_stale_socket_and_restarts_instances_without_orphans() {
    let pm = Pm::new();
    pm.ok(&["map", "svc", "--", "sleep", "1000"]);
    pm.ok(&["map", "idle", "--", "sleep", "1000"]);
    pm.ok(&["start", "svc"]);
    let old_child = pm.instance("svc")["pid"].as_i64().unwrap();
    let daemon = pm.daemon_pid().unwrap();
    kill(Pid::from_raw(daemon), Signal::SIGKILL).unwrap();
    wait_until("daemon dead", Duration::from_secs(5), || !alive(daemon as i64));
    let socket = pm.home.path().join("pm.sock");
    assert!(socket.exists(), "kill -9 leaves the socket behind");
    assert!(alive(old_child), "the child outlived its daemon");

    // `pm start pm` brings a daemon back; it cleans up and restarts what was running.
    pm.ok(&["start", "pm"]);
    wait_until("svc running again", Duration::from_secs(15), || {
        let s = pm.instance("svc");
        s["state"] == "ready" && s["pid"].as_i64().is_some_and(|p| p != old_child)
    });
    assert_ne!(pm.daemon_pid().unwrap(), daemon);
    wait_until("the old child is killed", Duration::from_secs(5), || !alive(old_child));
    assert_eq!(pm.instance("idle")["state"], "stopped", "never started, so not started now");
}

#[test]
fn stop_pm_stops_everything_and_a_restart_brings_back_what_ran() {
    let pm = Pm::new();
    pm.ok(&["map", "svc", "--", "sleep", "1000"]);
    pm.ok(&["start", "svc"]);
    let pid = pm.instance("svc")["pid"].as_i64().unwrap();
    let out = pm.ok(&["stop", "pm"]);
    assert!(out.contains("pm daemon stopped"), "{out}");
    assert!(!alive(pid), "the sidecar is stopped with the daemon");
    assert!(!pm.home.path().join("pm.sock").exists());
    assert_eq!(pm.ok(&["stop", "pm"]).trim(), "pm daemon is not running");
    let started = pm.ok(&["start", "pm"]);
    assert!(started.contains("pm daemon started"), "{started}");
    wait_until("svc back", Duration::from_secs(10), || pm.instance("svc")["state"] == "ready");
}

#[test]
fn a_second_daemon_on_the_same_home_refuses() {
    let pm = Pm::new();
    pm.ok(&["start", "pm"]);
    let again = pm.ok(&["start", "pm"]);
    assert!(again.contains("already running"), "{again}");
    let err = pm.fails(&["daemon"]);
    assert!(err.contains("another pm daemon is already running"), "{err}");
}

#[test]
fn a_corrupt_state_file_is_reported_and_the_backup_used() {
    let pm = Pm::new();
    pm.ok(&["map", "one", "--", "sleep", "1000"]);
    pm.ok(&["map", "two", "--", "sleep", "1000"]);
    pm.ok(&["stop", "pm"]);
    std::fs::write(pm.home.path().join("state.json"), "{ truncated").unwrap();
    pm.ok(&["start", "pm"]);
    let defs: Vec<serde_json::Value> = serde_json::from_str(&pm.ok(&["ls", "--json"])).unwrap();
    let names: Vec<&str> = defs.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"one"), "the backup holds at least the first definition: {names:?}");
    let log = std::fs::read_to_string(pm.home.path().join("daemon.log")).unwrap();
    assert!(log.contains("state.json was corrupt"), "{log}");
}
