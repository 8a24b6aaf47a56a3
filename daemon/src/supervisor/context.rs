//! What every instance actor shares: the runtime, the log hub, the event bus, the persistence
//! requests and the task tracker the daemon waits on at shutdown.

use crate::logs::LogHub;
use pm_protocol::status::Event;
use pm_runtimes::Runtime;
use std::sync::Arc;
use tokio::sync::{Notify, broadcast};
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct Context {
    /// The mesh: sidecar tokens, registrations, calls in flight.
    pub mesh: crate::mesh::Mesh,
    pub runtime: Arc<dyn Runtime>,
    pub logs: LogHub,
    pub events: broadcast::Sender<Event>,
    /// How actors ask the supervisor to write the state.
    pub dirty: Dirty,
    pub tracker: TaskTracker,
    /// `PM_DAEMON` for spawned sidecars: where they reach the daemon.
    pub daemon_endpoint: String,
    pub notifier: super::notify::Notifier,
    /// Each run's usage source, for `pm status`'s CPU and memory figures.
    pub meter: Arc<super::usage::Meter>,
    /// The ports runs hold, and those definitions claim.
    pub ports: Arc<super::ports::Ports>,
}

/// Requests to write the state when an actor changes something worth keeping (a pid new or
/// gone); requests that arrive while a write is under way share the next one.
#[derive(Clone, Default)]
pub struct Dirty(Arc<Notify>);

impl Dirty {
    pub fn nudge(&self) {
        self.0.notify_one();
    }

    /// For the supervisor: the next request.
    pub(super) async fn next(&self) {
        self.0.notified().await;
    }
}

#[cfg(test)]
impl Context {
    /// A context over `runtime`, with its logs under `home`.
    pub fn for_tests(runtime: Arc<dyn Runtime>, home: &crate::home::Home) -> Context {
        Context {
            mesh: Default::default(),
            runtime,
            logs: LogHub::new(home.clone()),
            events: broadcast::channel(64).0,
            dirty: Default::default(),
            tracker: Default::default(),
            daemon_endpoint: "unix:///test/pm.sock".into(),
            notifier: Default::default(),
            meter: Default::default(),
            ports: Default::default(),
        }
    }
}
