//! The runtimes a daemon has, behind one [`Runtime`]: each spawn goes to the runtime its
//! definition names.

use async_trait::async_trait;
use pm_protocol::RuntimeKind;
use pm_runtimes::{Runtime, SpawnError, SpawnSpec, Spawned};
use std::sync::Arc;

pub struct Runtimes {
    pub process: Arc<dyn Runtime>,
    /// In-process tasks, when the daemon has any.
    pub task: Option<Arc<dyn Runtime>>,
    /// Containers, when a Docker engine was reachable.
    pub docker: Option<Arc<dyn Runtime>>,
}

impl Default for Runtimes {
    fn default() -> Self {
        Runtimes { process: Arc::new(pm_runtimes::process::ProcessRuntime), task: None, docker: None }
    }
}

#[async_trait]
impl Runtime for Runtimes {
    async fn spawn(&self, spec: SpawnSpec) -> Result<Spawned, SpawnError> {
        let runtime = match spec.runtime {
            RuntimeKind::Process => Some(&self.process),
            RuntimeKind::Task => self.task.as_ref(),
            RuntimeKind::Docker => self.docker.as_ref(),
        };
        match runtime {
            Some(runtime) => runtime.spawn(spec).await,
            None => Err(SpawnError::Unavailable { instance: spec.instance, runtime: spec.runtime.to_string() }),
        }
    }
}
