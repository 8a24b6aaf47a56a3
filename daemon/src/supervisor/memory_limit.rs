//! `max_memory`: a task beside a run that reads the memory of the whole run (every process of
//! its cgroup or marker, or its container) every [`EVERY`], and tells the actor once it is over
//! the limit. Only runs with a limit have one: no limit, no timer.

use pm_runtimes::UsageSource;
use std::time::Duration;
use tokio::sync::oneshot;

/// How often the memory of a limited run is read.
pub const EVERY: Duration = Duration::from_secs(1);
/// How long an engine may take to give a container's stats before that reading is skipped.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(2);

/// The watch on one run; ends with it (dropped).
pub struct Limit {
    over: oneshot::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Limit {
    pub fn start(source: UsageSource, max: u64) -> Limit {
        let (tx, over) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Some(bytes) = memory(&source).await
                    && bytes > max
                {
                    let _ = tx.send(bytes);
                    return;
                }
            }
        });
        Limit { over, task }
    }

    /// Resolves with the memory in use once it is over the limit (never, if the task is gone).
    pub async fn exceeded(&mut self) -> u64 {
        match (&mut self.over).await {
            Ok(bytes) => bytes,
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for Limit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The run's memory now, if it can be read.
async fn memory(source: &UsageSource) -> Option<u64> {
    let usage = match source {
        UsageSource::Processes(members) => {
            let members = members.clone();
            tokio::task::spawn_blocking(move || pm_runtimes::process::sample(&[&members]).pop().flatten())
                .await
                .ok()
                .flatten()
        }
        UsageSource::Container(stats) => tokio::time::timeout(ENGINE_TIMEOUT, stats.sample()).await.ok().flatten(),
    };
    usage?.memory_bytes
}
