//! Parameters of the `pm.*` methods that take more than one or two values.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `pm.start`: start a definition's instances (with their dependencies), or every autostart one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct StartParams {
    /// Definition or instance; none starts every autostart definition.
    pub name: Option<String>,
    /// Make a new instance of the definition with a generated name.
    pub new: bool,
    /// Make (or start) the instance of this name.
    pub instance: Option<String>,
    /// Extra arguments appended to the definition's command, for a new instance.
    pub args: Vec<String>,
}

/// `pm.stop`: stop an instance, a definition's instances, or everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct StopParams {
    /// Definition or instance; none with `all` stops everything.
    pub name: Option<String>,
    pub all: bool,
}

/// `pm.register`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RegisterParams {
    /// Methods served (empty: the daemon forwards any).
    pub methods: Vec<String>,
    /// Where the sidecar also serves calls directly.
    pub endpoint: Option<String>,
    /// Send routed calls to `endpoint` instead of over the registering connection.
    pub direct: bool,
}

/// `pm.auth`'s parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuthParams {
    pub token: String,
}
