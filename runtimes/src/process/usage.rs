//! What a native run uses, read from `/proc`: the CPU time and resident memory of every process
//! of the run, those that left its process group included. They are the members of the
//! instance's cgroup, or without one the group plus the processes that carry the run's marker.
//! Blocking: call it off the async workers.

use super::cgroup::Cgroup;
use super::marker;
use crate::Usage;
use nix::unistd::{SysconfVar, sysconf};
use std::collections::HashMap;
use std::time::Duration;

/// Where one run's processes are found.
#[derive(Debug, Clone)]
pub struct Members {
    /// The leader's pid, which is also the process group id.
    leader: u32,
    /// The leader's start time, to tell a reused pid from it; `None` without `/proc` at spawn.
    leader_start: Option<u64>,
    marker: String,
    cgroup: Option<Cgroup>,
}

impl Members {
    pub(super) fn new(leader: u32, leader_start: Option<u64>, marker: String, cgroup: Option<Cgroup>) -> Self {
        Members { leader, leader_start, marker, cgroup }
    }
}

/// What `/proc/<pid>/stat` says of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    pgrp: u32,
    /// utime + stime, plus cutime + cstime (of the children it waited for), in clock ticks: a
    /// script's short commands keep counting once they are gone.
    ticks: u64,
    start_time: u64,
    rss_pages: u64,
}

/// Samples each of `runs`, in order: `None` for a run with no process left. The runs without a
/// cgroup share one pass over `/proc`, however many they are.
pub fn sample(runs: &[&Members]) -> Vec<Option<Usage>> {
    let mut found: Vec<Vec<Stat>> = vec![Vec::new(); runs.len()];
    let mut scanned = Vec::new();
    for (at, run) in runs.iter().enumerate() {
        match run.cgroup.as_ref().map(Cgroup::procs) {
            // The leader is listed once the move into the cgroup is done; until then (or if
            // the move failed) the run is found as if it had no cgroup.
            Some(procs) if procs.contains(&run.leader) => found[at] = procs.into_iter().filter_map(read_stat).collect(),
            _ => scanned.push(at),
        }
    }
    if !scanned.is_empty() {
        scan(runs, &scanned, &mut found);
    }
    let units = Units::get();
    found.iter().map(|stats| (!stats.is_empty()).then(|| units.usage(stats))).collect()
}

/// Finds the processes of `runs[at]` for each `at` in `scanned`, by process group or marker.
fn scan(runs: &[&Members], scanned: &[usize], found: &mut [Vec<Stat>]) {
    let mut groups = HashMap::new();
    let mut markers = HashMap::new();
    for &at in scanned {
        let run = runs[at];
        markers.insert(run.marker.as_bytes(), at);
        // A leader that runs with another start time means the group is gone and its id names
        // someone else's; a leader gone entirely leaves no one else to reuse the id.
        let leader = read_stat(run.leader);
        if leader.is_none_or(|stat| run.leader_start.is_none_or(|start| start == stat.start_time)) {
            groups.insert(run.leader, at);
        }
    }
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for pid in entries.flatten().filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok()) {
        let Some(stat) = read_stat(pid) else { continue };
        // The group first: it costs no more reading.
        let run = groups.get(&stat.pgrp).or_else(|| markers.get(marker::of(pid)?.as_slice()));
        if let Some(&at) = run {
            found[at].push(stat);
        }
    }
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses a `/proc/<pid>/stat` line. Field 2, the command name, is in parentheses and may
/// itself hold spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<Stat> {
    // `fields[0]` is field 3 (state), so field N is `fields[N - 3]`.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let number = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    // Fields the kernel prints as signed (cutime, cstime, rss) are never negative in practice;
    // one that is counts nothing.
    let signed = |n: usize| fields.get(n - 3)?.parse::<i64>().ok().map(|v| u64::try_from(v).unwrap_or(0));
    let ticks = [number(14)?, number(15)?, signed(16)?, signed(17)?].into_iter().fold(0u64, u64::saturating_add);
    Some(Stat { pgrp: u32::try_from(number(5)?).ok()?, ticks, start_time: number(22)?, rss_pages: signed(24)? })
}

/// The kernel's units in `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy)]
struct Units {
    ticks_per_second: u64,
    page_size: u64,
}

