//! The runtimes a daemon has, behind one [`Runtime`]: each spawn goes to the runtime its
//! definition names.
//!
//! The Docker engine is reached on the first container's spawn, so a daemon without containers
//! never waits on (or needs) an engine. An engine that does not answer is never taken as an
//! answer for good: the next spawn asks again, and an instance whose spawn failed because of it
//! waits for it ([`Runtime::when_available`]) while one watcher asks the engine, with a growing
//! pause, for as long as anyone waits (none otherwise: an idle daemon does not wake up). When
//! the engine answers again, the containers this daemon owns but no run holds are removed first,
//! then the waiting instances are told.

use async_trait::async_trait;
use futures::future::BoxFuture;
use pm_protocol::RuntimeKind;
use pm_runtimes::docker::DockerRuntime;
use pm_runtimes::{Runtime, SpawnError, SpawnSpec, Spawned};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{OnceCell, watch};

/// The first and the longest pause between two pings of an engine that does not answer.
const WATCH_FIRST: Duration = Duration::from_millis(250);
const WATCH_MAX: Duration = Duration::from_secs(5);

pub struct Runtimes {
    pub process: Arc<dyn Runtime>,
    /// In-process tasks, when the daemon has any.
    pub task: Option<Arc<dyn Runtime>>,
    /// Bind-mounted into every container at the same path, so `PM_DAEMON` works inside.
    socket_dir: PathBuf,
    engine: Arc<Engine>,
}

/// The Docker engine, as this daemon sees it.
struct Engine {
    /// Labels this daemon's containers (`pm.daemon`), to find them again after a crash; the
    /// daemon's random id kept in PM_HOME, never its path.
    daemon_id: String,
    /// The engine's client, once it answered: a failed connection is not kept.
    docker: OnceCell<Arc<DockerRuntime>>,
    /// Containers of this daemon that no run holds may exist (left by a crashed daemon, or by
    /// runs the engine went away under): removed at the next contact with the engine.
    sweep_pending: AtomicBool,
    /// Bumped each time the watcher finds the engine answering again; its receivers are the
    /// instances waiting for it.
    back: watch::Sender<u64>,
    /// Whether the watcher task runs.
    watching: AtomicBool,
}

impl Runtimes {
    pub fn new(task: Option<Arc<dyn Runtime>>, daemon_id: String, socket_dir: PathBuf) -> Self {
        Runtimes {
            process: Arc::new(pm_runtimes::process::ProcessRuntime::default()),
            task,
            socket_dir,
            engine: Arc::new(Engine {
                daemon_id,
                docker: OnceCell::new(),
                sweep_pending: AtomicBool::new(false),
                back: watch::Sender::new(0),
                watching: AtomicBool::new(false),
            }),
        }
    }

    /// Removes the containers a crashed daemon with this id left (they are started afresh with
    /// their instances: never leaked, never duplicated), through the engine alone. Returns how
    /// many it removed. With the engine away, that is done as soon as it answers.
    pub async fn remove_leftover_containers(&self) -> Result<usize, String> {
        self.engine.sweep_pending.store(true, Ordering::SeqCst);
        self.engine.reach().await.map(|(_, removed)| removed)
    }
}

