//! The handle of one container: waiting, signalling, stopping and removing it, whatever the
//! engine does meanwhile.

use super::{LiveName, remove_container};
use crate::{Exit, Handle};
use async_trait::async_trait;
use bollard::Docker;
use bollard::query_parameters::{KillContainerOptions, WaitContainerOptions};
use futures::StreamExt;
use nix::sys::signal::Signal;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How long a stop may go on past its `stop_timeout` (for the SIGKILL, the exit and the removal)
/// before it gives up on an engine that does not answer: the instance is then reported stopped,
/// with the engine's error, and the container is removed as soon as the engine answers.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long the output may take to drain after the container ended before it is removed anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one engine call made to learn a container's state or to remove it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The first and the longest pause between tries while the engine does not answer.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub(super) struct DockerHandle {
    docker: Docker,
    id: String,
    name: String,
    pid: Option<u32>,
    /// Set by the run task once the container ended and was removed.
    ended: watch::Receiver<Option<Exit>>,
    /// Tells the run task that nobody waits for the container any more: remove it as soon as
    /// the engine lets it (a stop that gave up, or a handle dropped).
    abandon: Arc<Notify>,
    exit: Option<Exit>,
    /// Why the last stop could not be confirmed.
    stop_error: Option<String>,
}

impl DockerHandle {
    /// Starts the task that waits for the container to end, lets its output drain, removes it and
    /// then publishes the exit. `live` marks the container as owned until it is removed.
    pub(super) fn start(
        docker: Docker,
        id: String,
        name: String,
        instance: &str,
        pid: Option<u32>,
        pump: JoinHandle<()>,
        live: LiveName,
    ) -> Self {
        let (tx, ended) = watch::channel(None);
        let abandon = Arc::new(Notify::new());
        let run = {
            let (docker, id, name, instance, abandon) =
                (docker.clone(), id.clone(), name.clone(), instance.to_string(), abandon.clone());
            async move {
                let _live = live;
                let exit = tokio::select! {
                    exit = engine_wait(&docker, &id, &name) => exit,
                    _ = abandon.notified() => {
                        pump.abort();
                        remove_once_it_answers(&docker, &id, &name).await;
                        let _ = tx.send(Some(Exit { code: None, signal: None }));
                        return;
                    }
                };
                tracing::debug!(%instance, container = %name, ?exit, "container ended");
                if tokio::time::timeout(DRAIN_TIMEOUT, pump).await.is_err() {
                    tracing::warn!(%instance, container = %name, "output still draining; removing the container anyway");
                }
                match tokio::time::timeout(CALL_TIMEOUT, remove_container(&docker, &id)).await {
                    Ok(Ok(())) => {
                        let _ = tx.send(Some(exit));
                    }
                    // The run is over either way: say so, and remove it once the engine answers.
                    failed => {
                        let why = match failed {
                            Ok(Err(error)) => error.to_string(),
                            _ => "the engine did not answer".into(),
                        };
                        tracing::warn!(%instance, container = %name, "cannot remove the container yet: {why}");
                        let _ = tx.send(Some(exit));
                        remove_once_it_answers(&docker, &id, &name).await;
                    }
                }
            }
        };
        tokio::spawn(run);
        Self { docker, id, name, pid, ended, abandon, exit: None, stop_error: None }
    }

    /// Signal, wait up to `timeout`, SIGKILL, wait: what a stop does when the engine answers.
    /// Records in `error` what the engine last said, for when it does not get to the end.
    async fn stop_unbounded(&mut self, signal: Signal, timeout: Duration, error: &mut Option<String>) -> Exit {
        if let Err(why) = kill(&self.docker, &self.id, signal).await {
            *error = Some(why);
        }
        match tokio::time::timeout(timeout, self.wait()).await {
            Ok(exit) => exit,
            Err(_) => {
                if let Err(why) = kill(&self.docker, &self.id, Signal::SIGKILL).await {
                    *error = Some(why);
                }
                // Returns once the container is gone (the run task removes it).
                self.wait().await
            }
        }
    }
}

impl Drop for DockerHandle {
    /// A container nobody holds a handle on is nobody's: the run task removes it.
    fn drop(&mut self) {
        self.abandon.notify_one();
    }
}

/// Sends `signal` to the container's main process; a container no longer running is not an error.
async fn kill(docker: &Docker, id: &str, signal: Signal) -> Result<(), String> {
    let options = KillContainerOptions { signal: signal.as_str().to_string() };
    match docker.kill_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(error) if matches!(super::status_of(&error), Some(404 | 409)) => Ok(()),
        Err(error) => {
            tracing::warn!(container = %id, %signal, %error, "cannot signal container");
            Err(format!("cannot send {signal} to container {id}: {error}"))
        }
    }
}

