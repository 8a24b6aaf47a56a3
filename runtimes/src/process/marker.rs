//! The per-run marker: every spawned process gets `PM_RUN_ID=<daemon id>:<boot>:<run>` in its
//! environment, and its descendants inherit it. A process that left the group (setsid, double
//! fork) and sits in no cgroup of ours is still found by reading `/proc/*/environ`, and so is
//! whatever a daemon killed with -9 left, whether or not its pid reached state.json.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The environment variable that carries the marker.
pub const VAR: &str = "PM_RUN_ID";

/// Which marked processes to match.
#[derive(Debug, Clone, Copy)]
pub enum Match<'a> {
    /// Exactly this run's marker.
    Run(&'a str),
    /// Any marker of this daemon id, except those of the running daemon's boot.
    LeftBy { daemon: &'a str, except_boot: &'a str },
}

impl Match<'_> {
    fn matches(&self, value: &[u8]) -> bool {
        match *self {
            Match::Run(marker) => value == marker.as_bytes(),
            Match::LeftBy { daemon, except_boot } => {
                let mut parts = value.split(|&b| b == b':');
                parts.next() == Some(daemon.as_bytes())
                    && parts.next().is_some_and(|boot| boot != except_boot.as_bytes())
            }
        }
    }
}

/// Whether `pid`'s environment carries a marker that `which` matches.
pub fn carries(pid: u32, which: Match<'_>) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
    let prefix = format!("{VAR}=");
    environ
        .split(|&b| b == 0)
        .filter_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .any(|value| which.matches(value))
}

/// The processes (other than this one) whose environment carries a marker that `which` matches.
/// Processes of other users, and zombies, have no readable environment and never match.
pub fn find(which: Match<'_>) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && carries(pid, which))
        .collect()
}

/// Sends `signal` to every process `which` matches; returns how many there were.
pub fn signal(which: Match<'_>, signal: Signal) -> usize {
    let pids = find(which);
    for &pid in &pids {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
    pids.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_run_exactly_and_leftovers_by_daemon_but_not_this_boot() {
        assert!(Match::Run("d:b:7").matches(b"d:b:7"));
        assert!(!Match::Run("d:b:7").matches(b"d:b:70"));
        let left = Match::LeftBy { daemon: "d", except_boot: "b" };
        assert!(left.matches(b"d:old:3"));
        assert!(!left.matches(b"d:b:3"), "this boot's runs are not leftovers");
        assert!(!left.matches(b"dd:old:3"), "another daemon's");
        assert!(!left.matches(b"d"));
    }

    #[test]
    fn finds_a_marked_child_and_no_one_else() {
        let marker = format!("test:{}:1", std::process::id());
        let mut child = std::process::Command::new("sleep").arg("30").env(VAR, &marker).spawn().unwrap();
        let found = find(Match::Run(&marker));
        assert_eq!(found, vec![child.id()]);
        assert_eq!(signal(Match::Run(&marker), Signal::SIGKILL), 1);
        child.wait().unwrap();
        assert!(find(Match::Run(&marker)).is_empty());
    }
}
