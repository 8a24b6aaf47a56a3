//! The handle of one native child: waiting, signalling and stopping its process group, and
//! what left the group (by cgroup or marker).

use super::cgroup::Cgroup;
use super::containment::RunContainment;
use super::leftover::{Identity, identity};
use super::marker::{self, Match};
use super::mover;
use super::reaper;
use super::usage::Members;
use crate::{Exit, Handle, UsageSource};
use async_trait::async_trait;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::Child;
use tokio::sync::oneshot;

pub(super) struct ProcessHandle {
    child: Child,
    pid: u32,
    /// The process group id, equal to the pid: the child was spawned with `process_group(0)`.
    group: Pid,
    /// The leader as spawned; `None` without `/proc`.
    leader: Option<Identity>,
    /// Known once the child has been reaped; later waits return it.
    exit: Option<Exit>,
    /// This run's `PM_RUN_ID`.
    marker: String,
    /// The instance's cgroup, which the child is moved into.
    cgroup: Option<Cgroup>,
    /// The move into `cgroup`, until it has ended.
    moving: Option<oneshot::Receiver<bool>>,
}

impl ProcessHandle {
    pub(super) fn new(child: Child, contained: RunContainment) -> std::io::Result<Self> {
        let pid = child.id().ok_or_else(|| std::io::Error::other("the child has no process id"))?;
        let group = Pid::from_raw(i32::try_from(pid).map_err(std::io::Error::other)?);
        // Read before anything can reap the child, so this is the leader and not a reused pid.
        let leader = identity(pid);
        let RunContainment { marker, cgroup } = contained;
        // A move into a cgroup can wait for an RCU grace period (~10 ms): off the async workers
        // and off the start and restart path. Nothing reaps the leader before the move is done
        // (`wait` settles it first), so its pid cannot name another process meanwhile.
        let moving = cgroup.clone().map(|cgroup| mover::queue(cgroup, pid, marker.clone()));
        Ok(Self { child, pid, group, leader, exit: None, marker, cgroup, moving })
    }

    /// Waits for the move into the cgroup to end; a failed move leaves the run to its marker.
    /// Cancel-safe.
    async fn settle(&mut self) {
        if let Some(moving) = &mut self.moving {
            let moved = moving.await.unwrap_or(false);
            self.moving = None;
            if !moved {
                self.cgroup = None;
            }
        }
    }

    /// Sends `signal` to the whole run: the group, then whatever left it, once each.
    async fn signal_run(&self, signal: Signal) {
        if let Err(error) = self.kill_group(signal) {
            tracing::warn!(pid = self.pid, %signal, %error, "cannot signal process group");
        }
        let (group, marker, cgroup) = (self.group, self.marker.clone(), self.cgroup.clone());
        let escaped = move || {
            let members = match &cgroup {
                Some(cgroup) => cgroup.procs(),
                None => marker::find(Match::Run(&marker)),
            };
            for pid in members.into_iter().filter_map(|pid| i32::try_from(pid).ok()).map(Pid::from_raw) {
                // Members still in the group got the signal from killpg already.
                if getpgid(Some(pid)).is_ok_and(|g| g != group) {
                    let _ = kill(pid, signal);
                }
            }
        };
        // A cgroup lists its members in one small kernfs read: done here. Finding a marker reads
        // every process's environment in /proc: blocking work, off the async workers. (On the
        // blocking pool, each wave of a dependency-ordered stop of hundreds spawned as many
        // threads.)
        if self.cgroup.is_some() {
            escaped();
        } else {
            let _ = tokio::task::spawn_blocking(escaped).await;
        }
    }

    /// SIGKILLs everything left of the run, whether it stayed in the group or not.
    async fn kill_run(&self) {
        if let Err(error) = self.kill_group(Signal::SIGKILL) {
            tracing::debug!(pid = self.pid, %error, "cannot kill process group");
        }
        match &self.cgroup {
            Some(cgroup) => cgroup.kill(),
            None => {
                let marker = self.marker.clone();
                let _ = tokio::task::spawn_blocking(move || marker::signal(Match::Run(&marker), Signal::SIGKILL)).await;
            }
        }
    }

    fn kill_group(&self, signal: Signal) -> nix::Result<()> {
        // Linux never hands out a pid while a process group of that id exists, so another process
        // now holding the leader's pid means our group is gone and the id names someone else's.
        if identity(self.pid).is_some_and(|now| Some(now) != self.leader) {
            return Ok(());
        }
        match killpg(self.group, signal) {
            // Nothing of the group is left: what a signal was meant to achieve.
            Err(Errno::ESRCH) => Ok(()),
            result => result,
        }
    }
}

#[async_trait]
impl Handle for ProcessHandle {
    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn start_time(&self) -> Option<u64> {
        self.leader.map(|leader| leader.start_time)
    }

    async fn wait(&mut self) -> Exit {
        if let Some(exit) = self.exit {
            return exit;
        }
        self.settle().await;
        // `Child::wait` is cancel-safe, so this may be dropped in a `select!` and called again.
        let exit = match self.child.wait().await {
            Ok(status) => exit_of(status),
            Err(error) => {
                tracing::warn!(pid = self.pid, %error, "cannot wait for child");
                Exit { code: None, signal: None }
            }
        };
        self.exit = Some(exit);
        reaper::forget(self.pid);
        exit
    }

    fn signal(&self, signal: Signal) -> std::io::Result<()> {
        self.kill_group(signal)?;
        if let Some(cgroup) = &self.cgroup {
            cgroup.signal(signal);
        }
        Ok(())
    }

    async fn stop(&mut self, signal: Signal, timeout: Duration) -> Exit {
        self.settle().await;
        self.signal_run(signal).await;
        let exit = match tokio::time::timeout(timeout, self.wait()).await {
            Ok(exit) => exit,
            Err(_) => {
                self.kill_run().await;
                self.wait().await
            }
        };
        // The leader is gone, but processes that ignored `signal` or outlived it may remain.
        self.kill_run().await;
        exit
    }

    fn sweep(&self) {
        // Called once `wait` has returned, so the move into the cgroup has ended.
        // Best effort: there is no one to tell, and an empty run is the goal anyway.
        if let Err(error) = self.kill_group(Signal::SIGKILL) {
            tracing::debug!(pid = self.pid, %error, "cannot sweep process group");
        }
        match &self.cgroup {
            Some(cgroup) => cgroup.kill(),
            None => {
                // The next run has another marker, so this may finish after it started.
                let marker = self.marker.clone();
                tokio::task::spawn_blocking(move || marker::signal(Match::Run(&marker), Signal::SIGKILL));
            }
        }
    }

    fn containment(&self) -> Option<&'static str> {
        Some(if self.cgroup.is_some() { "cgroup" } else { "marker" })
    }

    fn usage(&self) -> Option<UsageSource> {
        let start = self.leader.map(|leader| leader.start_time);
        Some(UsageSource::Processes(Members::new(self.pid, start, self.marker.clone(), self.cgroup.clone())))
    }
}

impl Drop for ProcessHandle {
    fn drop(&mut self) {
        // Not waited for any more: tokio's orphan queue or the reaper collects it.
        reaper::forget(self.pid);
    }
}

fn exit_of(status: ExitStatus) -> Exit {
    Exit { code: status.code(), signal: status.signal() }
}
