//! Nothing a sidecar starts outlives it: setsid'd and double-forked descendants die with `pm stop`
//! and `pm stop pm`, a daemon killed with -9 has every leftover killed by the next one (tracked or
//! not, leader alive or not), and the daemon reaps the orphans it adopts, also as PID 1. Each case
//! runs with a cgroup per instance (where the machine allows) and with markers alone.

use crate::support::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tag no other test's processes carry, for `sleep <seconds>.<tag>` arguments.
fn tag() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{:09}{}", nanos, std::process::id() % 1000)
}

/// Live (non-zombie) processes whose command line contains `tag`.
fn tagged(tag: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(tag) && state(pid) != Some('Z') {
            pids.push(pid);
        }
    }
    pids
}

fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().next()?.chars().next()
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// Zombie children of `parent`.
fn zombies_of(parent: i32) -> usize {
    let entries = std::fs::read_dir("/proc").unwrap().flatten();
    let pids = entries.filter_map(|e| e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()));
    pids.filter(|&pid| ppid(pid) == Some(parent) && state(pid) == Some('Z')).count()
}

fn kill_all(pids: &[i32]) {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Whether this machine lets the daemon make a cgroup per instance (root, a writable cgroup2).
fn cgroups_here(test: &str) -> bool {
    privileged(test, "create a cgroup v2", || {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let mount = mountinfo
            .lines()
            .find_map(|l| l.split_once(" - ").filter(|(_, r)| r.starts_with("cgroup2 ")).map(|(l, _)| l.to_string()))
            .ok_or("no cgroup2 mount")?;
        let mount = mount.split_whitespace().nth(4).ok_or("bad mountinfo")?.to_string();
        let probe = std::path::Path::new(&mount).join(format!("pm-probe-{}", tag()));
        std::fs::create_dir(&probe).map_err(|e| format!("{}: {e}", probe.display()))?;
        std::fs::remove_dir(&probe).map_err(|e| e.to_string())
    })
}

/// The two ways to hold a sidecar: the daemon's flags and the containment it must report.
pub fn modes(test: &str) -> Vec<(&'static [&'static str], &'static str)> {
    let mut modes: Vec<(&[&str], &str)> = vec![(&["--no-cgroups"], "marker")];
    if cgroups_here(test) {
        modes.push((&[], "cgroup"));
    }
    modes
}

/// A sidecar whose descendants leave its process group: one by setsid, one by a double fork into
/// a new session, plus a grandchild that stays.
fn escaping(tag: &str) -> String {
    format!("setsid sleep 2001.{tag} & (setsid sleep 2002.{tag} &) ; sleep 2003.{tag} & exec sleep 2004.{tag}")
}

#[test]
fn escaped_descendants_die_with_pm_stop_and_pm_stop_pm() {
    for (flags, containment) in modes("escaped_descendants_die_with_pm_stop_and_pm_stop_pm") {
        let pm = Pm::new();
        let _daemon = pm.daemon(flags);
        let tag = tag();
        pm.ok(&["map", "esc", "--", "sh", "-c", &escaping(&tag)]);
        pm.ok(&["start", "esc"]);
        wait_until("four sleeps run", Duration::from_secs(10), || tagged(&tag).len() == 4);
        assert_eq!(pm.instance("esc")["containment"], containment, "{flags:?}");
        let before = tagged(&tag);
        pm.ok(&["stop", "esc"]);
        let survivors = tagged(&tag);
        kill_all(&survivors);
        assert!(
            survivors.is_empty(),
            "{containment}: {} of {before:?} survived pm stop: {survivors:?}",
            survivors.len()
        );

        // `pm stop pm` neither leaves them nor waits for them (they held the log pipes open).
        pm.ok(&["start", "esc"]);
        wait_until("four sleeps run again", Duration::from_secs(10), || tagged(&tag).len() == 4);
        let started = Instant::now();
        pm.ok(&["stop", "pm"]);
        let took = started.elapsed();
        let survivors = tagged(&tag);
        kill_all(&survivors);
        assert!(survivors.is_empty(), "{containment}: survived pm stop pm: {survivors:?}");
        // The daemon's grace for log writers is 5 s: waiting it out means a pipe was held.
        assert!(took < Duration::from_secs(4), "{containment}: pm stop pm took {took:?}");
    }
}

