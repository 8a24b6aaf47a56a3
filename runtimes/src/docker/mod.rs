//! Containers, driven through the Docker Engine API (bollard).
//!
//! Each run is one container named `pm-<instance>-<random>`, labelled `pm.instance` and
//! `pm.daemon` (the daemon's own id, kept in its PM_HOME) so that a restarted daemon finds what a
//! crashed one left ([`DockerRuntime::leftovers`]): it removes them through the engine, never by
//! signalling host pids. Output comes from an attach made before the start, so no line is
//! missed. A container is removed once its run ends; `wait` returns after that removal.
//!
//! The engine may go away at any time. A run whose engine stops answering is waited for until
//! it answers again, then its container's state decides how the run ended; a stop is bounded
//! (`stop_timeout` plus [`STOP_GRACE`]) whatever the engine does, and a container whose removal
//! the engine could not confirm is removed as soon as it answers.

mod error;
mod exec;
mod handle;
mod lines;
mod spec;
mod usage;

pub use error::DockerError;
pub use handle::STOP_GRACE;
pub use spec::{LABEL_DAEMON, LABEL_INSTANCE};
pub use usage::ContainerStats;

use crate::{Runtime, SpawnError, SpawnSpec, Spawned, Stream};
use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, ListContainersOptions, RemoveContainerOptions,
};
use error::status_of;
use futures::{StreamExt, TryStreamExt};
use handle::DockerHandle;
use lines::Splitter;
use pm_protocol::{PullPolicy, RuntimeKind};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the engine has to answer a ping.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one engine call that lists or removes containers outside a run.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Where the Docker CLI looks when `DOCKER_HOST` is unset.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Runs sidecars as containers of one Docker engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    address: String,
    daemon_id: String,
    /// The names of the containers this runtime's runs own (from before their creation until
    /// their removal): never leftovers.
    live: Arc<Mutex<HashSet<String>>>,
}

/// A container name in [`DockerRuntime::live`] for as long as this lives.
struct LiveName {
    live: Arc<Mutex<HashSet<String>>>,
    name: String,
}

impl LiveName {
    fn new(live: &Arc<Mutex<HashSet<String>>>, name: &str) -> Self {
        live.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string());
        LiveName { live: live.clone(), name: name.to_string() }
    }
}

impl Drop for LiveName {
    fn drop(&mut self) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.name);
    }
}

impl DockerRuntime {
    /// Connects to the engine `DOCKER_HOST` names (`unix://…` or `tcp://…`; by default
    /// `unix:///var/run/docker.sock`) and checks it answers. `daemon_id` marks this daemon's
    /// containers (label `pm.daemon`).
    pub async fn connect(daemon_id: String) -> Result<DockerRuntime, DockerError> {
        let address = std::env::var("DOCKER_HOST").ok().filter(|host| !host.is_empty());
        Self::connect_at(address.as_deref().unwrap_or(DEFAULT_HOST), daemon_id).await
    }

    /// Like [`connect`](Self::connect), with the engine's address given.
    pub async fn connect_at(address: &str, daemon_id: String) -> Result<DockerRuntime, DockerError> {
        let unreachable = |source| DockerError::Unreachable { address: address.to_string(), source };
        let docker = Docker::connect_with_host(address).map_err(unreachable)?;
        let runtime = DockerRuntime {
            docker,
            address: address.to_string(),
            daemon_id,
            live: Arc::new(Mutex::new(HashSet::new())),
        };
        runtime.ping().await?;
        Ok(runtime)
    }

    /// Whether the engine answers now (within a few seconds).
    pub async fn ping(&self) -> Result<(), DockerError> {
        let unreachable = |source| DockerError::Unreachable { address: self.address.clone(), source };
        match tokio::time::timeout(PING_TIMEOUT, self.docker.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(unreachable(source)),
            Err(_) => Err(unreachable(bollard::errors::Error::RequestTimeoutError)),
        }
    }

