//! Containers, driven through the Docker Engine API (bollard).
//!
//! Each run is one container named `pm-<instance>-<random>`, labelled `pm.instance` and `pm.home`
//! so that a restarted daemon finds what a crashed one left ([`DockerRuntime::leftovers`]). Output
//! comes from an attach made before the start, so no line is missed. A container is removed once
//! its run ends (and by [`Handle::stop`](crate::Handle::stop)); `wait` returns after that removal.

mod error;
mod handle;
mod lines;
mod spec;

pub use error::DockerError;
pub use spec::{LABEL_HOME, LABEL_INSTANCE};

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
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// Lines buffered between the attach reader and the consumer before the reader waits.
const OUTPUT_CAPACITY: usize = 1024;
/// How long the engine has to answer a ping.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Where the Docker CLI looks when `DOCKER_HOST` is unset.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Runs sidecars as containers of one Docker engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    address: String,
    home_label: String,
}

impl DockerRuntime {
    /// Connects to the engine `DOCKER_HOST` names (`unix://…` or `tcp://…`; by default
    /// `unix:///var/run/docker.sock`) and checks it answers. `home_label` marks this daemon's
    /// containers (label `pm.home`).
    pub async fn connect(home_label: String) -> Result<DockerRuntime, DockerError> {
        let address = std::env::var("DOCKER_HOST").ok().filter(|host| !host.is_empty());
        Self::connect_at(address.as_deref().unwrap_or(DEFAULT_HOST), home_label).await
    }

    /// Like [`connect`](Self::connect), with the engine's address given.
    pub async fn connect_at(address: &str, home_label: String) -> Result<DockerRuntime, DockerError> {
        let unreachable = |source| DockerError::Unreachable { address: address.to_string(), source };
        let docker = Docker::connect_with_host(address).map_err(unreachable)?;
        match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
            Ok(Ok(_)) => {}
            Ok(Err(source)) => return Err(unreachable(source)),
            Err(_) => return Err(unreachable(bollard::errors::Error::RequestTimeoutError)),
        }
        Ok(DockerRuntime { docker, address: address.to_string(), home_label })
    }

    /// The engine's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The containers labelled with this daemon's `pm.home`, running or not, as
    /// `(instance, container id)`: what a crashed daemon left behind.
    pub async fn leftovers(&self) -> Result<Vec<(String, String)>, DockerError> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_HOME}={}", self.home_label)])]);
        let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        let containers = self.docker.list_containers(Some(options)).await.map_err(|source| DockerError::Engine {
            action: "list",
            target: format!("the containers labelled {LABEL_HOME}={}", self.home_label),
            source,
        })?;
        Ok(containers
            .into_iter()
            .filter_map(|container| {
                let instance = container.labels.as_ref()?.get(LABEL_INSTANCE)?.clone();
                Some((instance, container.id?))
            })
            .collect())
    }

    /// Force-removes a container (and its anonymous volumes); one already gone is not an error.
    pub async fn remove(&self, id: &str) -> Result<(), DockerError> {
        remove_container(&self.docker, id).await
    }

    async fn start(&self, spec: &SpawnSpec) -> Result<Spawned, DockerError> {
        if spec.runtime != RuntimeKind::Docker {
            return Err(DockerError::WrongRuntime { runtime: spec.runtime.to_string() });
        }
        let docker_spec = spec.docker.as_ref().ok_or(DockerError::NoSpec)?;
        self.ensure_image(&docker_spec.image, docker_spec.pull).await?;

        let body = spec::create_body(spec, docker_spec, &self.home_label)?;
        let name = spec::container_name(&spec.instance);
        let options = CreateContainerOptions { name: Some(name.clone()), ..Default::default() };
        let id = match self.docker.create_container(Some(options), body).await {
            Ok(created) => created.id,
            Err(error) if status_of(&error) == Some(409) => return Err(DockerError::NameConflict { name }),
            Err(source) => {
                return Err(DockerError::Engine { action: "create", target: format!("container {name}"), source });
            }
        };

        match self.attach_and_start(&id, &name, &spec.instance).await {
            Ok(spawned) => Ok(spawned),
            Err(error) => {
                if let Err(remove) = remove_container(&self.docker, &id).await {
                    tracing::warn!(instance = %spec.instance, container = %name, %remove, "cannot remove container");
                }
                Err(error)
            }
        }
    }

    async fn attach_and_start(&self, id: &str, name: &str, instance: &str) -> Result<Spawned, DockerError> {
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

        let (tx, rx) = mpsc::channel(OUTPUT_CAPACITY);
        let pump = tokio::spawn(pump(attached.output, tx, name.to_string()));
        let handle = DockerHandle::start(self.docker.clone(), id.to_string(), name.to_string(), instance, pid, pump);
        Ok(Spawned { handle: Box::new(handle), output: rx })
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