#[test]
fn a_crash_takes_its_escaped_descendants_with_it() {
    for (flags, _) in modes("a_crash_takes_its_escaped_descendants_with_it") {
        let pm = Pm::new();
        let _daemon = pm.daemon(flags);
        let tag = tag();
        let trigger = pm.path("crash");
        let script =
            format!("setsid sleep 2001.{tag} & while [ ! -e {} ]; do sleep 0.02; done; exit 3", trigger.display());
        pm.ok(&["map", "crashy", "--restart", "never", "--", "sh", "-c", &script]);
        pm.ok(&["start", "crashy"]);
        // The shell (its command line names the tag) and the escapee.
        wait_until("the escapee runs", Duration::from_secs(10), || tagged(&tag).len() == 2);
        std::fs::write(&trigger, "").unwrap();
        wait_until("crashy failed", Duration::from_secs(10), || pm.instance("crashy")["state"] != "ready");
        wait_until("the escapee is gone", Duration::from_secs(5), || tagged(&tag).is_empty());
    }
}

/// The move into the cgroup follows the spawn: a run that escapes and exits at once, before it
/// ends, is still swept on every crash.
#[test]
fn a_run_that_escapes_and_exits_at_once_leaves_nothing_across_restarts() {
    for (flags, _) in modes("a_run_that_escapes_and_exits_at_once_leaves_nothing_across_restarts") {
        let pm = Pm::new();
        let _daemon = pm.daemon(flags);
        let tag = tag();
        let script = format!("setsid sleep 2001.{tag} & exit 1");
        #[rustfmt::skip]
        pm.ok(&["map", "flash", "--restart", "always", "--backoff-initial", "0s", "--max-restarts", "20", "--", "sh", "-c", &script]);
        pm.ok(&["start", "flash"]);
        wait_until("flash failed", Duration::from_secs(20), || pm.instance("flash")["state"] == "failed");
        assert!(pm.instance("flash")["restarts"].as_u64() >= Some(20), "{}", pm.instance("flash"));
        wait_until("every escapee is gone", Duration::from_secs(5), || tagged(&tag).is_empty());
    }
}

#[test]
fn after_kill_9_the_next_daemon_kills_every_leftover_first() {
    for (flags, _) in modes("after_kill_9_the_next_daemon_kills_every_leftover_first") {
        let pm = Pm::new();
        let daemon = pm.daemon(flags);
        let tag = tag();
        pm.ok(&["map", "esc", "--", "sh", "-c", &escaping(&tag)]);
        // A group whose leader will have died: its workers live on in the group.
        let workers = format!("sleep 3001.{tag} & sleep 3002.{tag} & wait");
        pm.ok(&["map", "pool", "--", "sh", "-c", &workers]);
        pm.ok(&["start", "esc"]);
        pm.ok(&["start", "pool"]);
        // esc's four sleeps; pool's shell (its command line names the tag) and two sleeps.
        wait_until("seven processes run", Duration::from_secs(10), || tagged(&tag).len() == 7);
        let old = tagged(&tag);
        let leader = pm.instance("pool")["pid"].as_i64().unwrap() as i32;

        let daemon_pid = pm.daemon_pid().unwrap();
        kill(Pid::from_raw(daemon_pid), Signal::SIGKILL).unwrap();
        drop(daemon);
        kill(Pid::from_raw(leader), Signal::SIGKILL).unwrap();
        wait_until("the leader is gone", Duration::from_secs(5), || tagged(&tag).len() == 6);

        let _daemon = pm.daemon(flags);
        let leftovers: Vec<i32> = tagged(&tag).into_iter().filter(|pid| old.contains(pid)).collect();
        kill_all(&leftovers);
        assert!(leftovers.is_empty(), "the new daemon answered with leftovers alive: {leftovers:?}");
        // Both come back, once each.
        wait_until("both run again", Duration::from_secs(10), || tagged(&tag).len() == 7);
    }
}

