//! The runtimes a daemon has, behind one [`Runtime`]: each spawn goes to the runtime its
//! definition names. The Docker engine is reached on the first container's spawn, so a daemon
//! without containers never waits on (or needs) an engine.

use async_trait::async_trait;
use pm_protocol::RuntimeKind;
use pm_runtimes::docker::DockerRuntime;
use pm_runtimes::{Runtime, SpawnError, SpawnSpec, Spawned};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::OnceCell;

pub struct Runtimes {
    pub process: Arc<dyn Runtime>,
    /// In-process tasks, when the daemon has any.
    pub task: Option<Arc<dyn Runtime>>,
    /// Labels this daemon's containers (`pm.home`), to find them again after a crash.
    home_label: String,
    /// Bind-mounted into every container at the same path, so `PM_DAEMON` works inside.
    socket_dir: PathBuf,
    /// The engine, once asked for: connected, or why not.
    docker: OnceCell<Result<Arc<DockerRuntime>, String>>,
}

impl Runtimes {
    pub fn new(task: Option<Arc<dyn Runtime>>, home_label: String, socket_dir: PathBuf) -> Self {
        Runtimes {
            process: Arc::new(pm_runtimes::process::ProcessRuntime),
            task,
            home_label,
            socket_dir,
            docker: OnceCell::new(),
        }
    }

    async fn docker(&self) -> Result<&Arc<DockerRuntime>, String> {
        let connected = self
            .docker
            .get_or_init(|| async {
                DockerRuntime::connect(self.home_label.clone()).await.map(Arc::new).map_err(|e| e.to_string())
            })
            .await;
        connected.as_ref().map_err(Clone::clone)
    }

    /// Removes the containers a crashed daemon of this PM_HOME left (they are started afresh
    /// with their instances: never leaked, never duplicated). Returns how many it removed.
    pub async fn remove_leftover_containers(&self) -> Result<usize, String> {
        let docker = self.docker().await?;
        let leftovers = docker.leftovers().await.map_err(|e| e.to_string())?;
        for (instance, id) in &leftovers {
            tracing::warn!("{instance}: removing container {id} left by the previous daemon");
            docker.remove(id).await.map_err(|e| e.to_string())?;
        }
        Ok(leftovers.len())
    }
}

#[async_trait]
impl Runtime for Runtimes {
    async fn spawn(&self, mut spec: SpawnSpec) -> Result<Spawned, SpawnError> {
        let unavailable = |spec: SpawnSpec, why: String| SpawnError::Unavailable {
            instance: spec.instance,
            runtime: spec.runtime.to_string(),
            why,
        };
        match spec.runtime {
            RuntimeKind::Process => self.process.spawn(spec).await,
            RuntimeKind::Task => match &self.task {
                Some(task) => task.spawn(spec).await,
                None => Err(unavailable(spec, "no tasks were given to it".into())),
            },
            RuntimeKind::Docker => match self.docker().await {
                Ok(docker) => {
                    if let Some(container) = &mut spec.docker {
                        let dir = self.socket_dir.display();
                        container.volumes.push(format!("{dir}:{dir}"));
                    }
                    docker.spawn(spec).await
                }
                Err(why) => Err(unavailable(spec, why)),
            },
        }
    }
}
