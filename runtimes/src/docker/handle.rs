//! The handle of one container: waiting, signalling, stopping and removing it.

use super::remove_container;
use crate::{Exit, Handle};
use async_trait::async_trait;
use bollard::Docker;
use bollard::query_parameters::{KillContainerOptions, WaitContainerOptions};
use futures::StreamExt;
use nix::sys::signal::Signal;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the output may take to drain after the container ended before it is removed anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on single engine calls made while stopping (kill, remove).
const ENGINE_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct DockerHandle {
    docker: Docker,
    id: String,
    name: String,
    pid: Option<u32>,
    /// Set by the run task once the container ended and was removed.
    ended: watch::Receiver<Option<Exit>>,
    exit: Option<Exit>,
}

impl DockerHandle {
    /// Starts the task that waits for the container to end, lets its output drain, removes it and
    /// then publishes the exit.
    pub(super) fn start(
        docker: Docker,
        id: String,
        name: String,
        instance: &str,
        pid: Option<u32>,
        pump: JoinHandle<()>,
    ) -> Self {
        let (tx, ended) = watch::channel(None);
        let run = {
            let (docker, id, name, instance) = (docker.clone(), id.clone(), name.clone(), instance.to_string());
            async move {
                let exit = engine_wait(&docker, &id).await;
                tracing::debug!(%instance, container = %name, ?exit, "container ended");
                if tokio::time::timeout(DRAIN_TIMEOUT, pump).await.is_err() {
                    tracing::warn!(%instance, container = %name, "output still draining; removing the container anyway");
                }
                match tokio::time::timeout(ENGINE_TIMEOUT, remove_container(&docker, &id)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::warn!(%instance, %error, "cannot remove container"),
                    Err(_) => tracing::warn!(%instance, container = %name, "removing the container timed out"),
                }
                let _ = tx.send(Some(exit));
            }
        };
        tokio::spawn(run);
        Self { docker, id, name, pid, ended, exit: None }
    }

    async fn kill(&self, signal: Signal) {
        if let Err(error) = tokio::time::timeout(ENGINE_TIMEOUT, kill(&self.docker, &self.id, signal)).await {
            tracing::warn!(container = %self.name, %signal, %error, "kill timed out");
        }
    }
}

/// Sends `signal` to the container's main process; a container no longer running is not an error.
async fn kill(docker: &Docker, id: &str, signal: Signal) {
    let options = KillContainerOptions { signal: signal.as_str().to_string() };
    match docker.kill_container(id, Some(options)).await {
        Ok(()) => {}
        Err(error) if matches!(super::status_of(&error), Some(404 | 409)) => {}
        Err(error) => tracing::warn!(container = %id, %signal, %error, "cannot signal container"),
    }
}

/// Waits for the container to stop running, through the engine.
async fn engine_wait(docker: &Docker, id: &str) -> Exit {
    let options = WaitContainerOptions { condition: "not-running".to_string() };
    let status = match docker.wait_container(id, Some(options)).next().await {
        Some(Ok(response)) => Some(response.status_code),
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Some(code),
        Some(Err(error)) => {
            tracing::warn!(container = %id, %error, "cannot wait for container");
            None
        }
        None => None,
    };
    let status = match status {
        Some(status) => Some(status),
        // The wait failed (engine restarted, connection lost): ask for the state instead.
        None => docker
            .inspect_container(id, None)
            .await
            .ok()
            .and_then(|inspected| inspected.state)
            .filter(|state| state.running != Some(true))
            .and_then(|state| state.exit_code),
    };
    exit_of(status)
}

/// The engine reports a main process killed by signal N as status 128+N.
fn exit_of(status: Option<i64>) -> Exit {
    match status {
        Some(status @ 129..=159) => Exit { code: None, signal: Some(status as i32 - 128) },
        Some(status) => Exit { code: i32::try_from(status).ok(), signal: None },
        None => Exit { code: None, signal: None },
    }
}

#[async_trait]
impl Handle for DockerHandle {
    fn pid(&self) -> Option<u32> {
        self.pid
    }

    async fn wait(&mut self) -> Exit {
        if let Some(exit) = self.exit {
            return exit;
        }
        // `wait_for` only reads the channel's state, so dropping it in a `select!` loses nothing.
        let exit = match self.ended.wait_for(Option::is_some).await {
            Ok(exit) => exit.unwrap_or(Exit { code: None, signal: None }),
            Err(_) => Exit { code: None, signal: None },
        };
        self.exit = Some(exit);
        exit
    }

    fn signal(&self, signal: Signal) -> std::io::Result<()> {
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let (docker, id) = (self.docker.clone(), self.id.clone());
        runtime.spawn(async move { kill(&docker, &id, signal).await });
        Ok(())
    }

    async fn stop(&mut self, signal: Signal, timeout: Duration) -> Exit {
        if let Some(exit) = self.exit {
            return exit;
        }
        self.kill(signal).await;
        let exit = match tokio::time::timeout(timeout, self.wait()).await {
            Ok(exit) => exit,
            Err(_) => {
                self.kill(Signal::SIGKILL).await;
                match tokio::time::timeout(ENGINE_TIMEOUT, self.wait()).await {
                    Ok(exit) => exit,
                    Err(_) => {
                        tracing::warn!(container = %self.name, "container did not end after SIGKILL");
                        let exit = Exit { code: None, signal: Some(Signal::SIGKILL as i32) };
                        self.exit = Some(exit);
                        exit
                    }
                }
            }
        };
        // The run task removed it already, unless the engine refused; this makes sure.
        if let Ok(Err(error)) = tokio::time::timeout(ENGINE_TIMEOUT, remove_container(&self.docker, &self.id)).await {
            tracing::warn!(container = %self.name, %error, "cannot remove container");
        }
        exit
    }

    fn sweep(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (docker, id) = (self.docker.clone(), self.id.clone());
        runtime.spawn(async move {
            if let Err(error) = remove_container(&docker, &id).await {
                tracing::debug!(container = %id, %error, "cannot sweep container");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_statuses() {
        assert_eq!(exit_of(Some(0)), Exit { code: Some(0), signal: None });
        assert_eq!(exit_of(Some(3)), Exit { code: Some(3), signal: None });
        assert_eq!(exit_of(Some(137)), Exit { code: None, signal: Some(9) });
        assert_eq!(exit_of(Some(143)), Exit { code: None, signal: Some(15) });
        assert_eq!(exit_of(None), Exit { code: None, signal: None });
    }
}