/// A daemon killed -9 right after it restarted a crashed sidecar (before the new pid can reach
/// state.json) must not leave that run behind to be started a second time.
#[test]
fn kill_9_during_a_crash_restart_never_leaves_a_second_copy() {
    let pm = Pm::new();
    let tag = tag();
    let script = format!("exec sleep 4001.{tag}");
    pm.ok(&["map", "x", "--backoff-initial", "0s", "--max-restarts", "1000", "--", "sh", "-c", &script]);
    for trial in 0..30 {
        let daemon = pm.daemon(&[]);
        pm.ok(&["start", "x"]);
        wait_until("one copy", Duration::from_secs(10), || tagged(&tag).len() == 1);
        // The sidecar crashes; the daemon restarts it at once and is killed at once after.
        let pid = tagged(&tag)[0];
        kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
        std::thread::sleep(Duration::from_millis(trial % 10));
        kill(Pid::from_raw(pm.daemon_pid().unwrap()), Signal::SIGKILL).unwrap();
        drop(daemon);
        let _daemon = pm.daemon(&[]);
        pm.ok(&["start", "x"]);
        // A killed leftover takes a moment to exit; a second copy would stay.
        let mut copies = Vec::new();
        let one = (0..500).any(|_| {
            copies = tagged(&tag);
            std::thread::sleep(Duration::from_millis(10));
            copies.len() == 1
        });
        assert!(one, "trial {trial}: copies of x: {copies:?}");
        let daemon = pm.daemon_pid().unwrap();
        pm.ok(&["stop", "pm"]);
        // The next trial's daemon needs the lock this one holds until it has exited.
        wait_until("the daemon exited", Duration::from_secs(10), || !alive(daemon.into()));
    }
}

#[test]
fn the_daemon_reaps_the_orphans_it_adopts() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let tag = tag();
    let script = format!("for i in $(seq 50); do (sleep 0.3{tag} &); done; exec sleep 5001.{tag}");
    pm.ok(&["map", "spawner", "--", "sh", "-c", &script]);
    pm.ok(&["start", "spawner"]);
    let daemon = pm.daemon_pid().unwrap();
    wait_until("the orphans exited", Duration::from_secs(10), || tagged(&tag).len() == 1);
    wait_until("no zombie is left", Duration::from_secs(5), || zombies_of(daemon) == 0);
}

#[test]
fn as_pid_1_the_daemon_reaps_every_orphan() {
    let test = "as_pid_1_the_daemon_reaps_every_orphan";
    let unshare = |args: &[&str]| Command::new("unshare").args(["--pid", "--fork", "--mount-proc"]).args(args).output();
    let permitted = privileged(test, "unshare a pid namespace", || match unshare(&["true"]) {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(e.to_string()),
    });
    if !permitted {
        return;
    }
    let pm = Pm::new();
    let mut cmd = Command::new("unshare");
    // --kill-child: the namespace (daemon and all) dies with `unshare` if the test fails.
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", PM, "daemon"]);
    cmd.env("PM_HOME", pm.home.path()).env_remove("PM_LOG").current_dir(pm.dir.path());
    let _daemon = pm.foreground(cmd);
    assert_eq!(pm.daemon_pid(), Some(1), "the daemon is PID 1 of its namespace");
    let tag = tag();
    let script = format!("for i in $(seq 100); do (sleep 0.3{tag} &); done; exec sleep 5001.{tag}");
    pm.ok(&["map", "spawner", "--", "sh", "-c", &script]);
    pm.ok(&["start", "spawner"]);
    // Seen from here, the daemon has another pid: the sidecar's parent.
    let daemon = tagged(&tag).first().and_then(|&pid| ppid(pid)).expect("the sidecar runs, a child of the daemon");
    wait_until("the orphans exited", Duration::from_secs(10), || tagged(&tag).len() == 1);
    wait_until("no zombie is left", Duration::from_secs(5), || zombies_of(daemon) == 0);
}
