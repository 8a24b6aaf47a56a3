//! Measure 6: how often the idle daemon wakes up. Over a window (30 s by default), the context
//! switches of the daemon (voluntary and not, summed over all its threads from
//! /proc/PID/task/*/status) and its CPU time (utime + stime of /proc/PID/stat, which counts every
//! thread), with no sidecar and with 100 idle ones. Each context switch of a thread that sleeps
//! is one wake-up. Reference: a `sleep` the harness spawns, measured the same way over the same
//! window: the zero of a process that waits for nothing.

use crate::pm::{Children, Pm, alive, field_sum, spawn_sleep, within};
use crate::{Row, Size, progress, verdict};
use anyhow::{Context, anyhow, bail};
use nix::unistd::{SysconfVar, sysconf};
use pm_client::PmApiClient;
use pm_protocol::State;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const DEFAULT_WINDOW: Size<Duration> = Size::new(Duration::from_secs(30), Duration::from_secs(1));
/// How long to wait for the sidecars to be ready, then to let the daemon settle after that.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const SETTLE: Size<Duration> = Size::new(Duration::from_secs(1), Duration::from_millis(200));
/// The idle sidecars `pm-bench idle` defines itself (the full run has start-up's 100 by then).
pub const SIDECARS: usize = 100;

/// Defines and starts [`SIDECARS`] independent `sleep 100000`, from a generated project file.
pub async fn start_sleepers(pm: &Pm) -> anyhow::Result<()> {
    let mut toml = String::new();
    for i in 0..SIDECARS {
        toml.push_str(&format!("[sidecars.idle-{i:03}]\ncommand = [\"sleep\", \"100000\"]\nready = \"started\"\n\n"));
    }
    let file = pm.project_dir().join("pm.toml");
    std::fs::write(&file, toml).with_context(|| format!("cannot write {}", file.display()))?;
    pm.run(&["start", "-f", &file.to_string_lossy()], Duration::from_secs(60)).await?;
    Ok(())
}

/// One row: the daemon, with `sidecars` instances that must all be ready (`what` says which),
/// over `window`, beside a `sleep` over the same window.
pub async fn measure(pm: &Pm, sidecars: usize, what: &str, window: Duration) -> anyhow::Result<Row> {
    let mut reference = Children::default();
    let sleep = spawn_sleep()?;
    let sleep_pid = sleep.id();
    reference.push(sleep);
    settle(pm, sidecars).await?;
    let daemon = pm.daemon_pid();
    progress(&format!("idle, {sidecars} sidecars: counting the daemon's wake-ups for {} s", window.as_secs_f64()));
    let (pm_before, ref_before) = (Sample::take(daemon)?, Sample::take(sleep_pid)?);
    tokio::time::sleep(window).await;
    let (pm_after, ref_after) = (Sample::take(daemon)?, Sample::take(sleep_pid)?);
    let (pm, reference) = (pm_after.since(&pm_before), ref_after.since(&ref_before));
    progress(&format!(
        "idle, {sidecars} sidecars: pm {} context switches (by thread name: {}) and {} CPU ticks in {:.1} s; \
         sleep: {} and {}",
        pm.switches,
        pm.by_name(),
        pm.ticks,
        pm.seconds,
        reference.switches,
        reference.ticks
    ));
    let excess = pm.switches_per_s() - reference.switches_per_s();
    let met = verdict(pm.switches <= reference.switches);
    let exited = match pm.exited {
        0 => String::new(),
        n => format!("; {n} thread(s) exited in the window, their switches are not counted"),
    };
    Ok(Row {
        measure: format!("idle, {sidecars} sidecars"),
        pm: pm.figures(),
        reference: reference.figures(),
        ratio: format!("{excess:+.2} /s"),
        note: format!(
            "{what}; context switches of all {} threads and utime+stime ({} ms ticks) over a {} s window, after all \
             ready + {} s; ref: `sleep` over the same window; ratio: switches/s above it; goal 0 wake-ups/s from pm \
             itself: {met}{exited}",
            pm.threads,
            1000.0 / clock_ticks(),
            window.as_secs_f64(),
            SETTLE.get().as_secs_f64()
        ),
    })
}

