//! A restart asked for from outside the restart policy: a watched file changed (`watch`).

use super::{Actor, Phase, Run};
use pm_protocol::State;
use pm_runtimes::{OutputLine, Stream};
use std::time::SystemTime;
use tokio::sync::mpsc;

impl Actor {
    /// Restarts at once because of `why` (`src/app.py changed`): the run, if there is one, stops
    /// as usual and the next one launches without a delay. The instance's log says why. It counts
    /// as a restart, but not against `max_restarts`: nothing failed.
    pub(super) async fn restart_now(&mut self, run: Option<Box<Run>>, why: String) -> Phase {
        let reason = format!("restarting: {why}");
        self.log(format!("[pm] {reason}")).await;
        match run {
            Some(mut run) => {
                self.publish(|s| {
                    s.state = State::Stopping;
                    s.reason = Some(reason.clone());
                });
                self.stop_as(&mut run, State::Backoff, Some(reason)).await;
            }
            None => self.publish(|s| {
                s.state = State::Backoff;
                s.reason = Some(reason);
            }),
        }
        self.publish(|s| s.restarts += 1);
        Phase::Launch
    }

    /// Writes a line of pm's own into the instance's log.
    async fn log(&self, line: String) {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(OutputLine { stream: Stream::Stdout, line, at: SystemTime::now() });
        drop(tx);
        self.ctx.logs.pump(self.spec.name.clone(), pm_runtimes::output_of(rx), None).await;
    }
}
