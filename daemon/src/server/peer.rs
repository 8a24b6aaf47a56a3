//! Who is on the other end of a connection, and how to write to it.

use std::sync::Mutex;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Not authenticated yet (tcp/tls before `pm.auth`).
    Anonymous,
    /// The daemon's owner: same uid on the Unix socket, or the daemon token.
    Owner,
    /// A supervised sidecar, by its own PM_TOKEN.
    Sidecar(String),
}

pub struct Peer {
    pub id: u64,
    /// Frames to this peer: answers, notifications, and requests routed to it.
    pub out: mpsc::Sender<String>,
    identity: Mutex<Identity>,
}

impl Peer {
    pub fn new(id: u64, out: mpsc::Sender<String>, identity: Identity) -> Peer {
        Peer { id, out, identity: Mutex::new(identity) }
    }

    pub fn identity(&self) -> Identity {
        self.identity.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the peer has yet to authenticate; checked on every frame, so it clones nothing.
    pub fn is_anonymous(&self) -> bool {
        matches!(*self.identity.lock().unwrap_or_else(|p| p.into_inner()), Identity::Anonymous)
    }

    pub fn set_identity(&self, identity: Identity) {
        *self.identity.lock().unwrap_or_else(|p| p.into_inner()) = identity;
    }
}
