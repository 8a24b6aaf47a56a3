//! Crash safety: what the daemon acknowledged is on disk, so a kill -9 right after an answer
//! neither undoes it nor loses track of a process; a failed write is an error; failed stays failed.

use crate::support::{Pm, alive, lines, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;

/// `sleep <marker>` processes, counted by their exact command line so a test can see duplicates;
/// killed when dropped, so a failing test leaves none behind.
struct Marked(String);

impl Marked {
    fn new(tag: u32) -> Marked {
        Marked(format!("4242{}{tag}", std::process::id()))
    }

    fn pids(&self) -> Vec<i32> {
        let cmdline = format!("sleep\0{}\0", self.0);
        let entries = std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok());
        let pids = entries.filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok());
        pids.filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == cmdline.as_bytes()))
            .collect()
    }
}

impl Drop for Marked {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// kill -9 of the daemon, then a new one.
fn crash_and_restart(pm: &Pm) {
    let daemon = pm.daemon_pid().unwrap();
    kill(Pid::from_raw(daemon), Signal::SIGKILL).unwrap();
    wait_until("the daemon is dead", Duration::from_secs(5), || !alive(daemon as i64));
    pm.ok(&["start", "pm"]);
}

#[test]
fn an_acknowledged_restart_then_kill_9_never_leaves_a_second_copy() {
    let pm = Pm::new();
    let x = Marked::new(1);
    pm.ok(&["map", "x", "--", "sleep", &x.0]);
    pm.ok(&["start", "x"]);
    let mut trials = 0;
    for _ in 0..20 {
        pm.ok(&["restart", "x"]);
        crash_and_restart(&pm);
        wait_until("x is back", Duration::from_secs(15), || pm.instance("x")["state"] == "ready");
        wait_until("exactly one x", Duration::from_secs(5), || x.pids().len() == 1);
        trials += 1;
    }
    assert_eq!(trials, 20);
}

#[test]
fn an_acknowledged_stop_survives_kill_9() {
    let pm = Pm::new();
    let (x, y) = (Marked::new(2), Marked::new(3));
    pm.ok(&["map", "x", "--", "sleep", &x.0]);
    pm.ok(&["map", "y", "--", "sleep", &y.0]);
    for _ in 0..20 {
        pm.ok(&["start", "x"]);
        pm.ok(&["start", "y"]);
        pm.ok(&["stop", "x"]);
        crash_and_restart(&pm);
        // y is resumed in the same start as x would be: once y is ready, x had its chance.
        wait_until("y is back", Duration::from_secs(15), || pm.instance("y")["state"] == "ready");
        assert_eq!(pm.instance("x")["state"], "stopped", "an acknowledged stop is not undone");
        wait_until("no x left", Duration::from_secs(5), || x.pids().is_empty());
    }
}

#[test]
fn an_acknowledged_map_survives_kill_9() {
    let pm = Pm::new();
    for i in 0..5 {
        let name = format!("m{i}");
        pm.ok(&["map", &name, "--", "sleep", "1000"]);
        crash_and_restart(&pm);
        let defs: Vec<serde_json::Value> = serde_json::from_str(&pm.ok(&["ls", "--json"])).unwrap();
        assert!(defs.iter().any(|d| d["name"] == name.as_str()), "{name} was acknowledged, so it is kept");
    }
}

#[test]
fn a_failed_write_is_an_error_naming_the_file_and_the_reason() {
    let pm = Pm::new();
    pm.ok(&["map", "a", "--", "sleep", "1000"]);
    // Root ignores permissions, so make the temporary file impossible to create instead.
    let tmp = pm.home.path().join("state.json.tmp");
    std::fs::create_dir(&tmp).unwrap();
    let err = pm.fails(&["map", "b", "--", "sleep", "1000"]);
    let state = pm.home.path().join("state.json");
    let expected = format!("cannot write {}: Is a directory (os error 21)", state.display());
    assert!(err.contains(&expected), "{err}");
    let err = pm.fails(&["stop", "a"]);
    assert!(err.contains(&expected), "{err}");
    std::fs::remove_dir(&tmp).unwrap();
    pm.ok(&["map", "c", "--", "sleep", "1000"]);
}

#[test]
fn a_failed_instance_stays_failed_across_daemon_restarts() {
    let pm = Pm::new();
    let y = Marked::new(4);
    let runs = pm.path("runs");
    let script = format!("echo run >> {}; exit 3", runs.display());
    pm.ok(&["map", "f", "--restart", "on-failure", "--max-restarts", "0", "--", "sh", "-c", &script]);
    pm.ok(&["map", "y", "--", "sleep", &y.0]);
    pm.ok(&["start", "y"]);
    let _ = pm.run(&["start", "f"]);
    wait_until("f failed", Duration::from_secs(10), || pm.instance("f")["state"] == "failed");
    let reason = pm.instance("f")["reason"].clone();
    assert!(reason.as_str().is_some_and(|r| r.contains("code 3")), "{reason}");
    pm.ok(&["stop", "pm"]);
    pm.ok(&["start", "pm"]);
    // y is resumed in the same start as f would be: once y is ready, f had its chance.
    wait_until("y is back", Duration::from_secs(15), || pm.instance("y")["state"] == "ready");
    let f = pm.instance("f");
    assert_eq!((&f["state"], &f["reason"]), (&"failed".into(), &reason), "not resumed, and says why: {f}");
    assert_eq!(lines(&runs).len(), 1, "f ran once, under the first daemon");
    // Starting it by hand still tries again.
    let _ = pm.run(&["start", "f"]);
    wait_until("f ran again", Duration::from_secs(10), || lines(&runs).len() == 2);
}
