//! CPU and memory figures for `pm.status`, read only when it asks: nothing samples on a timer.
//!
//! Each run's [`UsageSource`] is given by its actor as it is spawned, and kept per instance
//! with the pid it was spawned with, so a new run starts afresh. CPU percent needs two
//! cumulative samples: each run keeps the last one.

use super::{Result, Supervisor};
use pm_protocol::InstanceStatus;
use pm_runtimes::UsageSource;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The shortest window a CPU percent is measured over: ticks are 10 ms, so shorter windows
/// would swing wildly between two quick `pm status`. Within it, the last figure is shown again.
const MIN_WINDOW: Duration = Duration::from_secs(1);
/// How long a container engine has to give its stats; one that does not answer leaves the
/// figures empty rather than holding up the status.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(1);

/// The current run of each instance that has figures.
#[derive(Default)]
pub struct Meter {
    runs: Mutex<HashMap<String, Run>>,
    /// Tells runs apart across a sampling: one may end and another start meanwhile.
    next_run: AtomicU64,
}

struct Run {
    id: u64,
    pid: Option<u32>,
    source: UsageSource,
    cpu: CpuWindow,
}

/// CPU percent from cumulative samples.
#[derive(Debug)]
struct CpuWindow {
    /// The cumulative CPU time read last (at first: none, at the spawn).
    baseline: Sample,
    /// The percent measured up to `baseline`.
    percent: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    cpu: Duration,
    at: Instant,
}

/// One instance's figures.
#[derive(Debug)]
struct Figures {
    cpu_percent: Option<f64>,
    memory_bytes: Option<u64>,
}

impl Meter {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Run>> {
        // Each update is one insert, remove or field write: sound after a panic elsewhere.
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new run of `instance`: its figures start afresh (none, without a source).
    pub(super) fn start(&self, instance: &str, pid: Option<u32>, source: Option<UsageSource>) {
        let Some(source) = source else {
            self.forget(instance);
            return;
        };
        let id = self.next_run.fetch_add(1, Ordering::Relaxed);
        let cpu = CpuWindow::new(Instant::now());
        self.lock().insert(instance.to_string(), Run { id, pid, source, cpu });
    }

    /// The instance is gone.
    pub fn forget(&self, instance: &str) {
        self.lock().remove(instance);
    }

    /// Reads the figures of the runs of `active` (instance, pid as its status shows it): the
    /// native ones in one blocking job, the containers at once, each within [`ENGINE_TIMEOUT`].
    async fn figures(&self, active: &[(String, Option<u32>)]) -> HashMap<String, Figures> {
        let mut native = Vec::new();
        let mut containers = Vec::new();
        {
            let runs = self.lock();
            for (name, pid) in active {
                let Some(run) = runs.get(name).filter(|run| run.pid == *pid) else { continue };
                match &run.source {
                    UsageSource::Processes(members) => native.push((name.clone(), run.id, members.clone())),
                    UsageSource::Container(stats) => containers.push((name.clone(), run.id, stats.clone())),
                }
            }
        }
        let native = async move {
            if native.is_empty() {
                return Vec::new();
            }
            let read = move || {
                let members: Vec<_> = native.iter().map(|(_, _, members)| members).collect();
                let usage = pm_runtimes::process::sample(&members);
                let at = Instant::now();
                native.iter().zip(usage).map(|((name, id, _), usage)| (name.clone(), *id, usage, at)).collect()
            };
            tokio::task::spawn_blocking(read).await.unwrap_or_default()
        };
        let containers = futures::future::join_all(containers.into_iter().map(|(name, id, stats)| async move {
            let usage = tokio::time::timeout(ENGINE_TIMEOUT, stats.sample()).await.ok().flatten();
            (name, id, usage, Instant::now())
        }));
        let (native, containers) = tokio::join!(native, containers);

        let mut runs = self.lock();
        native
            .into_iter()
            .chain(containers)
            .filter_map(|(name, id, usage, at)| {
                let (run, usage) = (runs.get_mut(&name).filter(|run| run.id == id)?, usage?);
                let cpu_percent = usage.cpu.and_then(|cpu| run.cpu.percent(cpu, at));
                Some((name, Figures { cpu_percent, memory_bytes: usage.memory_bytes }))
            })
            .collect()
    }
}

impl CpuWindow {
    fn new(started: Instant) -> Self {
        CpuWindow { baseline: Sample { cpu: Duration::ZERO, at: started }, percent: None }
    }

    /// CPU use since the baseline, given the run's cumulative CPU time `cpu` read at `at`, in
    /// percent of one core (100 % = one core busy).
    fn percent(&mut self, cpu: Duration, at: Instant) -> Option<f64> {
        let wall = at.saturating_duration_since(self.baseline.at);
        if wall < MIN_WINDOW && self.percent.is_some() {
            return self.percent;
        }
        if wall.is_zero() {
            return None;
        }
        // A member that exited unwaited for takes its CPU time along: no negative use.
        let percent = cpu.saturating_sub(self.baseline.cpu).as_secs_f64() / wall.as_secs_f64() * 100.0;
        // A young run's first figure is shown, but the next one is measured from the start too.
        if wall >= MIN_WINDOW {
            self.baseline = Sample { cpu, at };
            self.percent = Some(percent);
        }
        Some(percent)
    }
}

impl Supervisor {
    /// [`Supervisor::status`], with the CPU and memory figures of the instances that run.
    pub async fn status_with_usage(&self, name: Option<&str>) -> Result<Vec<InstanceStatus>> {
        let mut statuses = self.status(name)?;
        let active: Vec<_> = statuses.iter().filter(|s| s.state.is_active()).map(|s| (s.name.clone(), s.pid)).collect();
        let meter = self.lock().meter.clone();
        let mut figures = meter.figures(&active).await;
        for status in &mut statuses {
            if let Some(figures) = figures.remove(&status.name) {
                // /proc counts CPU time in 10 ms ticks, over a second or more: finer is noise.
                status.cpu_percent = figures.cpu_percent.map(|percent| (percent * 10.0).round() / 10.0);
                status.memory_bytes = figures.memory_bytes;
            }
        }
        Ok(statuses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_the_average_since_the_start_then_per_window_of_a_second_at_least() {
        let start = Instant::now();
        let mut window = CpuWindow::new(start);
        // Cumulative CPU and the time it is read at, both in milliseconds since the start.
        let mut percent = |cpu, at| {
            let at = start + Duration::from_millis(at);
            window.percent(Duration::from_millis(cpu), at).map(|p| (p * 1000.0).round() / 1000.0)
        };
        assert_eq!(percent(0, 0), None, "no time has passed");
        // A young run: the average since the start, again and again.
        assert_eq!(percent(100, 200), Some(50.0));
        assert_eq!(percent(300, 400), Some(75.0));
        // Two cores busy for two seconds.
        assert_eq!(percent(4000, 2000), Some(200.0));
        // Within a second of that, the same figure; then the use since then.
        assert_eq!(percent(4000, 2500), Some(200.0));
        assert_eq!(percent(4500, 4000), Some(25.0));
        // A sample older than the baseline (two statuses crossing) shows the last figure.
        assert_eq!(percent(4400, 3900), Some(25.0));
        // Less CPU time than before (a member gone unwaited for) is none used, not negative.
        assert_eq!(percent(100, 6000), Some(0.0));
    }
}
