//! What every instance actor shares: the runtime, the log hub, the event bus, the persistence
//! requests and the task tracker the daemon waits on at shutdown.

use crate::logs::LogHub;
use crate::store::WriteError;
use pm_protocol::status::Event;
use pm_runtimes::Runtime;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, broadcast, oneshot};
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
}

/// Who waits for a write, and hears how it went.
pub type Flushed = oneshot::Sender<Result<(), WriteError>>;

/// Requests to write the state: a nudge for a change worth keeping (a pid gone), or a flush that
/// waits until the change is on disk (a new pid, before anyone relies on it). Requests that
/// arrive while a write is under way share the next one.
#[derive(Clone, Default)]
pub struct Dirty(Arc<Requests>);

#[derive(Default)]
struct Requests {
    nudged: Notify,
    waiting: Mutex<Vec<Flushed>>,
}

impl Dirty {
    pub fn nudge(&self) {
        self.0.nudged.notify_one();
    }

    /// Waits until the state as it is now is on disk.
    pub async fn flush(&self) -> Result<(), WriteError> {
        let (tx, rx) = oneshot::channel();
        self.waiting().push(tx);
        self.nudge();
        // Dropped unanswered only when the supervisor is gone: the daemon is ending.
        rx.await.unwrap_or(Ok(()))
    }

    /// For the supervisor: the next request, with everyone waiting for it.
    pub(super) async fn next(&self) -> Vec<Flushed> {
        self.0.nudged.notified().await;
        std::mem::take(&mut *self.waiting())
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Flushed>> {
        // A Vec push or take cannot be left half-done by a panic.
        self.0.waiting.lock().unwrap_or_else(|p| p.into_inner())
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
        }
    }
}
