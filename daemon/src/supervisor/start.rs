//! Starting: dependencies first, each waiting for what it depends on to be ready, lower priority
//! levels before higher ones, independent branches of a level in parallel; the caller gets an
//! answer once everything asked for is ready or failed.

use super::instance::{Command, Instance, Snapshot};
use super::priority::{self, Earlier};
use super::{Result, SupError, Supervisor, graph, unknown};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use pm_protocol::params::StartParams;
use pm_protocol::{InstanceStatus, State, validate_name};
use std::collections::{BTreeMap, BTreeSet};
use tokio::sync::watch;

/// The instances of one definition in a start, the definitions they wait for, and its effective
/// priority.
struct Stage {
    members: Vec<(String, Instance)>,
    deps: Vec<String>,
    priority: i32,
}

/// Resolves once a definition's instances in a start have all settled: Ok, or the first failure
/// with the instance's name. Shared by every instance that waits for them, so waiting costs one
/// look per dependency, not one per instance of it.
type Gate = Shared<BoxFuture<'static, std::result::Result<(), (String, String)>>>;

impl Supervisor {
    pub async fn start(&self, params: StartParams) -> Result<Vec<InstanceStatus>> {
        self.check_open()?;
        let targets = {
            let mut reg = self.lock();
            match params.name.as_deref() {
                None => reg
                    .instances
                    .iter()
                    .filter(|(_, e)| reg.definitions[&e.definition].autostart)
                    .map(|(n, _)| n.clone())
                    .collect(),
                Some(def) if params.new || params.instance.is_some() => {
                    if !reg.definitions.contains_key(def) {
                        return Err(match reg.instances.get(def) {
                            Some(e) => SupError::Invalid(format!(
                                "`{def}` is an instance of `{}`; new instances are made from a definition",
                                e.definition
                            )),
                            None => unknown(def),
                        });
                    }
                    let name = match params.instance {
                        Some(name) => {
                            validate_name(&name).map_err(SupError::Invalid)?;
                            match reg.instances.get(&name) {
                                Some(e) if e.definition != def => {
                                    return Err(SupError::AlreadyExists(format!(
                                        "instance `{name}` exists already, of `{}`",
                                        e.definition
                                    )));
                                }
                                _ if name != def && reg.definitions.contains_key(&name) => {
                                    return Err(SupError::AlreadyExists(format!(
                                        "`{name}` is the name of a definition; choose another instance name"
                                    )));
                                }
                                _ => name,
                            }
                        }
                        None => {
                            generate_name(def, |n| reg.instances.contains_key(n) || reg.definitions.contains_key(n))
                        }
                    };
                    if !reg.instances.contains_key(&name) {
                        self.new_instance(&mut reg, &name, def, params.args);
                    }
                    vec![name]
                }
                Some(name) => reg.resolve(name)?,
            }
        };
        self.start_instances(targets).await
    }

    /// Stops then starts instances (their dependents are left running).
    pub async fn restart(&self, name: &str) -> Result<Vec<InstanceStatus>> {
        self.check_open()?;
        let (targets, instances): (Vec<String>, Vec<Instance>) = {
            let reg = self.lock();
            let targets = reg.resolve(name)?;
            let instances = targets.iter().filter_map(|t| reg.instances.get(t)).map(|e| e.instance.clone()).collect();
            (targets, instances)
        };
        // Instances of one definition are independent: they stop together, not one timeout after
        // another.
        futures::future::join_all(instances.iter().map(|i| i.ask(Command::Stop))).await;
        self.start_instances(targets).await
    }

    /// Starts `targets` with everything they depend on; answers once their pids are on disk.
    pub(super) async fn start_instances(&self, targets: Vec<String>) -> Result<Vec<InstanceStatus>> {
        let stages = self.plan_start(&targets)?;
        self.persist();
        // Prepare every instance first: all of them show `waiting` at once, and each learns the
        // start it waits for. Asked together: one after the other, 1,000 round trips to their
        // actors came before the first spawn.
        let asks = stages.values().flat_map(|s| &s.members).map(|(name, instance)| async move {
            instance.ask(Command::Prepare).await.map(|seq| (name.clone(), seq)).ok_or_else(|| unknown(name))
        });
        let seqs: BTreeMap<String, u64> = futures::future::join_all(asks).await.into_iter().collect::<Result<_>>()?;
        let gates: BTreeMap<&str, Gate> =
            stages.iter().map(|(def, s)| (def.as_str(), gate(&s.members, &seqs))).collect();
        let lower = lower_priorities(&stages, &seqs);
        let members = stages.iter().flat_map(|(def, s)| s.members.iter().map(move |m| (def.as_str(), s, m)));
        let jobs = members.map(|(def, stage, (name, instance))| {
            let (gates, lower, seq) = (&gates, &lower, seqs[name]);
            async move {
                for dep in &stage.deps {
                    if let Err((dep_name, why)) = gates[dep.as_str()].clone().await {
                        let reason = format!("dependency `{dep_name}` did not start: {why}");
                        instance.send(Command::Abort(seq, reason.clone())).await;
                        return Err(format!("{name}: {reason}"));
                    }
                }
                if let Some(lower) = lower.get(def) {
                    lower.clone().await;
                }
                instance.send(Command::Launch(seq)).await;
                settled(instance.watch(), seq).await.map_err(|why| format!("{name}: {why}"))
            }
        });
        let errors: Vec<String> = futures::future::join_all(jobs).await.into_iter().filter_map(|r| r.err()).collect();
        // The new pids are on disk before anyone hears of the start, so a daemon killed right
        // after can still find and clean up these processes; a failed write is the caller's.
        let saved = self.save().await;
        if !errors.is_empty() {
            return Err(SupError::StartFailed(errors.join("\n")));
        }
        saved?;
        let reg = self.lock();
        Ok(targets.iter().filter_map(|t| reg.status(t)).collect())
    }

