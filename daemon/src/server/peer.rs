//! Who is on the other end of a connection, how to write to it, and what it holds: its calls in
//! flight, its `pm.*` requests running, its subscriptions.

use crate::mesh::RunToken;
use crate::outbox::Outbox;
use pm_protocol::ndjson::FrameLimit;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub enum Identity {
    /// Not authenticated yet (tcp/tls before `pm.auth`).
    Anonymous,
    /// The daemon's owner: same uid on the Unix socket, or the daemon token.
    Owner,
    /// One run of a supervised sidecar, by its own PM_TOKEN.
    Sidecar(Arc<RunToken>),
}

pub struct Peer {
    pub id: u64,
    /// Frames to this peer: answers, notifications, and requests routed to it.
    pub out: Arc<Outbox>,
    identity: Mutex<Identity>,
    /// The bound on incoming frames, lifted once authenticated (stream transports only).
    pub frame_limit: Option<FrameLimit>,
    /// Failed attempts to authenticate (or to act before authenticating).
    strikes: AtomicU32,
    /// Routed calls from this peer still waiting for their answer.
    pub in_flight: Arc<AtomicUsize>,
    /// `pm.*` requests (and batches) of this peer running at once.
    pub pm_requests: Arc<Semaphore>,
    /// Subscription ids (as JSON) opened on this connection: only it may cancel them.
    subscriptions: Mutex<HashSet<String>>,
}

impl Peer {
    pub fn new(out: Arc<Outbox>, identity: Identity, frame_limit: Option<FrameLimit>, max_pm: usize) -> Peer {
        Peer {
            id: out.conn,
            out,
            identity: Mutex::new(identity),
            frame_limit,
            strikes: AtomicU32::new(0),
            in_flight: Arc::default(),
            pm_requests: Arc::new(Semaphore::new(max_pm)),
            subscriptions: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Identity> {
        // Replaced whole, never half-written: a poisoned lock is still sound.
        self.identity.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn identity(&self) -> Identity {
        self.lock().clone()
    }

    /// Whether the peer has yet to authenticate; checked on every frame, so it clones nothing.
    pub fn is_anonymous(&self) -> bool {
        matches!(*self.lock(), Identity::Anonymous)
    }

    pub fn set_identity(&self, identity: Identity) {
        *self.lock() = identity;
    }

    /// Counts a failed attempt; returns how many there were.
    pub fn strike(&self) -> u32 {
        self.strikes.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn subscriptions(&self) -> MutexGuard<'_, HashSet<String>> {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_subscription(&self, id: String) {
        self.subscriptions().insert(id);
    }

    pub fn remove_subscription(&self, id: &str) {
        self.subscriptions().remove(id);
    }

    pub fn subscription_count(&self) -> usize {
        self.subscriptions().len()
    }

    pub fn owns_subscription(&self, id: &str) -> bool {
        self.subscriptions().contains(id)
    }
}
