//! The daemon's own methods, in the `pm.` namespace. This trait is the single definition: the
//! daemon implements `PmApiServer`, the CLI and the SDK call through `PmApiClient`.

use crate::params::{StartParams, StopParams};
use crate::status::{AuthInfo, ConnectInfo, EventItem, LogEvent, LogFilter, RegisterInfo};
use crate::{DaemonInfo, Definition, DefinitionInfo, InstanceStatus};
use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use std::collections::BTreeMap;

#[rpc(client, server, namespace = "pm", namespace_separator = ".")]
pub trait PmApi {
    /// Who and where the daemon is.
    #[method(name = "ping")]
    async fn ping(&self) -> RpcResult<DaemonInfo>;

    /// Adds a definition (or replaces it, with `replace`), with its default instance(s).
    #[method(name = "map", param_kind = map)]
    async fn map(&self, name: String, definition: Definition, replace: bool) -> RpcResult<DefinitionInfo>;

    /// Adds or replaces a project's definitions; with `start`, starts its autostart ones.
    #[method(name = "apply", param_kind = map)]
    async fn apply(&self, definitions: BTreeMap<String, Definition>, start: bool) -> RpcResult<Vec<InstanceStatus>>;

    /// Applies definitions as a difference: adds new ones, replaces changed ones (restarting
    /// their running instances one at a time), leaves the others, and with `prune` deletes those
    /// that left their source. `dry_run` only tells what would change.
    #[method(name = "sync")]
    async fn sync(&self, params: crate::sync::SyncParams) -> RpcResult<crate::sync::SyncReport>;

    /// Every definition with its instances.
    #[method(name = "ls")]
    async fn ls(&self) -> RpcResult<Vec<DefinitionInfo>>;

    /// Starts instances and their dependencies; answers once they are ready (or failed).
    #[method(name = "start")]
    async fn start(&self, params: StartParams) -> RpcResult<Vec<InstanceStatus>>;

    /// Stops instances, their dependents first; answers once they are stopped.
    #[method(name = "stop")]
    async fn stop(&self, params: StopParams) -> RpcResult<Vec<InstanceStatus>>;

    /// Stops then starts a definition's instances, or one instance.
    #[method(name = "restart", param_kind = map)]
    async fn restart(&self, name: String) -> RpcResult<Vec<InstanceStatus>>;

    /// Replaces the running instances of a definition, an instance or `@group` one at a time:
    /// each is drained of calls to its definition, restarted, and ready before the next one
    /// stops. Instances that are not running are skipped.
    #[method(name = "reload", param_kind = map)]
    async fn reload(&self, name: String) -> RpcResult<crate::reload::Reloaded>;

    /// Gives a definition `instances` instances: adds or removes some, and touches no other.
    /// New ones start when the definition has an active instance.
    #[method(name = "scale", param_kind = map)]
    async fn scale(&self, name: String, instances: u32) -> RpcResult<Vec<InstanceStatus>>;

    /// Stops and forgets a definition (with its instances) or one instance.
    #[method(name = "delete", param_kind = map)]
    async fn delete(&self, name: String) -> RpcResult<Vec<String>>;

    /// Status of every instance, or of one definition's or instance's.
    #[method(name = "status", param_kind = map)]
    async fn status(&self, name: Option<String>) -> RpcResult<Vec<InstanceStatus>>;

    /// How to reach a sidecar: through the daemon, and directly if it serves an endpoint.
    #[method(name = "connect", param_kind = map)]
    async fn connect(&self, name: String) -> RpcResult<ConnectInfo>;

    /// Everything about an instance (each of a definition's or a group's, up to
    /// `MAX_INFO_INSTANCES`): status, definition, recent states and exits, log files, endpoints.
    #[method(name = "info", param_kind = map)]
    async fn info(&self, name: String) -> RpcResult<Vec<crate::info::InstanceInfo>>;

    /// Empties the log files of a definition's instances, one instance or a `@group`: the current
    /// files are cut to nothing (their writers go on into them) and rotated ones deleted.
    /// Returns the files emptied or deleted.
    #[method(name = "flush", param_kind = map)]
    async fn flush(&self, name: String) -> RpcResult<Vec<String>>;

    /// Stops every instance in reverse dependency order, then the daemon.
    #[method(name = "shutdown")]
    async fn shutdown(&self) -> RpcResult<()>;

    /// The last `lines` lines of an instance's (or a definition's) logs, both streams merged in
    /// time order, then, with `follow`, new ones as they come. One `LogEvent::Line` per line, or
    /// with `chunks` many lines per `LogEvent::Lines` (far fewer notifications for a long
    /// history). The history is read and sent in bounded pieces, at the reader's pace; a follower
    /// that falls behind live lines gets `LogEvent::Skipped`. Always ends with a `LogEvent::End`.
    /// `filter` may name several instances instead (or every one), and narrows the lines.
    #[subscription(name = "logs", unsubscribe = "unlogs", item = LogEvent, param_kind = map)]
    async fn logs(
        &self,
        name: String,
        lines: usize,
        follow: bool,
        chunks: Option<bool>,
        filter: Option<LogFilter>,
    ) -> SubscriptionResult;

    /// State changes of every instance (or of those `name` stands for), as they happen. Ends
    /// with an `EventItem::End`.
    #[subscription(name = "events", unsubscribe = "unevents", item = EventItem, param_kind = map)]
    async fn events(&self, name: Option<String>) -> SubscriptionResult;
}

/// Methods whose answer depends on the connection they arrive on (who is calling, where to send
/// routed calls). The daemon's dispatcher serves them itself, because jsonrpsee's server cannot
/// see the caller, so only the client side is generated.
#[rpc(client, namespace = "pm", namespace_separator = ".")]
pub trait PmSession {
    /// Authenticates this connection: the daemon's token (owner) or a sidecar's PM_TOKEN.
    #[method(name = "auth", param_kind = map)]
    async fn auth(&self, token: String) -> RpcResult<AuthInfo>;

    /// Makes the calling sidecar commandable: the daemon routes `<sidecar>.<method>` to it, over
    /// this connection (reverse mode) or, with `direct`, to `endpoint`.
    #[method(name = "register", param_kind = map)]
    async fn register(&self, methods: Vec<String>, endpoint: Option<String>, direct: bool) -> RpcResult<RegisterInfo>;
}
