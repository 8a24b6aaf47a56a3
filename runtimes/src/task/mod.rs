//! In-process tasks: async Rust functions the daemon runs as sidecars, with the same restart,
//! readiness, log and stop rules as processes. A task reaches the mesh through its context's
//! in-memory endpoint, with the same SDK a process sidecar uses.

mod context;
mod handle;

pub use context::{LogSink, TaskContext};

use crate::{Runtime, SpawnError, SpawnSpec, Spawned, Stream};
use async_trait::async_trait;
use pm_protocol::Endpoint;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a task returns when it fails.
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;

/// A sidecar that is an async function. It should return when `ctx.cancel` fires; past the
/// stop timeout it is aborted. An error or a panic is a crash: logged, then the restart policy
/// applies.
#[async_trait]
pub trait Task: Send + Sync + 'static {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError>;
}

/// Runs the tasks registered with it, by name (`command[0]` of the definition).
#[derive(Clone)]
pub struct TaskRuntime {
    tasks: Arc<BTreeMap<String, Arc<dyn Task>>>,
    daemon: Endpoint,
}

impl TaskRuntime {
    /// Tasks by name; `daemon` is the in-process endpoint they reach the mesh on.
    pub fn new(tasks: BTreeMap<String, Arc<dyn Task>>, daemon: Endpoint) -> TaskRuntime {
        TaskRuntime { tasks: Arc::new(tasks), daemon }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tasks.keys().map(String::as_str)
    }
}

#[async_trait]
impl Runtime for TaskRuntime {
    async fn spawn(&self, spec: SpawnSpec) -> Result<Spawned, SpawnError> {
        let name = spec.command.first().cloned().unwrap_or_default();
        let Some(task) = self.tasks.get(&name).cloned() else {
            let known: Vec<&str> = self.names().collect();
            return Err(SpawnError::UnknownTask { instance: spec.instance, task: name, known: known.join(", ") });
        };
        let (tx, output) = mpsc::channel(crate::OUTPUT_CAPACITY);
        let cancel = CancellationToken::new();
        let token = spec.env.iter().find(|(k, _)| k == "PM_TOKEN").map(|(_, v)| v.clone()).unwrap_or_default();
        let log = LogSink::new(tx);
        // The handle keeps its own sink, to log a panic's message after the task is gone.
        let sink = log.clone();
        let ctx = TaskContext {
            name: spec.instance.clone(),
            args: spec.command[1..].to_vec(),
            env: spec.env,
            cancel: cancel.clone(),
            log: log.clone(),
            daemon: self.daemon.clone(),
            token,
        };
        let join = tokio::spawn(async move {
            let outcome = task.run(ctx).await;
            if let Err(e) = &outcome {
                log.line(Stream::Stderr, &format!("task failed: {e}")).await;
            }
            outcome.is_ok()
        });
        let handle = handle::TaskHandle::new(join, cancel, sink);
        Ok(Spawned { handle: Box::new(handle), output: crate::output_of(output) })
    }
}
