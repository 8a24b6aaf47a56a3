//! What goes on beside a run: readiness probes, the `pre_start` hook it waits for, the health
//! check and `post_start` hook once it is ready, `post_stop` after it, what an unhealthy verdict
//! or a memory limit does to it, and notifications of its failures.

use super::{Actor, Command, Phase, Run};
use crate::supervisor::health::{Checker, Report};
use crate::supervisor::hooks::{self, Beside};
use crate::supervisor::probe::{self, Target};
use futures::StreamExt;
use futures::future::BoxFuture;
use pm_protocol::status::Event;
use pm_protocol::{HealthStatus, Hook, Notification, OnUnhealthy, Probe, Readiness, State};
use pm_runtimes::{Exit, signal_name};
use std::time::Duration;

/// How long one try of a readiness probe may take (http, exec, tcp): a hung try is given up and
/// the next one made, within the ready timeout.
const READY_TRY_TIMEOUT: Duration = Duration::from_secs(5);

/// A readiness check that repeats `probe` (each try bounded) until it passes.
pub(super) fn until_passes(probe: Probe, target: &Target) -> BoxFuture<'static, ()> {
    Box::pin(probe::until_passes(probe, target.clone(), READY_TRY_TIMEOUT))
}

impl Actor {
    /// Runs the `pre_start` hook before a spawn. `None`: go on and spawn; else the phase that
    /// follows instead (it failed, or a stop came: a stop does not wait for the hook, which is
    /// killed with what it started when dropped).
    pub(super) async fn pre_start(&mut self, hook: &Hook, target: &Target) -> Option<Phase> {
        self.publish(|s| {
            s.state = State::Starting;
            s.reason = Some("running its pre_start hook".into());
        });
        let ctx = self.ctx.clone();
        let ran = hooks::run(&ctx, target, "pre_start", hook, &[]);
        tokio::pin!(ran);
        loop {
            tokio::select! {
                result = &mut ran => {
                    let e = result.err()?;
                    return Some(self.fail(format!("pre_start hook: {e}")));
                }
                cmd = self.rx.next() => match cmd {
                    Some(Command::Stop(reply)) => {
                        self.publish(|s| { s.state = State::Stopped; s.reason = None; });
                        let _ = reply.send(());
                        return Some(Phase::Idle);
                    }
                    Some(Command::Exit(reply)) => {
                        let _ = reply.send(());
                        return Some(Phase::Ended);
                    }
                    None => return Some(Phase::Ended),
                    Some(cmd) => self.while_active(cmd),
                },
            }
        }
    }

    /// Once the run is ready: its `post_start` hook, beside it, and its health check, if its
    /// definition has them (a one-shot has no health check).
    pub(super) fn on_ready(&self, run: &mut Run) {
        if let Some(health) = &self.spec.def.health
            && self.spec.def.ready != Readiness::Exited
        {
            run.health = Some(Checker::start(health.clone(), run.target.clone()));
        }
        if let Some(hook) = self.spec.def.hooks.post_start.clone() {
            let (ctx, target) = (self.ctx.clone(), run.target.clone());
            run.post_start = Some(Beside::spawn(async move {
                // A failure is in the log; the run goes on.
                let _ = hooks::run(&ctx, &target, "post_start", &hook, &[]).await;
            }));
        }
    }

    /// Runs the `post_stop` hook, if any, once a run has ended with `exit`.
    pub(super) async fn post_stop(&self, target: &Target, exit: Exit) {
        let Some(hook) = &self.spec.def.hooks.post_stop else { return };
        let mut extra = Vec::new();
        if let Some(code) = exit.code {
            extra.push(("PM_EXIT_CODE", code.to_string()));
        }
        if let Some(signal) = exit.signal {
            extra.push(("PM_EXIT_SIGNAL", signal_name(signal)));
        }
        let _ = hooks::run(&self.ctx, target, "post_stop", hook, &extra).await;
    }

    /// What the health check found: kept for status; an unhealthy verdict is acted on.
    pub(super) async fn health_report(&mut self, run: Box<Run>, report: Report) -> Phase {
        let failures = report.info.failures;
        let last = report.info.last_failure.clone().unwrap_or_default();
        self.publish(|s| s.health = Some(report.info));
        match report.flipped {
            Some(HealthStatus::Unhealthy) => {
                let reason = format!("health check failed {failures} times in a row: {last}");
                self.publish(|s| {
                    s.state = State::Unhealthy;
                    s.reason = Some(reason.clone());
                });
                if self.spec.def.health.as_ref().is_some_and(|h| h.on_unhealthy == OnUnhealthy::Restart) {
                    return self.replace(run, State::Unhealthy, reason).await;
                }
            }
            Some(HealthStatus::Healthy) if self.status.borrow().state == State::Unhealthy => {
                self.publish(|s| {
                    s.state = State::Ready;
                    s.reason = None;
                });
            }
            _ => {}
        }
        Phase::Running(run)
    }

    /// Stops a run for `reason` (unhealthy, over its memory), shown with `state` meanwhile; the
    /// restart policy decides what follows, as after a failed exit.
    pub(super) async fn replace(&mut self, mut run: Box<Run>, state: State, reason: String) -> Phase {
        self.stop_as(&mut run, state, Some(reason.clone())).await;
        let uptime = run.started.elapsed();
        drop(run);
        self.decide(&reason, false, uptime, &reason, |_| {})
    }

    /// Tells the definition's `notify` of a failure, an unhealthy verdict or a give-up.
    pub(super) fn notify(&self, event: &Event) {
        let Some(notify) = &self.spec.def.notify else { return };
        let Some(kind) = crate::supervisor::notify::event_of(event.state, event.reason.as_deref()) else { return };
        let notification = Notification {
            instance: event.instance.clone(),
            definition: self.spec.definition.clone(),
            event: kind,
            state: event.state,
            reason: event.reason.clone(),
            last_exit: self.status.borrow().last_exit.clone(),
            at_ms: event.at_ms,
        };
        self.ctx.notifier.send(&self.ctx, notify, self.spec.def.cwd.clone(), notification);
    }
}
