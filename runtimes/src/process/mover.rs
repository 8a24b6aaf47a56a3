//! Moving new runs into their cgroups, one at a time on one thread of its own.
//!
//! A write to `cgroup.procs` takes the kernel's cgroup-wide threadgroup lock for writing, so
//! moves never run in parallel anyway, and the first of a burst waits for an RCU grace period.
//! On the blocking pool, a start of 1,000 sidecars made a thread per waiting move (and a malloc
//! arena per thread); here a burst is a queue, and the grace period is paid once for all of it.

use super::cgroup::Cgroup;
use super::marker;
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
        run(vec![job]);
    }
    moved
}

/// The mover thread; it sleeps in `recv` between bursts, and moves what is queued together.
fn start() -> mpsc::Sender<Move> {
    let (tx, rx) = mpsc::channel::<Move>();
    let spawned = std::thread::Builder::new().name("pm-cgroup-mover".into()).spawn(move || {
        while let Ok(first) = rx.recv() {
            let mut burst = vec![first];
            burst.extend(rx.try_iter());
            run(burst);
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the cgroup mover thread: {e}; moving on the caller's thread");
    }
    tx
}

/// Moves each run's leader and its descendants into its cgroup (made if missing), then any
/// orphan of those runs that the daemon adopted meanwhile: a descendant forked before the move
/// whose parent has exited since is no longer in the leader's tree. Finding orphans reads every
/// child of the daemon, so it is done once for a whole burst, not once per move (a start of
/// 1,000 read 1,000 lists of up to 1,000 children). Blocking.
fn run(burst: Vec<Move>) {
    let moved: Vec<bool> = burst
        .iter()
        .map(|job| match job.cgroup.create().and_then(|()| job.cgroup.add_tree(job.pid)) {
            Ok(()) => true,
            Err(e) => {
                let path = job.cgroup.path().display();
                tracing::warn!(pid = job.pid, "cannot move into {path}: {e}; escaped processes are found by marker");
                false
            }
        })
        .collect();
    if moved.iter().any(|&m| m) {
        for orphan in reaper::adopted() {
            // Read once, matched against every run of the burst.
            let carried = marker::carried(orphan);
            let owner = burst
                .iter()
                .zip(&moved)
                .find(|(job, m)| **m && carried.iter().any(|value| value == job.marker.as_bytes()));
            if let Some((job, _)) = owner {
                let _ = job.cgroup.add_tree(orphan);
            }
        }
    }
    for (job, moved) in burst.into_iter().zip(moved) {
        let _ = job.done.send(moved);
    }
}