    /// The engine's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Every container labelled with this daemon's id, running or not, as
    /// `(instance, container id)`: the runs of this runtime and whatever an earlier daemon with
    /// this id left.
    pub async fn containers(&self) -> Result<Vec<(String, String)>, DockerError> {
        Ok(self.list().await?.into_iter().map(|(instance, id, _)| (instance, id)).collect())
    }

    /// The containers labelled with this daemon's id that no run of this runtime owns, running
    /// or not, as `(instance, container id)`: what a crashed daemon left behind, or a run whose
    /// removal the engine never confirmed.
    pub async fn leftovers(&self) -> Result<Vec<(String, String)>, DockerError> {
        let containers = self.list().await?;
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        Ok(containers
            .into_iter()
            .filter(|(_, _, names)| !names.iter().any(|name| live.contains(name.trim_start_matches('/'))))
            .map(|(instance, id, _)| (instance, id))
            .collect())
    }

    /// `(instance, id, names)` of the containers labelled with this daemon's id.
    async fn list(&self) -> Result<Vec<(String, String, Vec<String>)>, DockerError> {
        let label = format!("{LABEL_DAEMON}={}", self.daemon_id);
        let filters = HashMap::from([("label".to_string(), vec![label.clone()])]);
        let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        let engine =
            |source| DockerError::Engine { action: "list", target: format!("the containers labelled {label}"), source };
        let containers = match tokio::time::timeout(CALL_TIMEOUT, self.docker.list_containers(Some(options))).await {
            Ok(listed) => listed.map_err(engine)?,
            Err(_) => return Err(engine(bollard::errors::Error::RequestTimeoutError)),
        };
        Ok(containers
            .into_iter()
            .filter_map(|container| {
                let instance = container.labels.as_ref()?.get(LABEL_INSTANCE)?.clone();
                Some((instance, container.id?, container.names.unwrap_or_default()))
            })
            .collect())
    }

    /// Force-removes a container (and its anonymous volumes); one already gone is not an error.
    pub async fn remove(&self, id: &str) -> Result<(), DockerError> {
        match tokio::time::timeout(CALL_TIMEOUT, remove_container(&self.docker, id)).await {
            Ok(removed) => removed,
            Err(_) => Err(DockerError::Engine {
                action: "remove",
                target: format!("container {id}"),
                source: bollard::errors::Error::RequestTimeoutError,
            }),
        }
    }

    async fn start(&self, spec: &SpawnSpec) -> Result<Spawned, DockerError> {
        if spec.runtime != RuntimeKind::Docker {
            return Err(DockerError::WrongRuntime { runtime: spec.runtime.to_string() });
        }
        let docker_spec = spec.docker.as_ref().ok_or(DockerError::NoSpec)?;
        self.ensure_image(&docker_spec.image, docker_spec.pull).await?;

        let body = spec::create_body(spec, docker_spec, &self.daemon_id)?;
        let name = spec::container_name(&spec.instance);
        // Owned from before it exists, so a sweep for leftovers never takes it.
        let live = LiveName::new(&self.live, &name);
        let options = CreateContainerOptions { name: Some(name.clone()), ..Default::default() };
        let id = match self.docker.create_container(Some(options), body).await {
            Ok(created) => created.id,
            Err(error) if status_of(&error) == Some(409) => return Err(DockerError::NameConflict { name }),
            Err(source) => {
                return Err(DockerError::Engine { action: "create", target: format!("container {name}"), source });
            }
        };

        match self.attach_and_start(&id, &name, &spec.instance, live).await {
            Ok(spawned) => Ok(spawned),
            Err(error) => {
                if let Err(remove) = remove_container(&self.docker, &id).await {
                    tracing::warn!(instance = %spec.instance, container = %name, %remove, "cannot remove container");
                }
                Err(error)
            }
        }
    }

