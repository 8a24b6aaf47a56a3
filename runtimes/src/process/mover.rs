//! Moving new runs into their cgroups, one at a time on one thread of its own.
//!
//! A write to `cgroup.procs` takes the kernel's cgroup-wide threadgroup lock for writing, so
//! moves never run in parallel anyway, and the first of a burst waits for an RCU grace period.
//! On the blocking pool, a start of 1,000 sidecars made a thread per waiting move (and a malloc
//! arena per thread); here a burst is a queue, and the grace period is paid once for all of it.

use super::cgroup::Cgroup;
use super::marker::{self, Match};
use super::reaper;
use std::sync::OnceLock;
use std::sync::mpsc;
use tokio::sync::oneshot;

struct Move {
    cgroup: Cgroup,
    pid: u32,
    marker: String,
    done: oneshot::Sender<bool>,
}

/// Queues the move of run `pid` (and its descendants) into `cgroup`; resolves to whether it
/// moved (false: the run is left to its marker).
pub(super) fn queue(cgroup: Cgroup, pid: u32, marker: String) -> oneshot::Receiver<bool> {
    static MOVER: OnceLock<mpsc::Sender<Move>> = OnceLock::new();
    let (done, moved) = oneshot::channel();
    let job = Move { cgroup, pid, marker, done };
    if let Err(mpsc::SendError(job)) = MOVER.get_or_init(start).send(job) {
        // The thread could not be started: move here rather than not at all.
        let moved = run(&job.cgroup, job.pid, &job.marker);
        let _ = job.done.send(moved);
    }
    moved
}

/// The mover thread; it sleeps in `recv` between bursts.
fn start() -> mpsc::Sender<Move> {
    let (tx, rx) = mpsc::channel::<Move>();
    let spawned = std::thread::Builder::new().name("pm-cgroup-mover".into()).spawn(move || {
        for job in rx {
            let moved = run(&job.cgroup, job.pid, &job.marker);
            let _ = job.done.send(moved);
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the cgroup mover thread: {e}; moving on the caller's thread");
    }
    tx
}

/// Moves the run's leader and its descendants into `cgroup` (made if missing), with any orphan
/// of the run the daemon adopted meanwhile: a descendant forked before the move whose parent has
/// exited since is no longer in the leader's tree. Blocking.
fn run(cgroup: &Cgroup, pid: u32, marker: &str) -> bool {
    if let Err(e) = cgroup.create().and_then(|()| cgroup.add_tree(pid)) {
        tracing::warn!(pid, "cannot move into {}: {e}; escaped processes are found by marker", cgroup.path().display());
        return false;
    }
    for orphan in reaper::adopted() {
        if marker::carries(orphan, Match::Run(marker)) {
            let _ = cgroup.add_tree(orphan);
        }
    }
    true
}