/// Waits until `pm.status` shows `sidecars` instances, all ready, then lets the daemon settle.
async fn settle(pm: &Pm, sidecars: usize) -> anyhow::Result<()> {
    let client = pm.client().await?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let statuses = within(Duration::from_secs(5), "pm.status", client.daemon().status(None)).await??;
        let ready = statuses.iter().filter(|s| s.state == State::Ready).count();
        if statuses.len() == sidecars && ready == sidecars {
            break;
        }
        if Instant::now() > deadline {
            bail!("idle: {ready} of {} instances ready after {READY_TIMEOUT:?}, expected {sidecars}", statuses.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Closed before the window: the daemon has nothing of ours to answer then.
    drop(client);
    tokio::time::sleep(SETTLE.get()).await;
    Ok(())
}

/// A process's counters at one moment.
pub struct Sample {
    at: Instant,
    /// Per thread id: its name and its context switches so far.
    threads: HashMap<u32, (String, u64)>,
    /// utime + stime, in clock ticks.
    ticks: u64,
}

/// What a process did between two samples.
pub struct Usage {
    pub seconds: f64,
    switches: u64,
    /// Per thread name (a pool's threads share one), most first.
    by_name: Vec<(String, u64)>,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    threads: usize,
    /// Threads of the first sample gone by the second (their counts are lost with them).
    exited: usize,
}

impl Sample {
    pub fn take(pid: u32) -> anyhow::Result<Sample> {
        if !alive(pid) {
            bail!("idle: process {pid} is gone");
        }
        let at = Instant::now();
        let mut threads = HashMap::new();
        let tasks = format!("/proc/{pid}/task");
        for task in std::fs::read_dir(&tasks).with_context(|| format!("cannot read {tasks}"))? {
            let task = task?;
            // A thread may end between listing and reading: it then has nothing to add.
            let (Some(tid), Ok(status)) = (
                task.file_name().to_str().and_then(|t| t.parse().ok()),
                std::fs::read_to_string(task.path().join("status")),
            ) else {
                continue;
            };
            let name = status.lines().find_map(|l| l.strip_prefix("Name:")).unwrap_or_default().trim().to_string();
            let switches = field_sum(&status, &["voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]);
            threads.insert(tid, (name, switches));
        }
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        // Fields 14 and 15 (utime, stime); counted from the state, the first after the `(comm)`.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
        let ticks =
            tick(11).zip(tick(12)).map(|(u, s)| u + s).ok_or_else(|| anyhow!("cannot read {path}: {stat:?}"))?;
        Ok(Sample { at, threads, ticks })
    }

    /// Per thread: a thread new since `before` counts from zero.
    pub fn since(&self, before: &Sample) -> Usage {
        let mut by_name: Vec<(String, u64)> = Vec::new();
        for (tid, (name, n)) in &self.threads {
            let n = n.saturating_sub(before.threads.get(tid).map_or(0, |(_, n)| *n));
            match by_name.iter_mut().find(|(known, _)| known == name) {
                Some((_, sum)) => *sum += n,
                None => by_name.push((name.clone(), n)),
            }
        }
        by_name.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Usage {
            seconds: (self.at - before.at).as_secs_f64(),
            switches: by_name.iter().map(|(_, n)| n).sum(),
            by_name,
            ticks: self.ticks.saturating_sub(before.ticks),
            threads: self.threads.len(),
            exited: before.threads.keys().filter(|tid| !self.threads.contains_key(tid)).count(),
        }
    }
}

impl Usage {
    fn switches_per_s(&self) -> f64 {
        self.switches as f64 / self.seconds
    }

    /// The threads that switched, summed by name, e.g. `tokio-runtime-w 120, pm 3`.
    fn by_name(&self) -> String {
        let named: Vec<String> =
            self.by_name.iter().filter(|(_, n)| *n > 0).map(|(name, n)| format!("{name} {n}")).collect();
        if named.is_empty() { "none".into() } else { named.join(", ") }
    }

    /// CPU time (utime + stime) in percent of one core.
    pub fn cpu_percent(&self) -> f64 {
        self.ticks as f64 / clock_ticks() / self.seconds * 100.0
    }

    fn figures(&self) -> String {
        format!("{:.2} switches/s, {:.2} % CPU", self.switches_per_s(), self.cpu_percent())
    }
}

/// Clock ticks per second, the unit of utime and stime.
pub fn clock_ticks() -> f64 {
    sysconf(SysconfVar::CLK_TCK).ok().flatten().map_or(100.0, |t| t as f64)
}
