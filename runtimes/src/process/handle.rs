//! The handle of one native child: waiting, signalling and stopping its process group.

use super::leftover::{Identity, identity};
use crate::{Exit, Handle};
use async_trait::async_trait;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::Child;

pub(super) struct ProcessHandle {
    child: Child,
    pid: u32,
    /// The process group id, equal to the pid: the child was spawned with `process_group(0)`.
    group: Pid,
    /// The leader as spawned; `None` without `/proc`.
    leader: Option<Identity>,
    /// Known once the child has been reaped; later waits return it.
    exit: Option<Exit>,
}

impl ProcessHandle {
    pub(super) fn new(child: Child) -> std::io::Result<Self> {
        let pid = child.id().ok_or_else(|| std::io::Error::other("the child has no process id"))?;
        let group = Pid::from_raw(i32::try_from(pid).map_err(std::io::Error::other)?);
        // Read before anything can reap the child, so this is the leader and not a reused pid.
        let leader = identity(pid);
        Ok(Self { child, pid, group, leader, exit: None })
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

    async fn wait(&mut self) -> Exit {
        if let Some(exit) = self.exit {
            return exit;
        }
        // `Child::wait` is cancel-safe, so this may be dropped in a `select!` and called again.
        let exit = match self.child.wait().await {
            Ok(status) => exit_of(status),
            Err(error) => {
                tracing::warn!(pid = self.pid, %error, "cannot wait for child");
                Exit { code: None, signal: None }
            }
        };
        self.exit = Some(exit);
        exit
    }

    fn signal(&self, signal: Signal) -> std::io::Result<()> {
        Ok(self.kill_group(signal)?)
    }

    async fn stop(&mut self, signal: Signal, timeout: Duration) -> Exit {
        if let Err(error) = self.kill_group(signal) {
            tracing::warn!(pid = self.pid, %signal, %error, "cannot signal process group");
        }
        let exit = match tokio::time::timeout(timeout, self.wait()).await {
            Ok(exit) => exit,
            Err(_) => {
                if let Err(error) = self.kill_group(Signal::SIGKILL) {
                    tracing::warn!(pid = self.pid, %error, "cannot kill process group");
                }
                self.wait().await
            }
        };
        // The leader is gone, but members that ignored `signal` or outlived it may remain.
        self.sweep();
        exit
    }

    fn sweep(&self) {
        // Best effort: there is no one to tell, and an empty group is the goal anyway.
        if let Err(error) = self.kill_group(Signal::SIGKILL) {
            tracing::debug!(pid = self.pid, %error, "cannot sweep process group");
        }
    }
}

fn exit_of(status: ExitStatus) -> Exit {
    Exit { code: status.code(), signal: status.signal() }
}
