//! Adding, replacing and deleting definitions, and keeping their default instances in step.

use super::instance::{Command, Instance, InstanceSpec};
use super::{Registry, Result, SupError, Supervisor, graph};
use pm_protocol::definition::MAX_INSTANCES;
use pm_protocol::{Definition, DefinitionInfo, InstanceStatus, Readiness, RuntimeKind, duration, validate_name};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The longest definition name, in bytes: its instances add `-N` or `-adjective-noun`, and must
/// still be valid names.
pub const MAX_DEFINITION_NAME_LEN: usize = 64;

/// Checks what serde cannot: names, signal, patterns, counts; and the bounds serde checks, for
/// definitions that did not come through it.
pub fn validate(name: &str, def: &Definition) -> std::result::Result<(), String> {
    let ctx = |e: String| format!("sidecar `{name}`: {e}");
    validate_name(name)?;
    if name.len() > MAX_DEFINITION_NAME_LEN {
        return Err(format!(
            "invalid name `{name}`: {} bytes long; definition names are at most {MAX_DEFINITION_NAME_LEN}",
            name.len()
        ));
    }
    match (def.runtime, &def.docker) {
        (RuntimeKind::Docker, Some(docker)) if docker.image.trim().is_empty() => {
            return Err(ctx("docker.image is empty".into()));
        }
        (RuntimeKind::Docker, Some(_)) => {}
        (RuntimeKind::Docker, None) => {
            return Err(ctx("runtime = \"docker\" needs a [docker] table with an image".into()));
        }
        (runtime, Some(_)) => {
            return Err(ctx(format!("a [docker] table needs runtime = \"docker\" (it is {runtime})")));
        }
        (RuntimeKind::Task, None) if def.command.first().is_none_or(|p| p.is_empty()) => {
            return Err(ctx("command must name the task to run".into()));
        }
        (_, None) if def.command.first().is_none_or(|p| p.is_empty()) => return Err(ctx("command is empty".into())),
        (_, None) => {}
    }
    if def.instances == 0 {
        return Err(ctx("instances must be at least 1".into()));
    }
    if def.instances > MAX_INSTANCES {
        return Err(ctx(format!("instances: at most {MAX_INSTANCES} (got {})", def.instances)));
    }
    pm_protocol::definition::check_priority(def.priority).map_err(|e| ctx(format!("priority: {e}")))?;
    super::watch::check(def).map_err(|e| ctx(e.to_string()))?;
    for (key, d) in durations(def) {
        duration::check(d).map_err(|e| ctx(format!("{key}: {e}")))?;
    }
    pm_runtimes::parse_signal(&def.stop_signal).map_err(|e| ctx(format!("stop_signal: {e}")))?;
    match &def.ready {
        Readiness::Log(pattern) => {
            // With its per-instance variables in, as it is at start.
            let pattern = pm_protocol::vars::Vars::sample().expand(pattern);
            regex::Regex::new(&pattern).map_err(|e| ctx(format!("ready log pattern: {e}")))?;
        }
        Readiness::Http(url) => {
            pm_protocol::health::http_target(url).map_err(|e| ctx(format!("ready: {e}")))?;
        }
        Readiness::Exited if def.health.is_some() => {
            return Err(ctx(
                "a health check needs a sidecar that keeps running, not a one-shot (ready = \"exited\")".into()
            ));
        }
        _ => {}
    }
    if let Some(notify) = &def.notify {
        if notify.exec.is_none() && notify.webhook.is_none() {
            return Err(ctx("notify needs an `exec` command or a `webhook` URL".into()));
        }
        if let Some(url) = &notify.webhook {
            pm_protocol::health::http_target(url).map_err(|e| ctx(format!("notify.webhook: {e}")))?;
        }
        if notify.on.is_empty() {
            return Err(ctx("notify.on is empty: no event would be sent".into()));
        }
    }
    if let Some(port) = def.port {
        port.check_instances(def.instances).map_err(|e| ctx(format!("port: {e}")))?;
    }
    for dep in &def.depends_on {
        validate_name(dep).map_err(|e| ctx(format!("depends_on: {e}")))?;
    }
    for group in &def.groups {
        validate_name(group).map_err(|e| ctx(format!("groups: {e}")))?;
    }
    crate::grants::validate(def).map_err(ctx)
}

