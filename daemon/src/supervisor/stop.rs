//! Stopping: dependents before their dependencies, independent ones in parallel.

use super::instance::{Command, Instance, Snapshot};
use super::{Result, SupError, Supervisor, graph};
use pm_protocol::InstanceStatus;
use pm_protocol::params::StopParams;
use std::collections::BTreeSet;
use tokio::sync::watch;

impl Supervisor {
    pub async fn stop(&self, params: StopParams) -> Result<Vec<InstanceStatus>> {
        let targets = {
            let reg = self.lock();
            match (params.name.as_deref(), params.all) {
                (Some(name), _) => reg.resolve(name)?,
                (None, true) => reg.instances.keys().cloned().collect(),
                (None, false) => return Err(SupError::Invalid("name a sidecar to stop, or use --all".into())),
            }
        };
        let stopped = self.stop_instances(targets, true).await;
        let reg = self.lock();
        Ok(stopped.iter().filter_map(|n| reg.status(n)).collect())
    }

    /// Stops `targets` and every active instance that depends on them, each after its
    /// dependents. With `unwant`, they stay stopped across a daemon restart. Returns what it
    /// stopped, targets first.
    pub(super) async fn stop_instances(&self, targets: Vec<String>, unwant: bool) -> Vec<String> {
        let steps: Vec<(String, Instance, Vec<Instance>)> = {
            let mut reg = self.lock();
            let target_defs: BTreeSet<&str> =
                targets.iter().filter_map(|t| reg.instances.get(t)).map(|e| e.definition.as_str()).collect();
            let roots: Vec<&str> = target_defs.into_iter().collect();
            let dependent_defs = graph::dependents(&reg.deps(), &roots);
            let mut names = targets.clone();
            names.extend(
                reg.instances
                    .iter()
                    .filter(|(n, e)| {
                        dependent_defs.contains(&e.definition)
                            && !targets.contains(n)
                            && !e.instance.snapshot().is_idle()
                    })
                    .map(|(n, _)| n.clone()),
            );
            if unwant {
                for n in &names {
                    if let Some(e) = reg.instances.get_mut(n) {
                        e.wanted = false;
                    }
                }
            }
            names
                .iter()
                .filter_map(|n| {
                    let entry = reg.instances.get(n)?;
                    let waits_on = names
                        .iter()
                        .filter_map(|other| reg.instances.get(other))
                        .filter(|o| reg.definitions[&o.definition].depends_on.contains(&entry.definition))
                        .map(|o| o.instance.clone())
                        .collect();
                    Some((n.clone(), entry.instance.clone(), waits_on))
                })
                .collect()
        };
        self.persist();
        let jobs = steps.iter().map(|(_, instance, waits_on)| async move {
            for dependent in waits_on {
                idle(dependent.watch()).await;
            }
            instance.ask(Command::Stop).await;
        });
        futures::future::join_all(jobs).await;
        steps.into_iter().map(|(n, ..)| n).collect()
    }
}

/// Waits until an instance has no run and none coming (or is gone).
async fn idle(mut rx: watch::Receiver<Snapshot>) {
    while !rx.borrow_and_update().is_idle() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
