//! Dependencies with a condition (compose's `service_healthy`, process-compose's
//! `process_completed_successfully`, …). pm has one readiness per definition, which all its
//! dependents wait for: what a dependent waits for becomes the dependency's `ready`, and an edge
//! that asked for something else is reported.

use super::tree::Doc;
use crate::config::Seg;
use pm_protocol::{Definition, Readiness};

/// One dependent's wait on a dependency.
pub(super) struct Wait {
    /// The dependency, by index among the sidecars.
    pub dep: usize,
    /// What the dependent waits for: `Started` when only for it to start.
    pub ready: Readiness,
    /// Where the edge is written.
    pub path: Vec<Seg>,
}

/// Gives each dependency the readiness its dependents wait for, reporting the edges it differs
/// from. A dependency's own readiness (a readiness probe) is kept when an edge asks for it.
pub(super) fn settle(doc: &mut Doc<'_>, sidecars: &mut [(String, Definition)], waits: &[Wait]) {
    for (dep, (name, def)) in sidecars.iter_mut().enumerate() {
        let edges: Vec<&Wait> = waits.iter().filter(|w| w.dep == dep).collect();
        let asked = || edges.iter().map(|w| &w.ready).filter(|r| **r != Readiness::Started);
        let own = def.ready.clone();
        let chosen = match asked().find(|r| **r == own) {
            Some(r) => r.clone(),
            None => asked().next().cloned().unwrap_or_else(|| own.clone()),
        };
        if chosen != own && own != Readiness::Started {
            let first = edges.iter().find(|w| w.ready == chosen).expect("chosen from an edge");
            doc.because(&first.path, format!("`{name}` is ready when {chosen}, no longer on its own ({own})"));
        }
        for edge in edges.iter().filter(|w| w.ready != chosen) {
            doc.because(&edge.path, format!("pm waits until `{name}` is ready ({chosen}), as for all its dependents"));
        }
        if chosen == Readiness::Exited && def.health.take().is_some() {
            let first = edges.iter().find(|w| w.ready == chosen).expect("chosen from an edge");
            doc.because(&first.path, format!("`{name}` is waited for until it exits: its health check is dropped"));
        }
        def.ready = chosen;
    }
}