/// Waits for the container to stop running, through the engine. When the engine goes away
/// meanwhile (restarted, killed, connection lost), asks for the container's state until the
/// engine answers again (with a growing pause, so an engine that stays away costs little):
/// a container still running is waited for again, one that ended gives its status.
async fn engine_wait(docker: &Docker, id: &str, name: &str) -> Exit {
    let mut pause = RETRY_FIRST;
    let mut lost = false;
    loop {
        let options = WaitContainerOptions { condition: "not-running".to_string() };
        match docker.wait_container(id, Some(options)).next().await {
            Some(Ok(response)) => return exit_of(Some(response.status_code)),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => return exit_of(Some(code)),
            Some(Err(error)) if !lost => {
                tracing::warn!(container = %name, %error, "lost the engine while waiting for the container; asking it again until it answers");
                lost = true;
            }
            Some(Err(error)) => tracing::debug!(container = %name, %error, "cannot wait for container"),
            None => {}
        }
        loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
            match tokio::time::timeout(CALL_TIMEOUT, docker.inspect_container(id, None)).await {
                Ok(Ok(inspected)) => match inspected.state {
                    Some(state) if state.running == Some(true) => break,
                    state => return exit_of(state.and_then(|state| state.exit_code)),
                },
                Ok(Err(error)) if super::status_of(&error) == Some(404) => {
                    tracing::warn!(container = %name, "the container is gone from the engine");
                    return exit_of(None);
                }
                Ok(Err(error)) => tracing::debug!(container = %name, %error, "the engine does not answer yet"),
                Err(_) => tracing::debug!(container = %name, "the engine does not answer yet"),
            }
        }
    }
}

/// Removes the container, trying again (with a growing pause) for as long as the engine does
/// not answer; an engine that answers with an error is told once and left (the next daemon's
/// sweep finds the container by its label).
async fn remove_once_it_answers(docker: &Docker, id: &str, name: &str) {
    let mut pause = RETRY_FIRST;
    loop {
        match tokio::time::timeout(CALL_TIMEOUT, remove_container(docker, id)).await {
            Ok(Ok(())) => {
                tracing::info!(container = %name, "removed the container");
                return;
            }
            Ok(Err(super::DockerError::Engine { source, .. })) if super::status_of(&source).is_some() => {
                tracing::warn!(container = %name, error = %source, "the engine refuses to remove the container");
                return;
            }
            Ok(Err(error)) => tracing::debug!(container = %name, %error, "cannot remove the container yet"),
            Err(_) => tracing::debug!(container = %name, "the engine does not answer yet"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RETRY_MAX);
    }
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
        runtime.spawn(async move {
            let _ = kill(&docker, &id, signal).await;
        });
        Ok(())
    }

    /// Bounded as a whole by `timeout` plus [`STOP_GRACE`], whatever the engine does: past
    /// that, the run counts as ended (its exit unknown), [`stop_error`](Handle::stop_error)
    /// says why, and the container is removed as soon as the engine answers.
    async fn stop(&mut self, signal: Signal, timeout: Duration) -> Exit {
        if let Some(exit) = self.exit {
            return exit;
        }
        self.stop_error = None;
        let bound = timeout.saturating_add(STOP_GRACE);
        let mut error = None;
        if let Ok(exit) = tokio::time::timeout(bound, self.stop_unbounded(signal, timeout, &mut error)).await {
            return exit;
        }
        let why = error.unwrap_or_else(|| "no answer from the engine".to_string());
        let message = format!(
            "the Docker engine did not confirm the stop of container {} within {bound:?} (stop_timeout + {STOP_GRACE:?}): \
             {why}; pm removes the container once the engine answers",
            self.name
        );
        tracing::warn!("{message}");
        self.stop_error = Some(message);
        self.abandon.notify_one();
        let exit = Exit { code: None, signal: None };
        self.exit = Some(exit);
        exit
    }

    fn stop_error(&self) -> Option<String> {
        self.stop_error.clone()
    }

    fn exec_in(&self) -> Option<crate::ExecIn> {
        let (docker, id) = (self.docker.clone(), self.id.clone());
        Some(Arc::new(move |argv| Box::pin(super::exec::run(docker.clone(), id.clone(), argv))))
    }

    fn containment(&self) -> Option<&'static str> {
        Some("container")
    }

    fn usage(&self) -> Option<crate::UsageSource> {
        Some(crate::UsageSource::Container(super::ContainerStats::new(self.docker.clone(), self.id.clone())))
    }

    fn sweep(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (docker, id) = (self.docker.clone(), self.id.clone());
        runtime.spawn(async move {
            match tokio::time::timeout(CALL_TIMEOUT, remove_container(&docker, &id)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(container = %id, %error, "cannot sweep container"),
                Err(_) => tracing::debug!(container = %id, "cannot sweep container: the engine did not answer"),
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
