//! `pm.sync`: a set of definitions applied as a difference to what the daemon has. New ones are
//! added, changed ones replaced (their running instances restarted one at a time), unchanged ones
//! left alone, and with `prune` those that left their source are stopped and deleted. Each
//! definition remembers its source (a file, `npm:pkg@1.0.0`, …) so a prune never touches another
//! source's.

use crate::{Definition, InstanceStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What `pm.sync` is asked to do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncParams {
    /// The definitions, by name, each with where it came from.
    pub definitions: BTreeMap<String, Sourced>,
    /// The sources read in full: with `prune`, their definitions missing from `definitions` are
    /// stopped and deleted.
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub prune: bool,
    /// Only say what would change.
    #[serde(default)]
    pub dry_run: bool,
    /// Then start the autostart instances of every definition given.
    #[serde(default)]
    pub start: bool,
}

/// A definition and its source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sourced {
    /// A file's absolute path, `npm:NAME@VERSION`, `link:PATH`, …
    pub source: String,
    pub definition: Definition,
}

/// What a sync changed (or, dry, would change).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncReport {
    pub added: Vec<String>,
    pub changed: Vec<Changed>,
    pub unchanged: Vec<String>,
    /// Deleted (with `prune`), or, without it, those a prune would delete.
    pub removed: Vec<String>,
    /// Whether `removed` were deleted (`prune`) or only found.
    pub pruned: bool,
    /// The running instances of changed definitions, restarted one at a time.
    pub restarted: Vec<String>,
    /// With `start`: the instances started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub started: Vec<InstanceStatus>,
}

/// A definition that differs from the daemon's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Changed {
    pub name: String,
    /// The keys whose values differ, e.g. `["command", "env"]`.
    pub keys: Vec<String>,
    /// Its source before, when it came from another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was_from: Option<String>,
}

impl SyncReport {
    /// Whether anything differs.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}
