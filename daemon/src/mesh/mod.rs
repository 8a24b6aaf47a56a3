//! The mesh: which sidecar serves which methods over which connection, and the calls in flight
//! to them. A call `a.b` from any client is sent to sidecar `a` as `b` under a daemon-wide id;
//! the reply goes back under the caller's id. Params and results pass through as raw JSON.

mod route;
mod tokens;

mod deadlines;
mod drain;
mod flight;

pub use drain::Draining;
pub use flight::InFlight;
pub use route::{Call, Reply, RouteError};
pub use tokens::{RunToken, kept_random, new_token};

use crate::outbox::Outbox;
use dashmap::DashMap;
use pm_protocol::Definition;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;
use tokio::sync::watch;

/// Default deadline of a routed call.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// How the daemon reaches a registered sidecar.
pub struct Registration {
    /// The registered instance.
    pub instance: Arc<str>,
    pub definition: String,
    /// Calls to the definition may go to any of its instances.
    pub stateless: bool,
    /// Methods it serves (empty: whatever it is sent).
    pub methods: Arc<Vec<String>>,
    /// Where it also listens for direct calls, if it said.
    pub endpoint: Option<String>,
    /// The connection requests go out on.
    pub out: Arc<Outbox>,
}

struct Pending {
    reply: Reply,
    caller_id: Box<serde_json::value::RawValue>,
    target: Arc<str>,
    /// The sidecar's connection, which must be the one that answers.
    conn: u64,
    /// The caller's connection.
    caller: u64,
    deadline: tokio::time::Instant,
    /// Counts against the caller's cap of calls in flight until answered.
    _flight: Option<InFlight>,
}

#[derive(Clone, Default)]
pub struct Mesh {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    registrations: DashMap<String, Arc<Registration>>,
    pending: DashMap<u64, Pending>,
    next_id: AtomicU64,
    next_conn: AtomicU64,
    /// Round-robin position per definition, for stateless balancing.
    turns: DashMap<String, AtomicUsize>,
    /// Sidecar token → the run it belongs to.
    tokens: DashMap<String, Arc<RunToken>>,
    /// Instance → its current run's token, so revoking is one lookup, not a scan.
    token_of: DashMap<String, String>,
    /// Registered instances, for the `registered` readiness.
    registered: watch::Sender<BTreeSet<String>>,
    deadlines: deadlines::Deadlines,
    /// Instances being drained, with how many drains hold each.
    draining: DashMap<String, usize>,
    /// Read while a call is routed, from its pick to its pending entry; a drain takes it once so
    /// that no call picked before its mark is missed.
    routing: std::sync::RwLock<()>,
}

impl Mesh {
    /// A fresh connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.inner.next_conn.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// A new token for a run of `instance` (its PM_TOKEN); any token of an earlier run dies.
    pub fn issue_token(&self, instance: &str, definition: Arc<Definition>) -> String {
        self.revoke_tokens(instance);
        let token = new_token();
        self.inner.tokens.insert(token.clone(), Arc::new(RunToken::new(instance.to_string(), definition)));
        self.inner.token_of.insert(instance.to_string(), token.clone());
        token
    }

    /// The run's token ended with it: connections that authenticated with it can do nothing more.
    pub fn revoke_tokens(&self, instance: &str) {
        if let Some((_, token)) = self.inner.token_of.remove(instance)
            && let Some((_, run)) = self.inner.tokens.remove(&token)
        {
            run.revoke();
        }
    }

    /// The run a sidecar token belongs to.
    pub fn run_of_token(&self, token: &str) -> Option<Arc<RunToken>> {
        self.inner.tokens.get(token).map(|e| e.value().clone())
    }

    pub fn register(&self, registration: Registration) {
        let instance = registration.instance.to_string();
        self.inner.registrations.insert(instance.clone(), Arc::new(registration));
        self.inner.registered.send_modify(|set| {
            set.insert(instance);
        });
    }

    pub fn registration(&self, instance: &str) -> Option<Arc<Registration>> {
        self.inner.registrations.get(instance).map(|r| r.clone())
    }

    /// Resolves once `instance` has registered.
    pub fn registered(&self, instance: String) -> futures::future::BoxFuture<'static, ()> {
        let mut rx = self.inner.registered.subscribe();
        Box::pin(async move {
            let _ = rx.wait_for(|set| set.contains(&instance)).await;
        })
    }

    /// The instance's run ended (stopped, exited, or never spawned): its token dies, its
    /// registration is forgotten and its calls fail at once.
    pub fn gone(&self, instance: &str, why: &str) {
        self.revoke_tokens(instance);
        if self.inner.registrations.remove(instance).is_some() {
            self.inner.registered.send_modify(|set| {
                set.remove(instance);
            });
        }
        self.fail_where(|p| &*p.target == instance, why);
    }

    /// A connection closed: registrations on it end, calls waiting on it fail, and calls it
    /// made are forgotten (nobody is left to answer).
    pub fn disconnected(&self, conn: u64) {
        let lost: Vec<String> =
            self.inner.registrations.iter().filter(|r| r.out.conn == conn).map(|r| r.key().clone()).collect();
        for instance in &lost {
            self.inner.registrations.remove_if(instance, |_, r| r.out.conn == conn);
        }
        if !lost.is_empty() {
            self.inner.registered.send_modify(|set| set.retain(|i| !lost.contains(i)));
        }
        self.fail_where(|p| p.conn == conn, "its connection closed");
        // Dropped unanswered.
        self.take_where(|p| p.caller == conn);
    }
}