impl Units {
    fn get() -> Units {
        let get = |var, default| {
            sysconf(var).ok().flatten().and_then(|v| u64::try_from(v).ok()).filter(|&v| v > 0).unwrap_or(default)
        };
        // Linux's USER_HZ and page size on the common machines, should sysconf not answer.
        Units { ticks_per_second: get(SysconfVar::CLK_TCK, 100), page_size: get(SysconfVar::PAGE_SIZE, 4096) }
    }

    fn usage(self, stats: &[Stat]) -> Usage {
        let ticks = stats.iter().map(|s| s.ticks).fold(0u64, u64::saturating_add);
        let pages = stats.iter().map(|s| s.rss_pages).fold(0u64, u64::saturating_add);
        let hz = self.ticks_per_second;
        let fraction = Duration::from_nanos((ticks % hz).saturating_mul(1_000_000_000) / hz);
        let cpu = Duration::from_secs(ticks / hz).saturating_add(fraction);
        Usage { cpu: Some(cpu), memory_bytes: Some(pages.saturating_mul(self.page_size)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::marker::{Match, VAR};
    use nix::sys::signal::Signal;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    #[test]
    fn parses_a_stat_line_after_an_awkward_command_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice threads itreal starttime vsize rss …
        let stat = "4242 (a) (b c) S 1 4240 4240 0 -1 4194560 100 0 0 0 7 3 20 -1 20 0 1 0 987654 \
                    10000 250 18446744073709551615";
        let parsed = parse_stat(stat).unwrap();
        assert_eq!(parsed, Stat { pgrp: 4240, ticks: 30, start_time: 987_654, rss_pages: 250 });
        assert_eq!(parse_stat("4242 (truncated) S 1 4240"), None);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 notanumber 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 0 1"), None);
    }

    #[test]
    fn converts_ticks_and_pages() {
        let units = Units { ticks_per_second: 100, page_size: 4096 };
        let stat = |ticks, rss_pages| Stat { pgrp: 1, ticks, start_time: 1, rss_pages };
        let usage = units.usage(&[stat(150, 10), stat(5, 2)]);
        assert_eq!(usage.cpu, Some(Duration::from_millis(1550)));
        assert_eq!(usage.memory_bytes, Some(12 * 4096));
    }

    /// Kills every process of the marked run when dropped, whatever the test did.
    struct Run {
        marker: String,
        child: std::process::Child,
    }

    impl Run {
        fn spawn(script: &str) -> Run {
            static RUNS: AtomicUsize = AtomicUsize::new(0);
            let marker = format!("test:{}:{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
            let mut command = std::process::Command::new("sh");
            command.args(["-c", script]).env(VAR, &marker);
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            Run { child: command.spawn().unwrap(), marker }
        }

        fn members(&self) -> Members {
            let start = super::super::identity(self.child.id()).map(|id| id.start_time);
            Members::new(self.child.id(), start, self.marker.clone(), None)
        }
    }

    impl Drop for Run {
        fn drop(&mut self) {
            marker::signal(Match::Run(&self.marker), Signal::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn counts_a_child_that_left_the_group() {
        // The leader only sleeps; the CPU is burnt by a process in a session of its own.
        let run = Run::spawn("setsid sh -c 'while :; do :; done' & exec sleep 30");
        let members = run.members();
        let deadline = Instant::now() + Duration::from_secs(20);
        let burnt = loop {
            let usage = sample(&[&members])[0].expect("the run has processes");
            let cpu = usage.cpu.unwrap();
            if cpu >= Duration::from_millis(300) || Instant::now() > deadline {
                break cpu;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(burnt >= Duration::from_millis(300), "only {burnt:?} of CPU counted");
    }

    #[test]
    fn idle_runs_use_little_each_and_a_gone_one_nothing() {
        let mut one = Run::spawn("exec sleep 30");
        let two = Run::spawn("exec sleep 30");
        // Mid-exec, a process has no memory mapped yet: sample once both are `sleep`.
        for run in [&one, &two] {
            let comm = format!("/proc/{}/comm", run.child.id());
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
                assert!(Instant::now() < deadline, "{comm} never became sleep");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let (a, b) = (one.members(), two.members());
        for usage in sample(&[&a, &b]) {
            let usage = usage.expect("both runs have a process");
            assert!(usage.cpu.unwrap() < Duration::from_millis(500), "{usage:?}");
            let memory = usage.memory_bytes.unwrap();
            assert!(memory > 0 && memory < 64 << 20, "{memory} bytes");
        }
        one.child.kill().unwrap();
        one.child.wait().unwrap();
        let usage = sample(&[&a, &b]);
        assert_eq!(usage[0], None);
        assert!(usage[1].is_some());
    }
}
