//! Restarts, backoff, giving up, stop timeouts and readiness timeouts, with real processes.

use crate::support::{Pm, alive, wait_until};
use std::time::Duration;

#[test]
fn a_crashing_sidecar_is_restarted_with_backoff_then_failed() {
    let pm = Pm::new();
    pm.ok(&[
        "map",
        "crash",
        "--max-restarts",
        "3",
        "--backoff-initial",
        "20ms",
        "--restart-window",
        "1m",
        "--",
        "sh",
        "-c",
        "echo crashing; exit 3",
    ]);
    // Started, it is ready at once; then it crashes, restarts three times and gives up.
    pm.ok(&["start", "crash"]);
    wait_until("crash failed", Duration::from_secs(10), || pm.instance("crash")["state"] == "failed");
    let s = pm.instance("crash");
    assert_eq!(s["restarts"], 3, "{s}");
    assert_eq!(s["last_exit"]["code"], 3, "{s}");
    assert_eq!(s["reason"], "gave up after 3 restarts within 1m (last exit: code 3)");
    let daemon_log = std::fs::read_to_string(pm.home.path().join("daemon.log")).unwrap();
    for delay in ["20ms", "40ms", "80ms"] {
        assert!(daemon_log.contains(&format!("restarting in {delay}")), "backoff {delay} missing:\n{daemon_log}");
    }
    let out = pm.ok(&["status", "crash"]);
    assert!(out.contains("failed") && out.contains("gave up after 3 restarts"), "{out}");
    // Four runs, four lines: every run's output is logged.
    assert_eq!(crate::support::lines(&pm.log_file("crash", "out")).len(), 4);
}

#[test]
fn a_killed_sidecar_comes_back_with_a_new_pid() {
    let pm = Pm::new();
    pm.ok(&["map", "svc", "--restart", "always", "--backoff-initial", "0s", "--", "sleep", "1000"]);
    pm.ok(&["start", "svc"]);
    let old = pm.instance("svc")["pid"].as_i64().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_until("svc restarted", Duration::from_secs(10), || {
        let s = pm.instance("svc");
        s["state"] == "ready" && s["pid"].as_i64().is_some_and(|p| p != old)
    });
    let s = pm.instance("svc");
    assert_eq!(s["restarts"], 1);
    assert_eq!(s["last_exit"]["signal"], "SIGKILL");
}

#[test]
fn success_exit_codes_and_on_failure_policy() {
    let pm = Pm::new();
    pm.ok(&["map", "job", "--success-exit-codes", "0,4", "--", "sh", "-c", "exit 4"]);
    pm.ok(&["start", "job"]);
    wait_until("job exited", Duration::from_secs(10), || pm.instance("job")["state"] == "exited");
    assert_eq!(pm.instance("job")["restarts"], 0, "exit 4 counts as success: no restart");
}

#[test]
fn stop_timeout_then_sigkill_reaches_a_grandchild_that_ignores_sigterm() {
    let pm = Pm::new();
    let gc = pm.path("grandchild.pid");
    let script = format!(
        r#"trap '' TERM; sh -c 'trap "" TERM; echo $$ > {gc}; exec sleep 1000' & while [ ! -s {gc} ]; do sleep 0.01; done; echo up; wait"#,
        gc = gc.display()
    );
    pm.ok(&["map", "stubborn", "--ready", "log:^up$", "--stop-timeout", "300ms", "--", "sh", "-c", &script]);
    pm.ok(&["start", "stubborn"]);
    let child = pm.instance("stubborn")["pid"].as_i64().unwrap();
    let grandchild: i64 = std::fs::read_to_string(&gc).unwrap().trim().parse().unwrap();
    assert!(alive(child) && alive(grandchild));
    pm.ok(&["stop", "stubborn"]);
    let s = pm.instance("stubborn");
    assert_eq!(s["state"], "stopped");
    assert_eq!(s["last_exit"]["signal"], "SIGKILL", "SIGTERM was ignored, so SIGKILL ended it: {s}");
    wait_until("child and grandchild dead", Duration::from_secs(5), || !alive(child) && !alive(grandchild));
}

#[test]
fn a_readiness_timeout_fails_the_start_naming_instance_and_condition() {
    let pm = Pm::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ready = format!("tcp:127.0.0.1:{port}");
    pm.ok(&["map", "slow", "--ready", &ready, "--ready-timeout", "300ms", "--", "sleep", "1000"]);
    let err = pm.fails(&["start", "slow"]);
    assert!(err.contains(&format!("slow: readiness `tcp 127.0.0.1:{port}` not met within 300ms")), "{err}");
    let s = pm.instance("slow");
    assert_eq!(s["state"], "failed");
    assert!(s["pid"].is_null(), "the process was stopped: {s}");
}

#[test]
fn log_readiness_waits_for_the_line() {
    let pm = Pm::new();
    pm.ok(&[
        "map",
        "web",
        "--ready",
        "log:listening on \\d+",
        "--",
        "sh",
        "-c",
        "sleep 0.3; echo listening on 8080; sleep 1000",
    ]);
    pm.ok(&["start", "web"]);
    assert_eq!(pm.instance("web")["state"], "ready");
    assert!(crate::support::lines(&pm.log_file("web", "out"))[0].ends_with(" listening on 8080"));
}

#[test]
fn a_sidecar_slow_to_stop_blocks_neither_the_daemon_nor_other_sidecars() {
    let pm = Pm::new();
    pm.ok(&[
        "map",
        "stubborn",
        "--ready",
        "log:^up$",
        "--stop-timeout",
        "20s",
        "--",
        "sh",
        "-c",
        "trap '' TERM; echo up; sleep 1000 & wait",
    ]);
    pm.ok(&["map", "other", "--", "sleep", "1000"]);
    pm.ok(&["start", "stubborn"]);
    let mut stopping = pm.cmd(&["stop", "stubborn"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    wait_until("stubborn stopping", Duration::from_secs(10), || pm.instance("stubborn")["state"] == "stopping");
    // While it waits out its 20s stop timeout, everything else works.
    pm.ok(&["start", "other"]);
    assert_eq!(pm.instance("other")["state"], "ready");
    assert_eq!(pm.instance("stubborn")["state"], "stopping");
    let pid = pm.instance("stubborn")["pid"].as_i64().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_until("stop finished", Duration::from_secs(10), || stopping.try_wait().unwrap().is_some());
    assert_eq!(pm.instance("stubborn")["state"], "stopped");
}
