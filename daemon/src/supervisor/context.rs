//! What every instance actor shares: the runtime, the log hub, the event bus, the persistence
//! nudge and the task tracker the daemon waits on at shutdown.

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
    /// Nudged when something worth persisting changed (a pid); the supervisor writes the state.
    pub dirty: Arc<Notify>,
    pub tracker: TaskTracker,
    /// `PM_DAEMON` for spawned sidecars: where they reach the daemon.
    pub daemon_endpoint: String,
}
