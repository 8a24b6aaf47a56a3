//! Draining an instance before a reload stops it: calls addressed to its definition go to its
//! other instances, and the calls already in flight to it are answered first.

use super::Mesh;
use std::sync::PoisonError;
use std::time::Duration;

/// How often a drain looks whether its calls are answered. Only a reload drains, so an idle
/// daemon never polls.
const POLL: Duration = Duration::from_millis(5);

/// An instance marked draining; the mark goes with it.
pub struct Draining {
    mesh: Mesh,
    instance: String,
}

impl Drop for Draining {
    fn drop(&mut self) {
        self.mesh.inner.draining.remove_if_mut(&self.instance, |_, marks| {
            *marks -= 1;
            *marks == 0
        });
    }
}

impl Mesh {
    /// Marks `instance` draining: while another instance of its stateless definition is
    /// registered and not draining, calls to the definition go there (calls to the instance's
    /// own name still come to it). Then waits, at most `within`, until the calls in flight to it
    /// are answered. The mark lasts as long as what this returns.
    pub async fn drain(&self, instance: &str, within: Duration) -> Draining {
        *self.inner.draining.entry(instance.to_string()).or_insert(0) += 1;
        let draining = Draining { mesh: self.clone(), instance: instance.to_string() };
        // Once the routes in progress are through, every call that was picked for it before the
        // mark is pending, and every later one has seen the mark.
        drop(self.inner.routing.write().unwrap_or_else(PoisonError::into_inner));
        let ids: Vec<u64> = self.inner.pending.iter().filter(|p| &*p.target == instance).map(|p| *p.key()).collect();
        let answered = async {
            while ids.iter().any(|id| self.inner.pending.contains_key(id)) {
                tokio::time::sleep(POLL).await;
            }
        };
        if tokio::time::timeout(within, answered).await.is_err() {
            let left = ids.iter().filter(|id| self.inner.pending.contains_key(id)).count();
            tracing::warn!("{instance}: {left} call(s) still unanswered after {within:?} of draining");
        }
        draining
    }

    /// Whether `instance` is draining.
    pub(super) fn is_draining(&self, instance: &str) -> bool {
        self.inner.draining.contains_key(instance)
    }
}
