//! Notifications: a command and/or a webhook told when an instance fails, turns unhealthy, or
//! gives up restarting. In a project file:
//!
//! ```toml
//! notify = { webhook = "http://127.0.0.1:9000/pm", exec = "./page-oncall.sh" }
//! ```

use crate::definition::command;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where to send notifications, and for which events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// A command run on the host for each notification, with `PM_EVENT`, `PM_NAME`, `PM_REASON`
    /// and the whole notification as JSON in `PM_NOTIFICATION`; at most 10s.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "command::optional")]
    #[schemars(with = "Option<command::Schema>")]
    pub exec: Option<Vec<String>>,
    /// A plain `http://` URL the notification is POSTed to as JSON; at most 5s, 2xx expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Which events: any of `failed`, `unhealthy`, `gave_up` (default: all three).
    #[serde(default = "all_events")]
    pub on: Vec<NotifyEvent>,
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// The instance is `failed` (its start failed, or it exited and is not restarted).
    Failed,
    /// Its health check failed `failure_threshold` times in a row.
    Unhealthy,
    /// It is `failed` because it restarted more than `max_restarts` times within `restart_window`.
    GaveUp,
}

fn all_events() -> Vec<NotifyEvent> {
    vec![NotifyEvent::Failed, NotifyEvent::Unhealthy, NotifyEvent::GaveUp]
}

/// One notification, as the webhook receives it and the command finds it in `PM_NOTIFICATION`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Notification {
    pub instance: String,
    pub definition: String,
    pub event: NotifyEvent,
    /// The instance's state: `failed` or `unhealthy`.
    pub state: crate::State,
    pub reason: Option<String>,
    pub last_exit: Option<crate::ExitInfo>,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}
