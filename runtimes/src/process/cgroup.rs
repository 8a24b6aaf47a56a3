//! One cgroup v2 per instance: whatever a sidecar's processes do (setsid, double fork, daemonize),
//! they stay members of its cgroup, so `cgroup.procs` lists them all and `cgroup.kill` ends them.
//! No controllers are needed for membership, so this works on hybrid hosts (v1 beside a v2
//! hierarchy mounted at e.g. /sys/fs/cgroup/unified) and inside unprivileged delegations alike.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The daemon's cgroups, `<its own cgroup>/pm-<daemon id>/<instance>`.
#[derive(Debug)]
pub struct Cgroups {
    base: PathBuf,
}

/// One instance's cgroup.
#[derive(Debug, Clone)]
pub struct Cgroup {
    path: PathBuf,
}

impl Cgroups {
    /// Creates (or finds) this daemon's base cgroup below its own, or says why it cannot.
    pub fn create(daemon_id: &str) -> Result<Cgroups, String> {
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
        let mount = cgroup2_mount(&mountinfo).ok_or("no cgroup2 file system is mounted")?;
        let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let own = unified_path(&own).ok_or("this process is in no cgroup v2")?;
        let base = mount.join(own.trim_start_matches('/')).join(format!("pm-{daemon_id}"));
        match std::fs::create_dir(&base) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", base.display())),
        }
        // A delegation may allow mkdir but not moving processes: opening cgroup.procs for writing
        // is the cheapest check that we may.
        let procs = base.join("cgroup.procs");
        std::fs::OpenOptions::new().write(true).open(&procs).map_err(|e| format!("{}: {e}", procs.display()))?;
        Ok(Cgroups { base })
    }

    /// The instance's cgroup; [`Cgroup::create`] makes it.
    pub fn instance(&self, instance: &str) -> Cgroup {
        Cgroup { path: self.base.join(instance) }
    }

    /// Kills and removes every instance cgroup an earlier daemon of this PM_HOME left; returns how
    /// many processes were in them.
    pub fn sweep_leftovers(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.base) else { return 0 };
        let mut killed = 0;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let cgroup = Cgroup { path: entry.path() };
                killed += cgroup.procs().len();
                cgroup.kill();
                cgroup.remove(Duration::from_secs(2));
            }
        }
        killed
    }

    /// Removes the base cgroup once every instance cgroup is gone (at daemon exit).
    pub fn remove(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.base) {
            for entry in entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
                Cgroup { path: entry.path() }.remove(Duration::from_millis(500));
            }
        }
        let _ = std::fs::remove_dir(&self.base);
    }
}

impl Cgroup {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates it when missing. Blocking: a cgroup's mkdir is slow kernel work.
    pub fn create(&self) -> std::io::Result<()> {
        match std::fs::create_dir(&self.path) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves `pid` (and, with it, its future children) into this cgroup.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string())
    }

    /// Moves `pid` and its descendants in: those it forked before it was moved (the move follows
    /// the spawn) would otherwise stay behind.
    pub fn add_tree(&self, pid: u32) -> std::io::Result<()> {
        self.add(pid)?;
        let mut pending = children_of(pid);
        while let Some(child) = pending.pop() {
            // A child that exited meanwhile is no escape.
            if self.add(child).is_ok() {
                pending.extend(children_of(child));
            }
        }
        Ok(())
    }

    /// The processes in it now.
    pub fn procs(&self) -> Vec<u32> {
        let text = std::fs::read_to_string(self.path.join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|line| line.trim().parse().ok()).collect()
    }

    /// Sends `signal` to every process in it.
    pub fn signal(&self, signal: Signal) {
        for pid in self.procs() {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(pid), signal);
            }
        }
    }

    /// SIGKILLs every process in it, those forked meanwhile included (`cgroup.kill`, Linux 5.14);
    /// on older kernels, signals what `cgroup.procs` lists, until it is empty or a bound passes.
    pub fn kill(&self) {
        if std::fs::write(self.path.join("cgroup.kill"), "1").is_ok() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.procs().is_empty() && Instant::now() < deadline {
            self.signal(Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Removes it once its killed processes are gone, waiting at most `within`; a cgroup still
    /// busy then is left to the next daemon's sweep.
    pub fn remove(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            match std::fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(e) if e.kind() == ErrorKind::NotFound => return,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => {
                    tracing::debug!("cannot remove {}: {e}", self.path.display());
                    return;
                }
            }
        }
    }
}

/// The children of `pid`, from `/proc/<pid>/task/*/children` (empty where the kernel lacks it).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| text.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

/// The mount point of the cgroup2 file system, from `/proc/self/mountinfo`.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // Fields: id parent major:minor root mount-point options [optional…] - fstype source …
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(unescape(mount_point)))
    })
}

/// This process's path in the v2 hierarchy: the `0::<path>` line of `/proc/self/cgroup`.
fn unified_path(cgroup: &str) -> Option<&str> {
    cgroup.lines().find_map(|line| line.strip_prefix("0::")).map(str::trim)
}

/// Mount points escape space, tab, newline and backslash as octal (`\040`).
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4).and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unified_hierarchy_beside_v1() {
        let mountinfo = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory";
        assert_eq!(cgroup2_mount(mountinfo), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_mount("30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro"), None);
        let escaped = "41 31 0:38 / /mnt/my\\040cgroups rw shared:1 - cgroup2 cgroup2 rw";
        assert_eq!(cgroup2_mount(escaped), Some(PathBuf::from("/mnt/my cgroups")));
    }

    #[test]
    fn reads_the_v2_path_of_a_hybrid_host() {
        let cgroup = "4:memory:/process_api/9a80\n1:cpu:/\n0::/user.slice/a.scope\n";
        assert_eq!(unified_path(cgroup), Some("/user.slice/a.scope"));
        assert_eq!(unified_path("4:memory:/x\n"), None);
    }
}
