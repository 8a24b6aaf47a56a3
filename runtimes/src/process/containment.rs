//! How a daemon holds what its native sidecars start: each run is marked in its environment
//! ([`marker`](super::marker)), and each instance runs in its own cgroup v2 where the daemon can
//! create one ([`cgroup`](super::cgroup)). Together they find every descendant on stop and every
//! leftover after a crash.

use super::cgroup::{Cgroup, Cgroups};
use super::marker::{self, Match};
use nix::sys::signal::Signal;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

/// One daemon's containment: its id (kept in PM_HOME, the same across restarts), this boot's id,
/// and its cgroups when it has them.
#[derive(Debug)]
pub struct Containment {
    daemon: String,
    boot: String,
    runs: AtomicU64,
    cgroups: Option<Cgroups>,
}

/// How one run is held.
#[derive(Debug)]
pub(super) struct RunContainment {
    pub marker: String,
    pub cgroup: Option<Cgroup>,
}

impl Containment {
    /// Containment for the daemon with this id, with cgroups if asked for and they can be created.
    pub fn new(daemon: &str, cgroups: bool) -> Containment {
        let cgroups = match cgroups.then(|| Cgroups::create(daemon)) {
            None => None,
            Some(Ok(cgroups)) => Some(cgroups),
            Some(Err(why)) => {
                tracing::info!("no cgroup per instance ({why}): escaped processes are found by their PM_RUN_ID marker");
                None
            }
        };
        Containment { daemon: daemon.to_string(), boot: random_hex(), runs: AtomicU64::new(0), cgroups }
    }

    /// Marker-only containment under a fresh id (tests, embedders).
    pub fn markers_only() -> Containment {
        Containment { daemon: random_hex(), boot: random_hex(), runs: AtomicU64::new(0), cgroups: None }
    }

    /// `cgroup` when instances get their own cgroup, else `marker`.
    pub fn kind(&self) -> &'static str {
        if self.cgroups.is_some() { "cgroup" } else { "marker" }
    }

    /// Kills everything an earlier daemon with this id left running, found by marker and in its
    /// cgroups, tracked or not, leader alive or not. Call before starting anything. Blocking.
    pub fn sweep_leftovers(&self) -> usize {
        let in_cgroups = self.cgroups.as_ref().map_or(0, Cgroups::sweep_leftovers);
        let left = Match::LeftBy { daemon: &self.daemon, except_boot: &self.boot };
        in_cgroups + marker::signal(left, Signal::SIGKILL)
    }

    /// Removes the cgroups this daemon made (at exit; busy ones are left to the next sweep).
    pub fn close(&self) {
        if let Some(cgroups) = &self.cgroups {
            cgroups.remove();
        }
    }

    pub(super) fn run(&self, instance: &str) -> RunContainment {
        let run = self.runs.fetch_add(1, Ordering::Relaxed);
        // Made by the move that follows the spawn, off the spawn path.
        let cgroup = self.cgroups.as_ref().map(|cgroups| cgroups.instance(instance));
        RunContainment { marker: format!("{}:{}:{run}", self.daemon, self.boot), cgroup }
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        // Unique enough to tell boots apart: what matters is that it differs from the last one.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        bytes = (nanos as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
