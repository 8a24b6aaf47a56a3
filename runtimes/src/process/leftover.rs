//! Cleaning up after a daemon that died without stopping its children (`kill -9`, a crash): their
//! process groups live on, and the next daemon kills them by the identities the last one recorded.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A process as it was at spawn time: its pid plus its start time, so that a later check can tell
/// it from an unrelated process that reused the pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub pid: u32,
    /// Field 22 (`starttime`) of `/proc/<pid>/stat`, in clock ticks since boot.
    pub start_time: u64,
}

/// The identity of the running process `pid`, or `None` when there is none (or no `/proc`).
pub fn identity(pid: u32) -> Option<Identity> {
    use std::io::Read;
    // Room for the whole line up front: one read, where `read_to_string` grows from 32 bytes in
    // six (this runs at every spawn and every stop).
    let mut stat = String::with_capacity(1024);
    std::fs::File::open(format!("/proc/{pid}/stat")).ok()?.read_to_string(&mut stat).ok()?;
    Some(Identity { pid, start_time: start_time(&stat)? })
}

/// SIGKILLs the process group led by `id.pid`, if that leader still runs with the same start time,
/// and says whether it did.
///
/// A group whose leader has exited but whose members live on is left alone: with the leader gone
/// there is no start time to prove that the group id still means the group we started.
pub fn kill_leftover_group(id: Identity) -> bool {
    // 0 and 1 never lead a group we started; killpg(0) would even hit our own group.
    if id.pid <= 1 || identity(id.pid) != Some(id) {
        return false;
    }
    let Ok(pid) = i32::try_from(id.pid) else {
        return false;
    };
    killpg(Pid::from_raw(pid), Signal::SIGKILL).is_ok()
}

/// Field 22 of a `/proc/<pid>/stat` line. Field 2, the command name, is in parentheses and may
/// itself contain spaces and parentheses, so fields are counted from the last `)`.
fn start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts with field 3 (state), so field 22 is its 20th.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_start_time_after_an_awkward_command_name() {
        let stat = "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 100 18446744073709551615";
        assert_eq!(start_time(stat), Some(987_654));
        assert_eq!(start_time("4242 (truncated) S 1"), None);
        assert_eq!(start_time("garbage"), None);
    }

    #[test]
    fn identifies_this_process() {
        let me = identity(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert_eq!(identity(std::process::id()), Some(me));
    }
}
