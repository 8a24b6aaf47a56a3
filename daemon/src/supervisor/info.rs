//! What `pm.info` reads from the registry: an instance's status, definition, arguments and
//! recent past. Where to reach it and its log files are the API's to add.

use super::{Result, Supervisor};
use pm_protocol::status::Event;
use pm_protocol::{Definition, ExitInfo, InstanceStatus};
use std::sync::Arc;

/// One instance as the supervisor knows it.
pub struct Detail {
    pub status: InstanceStatus,
    pub spec: Arc<Definition>,
    pub args: Vec<String>,
    pub history: Vec<Event>,
    pub exits: Vec<ExitInfo>,
}

impl Supervisor {
    /// The instances `name` stands for, in full, with their CPU and memory figures.
    pub async fn info(&self, name: &str) -> Result<Vec<Detail>> {
        let statuses = self.status_with_usage(Some(name)).await?;
        let reg = self.lock();
        // One deleted while its figures were read is left out, as `pm status` would.
        let details = statuses.into_iter().filter_map(|status| {
            let entry = reg.instances.get(&status.name)?;
            let spec = reg.definitions.get(&entry.definition)?.clone();
            let (history, exits) = entry.instance.history().read(&status.name);
            Some(Detail { status, spec, args: entry.args.clone(), history, exits })
        });
        Ok(details.collect())
    }
}