impl Engine {
    /// The engine's client, connecting if it never answered so far, and the number of leftover
    /// containers removed on the way when a sweep was pending.
    async fn reach(&self) -> Result<(Arc<DockerRuntime>, usize), String> {
        let docker = self
            .docker
            .get_or_try_init(|| async {
                DockerRuntime::connect(self.daemon_id.clone()).await.map(Arc::new).map_err(|e| e.to_string())
            })
            .await?
            .clone();
        let mut removed = 0;
        if self.sweep_pending.swap(false, Ordering::SeqCst) {
            match remove_leftovers(&docker).await {
                Ok(count) => removed = count,
                Err(e) => {
                    self.sweep_pending.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        Ok((docker, removed))
    }

    /// Resolves once the engine answers again (the watcher has found it so, and swept).
    fn when_back(self: &Arc<Self>) -> BoxFuture<'static, ()> {
        let mut back = self.back.subscribe();
        self.watch();
        Box::pin(async move {
            let _ = back.changed().await;
        })
    }

    /// Starts the watcher, unless it runs: it pings the engine with a growing pause while anyone
    /// waits for it, and ends when the engine answers or nobody waits any more.
    fn watch(self: &Arc<Self>) {
        if self.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let mut pause = WATCH_FIRST;
            loop {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(WATCH_MAX);
                if engine.back.receiver_count() == 0 {
                    engine.watching.store(false, Ordering::SeqCst);
                    // Someone who came meanwhile saw the watcher running: go on for them.
                    if engine.back.receiver_count() > 0 && !engine.watching.swap(true, Ordering::SeqCst) {
                        continue;
                    }
                    return;
                }
                let answers = async {
                    // A client is kept once connected: whether its engine answers now.
                    if let Some(docker) = engine.docker.get() {
                        docker.ping().await.map_err(|e| e.to_string())?;
                    }
                    engine.reach().await.map(|_| ())
                };
                match answers.await {
                    Ok(()) => {
                        tracing::info!("the Docker engine answers again");
                        engine.watching.store(false, Ordering::SeqCst);
                        engine.back.send_modify(|generation| *generation += 1);
                        return;
                    }
                    Err(e) => tracing::debug!("the Docker engine does not answer yet: {e}"),
                }
            }
        });
    }
}

/// Removes this daemon's containers that no run holds; returns how many.
async fn remove_leftovers(docker: &DockerRuntime) -> Result<usize, String> {
    let leftovers = docker.leftovers().await.map_err(|e| e.to_string())?;
    for (instance, id) in &leftovers {
        tracing::warn!("{instance}: removing container {id}, which no run of this daemon holds");
        docker.remove(id).await.map_err(|e| e.to_string())?;
    }
    Ok(leftovers.len())
}

#[async_trait]
impl Runtime for Runtimes {
    async fn spawn(&self, mut spec: SpawnSpec) -> Result<Spawned, SpawnError> {
        let unavailable = |instance: String, runtime: RuntimeKind, why: String| SpawnError::Unavailable {
            instance,
            runtime: runtime.to_string(),
            why,
        };
        match spec.runtime {
            RuntimeKind::Process => self.process.spawn(spec).await,
            RuntimeKind::Task => match &self.task {
                Some(task) => task.spawn(spec).await,
                None => Err(unavailable(spec.instance, spec.runtime, "no tasks were given to it".into())),
            },
            RuntimeKind::Docker => {
                let docker = match self.engine.reach().await {
                    Ok((docker, _)) => docker,
                    Err(why) => {
                        self.engine.sweep_pending.store(true, Ordering::SeqCst);
                        return Err(unavailable(spec.instance, spec.runtime, why));
                    }
                };
                if let Some(container) = &mut spec.docker {
                    let dir = self.socket_dir.display();
                    container.volumes.push(format!("{dir}:{dir}"));
                }
                let instance = spec.instance.clone();
                match docker.spawn(spec).await {
                    Ok(spawned) => Ok(spawned),
                    // Failed because the engine went away meanwhile: that is the engine's
                    // failure, waited for like any unreachable engine.
                    Err(error) => match docker.ping().await {
                        Ok(()) => Err(error),
                        Err(why) => {
                            tracing::debug!("{error}");
                            self.engine.sweep_pending.store(true, Ordering::SeqCst);
                            Err(unavailable(instance, RuntimeKind::Docker, why.to_string()))
                        }
                    },
                }
            }
        }
    }

    fn when_available(&self, error: &SpawnError) -> Option<BoxFuture<'static, ()>> {
        match error {
            SpawnError::Unavailable { runtime, .. } if *runtime == RuntimeKind::Docker.to_string() => {
                Some(self.engine.when_back())
            }
            _ => None,
        }
    }
}