    async fn attach_and_start(
        &self,
        id: &str,
        name: &str,
        instance: &str,
        live: LiveName,
    ) -> Result<Spawned, DockerError> {
        let engine = |action, source| DockerError::Engine { action, target: format!("container {name}"), source };
        // Attached before the start, so the first lines are not missed.
        let options = AttachContainerOptions { stream: true, stdout: true, stderr: true, ..Default::default() };
        let attached =
            self.docker.attach_container(id, Some(options)).await.map_err(|source| engine("attach to", source))?;
        self.docker.start_container(id, None).await.map_err(|source| engine("start", source))?;

        let pid = match self.docker.inspect_container(id, None).await {
            Ok(inspected) => inspected.state.and_then(|state| state.pid).and_then(|pid| u32::try_from(pid).ok()),
            Err(_) => None,
        }
        .filter(|pid| *pid > 0);

        let (tx, rx) = mpsc::channel(crate::OUTPUT_CAPACITY);
        let pump = tokio::spawn(pump(attached.output, tx, name.to_string()));
        let handle =
            DockerHandle::start(self.docker.clone(), id.to_string(), name.to_string(), instance, pid, pump, live);
        Ok(Spawned { handle: Box::new(handle), output: crate::output_of(rx) })
    }

    async fn ensure_image(&self, image: &str, policy: PullPolicy) -> Result<(), DockerError> {
        let present = || async {
            match self.docker.inspect_image(image).await {
                Ok(_) => Ok(true),
                Err(error) if status_of(&error) == Some(404) => Ok(false),
                Err(source) => {
                    Err(DockerError::Engine { action: "inspect", target: format!("image `{image}`"), source })
                }
            }
        };
        match policy {
            PullPolicy::Always => self.pull(image).await,
            PullPolicy::Missing if !present().await? => self.pull(image).await,
            PullPolicy::Never if !present().await? => Err(DockerError::ImageMissing { image: image.to_string() }),
            PullPolicy::Missing | PullPolicy::Never => Ok(()),
        }
    }

    async fn pull(&self, image: &str) -> Result<(), DockerError> {
        let (from_image, tag) = spec::pull_reference(image);
        let options = CreateImageOptions { from_image: Some(from_image), tag, ..Default::default() };
        tracing::info!(image, "pulling image");
        self.docker
            .create_image(Some(options), None, None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(|source| DockerError::Pull { image: image.to_string(), source })
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    async fn spawn(&self, spec: SpawnSpec) -> Result<Spawned, SpawnError> {
        self.start(&spec).await.map_err(|error| SpawnError::Io {
            instance: spec.instance.clone(),
            program: spec.docker.as_ref().map(|docker| docker.image.clone()).unwrap_or_default(),
            source: std::io::Error::other(error),
        })
    }
}

/// Force-removes a container; one already gone (or being removed) is not an error.
async fn remove_container(docker: &Docker, id: &str) -> Result<(), DockerError> {
    let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(error) if matches!(status_of(&error), Some(404 | 409)) => Ok(()),
        Err(source) => Err(DockerError::Engine { action: "remove", target: format!("container {id}"), source }),
    }
}

/// Sends every line of the attached output to `tx` until the stream ends. Sends wait while the
/// channel is full; with the receiver gone, the stream is still drained.
async fn pump(
    mut output: std::pin::Pin<Box<dyn futures::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    tx: mpsc::Sender<crate::OutputLine>,
    name: String,
) {
    let mut stdout = Splitter::new(Stream::Stdout);
    let mut stderr = Splitter::new(Stream::Stderr);
    while let Some(chunk) = output.next().await {
        let lines = match chunk {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => stdout.push(&message),
            Ok(LogOutput::StdErr { message }) => stderr.push(&message),
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(error) => {
                tracing::warn!(container = %name, %error, "cannot read container output");
                break;
            }
        };
        for line in lines {
            if tx.send(line).await.is_err() {
                break;
            }
        }
    }
    for line in [stdout.finish(), stderr.finish()].into_iter().flatten() {
        let _ = tx.send(line).await;
    }
}
