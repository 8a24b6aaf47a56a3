//! Starting: dependencies first, each waiting for what it depends on to be ready, independent
//! branches in parallel; the caller gets an answer once everything asked for is ready or failed.

use super::instance::{Command, Instance, Snapshot};
use super::{Result, SupError, Supervisor, graph, unknown};
use pm_protocol::params::StartParams;
use pm_protocol::{InstanceStatus, State, validate_name};
use std::collections::{BTreeMap, BTreeSet};
use tokio::sync::watch;

/// One instance to start and the instances it waits for.
struct Step {
    name: String,
    instance: Instance,
    deps: Vec<(String, Instance)>,
}

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

    /// Starts `targets` with everything they depend on.
    pub(super) async fn start_instances(&self, targets: Vec<String>) -> Result<Vec<InstanceStatus>> {
        let steps = self.plan_start(&targets)?;
        self.persist();
        // Prepare every step first: all of them show `waiting` at once, and each learns the
        // start it waits for.
        let mut seqs = BTreeMap::new();
        for step in &steps {
            let seq = step.instance.ask(Command::Prepare).await.ok_or_else(|| unknown(&step.name))?;
            seqs.insert(step.name.clone(), seq);
        }
        let jobs = steps.iter().map(|step| {
            let seqs = &seqs;
            async move {
                let seq = seqs[&step.name];
                for (dep_name, dep) in &step.deps {
                    if let Err(why) = settled(dep.watch(), seqs[dep_name]).await {
                        let reason = format!("dependency `{dep_name}` did not start: {why}");
                        step.instance.send(Command::Abort(seq, reason.clone())).await;
                        return Err(format!("{}: {reason}", step.name));
                    }
                }
                step.instance.send(Command::Launch(seq)).await;
                settled(step.instance.watch(), seq).await.map_err(|why| format!("{}: {why}", step.name))
            }
        });
        let errors: Vec<String> = futures::future::join_all(jobs).await.into_iter().filter_map(|r| r.err()).collect();
        // The new pids are on disk before anyone hears of the start, so a daemon killed right
        // after can still find and clean up these processes.
        self.persist_now().await;
        if !errors.is_empty() {
            return Err(SupError::StartFailed(errors.join("\n")));
        }
        let reg = self.lock();
        Ok(targets.iter().filter_map(|t| reg.status(t)).collect())
    }

    /// The steps of a start, dependencies first; marks every instance in it as wanted.
    fn plan_start(&self, targets: &[String]) -> Result<Vec<Step>> {
        let mut reg = self.lock();
        let mut chosen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in targets {
            let def = reg.instances.get(t).ok_or_else(|| unknown(t))?.definition.clone();
            chosen.entry(def).or_default().push(t.clone());
        }
        let roots: Vec<&str> = chosen.keys().map(String::as_str).collect();
        let order = graph::closure(&reg.deps(), &roots).map_err(SupError::Invalid)?;
        // Dependencies start with all their instances; the definitions asked for, as asked.
        for def in &order {
            if !chosen.contains_key(def) {
                let all = reg.instances_of(def);
                if all.is_empty() {
                    return Err(SupError::Invalid(format!(
                        "`{def}` has no instances to start (`pm start {def} --new`)"
                    )));
                }
                chosen.insert(def.clone(), all);
            }
        }
        let mut steps = Vec::new();
        let mut seen = BTreeSet::new();
        for def in &order {
            let deps: Vec<(String, Instance)> = reg.definitions[def]
                .depends_on
                .iter()
                .flat_map(|d| chosen[d].iter().map(|n| (n.clone(), reg.instances[n].instance.clone())))
                .collect();
            for name in &chosen[def] {
                if seen.insert(name.clone()) {
                    let entry = reg.instances.get_mut(name).expect("chosen from the registry");
                    entry.wanted = true;
                    steps.push(Step { name: name.clone(), instance: entry.instance.clone(), deps: deps.clone() });
                }
            }
        }
        Ok(steps)
    }
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

/// `<definition>-<adjective>-<noun>`, unused so far.
fn generate_name(def: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut generator = names::Generator::with_naming(names::Name::Plain);
    for i in 0.. {
        let word = generator.next().unwrap_or_else(|| format!("instance-{i}"));
        let candidate = format!("{def}-{word}");
        if !taken(&candidate) {
            return candidate;
        }
    }
    unreachable!("an unbounded range always yields a name")
}