    /// The stages of a start by definition; marks every instance in it as wanted.
    fn plan_start(&self, targets: &[String]) -> Result<BTreeMap<String, Stage>> {
        let mut reg = self.lock();
        let mut chosen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for t in targets {
            let def = reg.instances.get(t).ok_or_else(|| unknown(t))?.definition.clone();
            chosen.entry(def).or_default().insert(t.clone());
        }
        let roots: Vec<&str> = chosen.keys().map(String::as_str).collect();
        let order = graph::closure(&reg.deps(), &roots).map_err(SupError::Invalid)?;
        let priorities = priority::effective(&reg.definitions, order.iter().map(String::as_str));
        let priorities: BTreeMap<String, i32> = priorities.into_iter().map(|(d, p)| (d.to_string(), p)).collect();
        // Dependencies start with all their instances; the definitions asked for, as asked.
        for def in &order {
            if !chosen.contains_key(def) {
                let all: BTreeSet<String> = reg.instances_of(def).into_iter().collect();
                if all.is_empty() {
                    return Err(SupError::Invalid(format!(
                        "`{def}` has no instances to start (`pm start {def} --new`)"
                    )));
                }
                chosen.insert(def.clone(), all);
            }
        }
        let mut stages = BTreeMap::new();
        for (def, names) in chosen {
            let deps = reg.definitions[&def].depends_on.clone();
            let members = names
                .into_iter()
                .map(|name| {
                    let entry = reg.instances.get_mut(&name).expect("chosen from the registry");
                    entry.wanted = true;
                    let instance = entry.instance.clone();
                    (name, instance)
                })
                .collect();
            let priority = priorities.get(&def).copied().unwrap_or(0);
            stages.insert(def, Stage { members, deps, priority });
        }
        Ok(stages)
    }
}

/// The gate of a definition's start, from its members and their start sequence numbers.
fn gate(members: &[(String, Instance)], seqs: &BTreeMap<String, u64>) -> Gate {
    let waits: Vec<_> = members.iter().map(|(name, i)| (name.clone(), i.watch(), seqs[name])).collect();
    async move {
        for (name, rx, seq) in waits {
            settled(rx, seq).await.map_err(|why| (name, why))?;
        }
        Ok(())
    }
    .boxed()
    .shared()
}

/// What each definition above a start's lowest priority level waits for before it launches: every
/// instance of the lower levels settled, whatever the outcome (a failed one holds nobody back).
fn lower_priorities<'a>(
    stages: &'a BTreeMap<String, Stage>,
    seqs: &BTreeMap<String, u64>,
) -> BTreeMap<&'a str, Earlier> {
    let levels = priority::levels(stages.iter().map(|(d, s)| (d.as_str(), s.priority)));
    priority::after_earlier(levels.into_values(), |level| {
        let waits: Vec<_> =
            level.iter().flat_map(|d| &stages[*d].members).map(|(name, i)| settled(i.watch(), seqs[name])).collect();
        futures::future::join_all(waits).map(drop).boxed()
    })
}

/// Waits until start `seq` of an instance has settled: ready (or a one-shot exited) is success.
async fn settled(mut rx: watch::Receiver<Snapshot>, seq: u64) -> std::result::Result<(), String> {
    loop {
        {
            let s = rx.borrow_and_update();
            if s.ready_seq == seq {
                return Ok(());
            }
            if s.start_seq != seq {
                return Err("it was started again meanwhile".into());
            }
            match s.state {
                State::Failed => return Err(s.reason.clone().unwrap_or_else(|| "failed".into())),
                State::Stopped => return Err("it was stopped before it was ready".into()),
                _ => {}
            }
        }
        if rx.changed().await.is_err() {
            return Err("it was deleted".into());
        }
    }
}

/// `<definition>-<adjective>-<noun>`, unused so far and within the length of a name.
fn generate_name(def: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut generator = names::Generator::with_naming(names::Name::Plain);
    for i in 0.. {
        let word = match generator.next() {
            Some(word) if def.len() + 1 + word.len() <= pm_protocol::MAX_NAME_LEN => word,
            _ => format!("instance-{i}"),
        };
        let candidate = format!("{def}-{word}");
        if !taken(&candidate) {
            return candidate;
        }
    }
    unreachable!("an unbounded range always yields a name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_of_the_longest_definition_names_are_valid() {
        let def = "a".repeat(super::super::define::MAX_DEFINITION_NAME_LEN);
        for _ in 0..100 {
            let name = generate_name(&def, |_| false);
            validate_name(&name).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
