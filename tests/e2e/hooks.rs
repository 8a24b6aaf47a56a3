//! Lifecycle hooks around real runs: their order, their environment and output, and what their
//! failures and timeouts do.

use crate::support::*;
use std::time::{Duration, Instant};

/// A project whose sidecar `svc` and its four hooks append what happens to `record`.
fn recorded(pm: &Pm, extra: &str) -> std::path::PathBuf {
    let record = pm.path("record");
    let r = record.display();
    let hook = |name: &str| {
        format!("{name} = \"sh -c 'echo $PM_HOOK $PM_NAME $PM_EXIT_CODE >> {r}; echo hello from $PM_HOOK'\"\n")
    };
    let project = format!(
        "[sidecars.svc]\ncommand = [\"sh\", \"-c\", \"echo run >> {r}; echo running; trap 'echo term >> {r}; exit 0' TERM; while :; do sleep 0.05; done\"]\n\
         {extra}\n[sidecars.svc.hooks]\n{}{}{}{}",
        hook("pre_start"),
        hook("post_start"),
        hook("pre_stop"),
        hook("post_stop"),
    );
    pm.write("pm.toml", &project);
    record
}

fn start(pm: &Pm) -> String {
    pm.ok(&["start", "-f", &pm.path("pm.toml").display().to_string()])
}

#[test]
fn hooks_run_in_order_with_their_environment_and_their_output_in_the_log() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    // Ready once it said so, after its own line in the record: post_start comes after it.
    let record = recorded(&pm, "ready = { log = \"running\" }");
    start(&pm);
    wait_until("post_start ran", Duration::from_secs(10), || lines(&record).len() >= 3);
    pm.ok(&["stop", "svc"]);
    assert_eq!(
        lines(&record),
        ["pre_start svc", "run", "post_start svc", "pre_stop svc", "term", "post_stop svc 0"],
        "pre_start before the run, post_start once ready, pre_stop before the signal, post_stop after the end"
    );
    let log = std::fs::read_to_string(pm.log_file("svc", "out")).unwrap();
    for hook in ["pre_start", "post_start", "pre_stop", "post_stop"] {
        assert!(log.contains(&format!("[{hook}] hello from {hook}")), "{hook} output in the log:\n{log}");
    }
}

#[test]
fn post_stop_follows_a_crash_with_its_exit_code() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let record = pm.path("record");
    let project = format!(
        "[sidecars.crash]\ncommand = \"sh -c 'sleep 0.2; exit 3'\"\nrestart = \"never\"\n\
         [sidecars.crash.hooks]\npost_stop = \"sh -c 'echo $PM_HOOK $PM_EXIT_CODE >> {}'\"\n",
        record.display()
    );
    pm.write("pm.toml", &project);
    start(&pm);
    wait_until("post_stop ran", Duration::from_secs(10), || lines(&record) == ["post_stop 3"]);
    assert_eq!(pm.instance("crash")["state"], "failed");
}

#[test]
fn a_failing_pre_start_fails_the_start_with_its_reason_and_nothing_runs() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let ran = pm.path("ran");
    let project = format!(
        "[sidecars.db]\ncommand = \"touch {}\"\n[sidecars.db.hooks]\npre_start = \"sh -c 'echo no database >&2; exit 2'\"\n",
        ran.display()
    );
    pm.write("pm.toml", &project);
    let err = pm.fails(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
    let want = "pre_start hook: `sh -c 'echo no database >&2; exit 2'` exited with 2: no database";
    assert!(err.contains(want), "{err}");
    let db = pm.instance("db");
    assert_eq!(db["state"], "failed");
    assert!(db["reason"].as_str().unwrap().contains(want), "{db}");
    assert!(!ran.exists(), "the sidecar never ran");
    let log = std::fs::read_to_string(pm.log_file("db", "err")).unwrap();
    assert!(log.contains("[pre_start] no database") && log.contains("[pre_start] failed: "), "{log}");
}

#[test]
fn a_pre_stop_past_its_timeout_does_not_hold_the_stop_and_leaves_nothing() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    // Digits only, as `sleep` must accept it; the leading digits keep it apart from other
    // tests' in this process.
    let tag = format!("04{}", std::process::id());
    let project = format!(
        "[sidecars.slow]\ncommand = \"sleep 1000\"\n\
         [sidecars.slow.hooks]\npre_stop = {{ command = \"sh -c 'sleep 4001.{tag} & sleep 4002.{tag}'\", timeout = \"300ms\" }}\n"
    );
    pm.write("pm.toml", &project);
    start(&pm);
    let started = Instant::now();
    pm.ok(&["stop", "slow"]);
    assert!(started.elapsed() < Duration::from_secs(3), "the stop took {:?}", started.elapsed());
    assert_eq!(pm.instance("slow")["state"], "stopped");
    assert!(!argv_contains(&tag), "the hook and its child were killed");
    let log = std::fs::read_to_string(pm.log_file("slow", "err")).unwrap();
    assert!(log.contains("[pre_stop] failed: ") && log.contains("did not finish within 300ms"), "{log}");
}

#[test]
fn a_stop_does_not_wait_for_a_long_pre_start() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    // Digits only, as `sleep` must accept it; the leading digits keep it apart from other
    // tests' in this process.
    let tag = format!("05{}", std::process::id());
    let project = format!(
        "[sidecars.w]\ncommand = \"sleep 1000\"\n[sidecars.w.hooks]\npre_start = {{ command = \"sleep 5001.{tag}\", timeout = \"60s\" }}\n"
    );
    pm.write("pm.toml", &project);
    let mut starting = pm.cmd(&["start", "-f", &pm.path("pm.toml").display().to_string()]).spawn().unwrap();
    wait_until("the hook runs", Duration::from_secs(10), || argv_contains(&tag));
    assert_eq!(pm.instance("w")["reason"], "running its pre_start hook");
    let stopped = Instant::now();
    pm.ok(&["stop", "w"]);
    assert!(stopped.elapsed() < Duration::from_secs(3), "the stop took {:?}", stopped.elapsed());
    assert_eq!(pm.instance("w")["state"], "stopped");
    wait_until("the hook is gone", Duration::from_secs(5), || !argv_contains(&tag));
    let _ = starting.kill();
    let _ = starting.wait();
}