/// Every duration of a definition, by key.
fn durations(def: &Definition) -> [(&'static str, std::time::Duration); 6] {
    [
        ("backoff_initial", def.backoff_initial),
        ("backoff_max", def.backoff_max),
        ("restart_window", def.restart_window),
        ("min_uptime", def.min_uptime),
        ("stop_timeout", def.stop_timeout),
        ("ready_timeout", def.ready_timeout),
    ]
}

/// Refuses definitions that would claim a port another definition claims, naming both.
fn check_ports(reg: &Registry, defs: &BTreeMap<String, Definition>) -> Result<()> {
    let kept = reg.definitions.iter().filter(|(n, _)| !defs.contains_key(*n)).map(|(n, d)| (n, &**d));
    let all: BTreeMap<&String, &Definition> = kept.chain(defs.iter()).collect();
    let claims = all.iter().filter_map(|(n, d)| Some((n.as_str(), d.port?, d.instances)));
    match pm_protocol::port::first_conflict(claims) {
        Some((port, a, b)) => {
            let spec = |n: &str| all.iter().find(|(k, _)| k.as_str() == n).and_then(|(_, d)| d.port).expect("claimed");
            Err(SupError::Invalid(format!(
                "port {port} is claimed by both `{a}` (port = {}) and `{b}` (port = {})",
                spec(a),
                spec(b)
            )))
        }
        None => Ok(()),
    }
}

/// What a redefinition does to existing instances.
#[derive(Default)]
struct Changes {
    removed: Vec<Instance>,
    updated: Vec<(Instance, InstanceSpec)>,
}

/// The instance names a definition has by default: its own name, or `name-0 … name-(N-1)`.
fn default_instances(name: &str, def: &Definition) -> Vec<String> {
    match def.instances {
        1 => vec![name.to_string()],
        n => (0..n).map(|i| format!("{name}-{i}")).collect(),
    }
}

/// The index of `instance` among `name`'s default instances (`name` itself counts as 0), or
/// `None` when it is not one of those names.
pub(super) fn default_index(name: &str, instance: &str) -> Option<u32> {
    if instance == name {
        return Some(0);
    }
    let index = instance.strip_prefix(name)?.strip_prefix('-')?;
    (!index.is_empty() && index.bytes().all(|b| b.is_ascii_digit())).then(|| index.parse().ok()).flatten()
}

/// The default instances `name` has once its count is `def.instances`: those it has, lowest
/// index first, up to the count, then new ones at the free indices. So a change of count adds or
/// removes instances and leaves the others alone (3 → 1 keeps `name-0`; 1 → 3 adds `name-1`
/// and `name-2` beside `name`); a new definition gets [`default_instances`].
fn wanted_instances(name: &str, def: &Definition, existing: &[String]) -> Vec<String> {
    let mut have: Vec<(u32, &String)> =
        existing.iter().filter_map(|i| default_index(name, i).map(|index| (index, i))).collect();
    if have.is_empty() {
        return default_instances(name, def);
    }
    have.sort_unstable();
    let count = def.instances as usize;
    let mut wanted: Vec<String> = have.iter().take(count).map(|(_, i)| (*i).clone()).collect();
    let taken: std::collections::BTreeSet<u32> = have.iter().map(|(index, _)| *index).collect();
    let mut free = (0..).filter(|index| !taken.contains(index));
    while wanted.len() < count {
        let index = free.next().expect("indices are unbounded");
        wanted.push(format!("{name}-{index}"));
    }
    wanted
}

impl Supervisor {
    /// Adds a definition, or replaces it with `replace`.
    pub async fn map(&self, name: String, def: Definition, replace: bool) -> Result<DefinitionInfo> {
        self.check_open()?;
        if !replace && self.lock().definitions.contains_key(&name) {
            return Err(SupError::AlreadyExists(format!(
                "sidecar `{name}` is already defined (replace it with --force, or `pm delete {name}` first)"
            )));
        }
        self.define(BTreeMap::from([(name.clone(), def)])).await?;
        // Defined by hand now: no source's prune may take it.
        self.lock().sources.remove(&name);
        self.ls().into_iter().find(|d| d.name == name).ok_or_else(|| super::unknown(&name))
    }

    /// Gives definition `name` `instances` instances, leaving the others alone; the new ones start
    /// if one of the others is active.
    pub async fn scale(&self, name: &str, instances: u32) -> Result<Vec<InstanceStatus>> {
        self.check_open()?;
        let (mut def, before, active) = {
            let reg = self.lock();
            let def = reg.definitions.get(name).ok_or_else(|| super::unknown(name))?;
            let before = reg.instances_of(name);
            let active = before.iter().any(|i| reg.instances[i].instance.snapshot().state.is_active());
            ((**def).clone(), before, active)
        };
        def.instances = instances;
        validate(name, &def).map_err(SupError::Invalid)?;
        self.define(BTreeMap::from([(name.to_string(), def)])).await?;
        let added: Vec<String> = self.lock().instances_of(name).into_iter().filter(|i| !before.contains(i)).collect();
        if active && !added.is_empty() {
            self.start_instances(added).await?;
        }
        self.status(Some(name))
    }

    /// Adds or replaces a project's definitions; with `start`, starts the autostart ones.
    pub async fn apply(&self, defs: BTreeMap<String, Definition>, start: bool) -> Result<Vec<InstanceStatus>> {
        self.check_open()?;
        let names: Vec<String> = defs.keys().cloned().collect();
        self.define_unsaved(defs).await?;
        let instances: Vec<String> = {
            let reg = self.lock();
            names.iter().filter(|n| !start || reg.definitions[*n].autostart).flat_map(|n| reg.instances_of(n)).collect()
        };
        let applied = if start {
            self.start_instances(instances).await
        } else {
            let reg = self.lock();
            Ok(instances.iter().filter_map(|n| reg.status(n)).collect())
        };
        // On disk before the answer; a start that went through saved as it settled.
        if !(start && applied.is_ok()) {
            self.save().await?;
        }
        applied
    }

    /// Validates and installs definitions all together, or none of them, and waits until they
    /// are on disk.
    pub(super) async fn define(&self, defs: BTreeMap<String, Definition>) -> Result<()> {
        self.define_unsaved(defs).await?;
        self.save().await
    }

    /// [`Supervisor::define`] that only asks for a write: for a caller that saves later, before
    /// it answers.
    pub(super) async fn define_unsaved(&self, defs: BTreeMap<String, Definition>) -> Result<()> {
        for (name, def) in &defs {
            validate(name, def).map_err(SupError::Invalid)?;
        }
        let changes = {
            let mut reg = self.lock();
            for name in defs.keys() {
                if let Some(e) = reg.instances.get(name).filter(|e| &e.definition != name) {
                    return Err(SupError::AlreadyExists(format!(
                        "`{name}` is already the name of an instance of `{}`",
                        e.definition
                    )));
                }
            }
            let mut merged: BTreeMap<&str, &[String]> = reg.deps();
            for (name, def) in &defs {
                merged.insert(name, &def.depends_on);
            }
            graph::check_cycles(&merged).map_err(SupError::Invalid)?;
            check_ports(&reg, &defs)?;
            let mut changes = Changes::default();
            for (name, def) in defs {
                let def = Arc::new(def);
                reg.definitions.insert(name.clone(), def.clone());
                let more = self.reconcile(&mut reg, &name, &def);
                changes.removed.extend(more.removed);
                changes.updated.extend(more.updated);
            }
            self.inner.ctx.ports.set_claims(reg.definitions.iter());
            changes
        };
        for instance in changes.removed {
            instance.ask(Command::Exit).await;
        }
        for (instance, spec) in changes.updated {
            instance.send(Command::Update(Box::new(spec))).await;
        }
        self.rewatch();
        self.persist();
        Ok(())
    }

    /// Gives a (re)defined definition its default instances and takes out default instances the
    /// new count no longer has. Returns those to end and the updates for those that stay; the
    /// caller sends both once the lock is released.
    fn reconcile(&self, reg: &mut Registry, name: &str, def: &Arc<Definition>) -> Changes {
        let wanted = wanted_instances(name, def, &reg.instances_of(name));
        let mut changes = Changes::default();
        for existing in reg.instances_of(name) {
            if default_index(name, &existing).is_some() && !wanted.contains(&existing) {
                changes.removed.extend(reg.remove(&existing).map(|e| e.instance));
            }
        }
        for instance in reg.instances_of(name) {
            let entry = &reg.instances[&instance];
            let spec = InstanceSpec {
                name: instance.clone(),
                definition: name.to_string(),
                def: def.clone(),
                args: entry.args.clone(),
                index: reg.index_of(name, &instance),
            };
            changes.updated.push((entry.instance.clone(), spec));
        }
        for instance in wanted {
            if !reg.instances.contains_key(&instance) {
                self.new_instance(reg, &instance, name, Vec::new());
            }
        }
        changes
    }

    /// Stops and forgets a definition with its instances, or one instance. Refuses to delete a
    /// definition others depend on.
    pub async fn delete(&self, name: &str) -> Result<Vec<String>> {
        if name.starts_with('@') {
            return Err(SupError::Invalid(format!(
                "`pm delete` takes a definition or an instance, not a group ({name})"
            )));
        }
        let (instances, is_definition) = {
            let reg = self.lock();
            let instances = reg.resolve(name)?;
            let is_definition = reg.definitions.contains_key(name);
            if is_definition {
                let users: Vec<&str> = reg
                    .definitions
                    .iter()
                    .filter(|(n, d)| n.as_str() != name && d.depends_on.iter().any(|d| d == name))
                    .map(|(n, _)| n.as_str())
                    .collect();
                if !users.is_empty() {
                    return Err(SupError::Invalid(format!(
                        "cannot delete `{name}`: {} depend(s) on it; delete or change them first",
                        users.join(", ")
                    )));
                }
            }
            (instances, is_definition)
        };
        self.stop_instances(instances.clone(), true).await;
        let ended: Vec<Instance> = {
            let mut reg = self.lock();
            if is_definition {
                reg.definitions.remove(name);
                reg.sources.remove(name);
                self.inner.ctx.ports.set_claims(reg.definitions.iter());
            }
            instances.iter().filter_map(|n| reg.remove(n)).map(|e| e.instance).collect()
        };
        for instance in ended {
            instance.ask(Command::Exit).await;
        }
        self.rewatch();
        self.save().await?;
        Ok(instances)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A supervisor whose state file is in a directory that does not exist.
    fn unwritable() -> (Supervisor, std::path::PathBuf, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let home = crate::home::Home::new(dir.path());
        home.create().unwrap();
        let ctx = super::super::Context::for_tests(Arc::new(pm_runtimes::fake::RecordingRuntime::default()), &home);
        let state = dir.path().join("missing").join("state.json");
        (Supervisor::new(ctx, state.clone(), state.with_extension("json.bak")), state, dir)
    }

    #[tokio::test]
    async fn a_change_that_cannot_be_written_is_an_error_naming_the_file_and_the_reason() {
        let (sup, state, _dir) = unwritable();
        let limit = std::time::Duration::from_secs(10);
        let expected = format!("cannot write {}: No such file or directory (os error 2)", state.display());
        let map = sup.map("web".into(), Definition::new(vec!["x".into()]), false);
        let err = tokio::time::timeout(limit, map).await.unwrap().unwrap_err();
        assert!(matches!(err, SupError::Persist(_)), "{err:?}");
        assert_eq!(err.to_string(), expected);
        let start = sup.start(pm_protocol::params::StartParams { name: Some("web".into()), ..Default::default() });
        let err = tokio::time::timeout(limit, start).await.unwrap().unwrap_err();
        assert_eq!(err.to_string(), expected, "a start is answered only once its pids are on disk");
        let err = tokio::time::timeout(limit, sup.delete("web")).await.unwrap().unwrap_err();
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn default_instance_names() {
        let mut d = Definition::new(vec!["x".into()]);
        assert_eq!(default_instances("web", &d), vec!["web"]);
        d.instances = 3;
        assert_eq!(default_instances("web", &d), vec!["web-0", "web-1", "web-2"]);
        assert_eq!((default_index("web", "web"), default_index("web", "web-12")), (Some(0), Some(12)));
        for other in ["web-brave-otter", "web-", "web-99999999999", "webs-1"] {
            assert_eq!(default_index("web", other), None, "{other}");
        }
    }

    #[test]
    fn a_new_count_adds_or_removes_instances_and_keeps_the_others() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut d = Definition::new(vec!["x".into()]);
        d.instances = 1;
        assert_eq!(wanted_instances("web", &d, &names(&["web-0", "web-1", "web-2"])), ["web-0"]);
        assert_eq!(wanted_instances("web", &d, &[]), ["web"]);
        d.instances = 3;
        assert_eq!(wanted_instances("web", &d, &names(&["web"])), ["web", "web-1", "web-2"]);
        assert_eq!(wanted_instances("web", &d, &names(&["web-2", "web-brave-otter"])), ["web-2", "web-0", "web-1"]);
        d.instances = 2;
        assert_eq!(wanted_instances("web", &d, &names(&["web-0", "web-1", "web-2"])), ["web-0", "web-1"]);
    }

    #[test]
    fn validation_names_the_sidecar_and_the_problem() {
        let mut d = Definition::new(vec!["x".into()]);
        d.stop_signal = "SIGNOPE".into();
        assert!(validate("web", &d).unwrap_err().starts_with("sidecar `web`: stop_signal:"));
        let mut d = Definition::new(vec!["x".into()]);
        d.ready = Readiness::Log("(".into());
        assert!(validate("web", &d).unwrap_err().contains("ready log pattern"));
        assert!(validate("Web", &Definition::new(vec!["x".into()])).is_err());
    }

    #[test]
    fn validation_bounds_counts_durations_and_name_lengths() {
        let mut d = Definition::new(vec!["x".into()]);
        d.instances = MAX_INSTANCES + 1;
        assert_eq!(validate("web", &d).unwrap_err(), "sidecar `web`: instances: at most 10000 (got 10001)");
        let mut d = Definition::new(vec!["x".into()]);
        d.ready_timeout = std::time::Duration::from_secs(u64::MAX);
        assert_eq!(validate("web", &d).unwrap_err(), "sidecar `web`: ready_timeout: too long: at most 100years");
        let long = "a".repeat(MAX_DEFINITION_NAME_LEN + 1);
        let err = validate(&long, &Definition::new(vec!["x".into()])).unwrap_err();
        assert!(err.ends_with("65 bytes long; definition names are at most 64"), "{err}");
        assert!(validate(&"a".repeat(MAX_DEFINITION_NAME_LEN), &Definition::new(vec!["x".into()])).is_ok());
    }
}
