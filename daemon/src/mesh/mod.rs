//! The mesh: which sidecar serves which methods over which connection, and the calls in flight
//! to them. A call `a.b` from any client is sent to sidecar `a` as `b` under a daemon-wide id;
//! the reply goes back under the caller's id. Params and results pass through as raw JSON.

mod route;
mod tokens;

pub use route::{Call, Reply, RouteError};
pub use tokens::{daemon_token, new_token};

use dashmap::DashMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

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
    /// The connection requests go out on, and its id.
    pub conn: u64,
    pub out: mpsc::Sender<String>,
}

struct Pending {
    reply: Reply,
    caller_id: Box<serde_json::value::RawValue>,
    target: Arc<str>,
    conn: u64,
    deadline: tokio::time::Instant,
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
    /// Sidecar token → instance.
    tokens: DashMap<String, String>,
    /// Registered instances, for the `registered` readiness.
    registered: watch::Sender<BTreeSet<String>>,
}

impl Mesh {
    /// A fresh connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.inner.next_conn.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// The token an instance's process gets as PM_TOKEN (one per instance, kept across runs).
    pub fn token_for(&self, instance: &str) -> String {
        if let Some(t) = self.inner.tokens.iter().find(|e| e.value() == instance) {
            return t.key().clone();
        }
        let token = new_token();
        self.inner.tokens.insert(token.clone(), instance.to_string());
        token
    }

    /// The instance a sidecar token belongs to.
    pub fn instance_of_token(&self, token: &str) -> Option<String> {
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

    /// The instance stopped or exited: forget its registration and fail its calls at once.
    pub async fn gone(&self, instance: &str, why: &str) {
        if self.inner.registrations.remove(instance).is_some() {
            self.inner.registered.send_modify(|set| {
                set.remove(instance);
            });
        }
        self.fail_where(|p| &*p.target == instance, why).await;
    }

    /// A connection closed: registrations on it end, and calls waiting on it fail.
    pub async fn disconnected(&self, conn: u64) {
        let lost: Vec<String> =
            self.inner.registrations.iter().filter(|r| r.conn == conn).map(|r| r.key().clone()).collect();
        for instance in &lost {
            self.inner.registrations.remove_if(instance, |_, r| r.conn == conn);
        }
        if !lost.is_empty() {
            self.inner.registered.send_modify(|set| set.retain(|i| !lost.contains(i)));
        }
        self.fail_where(|p| p.conn == conn, "its connection closed").await;
    }

    pub fn forget_instance(&self, instance: &str) {
        self.inner.tokens.retain(|_, i| i != instance);
    }
}
