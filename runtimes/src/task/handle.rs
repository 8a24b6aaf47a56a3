//! A running task: waiting, stopping (cancel, then abort after the timeout), and panics.

use super::LogSink;
use crate::{Exit, Handle, Stream};
use async_trait::async_trait;
use nix::sys::signal::Signal;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Exit code of a task that returned an error (as a process exiting 1).
const FAILED: i32 = 1;
/// Exit code of a task that panicked (as a Rust process that panics).
const PANICKED: i32 = 101;

pub struct TaskHandle {
    join: JoinHandle<bool>,
    cancel: CancellationToken,
    log: LogSink,
    exit: Option<Exit>,
}

impl TaskHandle {
    pub(super) fn new(join: JoinHandle<bool>, cancel: CancellationToken, log: LogSink) -> Self {
        TaskHandle { join, cancel, log, exit: None }
    }
}

#[async_trait]
impl Handle for TaskHandle {
    fn pid(&self) -> Option<u32> {
        None
    }

    fn containment(&self) -> Option<&'static str> {
        Some("task")
    }

    async fn wait(&mut self) -> Exit {
        if let Some(exit) = self.exit {
            return exit;
        }
        // Awaiting a JoinHandle by reference is cancel-safe.
        let exit = match (&mut self.join).await {
            Ok(true) => Exit { code: Some(0), signal: None },
            Ok(false) => Exit { code: Some(FAILED), signal: None },
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                self.log.line(Stream::Stderr, &format!("task panicked: {message}")).await;
                Exit { code: Some(PANICKED), signal: None }
            }
            // Aborted: the stop timeout passed.
            Err(_) => Exit { code: None, signal: Some(Signal::SIGKILL as i32) },
        };
        self.exit = Some(exit);
        exit
    }

    /// Any signal asks the task to stop: its cancellation token fires.
    fn signal(&self, _signal: Signal) -> std::io::Result<()> {
        self.cancel.cancel();
        Ok(())
    }

    async fn stop(&mut self, signal: Signal, timeout: Duration) -> Exit {
        let _ = self.signal(signal);
        if let Ok(exit) = tokio::time::timeout(timeout, self.wait()).await {
            return exit;
        }
        self.join.abort();
        self.wait().await
    }

    fn sweep(&self) {
        self.join.abort();
    }
}
