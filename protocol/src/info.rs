//! What `pm.info` answers: everything the daemon knows about one instance.

use crate::status::{ConnectInfo, Event};
use crate::{Definition, ExitInfo, InstanceStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The most instances one `pm.info` describes: a name that stands for more is refused (name one
/// instance, or use `pm.status`).
pub const MAX_INFO_INSTANCES: usize = 100;

/// One instance in full, as `pm info` shows it. Field names are stable for `--json` users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceInfo {
    /// What `pm status` shows of it, CPU and memory included.
    pub status: InstanceStatus,
    /// Its definition (named by `status.definition`), as the daemon runs it.
    pub spec: Definition,
    /// Its own arguments, appended to the definition's command.
    pub args: Vec<String>,
    /// Its latest state changes since the daemon started, oldest first (a bounded number).
    pub history: Vec<Event>,
    /// How its latest runs ended since the daemon started, oldest first (a bounded number).
    pub exits: Vec<ExitInfo>,
    pub logs: LogPaths,
    /// How to reach it, as `pm.connect` gives it for this instance.
    pub endpoints: ConnectInfo,
}

/// Where an instance's output is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogPaths {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}
