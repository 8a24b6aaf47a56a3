//! `pm.sync`: definitions applied as a difference to the registry (supervisord's `update`,
//! process-compose's reload). New ones are added, changed ones replaced and their running
//! instances restarted one at a time (`reload`), unchanged ones not touched at all, and with
//! `prune` the definitions that left a source read in full are stopped and deleted.

use super::{Registry, Result, SupError, Supervisor, define, graph};
use pm_protocol::Definition;
use pm_protocol::sync::{Changed, SyncParams, SyncReport};
use std::collections::{BTreeMap, BTreeSet};

impl Supervisor {
    pub async fn sync(&self, params: SyncParams) -> Result<SyncReport> {
        self.check_open()?;
        for (name, sourced) in &params.definitions {
            define::validate(name, &sourced.definition).map_err(SupError::Invalid)?;
        }
        let mut report = plan(&self.lock(), &params)?;
        if params.dry_run {
            return Ok(report);
        }
        let changed: BTreeSet<&str> = report.changed.iter().map(|c| c.name.as_str()).collect();
        let to_define: BTreeMap<String, Definition> = params
            .definitions
            .iter()
            .filter(|(name, _)| report.added.contains(name) || changed.contains(name.as_str()))
            .map(|(name, sourced)| (name.clone(), sourced.definition.clone()))
            .collect();
        if !to_define.is_empty() {
            self.define_unsaved(to_define).await?;
        }
        let applied = self.apply_planned(&params, &mut report).await;
        // On disk before the answer, whatever happened once the definitions were in; a start
        // that went through saved as it settled.
        if !(params.start && applied.is_ok()) {
            self.save().await?;
        }
        applied.map(|()| report)
    }

    /// The rest of a sync once its definitions are in: sources, prune, reloads and the start.
    async fn apply_planned(&self, params: &SyncParams, report: &mut SyncReport) -> Result<()> {
        {
            let mut reg = self.lock();
            for (name, sourced) in &params.definitions {
                reg.sources.insert(name.clone(), sourced.source.clone());
            }
        }
        if params.prune {
            for name in &report.removed {
                self.delete(name).await?;
            }
            report.pruned = true;
        }
        for change in &report.changed {
            let reloaded = self.reload(&change.name).await?;
            report.restarted.extend(reloaded.reloaded.into_iter().map(|s| s.name));
        }
        if params.start {
            let instances: Vec<String> = {
                let reg = self.lock();
                params
                    .definitions
                    .keys()
                    .filter(|n| reg.definitions.get(*n).is_some_and(|d| d.autostart))
                    .flat_map(|n| reg.instances_of(n))
                    .collect()
            };
            report.started = self.start_instances(instances).await?;
        }
        Ok(())
    }
}

/// What a sync would do, refusing a prune that would delete what a remaining definition needs.
fn plan(reg: &Registry, params: &SyncParams) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    for (name, sourced) in &params.definitions {
        match reg.definitions.get(name) {
            None => report.added.push(name.clone()),
            Some(old) if **old == sourced.definition => report.unchanged.push(name.clone()),
            Some(old) => report.changed.push(Changed {
                name: name.clone(),
                keys: differing_keys(old, &sourced.definition),
                was_from: reg.sources.get(name).filter(|s| **s != sourced.source).cloned(),
            }),
        }
    }
    let removed: BTreeSet<&str> = reg
        .sources
        .iter()
        .filter(|(name, source)| params.sources.contains(source) && !params.definitions.contains_key(*name))
        .map(|(name, _)| name.as_str())
        .collect();
    if params.prune {
        let kept = reg.definitions.iter().filter(|(n, _)| !removed.contains(n.as_str()));
        let after = kept.map(|(n, d)| (n, &**d)).chain(params.definitions.iter().map(|(n, s)| (n, &s.definition)));
        for (name, def) in after {
            if let Some(gone) = def.depends_on.iter().find(|d| removed.contains(d.as_str())) {
                return Err(SupError::Invalid(format!(
                    "cannot prune `{gone}`: `{name}` depends on it (and stays); change or delete `{name}` first"
                )));
            }
        }
    }
    // Dependents first, so each delete finds nobody depending on what it deletes.
    let deps = reg.deps();
    let roots: Vec<&str> = removed.iter().copied().collect();
    let mut order = graph::closure(&deps, &roots).unwrap_or_else(|_| roots.iter().map(|r| r.to_string()).collect());
    order.retain(|n| removed.contains(n.as_str()));
    order.reverse();
    report.removed = order;
    Ok(report)
}

/// The top-level keys whose values differ between two definitions, as a project file names them.
fn differing_keys(old: &Definition, new: &Definition) -> Vec<String> {
    let as_map = |d: &Definition| match serde_json::to_value(d) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (old, new) = (as_map(old), as_map(new));
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter().filter(|k| old.get(*k) != new.get(*k)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::differing_keys;
    use pm_protocol::Definition;

    #[test]
    fn changed_keys_are_named() {
        let old = Definition::new(vec!["sleep".into(), "1".into()]);
        let mut new = old.clone();
        assert!(differing_keys(&old, &new).is_empty());
        new.command = vec!["sleep".into(), "2".into()];
        new.env.insert("A".into(), "1".into());
        new.instances = 2;
        assert_eq!(differing_keys(&old, &new), ["command", "env", "instances"]);
    }
}
