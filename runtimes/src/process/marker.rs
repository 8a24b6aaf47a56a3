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
    environ(pid).is_some_and(|environ| markers(&environ).any(|value| which.matches(value)))
}

/// The markers `pid` carries, read as [`carries`] reads them: for a caller that matches one
/// process against many runs.
pub(super) fn carried(pid: u32) -> Vec<Vec<u8>> {
    environ(pid).map(|environ| markers(&environ).map(<[u8]>::to_vec).collect()).unwrap_or_default()
}

/// `pid`'s environment block. A process in the middle of an exec shows an empty environment for
/// a moment, and a read across that moment stops short, mid-entry: a user process read so is
/// read again, briefly, before it counts as unmarked.
fn environ(pid: u32) -> Option<Vec<u8>> {
    let path = format!("/proc/{pid}/environ");
    let mut environ = Vec::new();
    for _ in 0..EXEC_RETRIES {
        environ = std::fs::read(&path).ok()?;
        if environ.last() == Some(&0) || !user_process(pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Still torn (a process that wrote over its environment, as setproctitle does): as read.
    Some(environ)
}

/// The marker `pid` carries, read once: a process caught mid-exec reads as unmarked, which
/// only a caller that can afford a miss may accept.
pub(super) fn of(pid: u32) -> Option<Vec<u8>> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    markers(&environ).next().map(<[u8]>::to_vec)
}

/// The values of the marker entries of an environment block.
fn markers(environ: &[u8]) -> impl Iterator<Item = &[u8]> {
    environ.split(|&b| b == 0).filter_map(|entry| entry.strip_prefix(VAR.as_bytes())?.strip_prefix(b"="))
}

/// How many times an empty or torn environment is read before it is believed (1 ms apart).
const EXEC_RETRIES: usize = 20;

/// Whether `pid` is a live process that could have an environment: not a zombie, not a kernel
/// thread (`PF_KTHREAD` in the flags of `/proc/<pid>/stat`).
fn user_process(pid: u32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // Fields after the command name's closing parenthesis: state (3), …, flags (9).
    let Some(rest) = stat.rfind(')').map(|at| &stat[at + 1..]) else { return false };
    let mut fields = rest.split_whitespace();
    let state = fields.next();
    let flags = fields.nth(5).and_then(|f| f.parse::<u64>().ok());
    state.is_some_and(|s| s != "Z" && s != "X") && flags.is_some_and(|f| f & PF_KTHREAD == 0)
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
    fn a_process_in_the_middle_of_an_exec_still_carries_its_marker() {
        let marker = format!("test:{}:exec", std::process::id());
        let mut missed = 0;
        for _ in 0..100 {
            // Two execs (sh, then setsid, then sleep) early in its life, where the reads land.
            let mut child =
                std::process::Command::new("sh").args(["-c", "exec setsid sleep 5"]).env(VAR, &marker).spawn().unwrap();
            missed += (0..50)
                .filter(|_| {
                    let t = std::time::Instant::now();
                    let c = carries(child.id(), Match::Run(&marker));
                    if !c {
                        eprintln!(
                            "MISS after {:?} {:?}",
                            t.elapsed(),
                            std::fs::read(format!("/proc/{}/environ", child.id())).map(|e| e.len())
                        );
                    }
                    !c
                })
                .count();
            child.kill().unwrap();
            child.wait().unwrap();
        }
        assert_eq!(missed, 0, "reads that missed the marker");
    }

    #[test]
    fn kernel_threads_and_zombies_have_no_environment_to_wait_for() {
        assert!(user_process(std::process::id()));
        // kthreadd is pid 2 wherever the pid namespace is the host's.
        if std::fs::read_to_string("/proc/2/comm").is_ok_and(|comm| comm.trim() == "kthreadd") {
            assert!(!user_process(2));
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z")) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!user_process(pid), "a zombie");
        child.wait().unwrap();
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
