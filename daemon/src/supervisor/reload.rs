//! Reloading: a rolling replacement of the running instances a name stands for, one at a time in
//! index order. Each is drained of the calls to its definition, restarted, and ready again before
//! the next one stops, so a stateless pool of two or more never loses a call. The first one that
//! does not get ready ends the reload, and the later ones keep their old runs.

use super::instance::{Command, Instance};
use super::{Result, SupError, Supervisor, define};
use pm_protocol::State;
use pm_protocol::reload::Reloaded;
use std::time::Duration;

/// One instance to replace, and how long its calls in flight may take to drain (its
/// `stop_timeout`).
struct Step {
    name: String,
    instance: Instance,
    drain_within: Duration,
}

impl Supervisor {
    pub async fn reload(&self, name: &str) -> Result<Reloaded> {
        self.check_open()?;
        let (steps, skipped) = self.plan_reload(name)?;
        let total = steps.len();
        for (i, step) in steps.iter().enumerate() {
            self.check_open()?;
            tracing::info!("{}: reloading ({}/{total})", step.name, i + 1);
            let draining = self.inner.ctx.mesh.drain(&step.name, step.drain_within).await;
            step.instance.ask(Command::Stop).await;
            let started = self.start_instances(vec![step.name.clone()]).await;
            // Calls to the definition may reach the new run once it is ready (or has failed).
            drop(draining);
            if let Err(SupError::StartFailed(why)) = started {
                let left: Vec<&str> = steps[i + 1..].iter().map(|s| s.name.as_str()).collect();
                let left = match left.is_empty() {
                    true => String::new(),
                    false => format!("; not reloaded, still on their old runs: {}", left.join(", ")),
                };
                let why = why.strip_prefix(&format!("{}: ", step.name)).unwrap_or(&why);
                return Err(SupError::StartFailed(format!(
                    "reload stopped at {} ({}/{total}): {why}{left}",
                    step.name,
                    i + 1
                )));
            }
            started?;
        }
        let reg = self.lock();
        let statuses = |names: Vec<String>| names.iter().filter_map(|n| reg.status(n)).collect();
        Ok(Reloaded { reloaded: statuses(steps.into_iter().map(|s| s.name).collect()), skipped: statuses(skipped) })
    }

    /// The running instances `name` stands for, by definition and index, and the others (skipped:
    /// a reload starts nothing).
    fn plan_reload(&self, name: &str) -> Result<(Vec<Step>, Vec<String>)> {
        let reg = self.lock();
        let mut names = reg.resolve(name)?;
        names.sort_by_cached_key(|n| {
            let def = &reg.instances[n].definition;
            (def.clone(), define::default_index(def, n).unwrap_or(u32::MAX), n.clone())
        });
        let (mut steps, mut skipped) = (Vec::new(), Vec::new());
        for name in names {
            let entry = &reg.instances[&name];
            let state = entry.instance.snapshot().state;
            if matches!(state, State::Starting | State::Running | State::Ready | State::Unhealthy | State::Backoff) {
                let drain_within = reg.definitions[&entry.definition].stop_timeout;
                steps.push(Step { name, instance: entry.instance.clone(), drain_within });
            } else {
                skipped.push(name);
            }
        }
        Ok((steps, skipped))
    }
}
