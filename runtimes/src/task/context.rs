//! What a task gets: who it is, when to stop, where its log lines go, and how to reach the mesh.

use crate::{OutputLine, Stream};
use pm_protocol::Endpoint;
use std::time::SystemTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct TaskContext {
    /// The instance name (PM_NAME).
    pub name: String,
    /// The definition's arguments after the task's name, and the instance's own.
    pub args: Vec<String>,
    /// The instance's environment (definition env, env files, PM_NAME, PM_TOKEN, …).
    pub env: Vec<(String, String)>,
    /// Fires when the task should stop.
    pub cancel: CancellationToken,
    /// Lines to the instance's log files, as a process's stdout and stderr.
    pub log: LogSink,
    /// The daemon, in memory: connect with `pm_client` as any sidecar would.
    pub daemon: Endpoint,
    /// This instance's own token (PM_TOKEN), to authenticate on `daemon`.
    pub token: String,
}

impl TaskContext {
    /// An environment variable of the instance.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Writes log lines for a task. Waits when the log writer is behind, like a process's pipe.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::Sender<OutputLine>,
}

impl LogSink {
    pub(crate) fn new(tx: mpsc::Sender<OutputLine>) -> Self {
        LogSink { tx }
    }

    /// A line (or several, split on newlines) to the instance's `.out.log`.
    pub async fn out(&self, text: &str) {
        self.line(Stream::Stdout, text).await
    }

    /// A line (or several) to the instance's `.err.log`.
    pub async fn err(&self, text: &str) {
        self.line(Stream::Stderr, text).await
    }

    pub(crate) async fn line(&self, stream: Stream, text: &str) {
        for line in text.lines() {
            let line = OutputLine { stream, line: line.to_string(), at: SystemTime::now() };
            // A closed log (the instance is gone) has nobody left to read it.
            let _ = self.tx.send(line).await;
        }
    }
}
