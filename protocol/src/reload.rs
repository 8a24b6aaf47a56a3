//! What `pm.reload` answers.

use crate::InstanceStatus;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The instances a reload replaced, one at a time, and those it left alone because they were not
/// running (a reload starts nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reloaded {
    pub reloaded: Vec<InstanceStatus>,
    pub skipped: Vec<InstanceStatus>,
}
