//! Stopping: dependents before their dependencies, higher priority levels before lower ones,
//! independent ones of a level in parallel.

use super::instance::{Command, Instance};
use super::priority::{self, Earlier};
use super::{Registry, Result, SupError, Supervisor, graph};
use futures::FutureExt;
use pm_protocol::InstanceStatus;
use pm_protocol::params::StopParams;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::{Semaphore, watch};

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
        // On disk before the answer: a daemon killed right after must not start them again.
        self.save().await?;
        let reg = self.lock();
        Ok(stopped.iter().filter_map(|n| reg.status(n)).collect())
    }

    /// Stops `targets` and, if that leaves a definition with no ready instance, every active
    /// instance that depends on it, each after its dependents. With `unwant`, they stay stopped
    /// across a daemon restart. Returns what it stopped, targets first.
    pub(super) async fn stop_instances(&self, targets: Vec<String>, unwant: bool) -> Vec<String> {
        let (names, stages) = self.plan_stop(targets, unwant);
        self.persist();
        let jobs = stages.into_iter().map(|stage| async move {
            // Never closed: the semaphore lives as long as the stages' `Arc`s.
            let _ = stage.users_done.acquire_many(stage.users).await;
            if let Some(higher) = stage.higher {
                higher.await;
            }
            futures::future::join_all(stage.instances.iter().map(|i| i.ask(Command::Stop))).await;
            for used in &stage.uses {
                used.add_permits(1);
            }
            let _ = stage.done.send(true);
        });
        futures::future::join_all(jobs).await;
        names
    }

    /// The instances a stop takes (marked unwanted with `unwant`), and its stages: one per
    /// definition involved, even with nothing to stop, so that the order passes through it.
    /// Linear in instances and dependencies: shutdown stops everything this way.
    fn plan_stop(&self, targets: Vec<String>, unwant: bool) -> (Vec<String>, Vec<Stage>) {
        let mut reg = self.lock();
        let (names, stages) = {
            let reg = &*reg;
            let deps = reg.deps();
            let roots: BTreeSet<&str> =
                targets.iter().filter_map(|t| reg.instances.get(t)).map(|e| e.definition.as_str()).collect();
            let asked: BTreeSet<&String> = targets.iter().collect();
            // A definition takes its dependents down only when no instance of it is left ready.
            let emptied: Vec<&str> = roots.iter().copied().filter(|d| !still_serves(reg, d, &asked)).collect();
            let users = graph::reverse(&deps);
            let dependent_defs = graph::dependents(&users, &emptied);
            let active_dependents: Vec<String> = dependent_defs
                .iter()
                .flat_map(|d| reg.instances_of(d))
                .filter(|n| !asked.contains(n) && !reg.instances[n].instance.snapshot().is_idle())
                .collect();
            let mut members: BTreeMap<&str, Vec<Instance>> = roots
                .iter()
                .copied()
                .chain(dependent_defs.iter().map(String::as_str))
                .map(|d| (d, Vec::new()))
                .collect();
            let mut names = targets.clone();
            names.extend(active_dependents);
            for entry in names.iter().filter_map(|n| reg.instances.get(n)) {
                members.get_mut(entry.definition.as_str()).expect("a root or a dependent").push(entry.instance.clone());
            }
            let priorities = priority::effective(&reg.definitions, members.keys().copied());
            (names, stages(members, &users, &priorities))
        };
        if unwant {
            for n in &names {
                if let Some(e) = reg.instances.get_mut(n) {
                    e.wanted = false;
                }
            }
        }
        (names, stages)
    }
}

/// Whether an instance of `definition` that this stop leaves alone is ready (or a one-shot that
/// exited): its dependents are still served, so they keep running. It must also be wanted: a
/// stop planned just before this one unwants its targets before their actors say `stopping`.
fn still_serves(reg: &Registry, definition: &str, asked: &BTreeSet<&String>) -> bool {
    reg.by_definition
        .get(definition)
        .into_iter()
        .flatten()
        .any(|n| !asked.contains(n) && reg.instances.get(n).is_some_and(|e| e.wanted && e.instance.snapshot().serves()))
}

/// The instances of one definition to stop once the stages of its dependents, and those of every
/// higher priority level, are done.
struct Stage {
    instances: Vec<Instance>,
    /// How many stages of definitions that use this one there are: each gives `users_done` a
    /// permit when it is done. One wake when the last is, where waiting on each in turn woke
    /// every waiting stage at every step (200 × 200 wakes per level of a dense graph).
    users: u32,
    users_done: Arc<Semaphore>,
    /// The `users_done` of the stages of the definitions this one uses.
    uses: Vec<Arc<Semaphore>>,
    higher: Option<Earlier>,
    /// For the priority levels: said once the stage is done.
    done: watch::Sender<bool>,
}

/// Links each definition's stage to the stages of the definitions that use it, and to those of
/// the higher effective priority levels.
fn stages(
    members: BTreeMap<&str, Vec<Instance>>,
    users: &graph::Users,
    priorities: &BTreeMap<&str, i32>,
) -> Vec<Stage> {
    let (mut senders, receivers): (BTreeMap<&str, _>, BTreeMap<&str, _>) =
        members.keys().map(|&d| (d, watch::channel(false))).map(|(d, (tx, rx))| ((d, tx), (d, rx))).unzip();
    let levels = priority::levels(members.keys().map(|&d| (d, priorities.get(d).copied().unwrap_or(0))));
    let mut higher = priority::after_earlier(levels.into_values().rev(), |level| {
        let done: Vec<_> = level.iter().map(|d| through(receivers[d].clone())).collect();
        futures::future::join_all(done).map(drop).boxed()
    });
    let gates: HashMap<&str, Arc<Semaphore>> = members.keys().map(|&d| (d, Arc::new(Semaphore::new(0)))).collect();
    let mut uses: HashMap<&str, Vec<Arc<Semaphore>>> = HashMap::new();
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for (&used, gate) in &gates {
        for &user in users.get(used).into_iter().flatten().filter(|u| gates.contains_key(*u)) {
            uses.entry(user).or_default().push(gate.clone());
            *counts.entry(used).or_default() += 1;
        }
    }
    members
        .into_iter()
        .map(|(def, instances)| Stage {
            instances,
            users: counts.get(def).copied().unwrap_or(0),
            users_done: gates[def].clone(),
            uses: uses.remove(def).unwrap_or_default(),
            higher: higher.remove(def),
            done: senders.remove(def).expect("one sender per stage"),
        })
        .collect()
}

/// Resolves once a stage is done. An error means that stage has ended without saying so:
/// nothing left to wait for.
async fn through(mut stage: watch::Receiver<bool>) {
    let _ = stage.wait_for(|done| *done).await;
}
