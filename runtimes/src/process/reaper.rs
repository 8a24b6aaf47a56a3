//! Reaping: the daemon is a child subreaper (and may be PID 1), so the orphans of its sidecars'
//! descendants become its children. Their exits are collected here on SIGCHLD, leaving the
//! children tokio spawned (and waits for) alone: zero zombies, and no stolen exit statuses.

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use tokio::signal::unix::{SignalKind, signal};

/// The children tokio waits for. A pid is added under the lock in the same critical section as
/// its spawn, so the reaper never sees one of them unlisted.
static SPAWNED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn spawned() -> MutexGuard<'static, BTreeSet<u32>> {
    SPAWNED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Spawns `command`, listing the child as tokio's before the reaper can look.
pub fn spawn(command: &mut tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    let mut listed = spawned();
    let child = command.spawn()?;
    if let Some(pid) = child.id() {
        listed.insert(pid);
    }
    Ok(child)
}

/// The child was waited for (or given up): the reaper may collect that pid from now on.
pub fn forget(pid: u32) {
    spawned().remove(&pid);
}

/// Makes this process a child subreaper and collects every adopted child's exit from now on.
/// Call once, in the daemon, inside a tokio runtime. Wakes only on SIGCHLD.
pub fn start() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)?;
    let mut sigchld = signal(SignalKind::child())?;
    tokio::spawn(async move {
        loop {
            reap();
            if sigchld.recv().await.is_none() {
                return;
            }
        }
    });
    Ok(())
}

/// Collects every exited child that tokio does not wait for; returns how many.
pub fn reap() -> usize {
    let listed = spawned();
    let mut reaped = 0;
    for pid in children() {
        if listed.contains(&pid) {
            continue;
        }
        let Ok(raw) = i32::try_from(pid) else { continue };
        match waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => {}
            Ok(_) => reaped += 1,
        }
    }
    reaped
}

/// The children tokio did not spawn: orphans adopted as subreaper (or PID 1).
pub(super) fn adopted() -> Vec<u32> {
    let listed = spawned();
    children().into_iter().filter(|pid| !listed.contains(pid)).collect()
}

/// This process's children: from `/proc/self/task/*/children`, else from every `/proc/*/stat`.
fn children() -> Vec<u32> {
    let mut pids = Vec::new();
    let mut listed = false;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                listed = true;
                pids.extend(text.split_whitespace().filter_map(|pid| pid.parse::<u32>().ok()));
            }
        }
    }
    if !listed {
        pids = children_by_stat();
    }
    pids
}

fn children_by_stat() -> Vec<u32> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Field 4 (ppid), counted after the command name's closing parenthesis.
            let ppid = stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?;
            (ppid == me).then_some(pid)
        })
        .collect()
}
