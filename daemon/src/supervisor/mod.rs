//! The supervisor owns the graph: definitions, their instances (one actor each) and the order in
//! which they start and stop. Its lock guards only the registry and is never held across `.await`.

mod context;
mod define;
mod graph;
mod health;
mod hooks;
mod host_command;
mod http_client;
pub mod info;
mod instance;
mod memory_limit;
mod notify;
mod ports;
mod priority;
mod probe;
mod reload;
mod restart;
mod start;
mod stop;
mod sync;
mod usage;
pub mod watch;

pub use context::Context;
pub use define::{MAX_DEFINITION_NAME_LEN, validate};

use crate::store::{InstanceRecord, StateFile, Store, WriteError};
use instance::{Command, Instance, InstanceSpec, Snapshot};
use pm_protocol::{Definition, DefinitionInfo, InstanceStatus};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Why a supervisor operation failed; each maps to a stable JSON-RPC error code.
#[derive(Debug, thiserror::Error)]
pub enum SupError {
    #[error("{0}")]
    UnknownName(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    StartFailed(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The change was made but could not be written, so a daemon restart may undo it.
    #[error(transparent)]
    Persist(#[from] WriteError),
}

pub type Result<T> = std::result::Result<T, SupError>;

fn unknown(name: &str) -> SupError {
    SupError::UnknownName(format!("no sidecar named `{name}` (`pm ls` lists them)"))
}

#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Context,
    registry: Mutex<Registry>,
    store: Store,
    closing: AtomicBool,
}

#[derive(Default)]
struct Registry {
    /// The figures of the instances' runs, dropped with the instance.
    meter: Arc<usage::Meter>,
    definitions: BTreeMap<String, Arc<Definition>>,
    /// Changed only through `insert` and `remove`, which keep `by_definition` in step.
    instances: BTreeMap<String, Entry>,
    /// Definition → its instances: finding them must not cost a walk over every instance.
    /// A sorted Vec, not a BTreeSet: most definitions have one instance, and a set's first node
    /// has room for eleven.
    by_definition: BTreeMap<String, Vec<String>>,
    /// Definition → where it came from (`pm.sync`); none for `pm map`.
    sources: BTreeMap<String, String>,
    /// The file watches of the definitions with `watch`.
    watches: BTreeMap<String, watch::Watch>,
}

struct Entry {
    definition: String,
    args: Vec<String>,
    /// Should be running (persisted, so a restarted daemon brings it back).
    wanted: bool,
    instance: Instance,
}

impl Registry {
    /// Instances a name stands for: a definition's instances, or one instance.
    /// The instances a name stands for: a definition's, one instance, or `@group`: those of
    /// every definition in the group.
    fn resolve(&self, name: &str) -> Result<Vec<String>> {
        if let Some(group) = name.strip_prefix('@') {
            let members: Vec<&String> =
                self.definitions.iter().filter(|(_, d)| d.groups.iter().any(|g| g == group)).map(|(n, _)| n).collect();
            if members.is_empty() {
                let mut groups: Vec<&str> =
                    self.definitions.values().flat_map(|d| d.groups.iter().map(String::as_str)).collect();
                groups.sort_unstable();
                groups.dedup();
                let known = if groups.is_empty() { "none".to_string() } else { groups.join(", ") };
                return Err(SupError::UnknownName(format!("no sidecar is in group `{group}` (groups: {known})")));
            }
            return Ok(members.into_iter().flat_map(|d| self.instances_of(d)).collect());
        }
        if self.definitions.contains_key(name) {
            return Ok(self.instances_of(name));
        }
        if self.instances.contains_key(name) {
            return Ok(vec![name.to_string()]);
        }
        Err(unknown(name))
    }

    /// `PM_INSTANCE` of `instance`: its default index, or for an extra instance (`pm start
    /// --new`), a place after the default ones, in name order.
    fn index_of(&self, definition: &str, instance: &str) -> u32 {
        if let Some(index) = define::default_index(definition, instance) {
            return index;
        }
        let count = self.definitions.get(definition).map_or(1, |d| d.instances);
        let extras =
            self.instances_of(definition).into_iter().filter(|i| define::default_index(definition, i).is_none());
        let before = extras.filter(|i| i.as_str() < instance).count();
        count.saturating_add(u32::try_from(before).unwrap_or(u32::MAX))
    }

    fn instances_of(&self, definition: &str) -> Vec<String> {
        self.by_definition.get(definition).into_iter().flatten().cloned().collect()
    }

    fn insert(&mut self, name: &str, entry: Entry) {
        let names = self.by_definition.entry(entry.definition.clone()).or_default();
        if let Err(at) = names.binary_search_by(|n| n.as_str().cmp(name)) {
            names.insert(at, name.to_string());
        }
        self.instances.insert(name.to_string(), entry);
    }

    fn remove(&mut self, name: &str) -> Option<Entry> {
        let entry = self.instances.remove(name)?;
        self.meter.forget(name);
        if let Some(names) = self.by_definition.get_mut(&entry.definition) {
            if let Ok(at) = names.binary_search_by(|n| n.as_str().cmp(name)) {
                names.remove(at);
            }
            if names.is_empty() {
                self.by_definition.remove(&entry.definition);
            }
        }
        Some(entry)
    }

    fn deps(&self) -> graph::Deps<'_> {
        self.definitions.iter().map(|(n, d)| (n.as_str(), d.depends_on.as_slice())).collect()
    }

    fn status(&self, name: &str) -> Option<InstanceStatus> {
        let entry = self.instances.get(name)?;
        let def = self.definitions.get(&entry.definition)?;
        Some(to_status(name, entry, def, &entry.instance.snapshot()))
    }
}

fn to_status(name: &str, entry: &Entry, def: &Definition, s: &Snapshot) -> InstanceStatus {
    InstanceStatus {
        name: name.to_string(),
        definition: entry.definition.clone(),
        runtime: def.runtime,
        state: s.state,
        pid: s.pid,
        port: s.port.or_else(|| def.port?.of_instance(define::default_index(&entry.definition, name)?)?.ok()),
        started_at_ms: s.started_at_ms,
        uptime_ms: s.started.map(|t| t.elapsed().as_millis() as u64),
        restarts: s.restarts,
        last_exit: s.last_exit.clone(),
        ready: s.serves(),
        reason: s.reason.clone(),
        autostart: def.autostart,
        containment: s.containment.map(str::to_string),
        health: s.health.clone(),
        // Read only by `pm.status`, which asks the runtime (`usage.rs`).
        cpu_percent: None,
        memory_bytes: None,
    }
}

impl Supervisor {
    /// A supervisor persisting to `state` (and `backup`, the copy before the last write).
    pub fn new(ctx: Context, state: PathBuf, backup: PathBuf) -> Self {
        let meter = ctx.meter.clone();
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            // The writer takes the state when it writes; a weak reference lets the supervisor go.
            let weak = weak.clone();
            let source = move || Some(Supervisor { inner: weak.upgrade()? }.state_file());
            Inner {
                ctx,
                registry: Mutex::new(Registry { meter, ..Registry::default() }),
                store: Store::spawn(state, backup, source),
                closing: AtomicBool::new(false),
            }
        });
        let sup = Supervisor { inner };
        // Persist the actors' changes as they happen.
        let dirty = sup.inner.ctx.dirty.clone();
        let weak: Weak<Inner> = Arc::downgrade(&sup.inner);
        tokio::spawn(async move {
            loop {
                dirty.next().await;
                let Some(inner) = weak.upgrade() else { return };
                Supervisor { inner }.persist();
            }
        });
        sup
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps half-updated (each update is one
        // insert or remove), so a poisoned lock is still sound to use.
        self.inner.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn events(&self) -> tokio::sync::broadcast::Receiver<pm_protocol::status::Event> {
        self.inner.ctx.events.subscribe()
    }

    pub fn logs(&self) -> &crate::logs::LogHub {
        &self.inner.ctx.logs
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closing.load(Ordering::SeqCst) {
            return Err(SupError::ShuttingDown);
        }
        Ok(())
    }

    /// What `state.json` should hold now.
    fn state_file(&self) -> StateFile {
        let reg = self.lock();
        StateFile {
            definitions: reg.definitions.clone(),
            sources: reg.sources.clone(),
            instances: reg
                .instances
                .iter()
                .map(|(n, e)| {
                    let s = e.instance.peek();
                    let record = InstanceRecord {
                        definition: e.definition.clone(),
                        args: e.args.clone(),
                        wanted: e.wanted,
                        pid: s.pid,
                        pid_start_time: s.pid_start_time,
                        failed: (s.state == pm_protocol::State::Failed)
                            .then(|| s.reason.clone().unwrap_or_else(|| "failed".into())),
                    };
                    (n.clone(), record)
                })
                .collect(),
        }
    }

    /// Asks for a write of the state. Once closing, only `close` writes: actors ending must not
    /// persist a registry that is being emptied.
    fn persist(&self) {
        if !self.inner.closing.load(Ordering::SeqCst) {
            self.inner.store.request();
        }
    }

    /// Writes the current state and waits until it is on disk: what an acknowledged change
    /// awaits before its answer.
    async fn write_now(&self) -> std::result::Result<(), WriteError> {
        let version = self.inner.store.request();
        self.inner.store.saved(version).await
    }

    /// [`Supervisor::write_now`] for the API: a failed write is the caller's error.
    pub async fn save(&self) -> Result<()> {
        Ok(self.write_now().await?)
    }

    fn new_instance(&self, reg: &mut Registry, name: &str, definition: &str, args: Vec<String>) -> Instance {
        self.add_instance(reg, name, definition, args, None)
    }

    /// Adds an instance: stopped, or failed with the reason an earlier daemon gave up on it.
    fn add_instance(
        &self,
        reg: &mut Registry,
        name: &str,
        definition: &str,
        args: Vec<String>,
        failed: Option<String>,
    ) -> Instance {
        let def = reg.definitions[definition].clone();
        let index = reg.index_of(definition, name);
        let spec =
            InstanceSpec { name: name.to_string(), definition: definition.to_string(), def, args: args.clone(), index };
        let ctx = self.inner.ctx.clone();
        let instance = match failed {
            Some(reason) => Instance::spawn_failed(spec, ctx, reason),
            None => Instance::spawn(spec, ctx),
        };
        let entry = Entry { definition: definition.to_string(), args, wanted: false, instance: instance.clone() };
        reg.insert(name, entry);
        instance
    }

    /// Loads a persisted state and kills what a crashed daemon left running. Returns the
    /// instances that were wanted and are autostart, for [`Supervisor::resume`]. Runs before the
    /// daemon answers, so nobody sees an empty registry.
    pub fn load(&self, state: StateFile) -> Vec<String> {
        let mut wanted = Vec::new();
        {
            let mut reg = self.lock();
            reg.definitions = state.definitions;
            self.inner.ctx.ports.set_claims(reg.definitions.iter());
            let mut sources = state.sources;
            sources.retain(|name, _| reg.definitions.contains_key(name));
            reg.sources = sources;
            for (name, record) in state.instances {
                if !reg.definitions.contains_key(&record.definition) {
                    tracing::warn!("{name}: its definition `{}` is gone; dropping it", record.definition);
                    continue;
                }
                // A container's pid is the engine's: its container is removed through the engine
                // (the daemon's leftover sweep), never killed here as a host process group.
                if let (Some(pid), Some(start_time)) = (record.pid, record.pid_start_time)
                    && reg.definitions[&record.definition].runtime != pm_protocol::RuntimeKind::Docker
                {
                    let id = pm_runtimes::process::Identity { pid, start_time };
                    if pm_runtimes::process::kill_leftover_group(id) {
                        tracing::warn!("{name}: killed process group {pid} left by the previous daemon");
                    }
                }
                // A failed instance stays failed: pm gave up on it, and so does the next daemon.
                if record.failed.is_none() && record.wanted && reg.definitions[&record.definition].autostart {
                    wanted.push(name.clone());
                }
                self.add_instance(&mut reg, &name, &record.definition, record.args, record.failed);
            }
        }
        self.rewatch();
        self.persist();
        wanted
    }

    /// Starts what [`Supervisor::load`] found wanted.
    pub async fn resume(&self, wanted: Vec<String>) -> Result<Vec<InstanceStatus>> {
        self.start_instances(wanted).await
    }

    /// Statuses of every instance, or of those `name` stands for.
    pub fn status(&self, name: Option<&str>) -> Result<Vec<InstanceStatus>> {
        let reg = self.lock();
        let names = match name {
            Some(name) => reg.resolve(name)?,
            None => reg.instances.keys().cloned().collect(),
        };
        Ok(names.iter().filter_map(|n| reg.status(n)).collect())
    }

    /// Every definition with its instances.
    pub fn ls(&self) -> Vec<DefinitionInfo> {
        let reg = self.lock();
        reg.definitions
            .iter()
            .map(|(name, def)| DefinitionInfo {
                name: name.clone(),
                definition: (**def).clone(),
                instances: reg.instances_of(name),
                source: reg.sources.get(name).cloned(),
            })
            .collect()
    }

    /// Whether any definition runs containers.
    pub fn has_containers(&self) -> bool {
        self.lock().definitions.values().any(|d| d.runtime == pm_protocol::RuntimeKind::Docker)
    }

    /// An instance's definition name and whether it is stateless.
    pub fn definition_of(&self, instance: &str) -> Option<(String, bool)> {
        let reg = self.lock();
        let entry = reg.instances.get(instance)?;
        Some((entry.definition.clone(), reg.definitions.get(&entry.definition)?.stateless))
    }

    /// The instances a name stands for (for logs).
    pub fn resolve(&self, name: &str) -> Result<Vec<String>> {
        self.lock().resolve(name)
    }

    /// Every instance's name, in order.
    pub fn instance_names(&self) -> Vec<String> {
        self.lock().instances.keys().cloned().collect()
    }

    /// Sends `signal` to every running instance.
    pub async fn signal_all(&self, signal: nix::sys::signal::Signal) {
        let instances: Vec<Instance> = self.lock().instances.values().map(|e| e.instance.clone()).collect();
        for instance in instances {
            instance.send(Command::Signal(signal)).await;
        }
    }

    /// Stops everything (dependents first), writes the state, and ends every actor. Only the
    /// first call does anything.
    pub async fn close(&self) {
        if self.inner.closing.swap(true, Ordering::SeqCst) {
            return;
        }
        let names: Vec<String> = self.lock().instances.keys().cloned().collect();
        // Stopping at shutdown keeps `wanted`, so the next daemon brings the instances back.
        self.stop_instances(names, false).await;
        // Nobody to tell at shutdown; the store has logged a failure already.
        let _ = self.write_now().await;
        let instances: Vec<Instance> = {
            let mut reg = self.lock();
            reg.by_definition.clear();
            std::mem::take(&mut reg.instances).into_values().map(|e| e.instance).collect()
        };
        for instance in instances {
            instance.ask(Command::Exit).await;
        }
    }
}

#[cfg(test)]
mod tests;
