//! The restart decision after a run ends on its own: policy, success codes, backoff, and the
//! give-up threshold (`max_restarts` within `restart_window`; `min_uptime` resets the backoff).

use pm_protocol::{Definition, RestartPolicy};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How the reason of an instance that ran out of restarts begins (notifications tell it apart).
pub const GAVE_UP: &str = "gave up after";

#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Restart after this delay.
    Restart(Duration),
    /// Finished as expected: no restart.
    Exited,
    /// Give up, for this reason.
    Fail(String),
}

/// Restart history of one instance.
#[derive(Debug, Default)]
pub struct Tracker {
    /// When each recent restart happened, oldest first.
    recent: VecDeque<Instant>,
    /// Restarts since the last run that lasted `min_uptime`: the backoff exponent.
    consecutive: u32,
}

impl Tracker {
    /// Decides what follows a run that ended with `code` / `signal` after `uptime`.
    pub fn on_exit(
        &mut self,
        def: &Definition,
        outcome: &str,
        success: bool,
        uptime: Duration,
        now: Instant,
    ) -> Decision {
        let restart = match def.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Never => false,
        };
        if !restart {
            return if success {
                Decision::Exited
            } else {
                Decision::Fail(format!("exited with {outcome} (restart = {})", policy_name(def.restart)))
            };
        }
        if uptime >= def.min_uptime {
            self.consecutive = 0;
        }
        while self.recent.front().is_some_and(|t| now.duration_since(*t) > def.restart_window) {
            self.recent.pop_front();
        }
        if self.recent.len() >= def.max_restarts as usize {
            return Decision::Fail(format!(
                "{GAVE_UP} {} restarts within {} (last exit: {outcome})",
                self.recent.len(),
                humantime::format_duration(def.restart_window)
            ));
        }
        self.recent.push_back(now);
        let delay = def
            .backoff_initial
            .checked_mul(2u32.saturating_pow(self.consecutive))
            .unwrap_or(def.backoff_max)
            .min(def.backoff_max);
        self.consecutive = self.consecutive.saturating_add(1);
        Decision::Restart(delay)
    }

    /// Forgets the history: a start by hand gets a fresh budget.
    pub fn reset(&mut self) {
        *self = Tracker::default();
    }
}

fn policy_name(p: RestartPolicy) -> &'static str {
    match p {
        RestartPolicy::Always => "always",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::Never => "never",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(policy: RestartPolicy) -> Definition {
        let mut d = Definition::new(vec!["x".into()]);
        d.restart = policy;
        d.backoff_initial = Duration::from_millis(100);
        d.backoff_max = Duration::from_millis(500);
        d.max_restarts = 3;
        d.restart_window = Duration::from_secs(10);
        d.min_uptime = Duration::from_secs(5);
        d
    }

    #[test]
    fn policies_decide_by_success() {
        let now = Instant::now();
        let short = Duration::from_millis(10);
        let mut t = Tracker::default();
        assert_eq!(t.on_exit(&def(RestartPolicy::Never), "code 0", true, short, now), Decision::Exited);
        assert_eq!(
            t.on_exit(&def(RestartPolicy::Never), "code 2", false, short, now),
            Decision::Fail("exited with code 2 (restart = never)".into())
        );
        assert_eq!(t.on_exit(&def(RestartPolicy::OnFailure), "code 0", true, short, now), Decision::Exited);
        assert!(matches!(t.on_exit(&def(RestartPolicy::OnFailure), "code 1", false, short, now), Decision::Restart(_)));
        assert!(matches!(t.on_exit(&def(RestartPolicy::Always), "code 0", true, short, now), Decision::Restart(_)));
    }

    #[test]
    fn backoff_doubles_up_to_max_then_gives_up_and_min_uptime_resets() {
        let d = def(RestartPolicy::Always);
        let mut t = Tracker::default();
        let now = Instant::now();
        let short = Duration::from_millis(10);
        let delays: Vec<_> = (0..3).map(|_| t.on_exit(&d, "code 1", false, short, now)).collect();
        assert_eq!(delays, [100, 200, 400].map(|ms| Decision::Restart(Duration::from_millis(ms))));
        assert_eq!(
            t.on_exit(&d, "code 1", false, short, now),
            Decision::Fail("gave up after 3 restarts within 10s (last exit: code 1)".into())
        );
        // Outside the window the budget is back, and a long run resets the backoff.
        let later = now + Duration::from_secs(11);
        assert_eq!(
            t.on_exit(&d, "code 1", false, Duration::from_secs(6), later),
            Decision::Restart(Duration::from_millis(100))
        );
        let mut capped = Tracker { consecutive: 10, ..Tracker::default() };
        assert_eq!(capped.on_exit(&d, "code 1", false, short, now), Decision::Restart(Duration::from_millis(500)));
    }
}
