//! A health check beside a run: one task runs the probe every `interval` (one at a time, so
//! checks never pile up) and tells the instance's actor what changed: a failure count, or a
//! verdict once a threshold is crossed. A steadily healthy instance costs one probe per
//! interval and no message. The task ends with the run (its [`Checker`] is dropped).

use super::probe::{self, Target};
use pm_protocol::status::now_ms;
use pm_protocol::{Health, HealthInfo, HealthStatus};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What changed, for the actor: the new findings, and the verdict when it flipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub info: HealthInfo,
    pub flipped: Option<HealthStatus>,
}

/// The running check of one run.
pub struct Checker {
    reports: mpsc::Receiver<Report>,
    task: tokio::task::JoinHandle<()>,
}

impl Checker {
    pub fn start(health: Health, target: Target) -> Checker {
        let (tx, reports) = mpsc::channel(4);
        let task = tokio::spawn(async move {
            tokio::time::sleep(health.initial_delay).await;
            let mut count = Count::default();
            loop {
                let started = Instant::now();
                let result = probe::check(&health.probe, &target, health.timeout).await;
                if let Some(report) = count.record(result, &health)
                    && tx.send(report).await.is_err()
                {
                    return;
                }
                tokio::time::sleep_until(started + health.interval).await;
            }
        });
        Checker { reports, task }
    }

    /// The next change (never, once the task is gone).
    pub async fn next(&mut self) -> Report {
        match self.reports.recv().await {
            Some(report) => report,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Consecutive results against the thresholds.
#[derive(Debug, Default)]
struct Count {
    status: HealthStatus,
    failures: u32,
    successes: u32,
    last_failure: Option<(String, u64)>,
}

impl Count {
    /// Takes one result; returns a report when the findings changed.
    fn record(&mut self, result: Result<(), String>, health: &Health) -> Option<Report> {
        let before = (self.status, self.failures);
        match result {
            Ok(()) => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                // Unknown turns healthy at the first success; unhealthy needs `success_threshold`.
                if self.status == HealthStatus::Unknown
                    || (self.status == HealthStatus::Unhealthy && self.successes >= health.success_threshold)
                {
                    self.status = HealthStatus::Healthy;
                }
            }
            Err(reason) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                self.last_failure = Some((reason, now_ms()));
                if self.failures >= health.failure_threshold {
                    self.status = HealthStatus::Unhealthy;
                }
            }
        }
        // A failure is news even at the same count (its reason); a success only if it changed
        // something.
        let changed = before != (self.status, self.failures) || self.failures > 0;
        changed.then(|| Report {
            info: HealthInfo {
                status: self.status,
                failures: self.failures,
                last_failure: self.last_failure.as_ref().map(|(r, _)| r.clone()),
                last_failure_at_ms: self.last_failure.as_ref().map(|(_, at)| *at),
            },
            flipped: (before.0 != self.status).then_some(self.status),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(failures: u32, successes: u32) -> Health {
        let json = format!(r#"{{"tcp": "a:1", "failure_threshold": {failures}, "success_threshold": {successes}}}"#);
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn thresholds_flip_the_verdict_and_steady_health_says_nothing() {
        let h = health(3, 2);
        let mut c = Count::default();
        assert_eq!(c.record(Ok(()), &h).unwrap().flipped, Some(HealthStatus::Healthy));
        assert_eq!(c.record(Ok(()), &h), None, "steadily healthy: no message");
        let first = c.record(Err("refused".into()), &h).unwrap();
        assert_eq!((first.flipped, first.info.failures), (None, 1));
        assert_eq!(first.info.last_failure.as_deref(), Some("refused"));
        assert_eq!(c.record(Err("refused".into()), &h).unwrap().flipped, None);
        let third = c.record(Err("timed out".into()), &h).unwrap();
        assert_eq!(third.flipped, Some(HealthStatus::Unhealthy));
        assert_eq!(third.info.last_failure.as_deref(), Some("timed out"));
        // One success is not enough to be healthy again with success_threshold 2.
        let one = c.record(Ok(()), &h).unwrap();
        assert_eq!((one.flipped, one.info.status, one.info.failures), (None, HealthStatus::Unhealthy, 0));
        assert_eq!(c.record(Ok(()), &h).unwrap().flipped, Some(HealthStatus::Healthy));
    }

    #[test]
    fn a_failure_between_successes_starts_the_count_again() {
        let h = health(2, 1);
        let mut c = Count::default();
        c.record(Err("x".into()), &h);
        c.record(Ok(()), &h);
        assert_eq!(c.record(Err("x".into()), &h).unwrap().flipped, None, "1 in a row, not 2");
        assert_eq!(c.record(Err("x".into()), &h).unwrap().flipped, Some(HealthStatus::Unhealthy));
    }
}
